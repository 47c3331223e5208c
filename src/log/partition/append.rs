//! Appending: validate a producer's batch, check its sequence against producer state, roll
//! to a new segment when the active one is full or old, write the batch with its offsets
//! patched in, and queue the partition for the next group commit (`log::flush`).
//!
//! Three entry points share one path and differ only in what they admit: `append` (client
//! batches, never transactional or control ones), `append_transactional` (also transactional
//! batches, once the coordinator has verified the partition is in the producer's transaction)
//! and `append_marker` (the coordinator's COMMIT/ABORT markers, built here). A transactional
//! batch opens its producer's transaction; a marker closes it and, for an abort, adds an
//! entry to the active segment's `.txnindex`, fsynced with the segment by the same flush.

use super::{AppendError, AppendOutcome, Partition, State};
use crate::log::batch::{self, BatchHeader, HEADER_LEN};
use crate::log::compression;
use crate::log::control::{self, EndTxnMarker};
use crate::log::now_ms;
use crate::log::producer_state::{MarkerError, SequenceCheck, SequenceError};
use crate::log::records;
use crate::log::segment::{file_name, Segment};
use std::fs::{self, File};
use std::io;
use std::sync::Arc;

/// Who is appending, which decides what a batch may be.
#[derive(Clone, Copy)]
enum Origin {
    /// A producer, through `append`: no transactional or control batches.
    Client,
    /// A producer whose transaction includes this partition: transactional batches too.
    Transactional,
    /// The transaction coordinator writing a marker.
    Coordinator(EndTxnMarker),
}

/// What each origin may append. Kafka refuses a transactional batch without a producer id.
fn admit(header: &BatchHeader, origin: Origin) -> Result<(), AppendError> {
    match origin {
        Origin::Client if header.is_transactional() || header.is_control() => {
            Err(AppendError::Transactional)
        }
        Origin::Transactional if header.is_control() => Err(AppendError::Transactional),
        Origin::Transactional if header.is_transactional() && !header.has_producer_id() => {
            Err(AppendError::Batch(batch::BatchError::Invalid(
                "transactional batch without a producer id",
            )))
        }
        _ => Ok(()),
    }
}

impl Partition {
    /// Validates and appends one record batch, assigning offsets by patching its header.
    /// Transactional and control batches are refused (`AppendError::Transactional`).
    pub fn append(self: &Arc<Self>, batch: &[u8]) -> Result<AppendOutcome, AppendError> {
        self.append_from(batch, Origin::Client)
    }

    /// Like `append`, but also takes transactional batches; the first one of a producer opens
    /// its transaction here (which holds the last stable offset at its first offset until a
    /// marker ends it). Only for a producer whose transaction the coordinator has verified to
    /// include this partition. Control batches are still refused: markers come from
    /// `append_marker` alone.
    pub fn append_transactional(
        self: &Arc<Self>,
        batch: &[u8],
    ) -> Result<AppendOutcome, AppendError> {
        self.append_from(batch, Origin::Transactional)
    }

    /// Writes the coordinator's COMMIT (`commit`) or ABORT marker ending `producer_id`'s
    /// transaction and returns its offset. Refused, as in Kafka, when `producer_epoch` is
    /// older than the producer's (`Sequence(StaleEpoch)`) or `coordinator_epoch` older than
    /// that of the producer's last marker (`CoordinatorFenced`). A marker for a producer with
    /// no open transaction here is written all the same and decides nothing.
    pub fn append_marker(
        self: &Arc<Self>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<i64, AppendError> {
        let marker = EndTxnMarker {
            commit,
            coordinator_epoch,
        };
        let batch = control::encode_marker(producer_id, producer_epoch, marker, now_ms());
        self.append_from(&batch, Origin::Coordinator(marker))
            .map(|out| out.base_offset)
    }

    fn append_from(
        self: &Arc<Self>,
        batch: &[u8],
        origin: Origin,
    ) -> Result<AppendOutcome, AppendError> {
        let header = batch::validate(batch).map_err(AppendError::Batch)?;
        admit(&header, origin)?;
        // Size first: the record walk below must never run on an oversized batch. A marker
        // (78 bytes, built here) is never refused for a topic's max.message.bytes: a
        // transaction that cannot end would hold the LSO forever.
        let is_marker = matches!(origin, Origin::Coordinator(_));
        let (max_message_bytes, compact, recompress) = {
            let st = self.lock();
            let c = &st.config;
            let recompress = c.compression.map(|codec| (codec, c.compression_levels));
            (c.max_message_bytes, c.compact, recompress)
        };
        if !is_marker && batch.len() > max_message_bytes {
            return Err(AppendError::TooLarge);
        }
        // compression.type other than producer: batches of another codec are stored
        // recompressed (Kafka's LogValidator does the same), and must still fit.
        let recompressed;
        let (batch, header) = match recompress {
            Some((codec, levels)) if !is_marker && header.compression() != codec => {
                recompressed = compression::recompress_batch(batch, &header, codec, &levels)
                    .map_err(|e| AppendError::Batch(batch::BatchError::Corrupt(e)))?;
                if recompressed.len() > max_message_bytes {
                    return Err(AppendError::TooLarge);
                }
                let h = batch::validate(&recompressed).map_err(AppendError::Batch)?;
                (&recompressed[..], h)
            }
            _ => (batch, header),
        };
        // A compacted log keeps the latest record per key, so every record needs one; the one
        // place the hot path decompresses (as Kafka's LogValidator does for these topics).
        if compact && !is_marker {
            let keyless = records::has_keyless_record(batch)
                .map_err(|e| AppendError::Batch(batch::BatchError::Corrupt(e)))?;
            if keyless {
                return Err(AppendError::Batch(batch::BatchError::Invalid(
                    "Compacted topic cannot accept message without key",
                )));
            }
        }
        let stats = records::check_records(batch, &header).map_err(AppendError::Batch)?;
        let mut st = self.lock();
        if st.deleted {
            return Err(AppendError::Deleted);
        }
        if st.failed {
            return Err(AppendError::Offline);
        }
        let now = now_ms();
        let too_old = stats.min_timestamp >= 0
            && now.saturating_sub(stats.min_timestamp) > st.config.timestamp_before_max_ms;
        let too_new = stats.max_timestamp >= 0
            && stats.max_timestamp.saturating_sub(now) > st.config.timestamp_after_max_ms;
        if !st.config.log_append_time && (too_old || too_new) {
            return Err(AppendError::InvalidTimestamp);
        }
        if let Origin::Coordinator(marker) = origin {
            st.producers
                .check_marker(
                    header.producer_id,
                    header.producer_epoch,
                    marker.coordinator_epoch,
                )
                .map_err(|e| match e {
                    MarkerError::StaleEpoch => AppendError::Sequence(SequenceError::StaleEpoch),
                    MarkerError::CoordinatorFenced => AppendError::CoordinatorFenced,
                })?;
        } else if !st.producers.txn_state_allows(&header) {
            return Err(AppendError::InvalidTxnState);
        }
        // Markers carry no sequence (-1): only data batches are checked for duplicates.
        let check = match origin {
            Origin::Coordinator(_) => SequenceCheck::Append,
            _ => st.producers.check(&header).map_err(AppendError::Sequence)?,
        };
        match check {
            SequenceCheck::Duplicate(prev) => {
                return Ok(AppendOutcome {
                    base_offset: prev.base_offset,
                    last_offset: prev.last_offset,
                    log_append_time: st.config.log_append_time.then_some(now),
                    log_start_offset: st.log_start,
                    duplicate: true,
                })
            }
            SequenceCheck::Append => {}
        }
        if let Err(e) = self.maybe_roll(&mut st, batch.len(), now, false) {
            self.fail(&mut st, "segment roll", &e);
            return Err(AppendError::Io(e));
        }
        let base_offset = st.log_end();
        let log_append_time = st.config.log_append_time;
        let max_timestamp = if log_append_time {
            now
        } else {
            stats.max_timestamp
        };
        let head = batch::patched_header(
            batch,
            base_offset,
            self.leader_epoch.load(std::sync::atomic::Ordering::Relaxed),
            max_timestamp,
            log_append_time,
        );
        let mut stored = header;
        stored.base_offset = base_offset;
        stored.max_timestamp = max_timestamp;
        let interval = st.config.index_interval_bytes;
        if let Err(e) = st
            .active_mut()
            .append(&head, &batch[HEADER_LEN..], &stored, interval)
        {
            self.fail(&mut st, "segment write", &e);
            return Err(AppendError::Io(e));
        }
        let file = st.active().file().clone();
        if !st.unflushed.iter().any(|f| Arc::ptr_eq(f, &file)) {
            st.unflushed.push(file);
        }
        if st.replicated.is_some() {
            let epoch = self.leader_epoch.load(std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = st.note_epoch(&self.dir, epoch, base_offset) {
                self.fail(&mut st, "leader epoch checkpoint", &e);
                return Err(AppendError::Io(e));
            }
            st.note_boundary();
        }
        match origin {
            Origin::Coordinator(marker) => {
                let completed = st.producers.record_marker(
                    stored.producer_id,
                    stored.producer_epoch,
                    marker,
                    base_offset,
                    now,
                );
                if let Some(txn) = completed.filter(|t| t.aborted) {
                    match st.active_mut().append_aborted(&txn.index_entry()) {
                        Ok((index, created)) => {
                            if !st.unflushed.iter().any(|f| Arc::ptr_eq(f, &index)) {
                                st.unflushed.push(index);
                            }
                            st.dir_dirty |= created;
                        }
                        Err(e) => {
                            // The marker is in the log; recovery rebuilds the entry from it.
                            self.fail(&mut st, "transaction index write", &e);
                            return Err(AppendError::Io(e));
                        }
                    }
                }
            }
            _ => st.producers.record(&stored, base_offset, now),
        }
        let log_start_offset = st.log_start;
        st.appends_unflushed = st.appends_unflushed.saturating_add(1);
        self.queue_flush(&mut st);
        Ok(AppendOutcome {
            base_offset,
            last_offset: stored.last_offset(),
            log_append_time: log_append_time.then_some(now),
            log_start_offset,
            duplicate: false,
        })
    }

    pub(super) fn queue_flush(self: &Arc<Self>, st: &mut State) {
        if !st.flush_queued {
            st.flush_queued = true;
            self.flusher.request(self.clone());
        }
    }

    /// Starts a new segment when the active one is full or old (or `force`, for retention).
    pub(super) fn maybe_roll(
        &self,
        st: &mut State,
        incoming: usize,
        now: i64,
        force: bool,
    ) -> io::Result<()> {
        let active = st.active();
        let full = active.size() + incoming as u64 > st.config.segment_bytes;
        let old = now - active.created_ms() >= st.config.segment_ms;
        // Relative offsets and positions in the index are 32-bit.
        let overflow = active.next_offset() - active.base_offset() >= i32::MAX as i64
            || active.size() + incoming as u64 >= i32::MAX as u64;
        if active.size() == 0 || !(full || old || overflow || force) {
            return Ok(());
        }
        let mut to_sync = active.seal(&self.dir)?;
        let next = active.next_offset();
        // Producer state as of the new segment's start: recovery replays only from here.
        let snapshot = self.dir.join(file_name(next, "snapshot"));
        let tmp = snapshot.with_extension("snapshot.tmp");
        fs::write(&tmp, st.producers.to_json())?;
        fs::rename(&tmp, &snapshot)?;
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

    /// Seals the active segment (if it holds anything) so the next append starts a new one.
    pub fn roll(self: &Arc<Self>) -> io::Result<()> {
        let mut st = self.lock();
        if st.deleted || st.failed {
            return Err(io::Error::other("partition is offline or deleted"));
        }
        if let Err(e) = self.maybe_roll(&mut st, 0, now_ms(), true) {
            self.fail(&mut st, "segment roll", &e);
            return Err(e);
        }
        self.queue_flush(&mut st);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::log::batch::tests::make_batch;
    use crate::log::flush::Flusher;
    use crate::log::partition::tests::config;
    use crate::log::partition::{AppendError, Partition};
    use crate::log::{now_ms, LogConfig};

    #[test]
    fn segment_ms_rolls_an_old_segment_on_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let c = LogConfig {
            segment_bytes: 1 << 20,
            segment_ms: 20,
            ..config()
        };
        let p = Partition::open("t", 0, dir.path().join("t-0"), c, Flusher::start()).unwrap();
        p.append(&make_batch(1, now_ms(), None)).unwrap();
        p.append(&make_batch(1, now_ms(), None)).unwrap();
        assert_eq!(
            p.lock().segments.len(),
            1,
            "young segment keeps taking appends"
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            p.append(&make_batch(1, now_ms(), None))
                .unwrap()
                .base_offset,
            2
        );
        assert_eq!(
            p.lock().segments.keys().copied().collect::<Vec<_>>(),
            vec![0, 2]
        );
    }

    #[test]
    fn timestamps_out_of_bounds_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = LogConfig {
            timestamp_after_max_ms: 3_600_000,
            timestamp_before_max_ms: 60_000,
            ..config()
        };
        let p = Partition::open("t", 0, dir.path().join("t-0"), c, Flusher::start()).unwrap();
        let now = now_ms();
        assert!(matches!(
            p.append(&make_batch(1, now + 7_200_000, None)),
            Err(AppendError::InvalidTimestamp)
        ));
        assert!(matches!(
            p.append(&make_batch(1, now - 120_000, None)),
            Err(AppendError::InvalidTimestamp)
        ));
        assert!(p.append(&make_batch(1, now, None)).is_ok());
    }
}
