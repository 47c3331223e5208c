//! Reads: fetches of whole batches at an offset, the ListOffsets lookups by timestamp, and
//! the aborted transactions a read_committed fetch reports. Nothing at or above the high
//! watermark is ever returned.

use super::{Partition, ReadOutcome, State};
use crate::log::batch::{self, BatchHeader, HEADER_LEN};
use crate::log::records;
use crate::log::segment::{drop_cached, read_exact, Segment, PAGE_SIZE};
use crate::log::txn_index;
use bytes::Bytes;
use std::fs::File;
use std::io;
use std::sync::Arc;

/// Bytes read in one go while looking for the batch that holds a given offset.
const SCAN_CHUNK: usize = 16 * 1024;

impl State {
    /// Byte limit readable in `seg`: everything below the high watermark, or for a
    /// follower below the durable offset.
    fn readable_limit(&self, seg: &Segment, to_durable: bool) -> u64 {
        use std::cmp::Ordering::*;
        let (limit_segment, limit_position) = if to_durable {
            (self.durable.1, self.durable.2)
        } else {
            (self.hw_segment, self.hw_position)
        };
        match seg.base_offset().cmp(&limit_segment) {
            Less => seg.size(),
            Equal => limit_position,
            Greater => 0,
        }
    }
}

impl Partition {
    /// Reads whole batches starting with the one holding `offset`, up to `max_bytes` (but at
    /// least one batch when `min_one`), never past the high watermark. Offsets between the
    /// high watermark and the log end read as empty, as in Kafka.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> io::Result<ReadOutcome> {
        self.read_limited(offset, max_bytes, min_one, false)
    }

    /// `read`, up to the high watermark or (`to_durable`, for followers) the durable offset.
    pub(super) fn read_limited(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        to_durable: bool,
    ) -> io::Result<ReadOutcome> {
        let mut at = offset;
        loop {
            match self.read_segment(at, max_bytes, min_one, to_durable)? {
                Ok(outcome) => return Ok(outcome),
                // A compacted segment can end in a gap (its last records were cleaned away):
                // the read goes on at the next segment's start.
                Err(next_segment) => at = next_segment,
            }
        }
    }

    /// `read` within the segment holding `offset`; Err(base of the next segment) when no
    /// batch of this sealed segment reaches `offset`.
    fn read_segment(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        to_durable: bool,
    ) -> io::Result<Result<ReadOutcome, i64>> {
        let ok = |o| Ok(Ok(o));
        let (file, mut position, limit, cold_below, next_segment) = {
            let st = self.lock();
            if offset < st.log_start || offset > st.log_end() {
                return ok(ReadOutcome::OutOfRange);
            }
            if offset < st.local_start() {
                return ok(ReadOutcome::Remote);
            }
            let readable_end = if to_durable {
                st.durable.0
            } else {
                st.high_watermark
            };
            if offset >= readable_end {
                return ok(ReadOutcome::Records(Bytes::new()));
            }
            let mut seg = st.segments.range(..=offset).next_back().map(|(_, s)| s);
            if let Some(s) = seg {
                if offset >= s.next_offset() {
                    seg = st.segments.range(offset + 1..).next().map(|(_, s)| s);
                }
            }
            let Some(seg) = seg else {
                return ok(ReadOutcome::Records(Bytes::new()));
            };
            let limit = st.readable_limit(seg, to_durable);
            let next_segment = st
                .segments
                .range(seg.base_offset() + 1..)
                .next()
                .filter(|_| limit == seg.size())
                .map(|(base, _)| *base);
            (
                seg.file().clone(),
                seg.lookup(offset),
                limit,
                seg.cache_dropped_to(),
                next_segment,
            )
        };
        // Find the first batch whose last offset reaches `offset`.
        let start = loop {
            if position >= limit {
                return match next_segment {
                    Some(next) => Ok(Err(next)),
                    None => ok(ReadOutcome::Records(Bytes::new())),
                };
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
                return ok(ReadOutcome::Records(Bytes::new()));
            }
            let head = read_exact(&file, start, HEADER_LEN.min(available))?;
            let h = BatchHeader::parse(&head)
                .map_err(|_| io::Error::other("corrupt batch header in segment"))?;
            data = read_exact(&file, start, h.total_len.min(available))?;
        } else {
            data.truncate(whole);
        }
        if start < cold_below {
            // A catch-up read of bytes the page-cache budget let go: do not refill the cache.
            let end = (start + data.len() as u64).min(cold_below);
            drop_cached(
                &file,
                start / PAGE_SIZE * PAGE_SIZE,
                end / PAGE_SIZE * PAGE_SIZE,
            );
        }
        ok(ReadOutcome::Records(data))
    }

    /// A read_committed fetch (Kafka's FetchIsolation.TXN_COMMITTED): like `read`, but
    /// nothing at or above the last stable offset. The LSO always falls on a batch boundary
    /// (the first offset of a transaction, or the high watermark), so whole batches are cut.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> io::Result<ReadOutcome> {
        // Taken before the read: the LSO only grows, so cutting at an older one is safe.
        let last_stable_offset = self.lock().last_stable_offset();
        match self.read(offset, max_bytes, min_one)? {
            ReadOutcome::Records(data) => {
                let keep: usize = batch::headers(&data)
                    .take_while(|(_, h)| h.base_offset < last_stable_offset)
                    .map(|(_, h)| h.total_len)
                    .sum();
                Ok(ReadOutcome::Records(data.slice(..keep)))
            }
            other => Ok(other),
        }
    }

    /// (producer id, first offset) of every aborted transaction with records in
    /// [`from_offset`, `upto_offset`), oldest abort first: what a read_committed Fetch returns
    /// with the records it reads there (Kafka's collectAbortedTransactions). Searches the
    /// local `.txnindex` files from the segment holding `from_offset` on (an abort's entry is
    /// in its marker's segment), stopping at the first entry whose last stable offset reaches
    /// `upto_offset`. Segments already only in the tier are not searched here: for a read
    /// below the local start the tier adds theirs (`tier::Tier::aborted_transactions`).
    pub fn aborted_transactions(
        &self,
        from_offset: i64,
        upto_offset: i64,
    ) -> io::Result<Vec<(i64, i64)>> {
        let indexes: Vec<_> = {
            let st = self.lock();
            let start = st
                .segments
                .range(..=from_offset)
                .next_back()
                .map_or(i64::MIN, |(base, _)| *base);
            // Not bounded by `upto_offset`: a transaction with records below it may be
            // aborted by a marker in any later segment.
            st.segments
                .range(start..)
                .filter_map(|(_, s)| s.txn_index())
                .collect()
        };
        // Read outside the lock: retention may unlink a file, the open handle still reads.
        let mut out = Vec::new();
        for (file, entries) in indexes {
            if txn_index::collect(&file, entries, from_offset, upto_offset, &mut out)? {
                break;
            }
        }
        Ok(out)
    }

    /// Visits readable batches in offset order from the (segment, position) that `start`
    /// picks, until `visit` returns a result. Start and segment list come from one look at the
    /// state, so retention cannot slide a position into another segment.
    fn scan_batches<R>(
        &self,
        start: impl FnOnce(&State) -> Option<(i64, u64)>,
        mut visit: impl FnMut(&BatchHeader, &File, u64) -> io::Result<Option<R>>,
    ) -> io::Result<Option<R>> {
        let (mut position, targets): (u64, Vec<(Arc<File>, u64)>) = {
            let st = self.lock();
            let Some((base, position)) = start(&st) else {
                return Ok(None);
            };
            let targets = st
                .segments
                .range(base..)
                .map(|(_, s)| (s.file().clone(), st.readable_limit(s, false)))
                .collect();
            (position, targets)
        };
        for (file, limit) in targets {
            while position + HEADER_LEN as u64 <= limit {
                let head = read_exact(&file, position, HEADER_LEN)?;
                let Ok(h) = BatchHeader::parse(&head) else {
                    return Ok(None);
                };
                if h.total_len as u64 > limit - position {
                    return Ok(None);
                }
                if let Some(found) = visit(&h, &file, position)? {
                    return Ok(Some(found));
                }
                position += h.total_len as u64;
            }
            position = 0;
        }
        Ok(None)
    }

    /// (timestamp, offset) of the first record with timestamp >= `ts` (ListOffsets by time).
    pub fn offset_for_timestamp(&self, ts: i64) -> io::Result<Option<(i64, i64)>> {
        // Records below the log start (DeleteRecords may set it inside a batch) are not
        // answered, as Kafka's findOffsetByTimestamp(ts, logStartOffset).
        let log_start = std::cell::Cell::new(i64::MIN);
        let start = |st: &State| {
            log_start.set(st.log_start);
            st.segments
                .values()
                .filter(|s| s.next_offset() > st.log_start)
                .find(|s| s.max_timestamp() >= ts)
                .map(|s| (s.base_offset(), s.lookup_time(ts)))
        };
        self.scan_batches(start, |h, file, at| {
            if h.max_timestamp < ts || h.last_offset() < log_start.get() {
                return Ok(None);
            }
            let batch = read_exact(file, at, h.total_len)?;
            // Only this one batch is walked: if its records do not bear out its header (a
            // compressed batch is stored unwalked), the answer is the offset after it rather
            // than an unbounded scan through more batches.
            let found = records::first_at_or_after_from(&batch, ts, log_start.get())
                .ok()
                .flatten();
            Ok(Some(
                found.unwrap_or((h.max_timestamp, h.last_offset() + 1)),
            ))
        })
    }

    /// (timestamp, offset) of the first record holding the largest timestamp (ListOffsets -3).
    pub fn offset_of_max_timestamp(&self) -> io::Result<Option<(i64, i64)>> {
        let target = std::cell::Cell::new((0i64, 0i64));
        let start = |st: &State| {
            let mut best: Option<&Segment> = None;
            for s in st
                .segments
                .values()
                .filter(|s| st.readable_limit(s, false) > 0 && s.max_timestamp() >= 0)
            {
                if best.is_none_or(|b| s.max_timestamp() > b.max_timestamp()) {
                    best = Some(s);
                }
            }
            let s = best?;
            target.set((s.max_timestamp(), s.max_timestamp_batch()));
            Some((s.base_offset(), s.lookup(s.max_timestamp_batch())))
        };
        self.scan_batches(start, |h, file, at| {
            let (max_ts, batch_offset) = target.get();
            if h.base_offset < batch_offset {
                return Ok(None);
            }
            let batch = read_exact(file, at, h.total_len)?;
            Ok(records::first_at_or_after(&batch, max_ts)
                .ok()
                .flatten()
                .or(Some((max_ts, h.base_offset))))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::log::batch::tests::make_batch;
    use crate::log::flush::Flusher;
    use crate::log::partition::tests::{config, wait_hw};
    use crate::log::partition::{Partition, ReadOutcome};

    #[test]
    fn fetch_between_high_watermark_and_log_end_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Partition::open("t", 0, dir.path().join("t-0"), config(), Flusher::start()).unwrap();
        // Hold the flush lock so the high watermark cannot move.
        let guard = p.flush_lock.lock().unwrap();
        p.append(&make_batch(2, 1000, None)).unwrap();
        let ReadOutcome::Records(r) = p.read(1, 1000, true).unwrap() else {
            panic!("offset below log end is in range")
        };
        assert!(r.is_empty());
        assert!(matches!(
            p.read(3, 1000, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        drop(guard);
        wait_hw(&p, 2);
    }
}
