//! An open topic: its partitions' logs and leadership. Shared by the broker, which opens and
//! registers topics, and the tier, which copies their segments (so neither depends on the other).

use crate::log::Partition;
use crate::metadata::PartitionState;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use uuid::Uuid;

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<Arc<Partition>>,
    /// Leadership of each partition, by index, as the metadata knew it when the topic opened.
    pub states: Vec<PartitionState>,
    /// Topic-level overrides (Kafka names); defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
    /// min.insync.replicas, resolved when the topic registered: acks=all needs an ISR this big.
    pub min_insync_replicas: usize,
    /// Client traffic since start, for /metrics. Shared by every version of the topic (a new
    /// version is registered on each config or leadership change), so the counts carry over.
    pub traffic: Arc<Traffic>,
}

/// Bytes and records clients produced to and fetched from a topic: relaxed atomic adds on
/// the request path, read when /metrics is scraped.
#[derive(Default)]
pub struct Traffic {
    bytes_in: AtomicU64,
    records_in: AtomicU64,
    bytes_out: AtomicU64,
    records_out: AtomicU64,
}

/// A snapshot of `Traffic`.
pub struct TrafficCounts {
    pub bytes_in: u64,
    pub records_in: u64,
    pub bytes_out: u64,
    pub records_out: u64,
}

impl Traffic {
    pub fn produced(&self, bytes: usize, records: u64) {
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
        self.records_in.fetch_add(records, Relaxed);
    }

    pub fn fetched(&self, bytes: usize, records: u64) {
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
        self.records_out.fetch_add(records, Relaxed);
    }

    pub fn counts(&self) -> TrafficCounts {
        TrafficCounts {
            bytes_in: self.bytes_in.load(Relaxed),
            records_in: self.records_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
        }
    }
}
