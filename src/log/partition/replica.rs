//! The partition's side of replication (cluster mode). The log engine knows nothing of
//! brokers or the protocol; it offers what a leader and a follower need:
//!
//! - a high watermark that follows a limit set from outside (the leader: the lowest offset
//!   the in-sync followers hold durably; a follower: the leader's high watermark), never past
//!   this broker's own durable offset, so invariant 5 holds on every replica;
//! - reads for followers, up to the durable offset rather than the high watermark (a
//!   follower never copies what the leader could still lose in a crash);
//! - appends of a leader's batches as they are, offsets and leader epochs kept;
//! - the leader-epoch cache (epoch -> first offset, Kafka's leader-epoch-checkpoint), which
//!   answers OffsetForLeaderEpoch and finds where a follower's log diverges;
//! - truncation of a diverging tail.

use super::{recovery, AppendError, Partition, ReadOutcome, State};
use crate::log::batch::{self, BatchHeader};
use crate::log::segment::{file_name, Segment};
use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

const EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// Replication state kept in `State` (None on a single node).
#[derive(Debug, Default)]
pub(super) struct Replicated {
    /// The high watermark may not pass this (it also never passes the durable offset).
    pub limit: i64,
    /// Ends of the batches above the high watermark as (next offset, segment base, position
    /// after the batch): where the high watermark falls when it moves to one of them.
    pub boundaries: VecDeque<(i64, i64, u64)>,
}

/// Kafka's leader-epoch file: a version line, a count, then "epoch start_offset" lines.
pub(super) fn read_epochs(dir: &Path) -> Vec<(i32, i64)> {
    let Ok(text) = fs::read_to_string(dir.join(EPOCH_CHECKPOINT)) else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

fn write_epochs(dir: &Path, epochs: &[(i32, i64)]) -> io::Result<()> {
    let mut text = format!("0\n{}\n", epochs.len());
    for (epoch, start) in epochs {
        text.push_str(&format!("{epoch} {start}\n"));
    }
    let tmp = dir.join(format!("{EPOCH_CHECKPOINT}.tmp"));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(EPOCH_CHECKPOINT))?;
    fs::File::open(dir)?.sync_all()
}

impl State {
    /// Notes a batch of `epoch` starting at `base_offset`; a new epoch is checkpointed.
    pub(super) fn note_epoch(
        &mut self,
        dir: &Path,
        epoch: i32,
        base_offset: i64,
    ) -> io::Result<()> {
        if epoch < 0 || self.epochs.last().is_some_and(|(e, _)| *e >= epoch) {
            return Ok(());
        }
        self.epochs.push((epoch, base_offset));
        write_epochs(dir, &self.epochs)
    }

    /// Remembers where the batch just written ends, for a high watermark that lags it.
    pub(super) fn note_boundary(&mut self) {
        let (end, base, size) = {
            let a = self.active();
            (a.next_offset(), a.base_offset(), a.size())
        };
        if let Some(r) = &mut self.replicated {
            r.boundaries.push_back((end, base, size));
        }
    }

    /// Moves the high watermark up to `target` (or the last batch end below it); returns
    /// whether it moved.
    pub(super) fn raise_high_watermark(&mut self, target: i64) -> bool {
        if target <= self.high_watermark {
            return false;
        }
        let at = if target >= self.durable.0 {
            // Everything durable: the flush's own position.
            Some((self.durable.0, self.durable.1, self.durable.2))
        } else {
            let mut at = None;
            if let Some(r) = &mut self.replicated {
                while let Some(&(end, base, pos)) = r.boundaries.front() {
                    if end > target {
                        break;
                    }
                    at = Some((end, base, pos));
                    r.boundaries.pop_front();
                }
            }
            at
        };
        let Some((offset, base, pos)) = at.filter(|(o, _, _)| *o > self.high_watermark) else {
            return false;
        };
        if let Some(r) = &mut self.replicated {
            while r
                .boundaries
                .front()
                .is_some_and(|(end, _, _)| *end <= offset)
            {
                r.boundaries.pop_front();
            }
        }
        self.high_watermark = offset;
        self.hw_segment = base;
        self.hw_position = pos;
        self.producers.on_high_watermark(offset);
        true
    }

    /// What the high watermark may reach now.
    pub(super) fn high_watermark_target(&self) -> i64 {
        match &self.replicated {
            Some(r) => r.limit.min(self.durable.0),
            None => self.durable.0,
        }
    }
}

/// Where a follower's log and the leader's part: (epoch, end offset), Kafka's EpochEndOffset.
pub const UNDEFINED_EPOCH: (i32, i64) = (-1, -1);

impl Partition {
    /// Cluster mode: from now on the high watermark follows `set_high_watermark_limit`, which
    /// starts at the current high watermark.
    pub fn set_replicated(&self, replicated: bool) {
        let mut st = self.lock();
        if replicated == st.replicated.is_some() {
            return;
        }
        st.replicated = replicated.then(|| Replicated {
            limit: st.high_watermark,
            boundaries: VecDeque::new(),
        });
        if replicated {
            // Batches written before the switch: one boundary at the log end suffices for
            // the high watermark to catch up with them.
            let (end, base, size) = {
                let a = st.active();
                (a.next_offset(), a.base_offset(), a.size())
            };
            if end > st.high_watermark {
                st.replicated
                    .as_mut()
                    .unwrap()
                    .boundaries
                    .push_back((end, base, size));
            }
        }
    }

    /// The offset the high watermark may reach (the leader: what every in-sync replica holds
    /// durably; a follower: the leader's high watermark). `reset` lets it go down (a new
    /// role); the high watermark itself never does.
    pub fn set_high_watermark_limit(&self, limit: i64, reset: bool) {
        let mut st = self.lock();
        let Some(r) = &mut st.replicated else {
            return;
        };
        if !reset && limit <= r.limit {
            return;
        }
        r.limit = limit;
        let target = st.high_watermark_target();
        if st.raise_high_watermark(target) {
            let (hw, lso) = (st.high_watermark, st.last_stable_offset());
            drop(st);
            self.durability.send_modify(|d| {
                d.high_watermark = d.high_watermark.max(hw);
                d.last_stable_offset = d.last_stable_offset.max(lso);
            });
        }
    }

    /// What this broker holds durably (the log end once the flusher caught up).
    pub fn durable_offset(&self) -> i64 {
        self.lock().durable.0
    }

    /// The epoch of the newest batch, -1 when unknown.
    pub fn latest_epoch(&self) -> i32 {
        self.lock().epochs.last().map_or(-1, |(e, _)| *e)
    }

    /// Kafka's LeaderEpochFileCache.endOffsetFor: for the newest epoch, the log end; for an
    /// older one, the largest epoch at or below it and the offset where the next began (the
    /// epoch asked about and the first epoch's start when it predates them all);
    /// UNDEFINED_EPOCH for a newer or negative epoch, or when no epoch is known.
    pub fn epoch_end_offset(&self, epoch: i32) -> (i32, i64) {
        let st = self.lock();
        match st.epochs.last() {
            _ if epoch < 0 => UNDEFINED_EPOCH,
            None => UNDEFINED_EPOCH,
            Some((latest, _)) if *latest == epoch => (epoch, st.log_end()),
            _ => match st.epochs.iter().position(|(e, _)| *e > epoch) {
                None => UNDEFINED_EPOCH,
                Some(0) => (epoch, st.epochs[0].1),
                Some(i) => (st.epochs[i - 1].0, st.epochs[i].1),
            },
        }
    }

    /// Reads for a follower: like `read`, but up to the durable offset.
    pub fn read_for_follower(&self, offset: i64, max_bytes: usize) -> io::Result<ReadOutcome> {
        self.read_limited(offset, max_bytes, true, true)
    }

    /// Appends a leader's batches as they are (their offsets and leader epochs kept); batches
    /// already held are skipped. Returns the log end after them.
    pub fn append_replicated(self: &Arc<Self>, batches: &[u8]) -> Result<i64, AppendError> {
        let mut st = self.lock();
        if st.deleted {
            return Err(AppendError::Deleted);
        }
        if st.failed {
            return Err(AppendError::Offline);
        }
        let mut at = 0usize;
        let now = crate::log::now_ms();
        while at < batches.len() {
            let rest = &batches[at..];
            // A leader may end a response with a partial batch; it comes whole next time.
            let Ok(h) = BatchHeader::parse(rest) else {
                break;
            };
            if h.total_len > rest.len() {
                break;
            }
            let bytes = &rest[..h.total_len];
            at += h.total_len;
            let header = batch::validate(bytes).map_err(AppendError::Batch)?;
            if header.last_offset() < st.log_end() {
                continue;
            }
            if header.base_offset < st.log_end() {
                return Err(AppendError::Batch(batch::BatchError::Invalid(
                    "a replicated batch overlaps the log end",
                )));
            }
            if let Err(e) = self.maybe_roll(&mut st, bytes.len(), now, false) {
                self.fail(&mut st, "segment roll", &e);
                return Err(AppendError::Io(e));
            }
            let epoch = batch::partition_leader_epoch(bytes);
            if let Err(e) = st.note_epoch(&self.dir, epoch, header.base_offset) {
                self.fail(&mut st, "leader epoch checkpoint", &e);
                return Err(AppendError::Io(e));
            }
            let interval = st.config.index_interval_bytes;
            let (head, body) = bytes.split_at(batch::HEADER_LEN);
            let head: &[u8; batch::HEADER_LEN] =
                head.try_into().expect("split at the header length");
            if let Err(e) = st.active_mut().append(head, body, &header, interval) {
                self.fail(&mut st, "segment write", &e);
                return Err(AppendError::Io(e));
            }
            let file = st.active().file().clone();
            if !st.unflushed.iter().any(|f| Arc::ptr_eq(f, &file)) {
                st.unflushed.push(file);
            }
            self.replay_replicated(&mut st, &header, bytes, now)?;
            st.note_boundary();
        }
        let end = st.log_end();
        self.queue_flush(&mut st);
        Ok(end)
    }

    /// Producer state and the transaction index follow a replicated batch as they follow a
    /// replayed one in recovery.
    fn replay_replicated(
        &self,
        st: &mut State,
        h: &BatchHeader,
        bytes: &[u8],
        now: i64,
    ) -> Result<(), AppendError> {
        if !h.is_control() {
            st.producers.record(h, h.base_offset, now);
            return Ok(());
        }
        let Some(marker) = crate::log::control::parse_marker(bytes).filter(|_| h.has_producer_id())
        else {
            return Ok(());
        };
        let completed =
            st.producers
                .record_marker(h.producer_id, h.producer_epoch, marker, h.base_offset, now);
        if let Some(txn) = completed.filter(|t| t.aborted) {
            match st.active_mut().append_aborted(&txn.index_entry()) {
                Ok((index, created)) => {
                    if !st.unflushed.iter().any(|f| Arc::ptr_eq(f, &index)) {
                        st.unflushed.push(index);
                    }
                    st.dir_dirty |= created;
                }
                Err(e) => {
                    self.fail(st, "transaction index write", &e);
                    return Err(AppendError::Io(e));
                }
            }
        }
        Ok(())
    }

    /// Cuts the log at `offset` (a batch boundary where it diverges from the leader's), then
    /// reopens it from disk as recovery does, so producer state and indexes match what stays.
    /// Never cuts below the log start; the high watermark comes down with the log end.
    pub fn truncate_to(self: &Arc<Self>, offset: i64) -> io::Result<()> {
        let _serial = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.lock();
        let offset = offset.max(st.local_start());
        if offset >= st.log_end() {
            return Ok(());
        }
        tracing::info!(topic = %self.topic, partition = self.index, from = st.log_end(), to = offset, "truncating a diverging log tail");
        let doomed: Vec<i64> = st.segments.range(offset..).map(|(b, _)| *b).collect();
        for base in &doomed {
            st.segments.remove(base);
            Segment::delete_files(&self.dir, *base);
        }
        if let Some((_, seg)) = st.segments.iter().next_back() {
            let cut = first_position_at(seg, offset)?;
            let base = seg.base_offset();
            fs::OpenOptions::new()
                .write(true)
                .open(self.dir.join(file_name(base, "log")))?
                .set_len(cut)?;
            // Reopened as the active segment: its sealed indexes no longer apply.
            for ext in ["index", "timeindex"] {
                let _ = fs::remove_file(self.dir.join(file_name(base, ext)));
            }
        } else {
            Segment::create(&self.dir, offset)?;
        }
        st.segments.clear();
        st.unflushed.clear();
        let recovered = recovery::recover(&self.topic, self.index, &self.dir, &st.config)?;
        st.segments = recovered.segments;
        st.producers = recovered.producers;
        let (end, base, size) = {
            let a = st.active();
            (a.next_offset(), a.base_offset(), a.size())
        };
        st.durable = (end, base, size);
        st.flushed_mark = (base, size);
        st.dir_synced_segment_base = base;
        if st.high_watermark > end {
            st.high_watermark = end;
            st.hw_segment = base;
            st.hw_position = size;
        }
        let hw = st.high_watermark;
        if let Some(r) = &mut st.replicated {
            r.boundaries.retain(|(e, _, _)| *e <= end);
            r.limit = r.limit.min(hw);
        }
        st.producers.on_high_watermark(hw);
        st.epochs.retain(|(_, start)| *start < end);
        write_epochs(&self.dir, &st.epochs)?;
        let lso = st.last_stable_offset();
        drop(st);
        self.durability.send_modify(|d| {
            d.durable_offset = end;
            d.high_watermark = hw;
            d.last_stable_offset = lso.min(hw);
        });
        Ok(())
    }
}

/// Byte position of the first batch of `seg` ending at or after `offset` (its size if none).
fn first_position_at(seg: &Segment, offset: i64) -> io::Result<u64> {
    let mut pos = seg.lookup(offset);
    let mut head = [0u8; batch::HEADER_LEN];
    while pos + batch::HEADER_LEN as u64 <= seg.size() {
        std::os::unix::fs::FileExt::read_exact_at(seg.file().as_ref(), &mut head, pos)?;
        let Ok(h) = BatchHeader::parse(&head) else {
            break;
        };
        if h.base_offset >= offset || h.last_offset() >= offset {
            return Ok(pos);
        }
        pos += h.total_len as u64;
    }
    Ok(pos.min(seg.size()))
}

#[cfg(test)]
mod tests {
    use crate::log::batch::tests::make_batch;
    use crate::log::flush::Flusher;
    use crate::log::partition::tests::{config, wait_hw};
    use crate::log::partition::{Partition, ReadOutcome};

    #[test]
    fn follower_copies_batches_and_its_high_watermark_follows_the_leaders() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start();
        let leader =
            Partition::open("t", 0, dir.path().join("l"), config(), flusher.clone()).unwrap();
        let follower = Partition::open("t", 0, dir.path().join("f"), config(), flusher).unwrap();
        leader.set_replicated(true);
        follower.set_replicated(true);
        leader.set_leader_epoch(3);
        for i in 0..30 {
            leader.append(&make_batch(2, 1000 + i, None)).unwrap();
        }
        // The leader's high watermark waits for the follower.
        for _ in 0..500 {
            if leader.durable_offset() == 60 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(leader.durable_offset(), 60);
        assert_eq!(leader.offsets().high_watermark, 0);
        // A read stops at a segment's end: fetch on, as a follower does.
        let copy = |from: i64| {
            let mut at = from;
            loop {
                let ReadOutcome::Records(data) = leader.read_for_follower(at, 1 << 20).unwrap()
                else {
                    panic!()
                };
                if data.is_empty() {
                    return at;
                }
                let end = follower.append_replicated(&data).unwrap();
                // Appending the same batches again changes nothing.
                assert_eq!(follower.append_replicated(&data).unwrap(), end);
                at = end;
            }
        };
        assert_eq!(copy(0), 60);
        assert_eq!(follower.epoch_end_offset(3), (3, 60));
        assert_eq!(follower.epoch_end_offset(2), (2, 0));
        assert_eq!(follower.epoch_end_offset(4), super::UNDEFINED_EPOCH);
        leader.set_high_watermark_limit(40, false);
        assert_eq!(leader.offsets().high_watermark, 40);
        follower.set_high_watermark_limit(40, false);
        wait_hw(&follower, 40);
        assert_eq!(follower.offsets().high_watermark, 40);
        // A new epoch on the leader, then a diverging tail on the follower is cut.
        leader.set_leader_epoch(5);
        leader.append(&make_batch(2, 2000, None)).unwrap();
        assert_eq!(leader.epoch_end_offset(3), (3, 60));
        assert_eq!(leader.epoch_end_offset(4), (3, 60));
        assert_eq!(leader.epoch_end_offset(5), (5, 62));
        for _ in 0..500 {
            if follower.durable_offset() == 60 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        follower.truncate_to(50).unwrap();
        let o = follower.offsets();
        assert_eq!((o.high_watermark, o.log_end), (40, 50));
        for _ in 0..500 {
            if leader.durable_offset() == 62 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(copy(50), 62);
        assert_eq!(follower.epoch_end_offset(5), (5, 62));
        // Reopened, the follower keeps its epochs and data.
        drop(follower);
        let follower =
            Partition::open("t", 0, dir.path().join("f"), config(), Flusher::start()).unwrap();
        assert_eq!(follower.offsets().log_end, 62);
        assert_eq!(follower.epoch_end_offset(4), (3, 60));
    }
}
