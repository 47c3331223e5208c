//! Opening a partition after a clean shutdown or a crash: list the segments, trust the sealed
//! ones (their index files when consistent), validate the active one batch by batch and cut a
//! torn tail, rebuild producer state from the newest snapshot plus the batches after it, then
//! fsync everything so that what is served as durable really is.
//!
//! Transactions come back the same way: the snapshot names each producer's open transaction,
//! the replay opens those begun after it and closes those a marker ends. Every replayed
//! segment's `.txnindex` is made to say exactly what its ABORT markers say (an entry lost to
//! a crash is rebuilt, one whose marker was cut off is dropped); the older segments' indexes
//! are trusted up to a torn tail.

use crate::log::batch::{BatchHeader, HEADER_LEN};
use crate::log::control;
use crate::log::producer_state::ProducerStates;
use crate::log::segment::{file_name, Segment};
use crate::log::txn_index::AbortedTxn;
use crate::log::{now_ms, LogConfig};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What recovery found on disk.
pub(super) struct Recovered {
    /// Never empty: a new partition gets one empty segment at offset 0.
    pub segments: BTreeMap<i64, Segment>,
    pub producers: ProducerStates,
}

/// Recovers the partition in `dir`, creating it when missing. Everything returned is fsynced.
pub(super) fn recover(
    topic: &str,
    index: i32,
    dir: &Path,
    config: &LogConfig,
) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    super::compaction::finish_interrupted_swaps(dir)?;
    let bases = list_bases(dir)?;
    let mut segments = BTreeMap::new();
    let mut producers = ProducerStates::default();
    if bases.is_empty() {
        segments.insert(0, Segment::create(dir, 0)?);
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
        let now = now_ms();
        for pair in bases.windows(2) {
            let mut seg = Segment::open_sealed(dir, pair[0], pair[1], config.index_interval_bytes)?;
            if seg.base_offset() >= replay_from {
                let aborted = replay_headers(&seg, &mut producers, now)?;
                seg.restore_txn_index(&aborted)?;
            } else {
                seg.load_txn_index()?;
            }
            segments.insert(pair[0], seg);
        }
        // The scan below validates the active segment; markers in it are read through a
        // second handle (the scan reads only headers, and records where it checks CRCs).
        let reader = File::open(dir.join(file_name(last, "log")))?;
        let mut aborted = Vec::new();
        let mut replay_error = None;
        let (mut active, truncated) =
            Segment::recover(dir, last, config.index_interval_bytes, |h, pos| {
                if last >= replay_from && replay_error.is_none() {
                    if let Err(e) =
                        replay_batch(h, &reader, pos, u64::MAX, &mut producers, now, &mut aborted)
                    {
                        replay_error = Some(e);
                    }
                }
            })?;
        if let Some(e) = replay_error {
            return Err(e);
        }
        if last >= replay_from {
            active.restore_txn_index(&aborted)?;
        } else {
            active.load_txn_index()?;
        }
        if truncated > 0 {
            tracing::warn!(
                topic,
                partition = index,
                bytes = truncated,
                "truncated a torn or corrupt log tail"
            );
        }
        segments.insert(last, active);
    }
    sync_everything(dir)?;
    Ok(Recovered {
        segments,
        producers,
    })
}

fn list_bases(dir: &Path) -> io::Result<Vec<i64>> {
    let mut bases: Vec<i64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .into_string()
                .ok()?
                .strip_suffix(".log")?
                .parse::<i64>()
                .ok()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// fsyncs every file of the partition and the directory: whatever a killed process left in
/// the page cache becomes durable before it is served as such.
fn sync_everything(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            let _ = fs::remove_file(&path);
            continue;
        }
        File::open(&path)?.sync_all()?;
    }
    File::open(dir)?.sync_all()
}

/// Replays a sealed segment's batches into producer state; returns the aborted transactions
/// its markers end.
fn replay_headers(
    seg: &Segment,
    producers: &mut ProducerStates,
    now: i64,
) -> io::Result<Vec<AbortedTxn>> {
    let mut pos = 0u64;
    let mut head = [0u8; HEADER_LEN];
    let mut aborted = Vec::new();
    while pos + HEADER_LEN as u64 <= seg.size() {
        seg.file().read_exact_at(&mut head, pos)?;
        let Ok(h) = BatchHeader::parse(&head) else {
            break;
        };
        replay_batch(
            &h,
            seg.file(),
            pos,
            seg.size(),
            producers,
            now,
            &mut aborted,
        )?;
        pos += h.total_len as u64;
    }
    Ok(aborted)
}

/// A marker's bytes read to parse it: our markers are 78; anything longer is not one of ours
/// and its first record still fits.
const MARKER_READ: usize = 4096;

/// Replays one batch stored at `pos` of `file` (whose valid bytes end at `size`): data batches
/// update sequences and open transactions, markers close them; aborts go to `aborted`.
fn replay_batch(
    h: &BatchHeader,
    file: &File,
    pos: u64,
    size: u64,
    producers: &mut ProducerStates,
    now: i64,
    aborted: &mut Vec<AbortedTxn>,
) -> io::Result<()> {
    if !h.is_control() {
        producers.record(h, h.base_offset, now);
        return Ok(());
    }
    if !h.has_producer_id() {
        return Ok(());
    }
    let len = h
        .total_len
        .min(MARKER_READ)
        .min(size.saturating_sub(pos) as usize);
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, pos)?;
    let Some(marker) = control::parse_marker(&bytes) else {
        return Ok(());
    };
    let completed =
        producers.record_marker(h.producer_id, h.producer_epoch, marker, h.base_offset, now);
    if let Some(txn) = completed.filter(|t| t.aborted) {
        aborted.push(txn.index_entry());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::log::batch::tests::make_batch;
    use crate::log::flush::Flusher;
    use crate::log::partition::tests::{config, wait_hw};
    use crate::log::partition::{AppendError, Partition};
    use crate::log::producer_state::SequenceError;

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
