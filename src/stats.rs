//! Histograms that subsystems below the protocol (the log engine, the tier) record into and
//! /metrics reads. Recording is a few relaxed atomic adds. Kept apart from `metrics`, which
//! knows the broker and the APIs, so those subsystems need not depend on it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Room for 15 bucket bounds and +Inf.
const MAX_BUCKETS: usize = 16;

pub struct Histogram {
    /// Upper bounds of the buckets, ascending; one more bucket (+Inf) follows them.
    bounds: &'static [f64],
    counts: [AtomicU64; MAX_BUCKETS],
    /// Sum of the observed values, in millionths.
    sum_millionths: AtomicU64,
}

/// What /metrics encodes: per-bucket (not cumulative) counts with their bounds, sum, count.
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// `bounds` beyond the 15th are ignored.
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: [const { AtomicU64::new(0) }; MAX_BUCKETS],
            sum_millionths: AtomicU64::new(0),
        }
    }

    fn bounds(&self) -> &[f64] {
        &self.bounds[..self.bounds.len().min(MAX_BUCKETS - 1)]
    }

    pub fn observe(&self, value: f64) {
        let bounds = self.bounds();
        let bucket = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_millionths
            .fetch_add((value.max(0.0) * 1e6) as u64, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = self
            .bounds()
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.counts)
            .map(|(bound, n)| (bound, n.load(Relaxed)))
            .collect();
        HistogramSnapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum: self.sum_millionths.load(Relaxed) as f64 / 1e6,
        }
    }
}

/// Bounds for durations of disk and object-store operations, in seconds.
pub const SECONDS_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sum_and_count() {
        static H: Histogram = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 3.0, 100.0] {
            H.observe(v);
        }
        let s = H.snapshot();
        assert_eq!(s.buckets, vec![(1.0, 2), (10.0, 1), (f64::INFINITY, 1)]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 104.5).abs() < 1e-6);
    }
}
