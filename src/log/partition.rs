//! One partition: its segments, log start offset, high watermark (= durable offset) and
//! producer state. Appends run under the partition's own lock; fsync happens on the flusher.

use super::batch::{self, BatchError, BatchHeader, HEADER_LEN};
use super::flush::Flusher;
use super::producer_state::{ProducerStates, SequenceCheck, SequenceError};
use super::segment::{file_name, read_exact, Segment};
use super::{now_ms, LogConfig};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// Bytes read in one go while looking for the batch that holds a given offset.
const SCAN_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    /// Set when the topic uses LogAppendTime.
    pub log_append_time: Option<i64>,
    pub log_start_offset: i64,
    /// The batch was a retry of one already stored; nothing was written.
    pub duplicate: bool,
}

#[derive(Debug)]
pub enum AppendError {
    Batch(BatchError),
    TooLarge,
    Sequence(SequenceError),
    /// A transactional or control batch while transactions are not supported.
    Transactional,
    Deleted,
    Io(io::Error),
}

impl From<io::Error> for AppendError {
    fn from(e: io::Error) -> Self {
        AppendError::Io(e)
    }
}

#[derive(Debug, Clone)]
pub enum ReadOutcome {
    Records(Bytes),
    OutOfRange,
}

#[derive(Debug, Clone, Copy)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub log_end: i64,
}

struct State {
    segments: BTreeMap<i64, Segment>,
    log_start: i64,
    /// Offsets below this are fsynced and visible to consumers.
    high_watermark: i64,
    /// Where the high watermark falls: (segment base offset, byte position in it).
    hw_segment: i64,
    hw_position: u64,
    producers: ProducerStates,
    config: LogConfig,
    /// Files written since the last fsync.
    unflushed: Vec<Arc<File>>,
    dir_dirty: bool,
    flush_queued: bool,
    deleted: bool,
}

impl State {
    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a partition always has a segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a partition always has a segment")
    }
    fn log_end(&self) -> i64 {
        self.active().next_offset
    }
    /// Byte limit readable in `seg` (everything below the high watermark).
    fn readable_limit(&self, seg: &Segment) -> u64 {
        use std::cmp::Ordering::*;
        match seg.base_offset.cmp(&self.hw_segment) {
            Less => seg.size,
            Equal => self.hw_position,
            Greater => 0,
        }
    }
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    dir: PathBuf,
    state: Mutex<State>,
    hw_tx: watch::Sender<i64>,
    flusher: Flusher,
}

impl Partition {
    /// Opens (or creates) the partition in `dir`, recovering the tail after a crash.
    pub fn open(
        topic: &str,
        index: i32,
        dir: PathBuf,
        config: LogConfig,
        flusher: Flusher,
    ) -> io::Result<Arc<Partition>> {
        fs::create_dir_all(&dir)?;
        let mut bases: Vec<i64> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse::<i64>().ok()
            })
            .collect();
        bases.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut producers = ProducerStates::default();
        let mut dir_dirty = false;
        if bases.is_empty() {
            segments.insert(0, Segment::create(&dir, 0)?);
            dir_dirty = true;
        } else {
            let last = *bases.last().unwrap();
            // The newest producer snapshot at or below the active segment saves replaying old data.
            let snapshot = bases
                .iter()
                .rev()
                .filter_map(|b| {
                    let bytes = fs::read(dir.join(file_name(*b, "snapshot"))).ok()?;
                    Some((*b, ProducerStates::from_json(&bytes)?))
                })
                .next();
            let replay_from = match snapshot {
                Some((at, states)) => {
                    producers = states;
                    at
                }
                None => bases[0],
            };
            for pair in bases.windows(2) {
                let seg =
                    Segment::open_sealed(&dir, pair[0], pair[1], config.index_interval_bytes)?;
                if seg.base_offset >= replay_from {
                    replay_headers(&seg, &mut producers)?;
                }
                segments.insert(pair[0], seg);
            }
            let (active, truncated) =
                Segment::recover(&dir, last, config.index_interval_bytes, |h, _| {
                    if last >= replay_from {
                        producers.record(h, h.base_offset)
                    }
                })?;
            if truncated > 0 {
                tracing::warn!(
                    topic,
                    partition = index,
                    bytes = truncated,
                    "truncated a torn or corrupt log tail"
                );
            }
            // Whatever a previous process wrote is durable from here on.
            active.file.sync_all()?;
            segments.insert(last, active);
        }
        let log_start = *segments.keys().next().unwrap();
        let (hw_segment, hw_position, high_watermark) = {
            let a = segments.values().next_back().unwrap();
            (a.base_offset, a.size, a.next_offset)
        };
        let (hw_tx, _) = watch::channel(high_watermark);
        let partition = Arc::new(Partition {
            topic: topic.to_string(),
            index,
            dir,
            state: Mutex::new(State {
                segments,
                log_start,
                high_watermark,
                hw_segment,
                hw_position,
                producers,
                config,
                unflushed: Vec::new(),
                dir_dirty,
                flush_queued: false,
                deleted: false,
            }),
            hw_tx,
            flusher,
        });
        if dir_dirty {
            partition.flush_now();
        }
        Ok(partition)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied append (file writes are
        // undone on error), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_config(&self, config: LogConfig) {
        self.lock().config = config;
    }

    pub fn config(&self) -> LogConfig {
        self.lock().config.clone()
    }

    pub fn offsets(&self) -> Offsets {
        let st = self.lock();
        Offsets {
            log_start: st.log_start,
            high_watermark: st.high_watermark,
            log_end: st.log_end(),
        }
    }

    /// Watches the high watermark (durable offset): wakes acks=all producers and long-poll fetches.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hw_tx.subscribe()
    }

    /// Validates and appends one record batch, assigning offsets by patching its header.
    pub fn append(self: &Arc<Self>, batch: &[u8]) -> Result<AppendOutcome, AppendError> {
        let header = batch::validate(batch).map_err(AppendError::Batch)?;
        if header.is_transactional() || header.is_control() {
            return Err(AppendError::Transactional);
        }
        let mut st = self.lock();
        if st.deleted {
            return Err(AppendError::Deleted);
        }
        if batch.len() > st.config.max_message_bytes {
            return Err(AppendError::TooLarge);
        }
        match st.producers.check(&header).map_err(AppendError::Sequence)? {
            SequenceCheck::Duplicate(prev) => {
                return Ok(AppendOutcome {
                    base_offset: prev.base_offset,
                    last_offset: prev.last_offset,
                    log_append_time: st.config.log_append_time.then(now_ms),
                    log_start_offset: st.log_start,
                    duplicate: true,
                })
            }
            SequenceCheck::Append => {}
        }
        let now = now_ms();
        self.maybe_roll(&mut st, batch.len(), now)?;
        let base_offset = st.log_end();
        let log_append_time = st.config.log_append_time.then_some(now);
        let head = batch::patched_header(batch, base_offset, 0, log_append_time);
        let mut stored = header;
        stored.base_offset = base_offset;
        if let Some(t) = log_append_time {
            stored.max_timestamp = t;
        }
        let interval = st.config.index_interval_bytes;
        st.active_mut()
            .append(&head, &batch[HEADER_LEN..], &stored, interval)?;
        st.producers.record(&stored, base_offset);
        let file = st.active().file.clone();
        if !st.unflushed.iter().any(|f| Arc::ptr_eq(f, &file)) {
            st.unflushed.push(file);
        }
        let log_start_offset = st.log_start;
        self.queue_flush(&mut st);
        Ok(AppendOutcome {
            base_offset,
            last_offset: stored.last_offset(),
            log_append_time,
            log_start_offset,
            duplicate: false,
        })
    }

    fn queue_flush(self: &Arc<Self>, st: &mut State) {
        if !st.flush_queued {
            st.flush_queued = true;
            self.flusher.request(self.clone());
        }
    }

    fn maybe_roll(&self, st: &mut State, incoming: usize, now: i64) -> io::Result<()> {
        let active = st.active();
        let full = active.size + incoming as u64 > st.config.segment_bytes;
        let old = now - active.created_ms >= st.config.segment_ms;
        // Relative offsets and positions in the index are 32-bit.
        let overflow = active.next_offset - active.base_offset >= i32::MAX as i64
            || active.size + incoming as u64 >= i32::MAX as u64;
        if active.size == 0 || !(full || old || overflow) {
            return Ok(());
        }
        let mut to_sync = active.seal(&self.dir)?;
        let next = active.next_offset;
        let snapshot = self.dir.join(file_name(next, "snapshot"));
        fs::write(&snapshot, st.producers.to_json())?;
        to_sync.push(Arc::new(File::open(&snapshot)?));
        let seg = Segment::create(&self.dir, next)?;
        st.segments.insert(next, seg);
        st.unflushed.extend(to_sync);
        st.dir_dirty = true;
        // Keep only the two newest producer snapshots.
        let old_snapshots: Vec<i64> = st.segments.keys().rev().skip(2).copied().collect();
        for base in old_snapshots {
            let _ = fs::remove_file(self.dir.join(file_name(base, "snapshot")));
        }
        Ok(())
    }

    /// Called on the flusher thread: fsync what was written, then publish the durable offset.
    pub fn flush_now(&self) {
        let (files, dir_dirty, log_end, active_base, active_size) = {
            let mut st = self.lock();
            st.flush_queued = false;
            let a = st.active();
            let (end, base, size) = (a.next_offset, a.base_offset, a.size);
            (
                std::mem::take(&mut st.unflushed),
                std::mem::take(&mut st.dir_dirty),
                end,
                base,
                size,
            )
        };
        for f in &files {
            if let Err(e) = f.sync_data() {
                // Kafka treats a failed fsync as a failed log dir; we keep the data unacknowledged.
                tracing::error!(topic = %self.topic, partition = self.index, error = %e, "fsync failed");
                let mut st = self.lock();
                st.unflushed.extend(files.iter().cloned());
                return;
            }
        }
        if dir_dirty {
            if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
                tracing::error!(topic = %self.topic, partition = self.index, error = %e, "directory fsync failed");
            }
        }
        let mut st = self.lock();
        if log_end > st.high_watermark {
            st.high_watermark = log_end;
            st.hw_segment = active_base;
            st.hw_position = active_size;
            drop(st);
            self.hw_tx.send_replace(log_end);
        }
    }

    /// Reads whole batches starting with the one holding `offset`, up to `max_bytes` (but at
    /// least one batch when `min_one`), never past the high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> io::Result<ReadOutcome> {
        let (file, mut position, limit) = {
            let st = self.lock();
            if offset < st.log_start || offset > st.high_watermark {
                return Ok(ReadOutcome::OutOfRange);
            }
            if offset == st.high_watermark {
                return Ok(ReadOutcome::Records(Bytes::new()));
            }
            let mut seg = st.segments.range(..=offset).next_back().map(|(_, s)| s);
            if let Some(s) = seg {
                if offset >= s.next_offset {
                    seg = st.segments.range(offset + 1..).next().map(|(_, s)| s);
                }
            }
            let Some(seg) = seg else {
                return Ok(ReadOutcome::Records(Bytes::new()));
            };
            (seg.file.clone(), seg.lookup(offset), st.readable_limit(seg))
        };
        // Find the first batch whose last offset reaches `offset`.
        let start = loop {
            if position >= limit {
                return Ok(ReadOutcome::Records(Bytes::new()));
            }
            let chunk = read_exact(&file, position, SCAN_CHUNK.min((limit - position) as usize))?;
            let mut found = None;
            let mut walked = 0usize;
            for (at, h) in batch::headers(&chunk) {
                if h.last_offset() >= offset {
                    found = Some(position + at as u64);
                    break;
                }
                walked = at + h.total_len;
            }
            if let Some(found) = found {
                break found;
            }
            if walked == 0 {
                // A batch larger than the chunk: step over it using its header.
                let h = BatchHeader::parse(&chunk)
                    .map_err(|_| io::Error::other("corrupt batch header in segment"))?;
                if h.last_offset() >= offset {
                    break position;
                }
                walked = h.total_len;
            }
            position += walked as u64;
        };
        let available = (limit - start) as usize;
        let mut data = read_exact(&file, start, max_bytes.min(available))?;
        let whole: usize = batch::headers(&data).map(|(_, h)| h.total_len).sum();
        if whole == 0 {
            if !min_one {
                return Ok(ReadOutcome::Records(Bytes::new()));
            }
            let head = read_exact(&file, start, HEADER_LEN.min(available))?;
            let h = BatchHeader::parse(&head)
                .map_err(|_| io::Error::other("corrupt batch header in segment"))?;
            data = read_exact(&file, start, h.total_len.min(available))?;
        } else {
            data.truncate(whole);
        }
        Ok(ReadOutcome::Records(data))
    }

    /// The first batch (below the high watermark) that holds a record with timestamp >= `ts`.
    pub fn batch_for_timestamp(&self, ts: i64) -> io::Result<Option<Bytes>> {
        let (file, position, limit) = {
            let st = self.lock();
            let Some(seg) = st
                .segments
                .values()
                .find(|s| s.max_timestamp >= ts && st.readable_limit(s) > 0)
            else {
                return Ok(None);
            };
            (
                seg.file.clone(),
                seg.lookup_time(ts),
                st.readable_limit(seg),
            )
        };
        scan_for(&file, position, limit, |h| h.max_timestamp >= ts)
    }

    /// The batch holding the largest timestamp in the log (ListOffsets MAX_TIMESTAMP).
    pub fn batch_with_max_timestamp(&self) -> io::Result<Option<Bytes>> {
        let (file, position, limit, target) = {
            let st = self.lock();
            let Some(seg) = st
                .segments
                .values()
                .filter(|s| st.readable_limit(s) > 0 && s.max_timestamp >= 0)
                .max_by_key(|s| s.max_timestamp)
            else {
                return Ok(None);
            };
            let target = seg.max_timestamp_batch;
            (
                seg.file.clone(),
                seg.lookup(target),
                st.readable_limit(seg),
                target,
            )
        };
        scan_for(&file, position, limit, |h| h.base_offset >= target)
    }

    /// Deletes whole sealed segments past retention.ms / retention.bytes. Returns how many.
    pub fn apply_retention(&self, now: i64) -> usize {
        let mut doomed = Vec::new();
        {
            let mut st = self.lock();
            if st.deleted {
                return 0;
            }
            let mut total: i64 = st.segments.values().map(|s| s.size as i64).sum();
            let (retention_ms, retention_bytes) =
                (st.config.retention_ms, st.config.retention_bytes);
            let candidates: Vec<(i64, i64, u64, i64)> = st
                .segments
                .values()
                .rev()
                .skip(1) // never the active segment
                .rev()
                .map(|s| (s.base_offset, s.next_offset, s.size, s.max_timestamp))
                .collect();
            for (base, next, size, max_ts) in candidates {
                if next > st.high_watermark {
                    break;
                }
                let by_time = retention_ms >= 0 && max_ts >= 0 && now - max_ts > retention_ms;
                let by_size = retention_bytes >= 0 && total - size as i64 >= retention_bytes;
                if !(by_time || by_size) {
                    break;
                }
                st.segments.remove(&base);
                total -= size as i64;
                st.log_start = next;
                doomed.push(base);
            }
        }
        for base in &doomed {
            Segment::delete_files(&self.dir, *base);
        }
        if !doomed.is_empty() {
            tracing::info!(topic = %self.topic, partition = self.index, segments = doomed.len(), "retention deleted segments");
        }
        doomed.len()
    }

    /// Seals nothing, but makes everything written durable (graceful shutdown).
    pub fn close(&self) {
        self.flush_now();
    }

    /// Stops appends and removes the partition's files.
    pub fn delete(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.deleted = true;
        st.unflushed.clear();
        st.dir_dirty = false;
        drop(st);
        fs::remove_dir_all(&self.dir)
    }
}

fn replay_headers(seg: &Segment, producers: &mut ProducerStates) -> io::Result<()> {
    let mut pos = 0u64;
    let mut head = [0u8; HEADER_LEN];
    while pos + HEADER_LEN as u64 <= seg.size {
        std::os::unix::fs::FileExt::read_exact_at(&*seg.file, &mut head, pos)?;
        let Ok(h) = BatchHeader::parse(&head) else {
            break;
        };
        producers.record(&h, h.base_offset);
        pos += h.total_len as u64;
    }
    Ok(())
}

/// Reads batches from `position` until one satisfies `wanted`; returns that batch.
fn scan_for(
    file: &File,
    mut position: u64,
    limit: u64,
    wanted: impl Fn(&BatchHeader) -> bool,
) -> io::Result<Option<Bytes>> {
    while position + HEADER_LEN as u64 <= limit {
        let head = read_exact(file, position, HEADER_LEN)?;
        let Ok(h) = BatchHeader::parse(&head) else {
            return Ok(None);
        };
        if wanted(&h) {
            return Ok(Some(read_exact(file, position, h.total_len)?));
        }
        position += h.total_len as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 1000,
            index_interval_bytes: 100,
            ..LogConfig::default()
        }
    }

    fn wait_hw(p: &Partition, at_least: i64) {
        for _ in 0..500 {
            if p.offsets().high_watermark >= at_least {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("high watermark never reached {at_least}");
    }

    #[test]
    fn append_roll_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start();
        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher.clone()).unwrap();
        for i in 0..100 {
            let out = p.append(&make_batch(2, 1000 + i, None)).unwrap();
            assert_eq!(out.base_offset, i * 2);
        }
        wait_hw(&p, 200);
        let st = p.lock();
        assert!(st.segments.len() > 5, "segments rolled");
        drop(st);
        // read from the middle of a batch returns that whole batch first
        let ReadOutcome::Records(data) = p.read(77, 10_000, true).unwrap() else {
            panic!()
        };
        let first = BatchHeader::parse(&data).unwrap();
        assert_eq!(first.base_offset, 76);
        // max_bytes smaller than one batch still returns one batch
        let ReadOutcome::Records(one) = p.read(0, 10, true).unwrap() else {
            panic!()
        };
        assert_eq!(batch::headers(&one).count(), 1);
        assert!(matches!(
            p.read(201, 100, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        let ReadOutcome::Records(empty) = p.read(200, 100, true).unwrap() else {
            panic!()
        };
        assert!(empty.is_empty());
        // by timestamp
        let b = p.batch_for_timestamp(1050).unwrap().unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().base_offset, 100);
        let b = p.batch_with_max_timestamp().unwrap().unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().base_offset, 198);
        drop(p);

        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher).unwrap();
        let o = p.offsets();
        assert_eq!((o.log_start, o.high_watermark, o.log_end), (0, 200, 200));
        assert_eq!(p.append(&make_batch(1, 5, None)).unwrap().base_offset, 200);
        // retention by size keeps at most ~2 segments worth
        let mut c = config();
        c.retention_bytes = 1500;
        p.set_config(c);
        wait_hw(&p, 201);
        assert!(p.apply_retention(now_ms()) > 0);
        let start = p.offsets().log_start;
        assert!(start > 0);
        assert!(matches!(
            p.read(0, 100, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        let ReadOutcome::Records(d) = p.read(start, 100, true).unwrap() else {
            panic!()
        };
        assert_eq!(BatchHeader::parse(&d).unwrap().base_offset, start);
    }

    #[test]
    fn idempotent_duplicates_and_recovery_of_producer_state() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start();
        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher.clone()).unwrap();
        let mut seq = 0;
        for _ in 0..20 {
            let b = make_batch(3, 1, Some((9, 0, seq)));
            let first = p.append(&b).unwrap();
            let again = p.append(&b).unwrap();
            assert!(again.duplicate);
            assert_eq!(first.base_offset, again.base_offset);
            seq += 3;
        }
        assert!(matches!(
            p.append(&make_batch(1, 1, Some((9, 0, seq + 5)))),
            Err(AppendError::Sequence(SequenceError::OutOfOrder))
        ));
        wait_hw(&p, 60);
        drop(p);
        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher).unwrap();
        let retry = p.append(&make_batch(3, 1, Some((9, 0, seq - 3)))).unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, 57);
        assert_eq!(
            p.append(&make_batch(1, 1, Some((9, 0, seq))))
                .unwrap()
                .base_offset,
            60
        );
    }
}
