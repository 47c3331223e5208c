//! The log cleaner (Kafka's LogCleaner): threads that compact the logs with cleanup.policy
//! containing `compact`. Each round a thread picks the log most in need (over
//! min.cleanable.dirty.ratio, or overdue by max.compaction.lag.ms; highest ratio first),
//! cleans it (`pass`), and sleeps log.cleaner.backoff.ms when no log needs it. Two threads
//! never clean the same log. Reads and writes together are paced by
//! log.cleaner.io.max.bytes.per.second.

pub mod offset_map;
pub mod pass;
pub mod rewrite;

use super::now_ms;
use super::partition::Partition;
use offset_map::OffsetMap;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The cleaner's settings, as the broker resolved them.
#[derive(Debug, Clone)]
pub struct CleanerSettings {
    pub threads: usize,
    /// Memory for the offset maps of all threads together.
    pub dedupe_buffer_bytes: u64,
    pub io_max_bytes_per_second: f64,
    pub backoff_ms: u64,
}

/// Figures for logs and metrics.
#[derive(Debug, Default)]
pub struct CleanerTotals {
    pub passes: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub records_removed: AtomicU64,
    pub errors: AtomicU64,
}

/// The running cleaner threads; stopped on drop.
pub struct Cleaner {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub totals: Arc<CleanerTotals>,
}

type Logs = dyn Fn() -> Vec<Arc<Partition>> + Send + Sync;

impl Cleaner {
    /// Starts `settings.threads` threads over the partitions `logs` lists each round, counting
    /// into `totals` (the caller's, so they outlive a restart with new settings).
    pub fn start(
        settings: CleanerSettings,
        logs: Arc<Logs>,
        totals: Arc<CleanerTotals>,
    ) -> Cleaner {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(Mutex::new(HashSet::<PathBuf>::new()));
        let throttle = Arc::new(Throttle::new(settings.io_max_bytes_per_second));
        let map_bytes = settings.dedupe_buffer_bytes / settings.threads.max(1) as u64;
        let threads = (0..settings.threads)
            .map(|i| {
                let (stop, busy, throttle, totals, logs) = (
                    stop.clone(),
                    busy.clone(),
                    throttle.clone(),
                    totals.clone(),
                    logs.clone(),
                );
                let backoff = Duration::from_millis(settings.backoff_ms);
                std::thread::Builder::new()
                    .name(format!("log-cleaner-{i}"))
                    .spawn(move || {
                        let mut map = OffsetMap::with_memory(map_bytes);
                        while !stop.load(Ordering::Relaxed) {
                            let cleaned = clean_one(&*logs, &busy, &mut map, &throttle, &totals);
                            if !cleaned {
                                sleep_unless_stopped(&stop, backoff);
                            }
                        }
                    })
                    .expect("spawning a log cleaner thread")
            })
            .collect();
        Cleaner {
            stop,
            threads,
            totals,
        }
    }
}

impl Drop for Cleaner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Picks the log most in need of cleaning and cleans it. Returns whether it cleaned one.
fn clean_one(
    logs: &Logs,
    busy: &Mutex<HashSet<PathBuf>>,
    map: &mut OffsetMap,
    throttle: &Throttle,
    totals: &CleanerTotals,
) -> bool {
    let now = now_ms();
    let mut best = None;
    for p in logs() {
        if busy.lock().unwrap().contains(p.dir()) {
            continue;
        }
        let plan = match p.compaction_plan(now) {
            Ok(Some(plan)) if plan.wanted() => plan,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "cannot plan a log cleaning");
                continue;
            }
        };
        let score = (plan.overdue, plan.dirty_ratio());
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, p, plan));
        }
    }
    let Some((_, p, plan)) = best else {
        return false;
    };
    if !busy.lock().unwrap().insert(p.dir().to_path_buf()) {
        return true; // another thread took it meanwhile; look again at once
    }
    let started = Instant::now();
    let result = pass::clean(&p, &plan, map, throttle, now);
    busy.lock().unwrap().remove(p.dir());
    totals.passes.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(stats) => {
            totals
                .bytes_read
                .fetch_add(stats.bytes_read, Ordering::Relaxed);
            totals
                .bytes_written
                .fetch_add(stats.bytes_written, Ordering::Relaxed);
            totals
                .records_removed
                .fetch_add(stats.records_removed, Ordering::Relaxed);
            tracing::info!(
                topic = %p.topic,
                partition = p.index,
                dirty_ratio = plan.dirty_ratio(),
                read_bytes = stats.bytes_read,
                written_bytes = stats.bytes_written,
                segments = stats.segments_swapped,
                removed_records = stats.records_removed,
                cleaned_to = stats.cleaned_to,
                ms = started.elapsed().as_millis() as u64,
                "cleaned log"
            );
        }
        Err(e) => {
            totals.errors.fetch_add(1, Ordering::Relaxed);
            // Kafka marks the log uncleanable; sluice retries after the backoff (each pass
            // starts from an empty cleaning directory).
            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "log cleaning failed");
            return false;
        }
    }
    true
}

/// Paces the cleaners' I/O to a rate (bytes per second, over one-second windows).
pub struct Throttle {
    rate: f64,
    window: Mutex<(Instant, u64)>,
}

impl Throttle {
    pub fn new(bytes_per_second: f64) -> Throttle {
        Throttle {
            rate: bytes_per_second,
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Counts `bytes` of I/O and sleeps if the window is ahead of the rate.
    pub fn account(&self, bytes: u64) {
        if !self.rate.is_finite() || self.rate >= u64::MAX as f64 {
            return;
        }
        let wait = {
            let mut w = self.window.lock().unwrap();
            if w.0.elapsed() > Duration::from_secs(1) {
                *w = (Instant::now(), 0);
            }
            w.1 += bytes;
            let due = Duration::from_secs_f64(w.1 as f64 / self.rate.max(1.0));
            due.saturating_sub(w.0.elapsed())
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
