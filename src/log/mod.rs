//! The partition engine: record batches as bytes, offsets, segments, durability.
//! Nothing in here knows Kafka protocol message types.

pub mod batch;
pub mod flush;
pub mod partition;
pub mod producer_state;
pub mod segment;

pub use partition::{AppendError, AppendOutcome, Partition, ReadOutcome};

/// Per-partition log settings (resolved from topic configs and broker defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// -1: keep forever.
    pub retention_ms: i64,
    /// -1: no size limit.
    pub retention_bytes: i64,
    pub max_message_bytes: usize,
    pub log_append_time: bool,
    pub index_interval_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            log_append_time: false,
            index_interval_bytes: 4096,
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
