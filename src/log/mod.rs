//! The partition engine: record batches as bytes, offsets, segments, durability.
//! Nothing in here knows Kafka protocol message types.
//!
//! Transactions, the log's half (DESIGN.md "Transactions"): `producer_state` tracks each
//! producer's open transaction, `control` builds and reads COMMIT/ABORT markers, `txn_index`
//! is the per-segment aborted-transaction index, and the partition derives the last stable
//! offset from them. Client batches reach it only through `Partition::append_transactional`,
//! markers only through `Partition::append_marker`; plain `append` refuses both.

pub mod batch;
pub mod cleaner;
pub mod compression;
pub mod control;
pub mod flush;
pub mod partition;
pub mod producer_state;
pub mod records;
pub mod segment;
pub mod txn_index;

pub use partition::{
    AppendError, AppendOutcome, Durability, LogStartError, Partition, ReadOutcome,
    APPENDS_PER_FSYNC, FSYNC_SECONDS, UNDEFINED_EPOCH,
};
pub use segment::SealedSegment;

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
    /// CreateTime records older / newer than now by more than this are refused.
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// Idle producer ids are forgotten after this long (Kafka's producer.id.expiration.ms).
    pub producer_expiration_ms: i64,
    /// Sealed segments are copied to the tier and deleted locally by the local.retention.*
    /// limits once copied (Kafka's remote.storage.enable).
    pub remote_storage: bool,
    /// -2: same as retention.ms / retention.bytes.
    pub local_retention_ms: i64,
    pub local_retention_bytes: i64,
    /// remote.log.copy.disable: no more copies to the tier (remote reads and remote retention
    /// go on); local segments then follow retention.ms / retention.bytes, as in Kafka.
    pub remote_copy_disabled: bool,
    /// cleanup.policy: `compact` keeps the latest record per key (the cleaner), `delete`
    /// deletes old segments by retention; both may be set, or neither.
    pub compact: bool,
    pub delete: bool,
    /// Tombstones (null values) stay this long after their segment's newest record.
    pub delete_retention_ms: i64,
    /// The cleaner picks a log once dirty bytes / all cleanable bytes reaches this.
    pub min_cleanable_dirty_ratio: f64,
    /// Records younger than this are not compacted yet.
    pub min_compaction_lag_ms: i64,
    /// A log whose oldest dirty record is older than this is cleaned whatever its ratio.
    pub max_compaction_lag_ms: i64,
    /// compression.type: the codec batches are stored with (0 uncompressed .. 4 zstd), the
    /// broker recompressing those that differ; None: as the producer sent them.
    pub compression: Option<i16>,
    pub compression_levels: compression::Levels,
}

impl LogConfig {
    /// Local retention limits in effect: (ms, bytes); -1 means unlimited.
    pub fn local_limits(&self) -> (i64, i64) {
        if !self.remote_storage || self.remote_copy_disabled {
            return (self.retention_ms, self.retention_bytes);
        }
        let pick = |local: i64, total: i64| if local == -2 { total } else { local };
        (
            pick(self.local_retention_ms, self.retention_ms),
            pick(self.local_retention_bytes, self.retention_bytes),
        )
    }
}

#[cfg(test)]
impl LogConfig {
    /// Kafka's topic defaults, from the config registry, untiered. Tests only: the engine
    /// itself never reads config (its owner hands it a LogConfig).
    pub fn kafka_defaults() -> LogConfig {
        let none = std::collections::BTreeMap::new();
        LogConfig {
            remote_storage: false,
            ..crate::config::log_config(&none, &none)
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
