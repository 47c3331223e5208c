//! The partition's half of log compaction (the cleaner itself is `log::cleaner`): what may be
//! cleaned now, the first dirty offset (persisted), and the crash-safe swap of a cleaned segment
//! for the original.
//!
//! Only sealed segments wholly below the last stable offset (no undecided transaction) and the
//! high watermark are cleanable, so the hot path never meets the cleaner: produce appends to
//! the active segment, fetch reads through the segment map, and the swap replaces one map entry
//! under the lock after the cleaned files are complete and fsynced.
//!
//! The swap, for a segment with base B, cleaned into `DIR/.cleaning/`:
//! 1. write `.cleaning/B.log`, `.index`, `.timeindex` (and `.txnindex` when an ABORT marker
//!    went); fsync them;
//! 2. create the marker `.cleaning/B.swap`, fsync the directory: from here the swap is decided;
//! 3. under the partition lock, rename the files over `DIR/B.*`, fsync `DIR`, and put the
//!    new segment in the map (readers holding the old file keep reading the old bytes);
//! 4. remove the marker.
//!
//! A segment cleaned empty is deleted instead (its `.log` first), unless it is the first one:
//! the log start does not move for compaction, as in Kafka.
//!
//! `finish_interrupted_swaps` runs before recovery lists segments: a marker whose original
//! `.log` is still there gets its remaining files moved in (a swap decided is finished); any
//! other leftover is a cleaning that never decided and is deleted.

use super::Partition;
use crate::log::segment::{file_name, Segment};
use crate::log::txn_index::{self, AbortedTxn};
use crate::log::LogConfig;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The scratch directory cleaned segments are written to, inside the partition directory.
pub const CLEANING_DIR: &str = ".cleaning";
/// The cleaner's progress: offsets below it have been cleaned at least once.
const CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// The files of a segment a swap replaces. A `.txnindex` is in the scratch directory only when
/// the pass removed an ABORT marker of the segment; otherwise the segment keeps its own.
const SWAPPED: [&str; 4] = ["log", "index", "timeindex", "txnindex"];

/// A sealed segment as the cleaner reads it.
#[derive(Clone)]
pub struct CleanableSegment {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
    pub file: Arc<File>,
    /// Its `.txnindex` and the entries it holds, if it has one.
    pub txn_index: Option<(Arc<File>, u64)>,
}

/// What the cleaner may do to a partition now.
pub struct CompactionPlan {
    /// Sealed segments from the log start up to `end`, oldest first.
    pub segments: Vec<CleanableSegment>,
    /// Offsets below this were cleaned before; the dirty part starts here.
    pub first_dirty: i64,
    /// Offsets below this may be cleaned (the end of the last segment in `segments`).
    pub end: i64,
    pub dirty_bytes: u64,
    pub clean_bytes: u64,
    /// The oldest dirty record is older than max.compaction.lag.ms.
    pub overdue: bool,
    /// Every aborted transaction the partition knows of (their records are dropped).
    pub aborted: Vec<AbortedTxn>,
    /// (producer id, last offset) of each producer's newest batch: kept, if only as an empty
    /// batch, so idempotence survives compaction.
    pub producer_last_batches: Vec<(i64, i64)>,
    pub config: LogConfig,
}

impl CompactionPlan {
    /// Dirty bytes over all cleanable bytes (Kafka's cleanable ratio).
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.dirty_bytes + self.clean_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }

    /// Whether the cleaner should clean this log now.
    pub fn wanted(&self) -> bool {
        self.dirty_bytes > 0
            && (self.overdue || self.dirty_ratio() >= self.config.min_cleanable_dirty_ratio)
    }
}

impl Partition {
    /// What may be cleaned now; None when the log is not compacted or has nothing sealed.
    pub fn compaction_plan(&self, now: i64) -> io::Result<Option<CompactionPlan>> {
        let (segments, first_dirty, indexes, producer_last_batches, config) = {
            let st = self.lock();
            if st.deleted || st.failed || !st.config.compact {
                return Ok(None);
            }
            let limit = st.last_stable_offset().min(st.high_watermark);
            let lag = st.config.min_compaction_lag_ms;
            let active = st.active().base_offset();
            let segments: Vec<CleanableSegment> = st
                .segments
                .values()
                .take_while(|s| s.base_offset() != active && s.next_offset() <= limit)
                .take_while(|s| lag <= 0 || s.max_timestamp() <= now.saturating_sub(lag))
                .map(|s| CleanableSegment {
                    base_offset: s.base_offset(),
                    next_offset: s.next_offset(),
                    size: s.size(),
                    max_timestamp: s.max_timestamp(),
                    file: s.file().clone(),
                    txn_index: s.txn_index(),
                })
                .collect();
            let indexes: Vec<_> = st.segments.values().filter_map(|s| s.txn_index()).collect();
            (
                segments,
                st.first_dirty_offset.max(st.log_start),
                indexes,
                st.producers.last_batches(),
                st.config.clone(),
            )
        };
        let Some(end) = segments.last().map(|s| s.next_offset) else {
            return Ok(None);
        };
        let mut aborted = Vec::new();
        for (file, entries) in indexes {
            aborted.extend(txn_index::read_entries(&file, entries)?);
        }
        let (mut dirty_bytes, mut clean_bytes) = (0, 0);
        let mut overdue = false;
        for s in &segments {
            if s.base_offset >= first_dirty {
                dirty_bytes += s.size;
                // The segment's newest record bounds its oldest one: a conservative age.
                overdue |= s.max_timestamp >= 0
                    && now.saturating_sub(s.max_timestamp) > config.max_compaction_lag_ms;
            } else {
                clean_bytes += s.size;
            }
        }
        Ok(Some(CompactionPlan {
            segments,
            first_dirty,
            end,
            dirty_bytes,
            clean_bytes,
            overdue,
            aborted,
            producer_last_batches,
            config,
        }))
    }

    /// Where the cleaner writes segments before swapping them in.
    pub fn cleaning_dir(&self) -> PathBuf {
        self.dir.join(CLEANING_DIR)
    }

    /// Swaps `cleaned` (complete and fsynced in the cleaning directory, marker written) for
    /// the segment with the same base offset. Returns false, undoing nothing but its own
    /// files, when that segment is no longer there as planned (retention deleted it).
    pub fn install_cleaned(
        &self,
        mut cleaned: Segment,
        planned: &CleanableSegment,
    ) -> io::Result<bool> {
        let base = cleaned.base_offset();
        let cleaned_empty = cleaned.size() == 0;
        let scratch = self.cleaning_dir();
        let installed = {
            let mut st = self.lock();
            let same = st.segments.get(&base).is_some_and(|s| {
                s.next_offset() == planned.next_offset && s.size() == planned.size
            });
            let emptied = cleaned.size() == 0 && st.local_start() != base;
            if same && !st.deleted && !st.failed && emptied {
                // Nothing left: the segment goes (its offsets read as part of the gap before
                // the next one). The `.log` goes first, so a crash leaves no half segment.
                st.segments.remove(&base);
                Segment::delete_files(&self.dir, base);
                File::open(&self.dir)?.sync_all()?;
            } else if same && !st.deleted && !st.failed {
                for ext in SWAPPED {
                    let name = file_name(base, ext);
                    match fs::rename(scratch.join(&name), self.dir.join(&name)) {
                        Err(e) if !(ext == "txnindex" && e.kind() == io::ErrorKind::NotFound) => {
                            return Err(e)
                        }
                        _ => {}
                    }
                }
                File::open(&self.dir)?.sync_all()?;
                cleaned.moved_to(&self.dir);
                cleaned.load_txn_index()?;
                st.segments.insert(base, cleaned);
            }
            same
        };
        if !installed || cleaned_empty {
            for ext in SWAPPED {
                let _ = fs::remove_file(scratch.join(file_name(base, ext)));
            }
        }
        fs::remove_file(scratch.join(file_name(base, "swap")))?;
        Ok(installed)
    }

    /// Records that offsets below `offset` are clean (persisted: a restart does not redo it).
    pub fn set_first_dirty(&self, offset: i64) -> io::Result<()> {
        let tmp = self.dir.join(format!("{CHECKPOINT}.tmp"));
        fs::write(&tmp, offset.to_string())?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, self.dir.join(CHECKPOINT))?;
        self.lock().first_dirty_offset = offset;
        Ok(())
    }
}

/// The persisted first dirty offset, 0 when the log was never cleaned.
pub(super) fn load_first_dirty(dir: &Path) -> i64 {
    fs::read_to_string(dir.join(CHECKPOINT))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Finishes the swaps a crash interrupted after they were decided and drops every other
/// leftover of the cleaner (see the module comment). Runs before segments are listed.
pub(super) fn finish_interrupted_swaps(dir: &Path) -> io::Result<()> {
    let scratch = dir.join(CLEANING_DIR);
    let entries = match fs::read_dir(&scratch) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let markers: Vec<i64> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".swap")?.parse().ok()
        })
        .collect();
    let mut moved = false;
    for base in markers {
        // Without the original `.log` retention deleted the segment: nothing to swap into.
        if !dir.join(file_name(base, "log")).exists() {
            continue;
        }
        for ext in SWAPPED {
            let name = file_name(base, ext);
            match fs::rename(scratch.join(&name), dir.join(&name)) {
                Ok(()) => moved = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        tracing::info!(dir = %dir.display(), base, "finished a cleaned segment's swap after a crash");
    }
    if moved {
        File::open(dir)?.sync_all()?;
    }
    fs::remove_dir_all(&scratch)?;
    File::open(dir)?.sync_all()
}
