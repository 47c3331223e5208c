//! The partition's side of group commit: the flusher thread (`log::flush`) calls `flush_now`,
//! which fsyncs the files written since the last cycle and then publishes the new durable
//! offset, high watermark and last stable offset to everyone watching `subscribe`. It also
//! tracks which fsynced byte ranges are new, so the flusher can bound the page cache.

use super::{Partition, State};
use crate::log::flush::{Flushable, FlushedRange};
use crate::log::segment::{drop_cached, PAGE_SIZE};
use crate::stats::{Histogram, SECONDS_BUCKETS};
use std::fs::File;
use std::time::Instant;

/// How long each partition's flush spent in fsync (its files and, when new files appeared,
/// its directory), for /metrics.
pub static FSYNC_SECONDS: Histogram = Histogram::new(&SECONDS_BUCKETS);
/// How many appends each of those flushes made durable: group commit at work.
pub static APPENDS_PER_FSYNC: Histogram = Histogram::new(&[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0,
]);

impl State {
    /// Byte ranges made durable since the last call, now that the segment at `flushed_base`
    /// is fsynced up to `flushed_size` (and every older one whole).
    fn newly_flushed(&mut self, flushed_base: i64, flushed_size: u64) -> Vec<FlushedRange> {
        let (mark_base, mark_position) = self.flushed_mark;
        if flushed_base < mark_base {
            return Vec::new();
        }
        let ranges = self
            .segments
            .range(mark_base..=flushed_base)
            .map(|(&base, seg)| FlushedRange {
                segment: base,
                from: if base == mark_base { mark_position } else { 0 },
                to: if base == flushed_base {
                    flushed_size.min(seg.size())
                } else {
                    seg.size()
                },
            })
            .filter(|r| r.to > r.from)
            .collect();
        self.flushed_mark = (flushed_base, flushed_size);
        ranges
    }
}

impl Partition {
    /// Called on the flusher thread: fsync what was written, then publish the durable offset
    /// and the watermarks that follow it.
    /// Returns the byte ranges that became durable.
    pub fn flush_now(&self) -> Vec<FlushedRange> {
        let _serial = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (files, dir_dirty, log_end, active_base, active_size, appends) = {
            let mut st = self.lock();
            st.flush_queued = false;
            if st.failed || st.deleted {
                return Vec::new();
            }
            let a = st.active();
            let (end, base, size) = (a.next_offset(), a.base_offset(), a.size());
            (
                std::mem::take(&mut st.unflushed),
                std::mem::take(&mut st.dir_dirty),
                end,
                base,
                size,
                std::mem::take(&mut st.appends_unflushed),
            )
        };
        let started = Instant::now();
        for f in &files {
            if let Err(e) = f.sync_data() {
                // A failed fsync may have dropped dirty pages; retrying could "succeed" over lost
                // data, so never acknowledge anything written since (Kafka: log dir offline).
                self.fail(&mut self.lock(), "fsync", &e);
                return Vec::new();
            }
        }
        if dir_dirty {
            if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
                self.fail(&mut self.lock(), "directory fsync", &e);
                return Vec::new();
            }
        }
        if !files.is_empty() || dir_dirty {
            FSYNC_SECONDS.observe(started.elapsed().as_secs_f64());
            APPENDS_PER_FSYNC.observe(appends as f64);
        }
        let mut st = self.lock();
        if dir_dirty {
            st.dir_synced_segment_base = st.dir_synced_segment_base.max(active_base);
        }
        let flushed = st.newly_flushed(active_base, active_size);
        // Everything below `log_end` is now fsynced.
        let durable_offset = log_end;
        if durable_offset <= st.durable.0 {
            return flushed;
        }
        st.durable = (durable_offset, active_base, active_size);
        // Single node: the high watermark is the durable offset; in a cluster it also waits
        // for the in-sync replicas (`replica`).
        let target = st.high_watermark_target();
        st.raise_high_watermark(target);
        // Transactions whose marker is now covered became stable.
        let (high_watermark, last_stable_offset) = (st.high_watermark, st.last_stable_offset());
        drop(st);
        self.durability.send_modify(|d| {
            d.durable_offset = durable_offset;
            // Monotonic: never undo a newer value published meanwhile.
            d.high_watermark = d.high_watermark.max(high_watermark);
            d.last_stable_offset = d.last_stable_offset.max(last_stable_offset);
        });
        flushed
    }

    /// Drops a durable range from the page cache (the flusher's budget is exceeded); later
    /// reads below it are treated as cold.
    pub fn drop_cached(&self, range: &FlushedRange) {
        let file = {
            let mut st = self.lock();
            let Some(seg) = st.segments.get_mut(&range.segment) else {
                return;
            };
            seg.mark_cache_dropped_to(range.to / PAGE_SIZE * PAGE_SIZE);
            seg.file().clone()
        };
        drop_cached(&file, range.from / PAGE_SIZE * PAGE_SIZE, range.to);
    }
}

impl Flushable for Partition {
    fn flush_now(&self) -> Vec<FlushedRange> {
        Partition::flush_now(self)
    }
    fn drop_cached(&self, range: &FlushedRange) {
        Partition::drop_cached(self, range)
    }
    fn name(&self) -> (&str, i32) {
        (&self.topic, self.index)
    }
}

#[cfg(test)]
mod tests {
    use crate::log::batch::{self, tests::make_batch};
    use crate::log::flush::Flusher;
    use crate::log::partition::tests::{config, wait_hw};
    use crate::log::partition::{Partition, ReadOutcome};
    use crate::log::segment::PAGE_SIZE;
    use crate::log::LogConfig;
    use std::fs::File;
    use std::path::Path;

    /// Pages of `path` in [from, to) that are in the page cache.
    fn resident_pages(path: &Path, from: u64, to: u64) -> usize {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        // SAFETY: a read-only private mapping of a file nobody truncates during the test.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let pages = len.div_ceil(PAGE_SIZE as usize);
            let mut vec = vec![0u8; pages];
            assert_eq!(libc::mincore(map, len, vec.as_mut_ptr()), 0);
            libc::munmap(map, len);
            let (a, b) = ((from / PAGE_SIZE) as usize, (to / PAGE_SIZE) as usize);
            vec[a..b.min(pages)].iter().filter(|v| *v & 1 == 1).count()
        }
    }

    #[test]
    fn fsynced_bytes_beyond_the_budget_leave_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let budget = 64 * 1024;
        let c = LogConfig {
            segment_bytes: 8 << 20,
            ..config()
        };
        let flusher = Flusher::with_page_cache_budget(budget as i64);
        let p = Partition::open("t", 0, dir.path().join("t-0"), c, flusher).unwrap();
        let mut next = 0;
        for _ in 0..2000 {
            next = p.append(&make_batch(60, 1000, None)).unwrap().last_offset + 1;
        }
        wait_hw(&p, next);
        // The flusher drops after publishing the high watermark; give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (path, size, dropped_to) = {
            let st = p.lock();
            let a = st.active();
            (a.log_path().to_path_buf(), a.size(), a.cache_dropped_to())
        };
        assert!(size > 1_000_000);
        assert_eq!(dropped_to % PAGE_SIZE, 0);
        // What stays is at most the budget plus the last flush cycle's bytes.
        assert!(dropped_to >= size / 2 && dropped_to <= size - budget);
        assert_eq!(resident_pages(&path, 0, dropped_to), 0, "old pages dropped");
        assert!(
            resident_pages(&path, dropped_to, size) > 0,
            "the newest bytes stay cached"
        );
        // A catch-up read is served from disk and does not refill the cache behind it.
        let ReadOutcome::Records(data) = p.read(0, 200_000, true).unwrap() else {
            panic!()
        };
        let batches: Vec<_> = batch::headers(&data).collect();
        assert_eq!(batches[0].1.base_offset, 0);
        assert!(batches.len() > 300);
        assert!(resident_pages(&path, 0, 196 * 1024) <= 1);
    }

    #[test]
    fn without_a_budget_the_page_cache_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let c = LogConfig {
            segment_bytes: 8 << 20,
            ..config()
        };
        let p = Partition::open("t", 0, dir.path().join("t-0"), c, Flusher::start()).unwrap();
        let mut next = 0;
        for _ in 0..500 {
            next = p.append(&make_batch(60, 1000, None)).unwrap().last_offset + 1;
        }
        wait_hw(&p, next);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(p.lock().active().cache_dropped_to(), 0);
    }
}
