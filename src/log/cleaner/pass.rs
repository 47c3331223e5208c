//! One cleaning pass over one partition (Kafka's LogCleaner.doClean): map the dirty part's
//! keys to their latest offsets, then rewrite every cleanable segment without the records a
//! later one supersedes, and swap each rewritten segment in (`Partition::install_cleaned`).
//!
//! A record is dropped when: a later record has its key; it has no key (a compacted log keeps
//! only keyed records, as Kafka's cleaner); it belongs to an aborted transaction; or it is a
//! tombstone in a segment whose newest record is older than delete.retention.ms. A control
//! batch (transaction marker) goes once nothing of its transaction is left before it and its
//! segment is past delete.retention.ms too, as Kafka removes markers; an ABORT marker's entry
//! leaves the segment's `.txnindex` with it, or read_committed consumers would drop that
//! producer's next transaction. A producer's newest batch is kept, emptied if need be, so its
//! sequence numbers survive.

use super::offset_map::OffsetMap;
use super::rewrite::{filter_batch, Rewritten};
use super::Throttle;
use crate::log::batch::{BatchHeader, HEADER_LEN};
use crate::log::partition::{CleanableSegment, CompactionPlan, Partition};
use crate::log::records::{parse_records, record_section};
use crate::log::segment::{file_name, read_exact, Segment};
use crate::log::txn_index;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::Path;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Segments rewritten and swapped in.
    pub segments_swapped: usize,
    pub records_removed: u64,
    /// Offsets below this are clean now.
    pub cleaned_to: i64,
}

/// Bytes read at a time while scanning a segment.
const READ_CHUNK: usize = 1 << 20;

/// Cleans `partition` as `plan` allows. `map` is the thread's (bounded) offset map.
pub fn clean(
    partition: &Partition,
    plan: &CompactionPlan,
    map: &mut OffsetMap,
    throttle: &Throttle,
    now: i64,
) -> io::Result<PassStats> {
    let mut stats = PassStats::default();
    let aborted = |h: &BatchHeader| {
        h.is_transactional()
            && plan.aborted.iter().any(|a| {
                a.producer_id == h.producer_id
                    && a.first_offset <= h.base_offset
                    && h.base_offset < a.last_offset
            })
    };
    // 1. The dirty part's keys, segment by segment, as far as the map holds them.
    map.clear();
    let mut end = plan.end;
    for seg in plan
        .segments
        .iter()
        .filter(|s| s.base_offset >= plan.first_dirty)
    {
        if map.is_full() {
            // The rest waits for the next pass; records superseded inside what was mapped
            // can still go (their newer versions stay in the log).
            end = seg.base_offset;
            break;
        }
        stats.bytes_read += for_each_batch(seg, throttle, |batch, h| {
            if h.is_control() || aborted(h) {
                return Ok(());
            }
            let section = record_section(batch).map_err(io::Error::other)?;
            for r in parse_records(&section).map_err(io::Error::other)? {
                if let Some(k) = &r.key {
                    map.put(&section[k.clone()], h.base_offset + r.offset_delta as i64);
                }
            }
            Ok(())
        })?;
    }
    if end <= plan.segments[0].base_offset {
        return Ok(stats);
    }
    // 2. Rewrite every cleanable segment below `end` against the map.
    let keep_whole: HashSet<(i64, i64)> = plan.producer_last_batches.iter().copied().collect();
    let scratch = partition.cleaning_dir();
    fresh_scratch(&scratch)?;
    let interval = plan.config.index_interval_bytes;
    // Per producer: whether its current transaction still has a batch in the cleaned log.
    let mut txn_retained: HashMap<i64, bool> = HashMap::new();
    for seg in plan.segments.iter().take_while(|s| s.next_offset <= end) {
        let tombstones_expire = seg.max_timestamp >= 0
            && now.saturating_sub(seg.max_timestamp) > plan.config.delete_retention_ms;
        let mut cleaned = Segment::create(&scratch, seg.base_offset)?;
        let mut changed = false;
        let mut markers_dropped = HashSet::new();
        stats.bytes_read += for_each_batch(seg, throttle, |batch, h| {
            let kept = if h.is_control() {
                let retained = txn_retained.remove(&h.producer_id).unwrap_or(false);
                let producers_last = keep_whole.contains(&(h.producer_id, h.last_offset()));
                if !retained && tombstones_expire && !producers_last {
                    markers_dropped.insert(h.base_offset);
                    Rewritten::Dropped
                } else {
                    Rewritten::Unchanged
                }
            } else {
                let section = record_section(batch).map_err(io::Error::other)?;
                let records = parse_records(&section).map_err(io::Error::other)?;
                let dropped_whole = aborted(h);
                let keep: Vec<bool> = records
                    .iter()
                    .map(|r| {
                        let Some(k) = &r.key else { return false };
                        let offset = h.base_offset + r.offset_delta as i64;
                        !dropped_whole
                            && map
                                .get(&section[k.clone()])
                                .is_none_or(|latest| offset >= latest)
                            && !(r.tombstone && tombstones_expire)
                    })
                    .collect();
                stats.records_removed += keep.iter().filter(|k| !**k).count() as u64;
                let keep_empty = keep_whole.contains(&(h.producer_id, h.last_offset()));
                let kept = filter_batch(batch, h, &section, &records, &keep, keep_empty)
                    .map_err(io::Error::other)?;
                if h.is_transactional() {
                    let stays = !matches!(kept, Rewritten::Dropped);
                    *txn_retained.entry(h.producer_id).or_default() |= stays;
                }
                kept
            };
            let bytes = match &kept {
                Rewritten::Unchanged => batch,
                Rewritten::Dropped => {
                    changed = true;
                    return Ok(());
                }
                Rewritten::Replaced(b) => {
                    changed = true;
                    b.as_slice()
                }
            };
            let stored =
                BatchHeader::parse(bytes).map_err(|_| io::Error::other("rewritten batch"))?;
            let head: &[u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().expect("a whole header");
            cleaned.append(head, &bytes[HEADER_LEN..], &stored, interval)?;
            stats.bytes_written += bytes.len() as u64;
            throttle.account(bytes.len() as u64);
            Ok(())
        })?;
        if !changed {
            drop(cleaned);
            Segment::delete_files(&scratch, seg.base_offset);
            continue;
        }
        cleaned.keep_offsets_until(seg.next_offset);
        for f in cleaned.seal(&scratch)? {
            f.sync_all()?;
        }
        if let Some((file, entries)) = seg
            .txn_index
            .as_ref()
            .filter(|_| !markers_dropped.is_empty())
        {
            // The entries of the ABORT markers that stay (an empty file when none: it replaces
            // the segment's own in the swap).
            let kept: Vec<u8> = txn_index::read_entries(file, *entries)?
                .iter()
                .filter(|e| !markers_dropped.contains(&e.last_offset))
                .flat_map(|e| e.encode())
                .collect();
            let path = scratch.join(file_name(seg.base_offset, "txnindex"));
            fs::write(&path, kept)?;
            File::open(&path)?.sync_all()?;
        }
        File::create(scratch.join(file_name(seg.base_offset, "swap")))?.sync_all()?;
        File::open(&scratch)?.sync_all()?;
        crate::failpoint::hit("cleaner.before_swap");
        if partition.install_cleaned(cleaned, seg)? {
            stats.segments_swapped += 1;
        }
    }
    partition.set_first_dirty(end)?;
    stats.cleaned_to = end;
    Ok(stats)
}

/// Calls `visit` with every batch of a sealed segment, in order; returns the bytes read.
fn for_each_batch(
    seg: &CleanableSegment,
    throttle: &Throttle,
    mut visit: impl FnMut(&[u8], &BatchHeader) -> io::Result<()>,
) -> io::Result<u64> {
    let mut position = 0u64;
    while position + HEADER_LEN as u64 <= seg.size {
        let want = READ_CHUNK.min((seg.size - position) as usize);
        let chunk = read_exact(&seg.file, position, want)?;
        throttle.account(chunk.len() as u64);
        let mut at = 0usize;
        while at + HEADER_LEN <= chunk.len() {
            let h = BatchHeader::parse(&chunk[at..])
                .map_err(|_| io::Error::other("corrupt batch header in a sealed segment"))?;
            if at + h.total_len > chunk.len() {
                break;
            }
            visit(&chunk[at..at + h.total_len], &h)?;
            at += h.total_len;
        }
        if at == 0 {
            // One batch larger than the chunk: read it whole.
            let head = read_exact(&seg.file, position, HEADER_LEN)?;
            let h = BatchHeader::parse(&head)
                .map_err(|_| io::Error::other("corrupt batch header in a sealed segment"))?;
            let batch = read_exact(&seg.file, position, h.total_len)?;
            throttle.account(batch.len() as u64);
            visit(&batch, &h)?;
            at = h.total_len;
        }
        position += at as u64;
    }
    Ok(position)
}

/// Empties the cleaning directory before a pass. A decided swap left there by a failed
/// `install_cleaned` must not be undone: recovery finishes it at the next start, and until
/// then this log is not cleaned again.
fn fresh_scratch(scratch: &Path) -> io::Result<()> {
    if let Ok(entries) = fs::read_dir(scratch) {
        let decided = entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "swap"));
        if decided {
            return Err(io::Error::other(
                "a cleaned segment's swap failed earlier; it is finished at the next start",
            ));
        }
        fs::remove_dir_all(scratch)?;
    }
    fs::create_dir_all(scratch)
}
