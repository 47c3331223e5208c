//! A state log: an internal partition of JSON records, replayed on start, whose live state
//! (the latest record per key) is periodically rewritten as a snapshot at the head of a fresh
//! segment, dropping every older segment. The group log uses it; the transaction log will.

use crate::log::{flush::Flusher, LogConfig, Partition, ReadOutcome};
use crate::record_batch::{self, NewRecord, Producer};
use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct StoreError(pub String);

/// A record of a state log. Later records override earlier ones with the same key.
pub trait StateRecord: Serialize + DeserializeOwned + Clone {
    fn key(&self) -> String;
    /// Whether the record removes its key's state (a compaction drops both).
    fn is_removal(&self) -> bool;
    /// Every key starting with this prefix is removed too (one record ending many keys).
    fn removes_prefix(&self) -> Option<String> {
        None
    }
}

/// An internal partition of JSON state records with snapshot compaction.
pub struct StateLog<R> {
    log: Arc<Partition>,
    /// Keeps appends and compaction snapshots in one order, and the live set they imply.
    /// The latest record per key: what a compaction writes out.
    live: Mutex<BTreeMap<String, R>>,
    bytes_since_snapshot: AtomicU64,
    snapshot_bytes: AtomicU64,
}

/// Records per appended batch: bounded so one batch stays far below max.message.bytes.
const RECORDS_PER_BATCH: usize = 2000;

impl<R: StateRecord> StateLog<R> {
    /// Opens (and recovers) the log of the internal partition `name` in `dir`.
    pub fn open(
        name: &str,
        dir: PathBuf,
        segment_bytes: u64,
        flusher: Flusher,
    ) -> std::io::Result<StateLog<R>> {
        // An internal log: kept whole (compaction deletes its old segments), never tiered,
        // and not bound by the topic limits clients are held to.
        let config = LogConfig {
            segment_bytes,
            segment_ms: i64::MAX / 2,
            retention_ms: -1,
            retention_bytes: -1,
            max_message_bytes: 64 << 20,
            log_append_time: false,
            index_interval_bytes: 4096,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            producer_expiration_ms: i64::MAX,
            remote_storage: false,
            local_retention_ms: -2,
            local_retention_bytes: -2,
            // Its own snapshot compaction, not the log cleaner's.
            compact: false,
            delete: false,
            delete_retention_ms: 0,
            min_cleanable_dirty_ratio: 1.0,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            compression: None,
            compression_levels: Default::default(),
            remote_copy_disabled: false,
        };
        let log = Partition::open(name, 0, dir, config, flusher)?;
        Ok(StateLog {
            log,
            live: Mutex::new(BTreeMap::new()),
            bytes_since_snapshot: AtomicU64::new(0),
            snapshot_bytes: AtomicU64::new(0),
        })
    }

    /// Every record from the log start, in order.
    pub fn replay(&self) -> std::io::Result<Vec<R>> {
        let mut out = Vec::new();
        let offsets = self.log.offsets();
        let mut next = offsets.log_start;
        let mut bytes = 0u64;
        while next < offsets.high_watermark {
            let chunk = match self.log.read(next, 4 << 20, true)? {
                ReadOutcome::Records(b) if !b.is_empty() => b,
                _ => break,
            };
            bytes += chunk.len() as u64;
            let mut buf = chunk;
            while !buf.is_empty() {
                let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
                })?;
                for r in set.records {
                    next = r.offset + 1;
                    match r.value.as_deref().map(serde_json::from_slice::<R>) {
                        Some(Ok(rec)) => out.push(rec),
                        _ => tracing::warn!(
                            offset = r.offset,
                            name = %self.log.topic, "skipping an unreadable state log record"
                        ),
                    }
                }
            }
        }
        self.bytes_since_snapshot.store(bytes, Ordering::Relaxed);
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        for r in &out {
            apply(&mut live, r);
        }
        Ok(out)
    }

    /// Appends records in order; returns the offset that must become durable (exclusive end).
    pub fn append(&self, records: &[R]) -> Result<i64, StoreError> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let end = self.append_locked(records)?;
        for r in records {
            apply(&mut live, r);
        }
        Ok(end)
    }

    fn append_locked(&self, records: &[R]) -> Result<i64, StoreError> {
        let mut end = self.log.offsets().log_end;
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            let batch = encode_batch(chunk)?;
            self.bytes_since_snapshot
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let outcome = self
                .log
                .append(&batch)
                .map_err(|e| StoreError(format!("{} append failed: {e:?}", self.log.topic)))?;
            end = outcome.last_offset + 1;
        }
        Ok(end)
    }

    /// Waits until everything below `end` is fsynced.
    pub async fn wait_durable(&self, end: i64) -> Result<(), StoreError> {
        let mut rx = self.log.subscribe();
        loop {
            let d = *rx.borrow_and_update();
            if d.durable_offset >= end {
                return Ok(());
            }
            if d.failed {
                return Err(StoreError(format!(
                    "{} is offline after a storage error",
                    self.log.topic
                )));
            }
            if rx.changed().await.is_err() {
                return Err(StoreError(format!("{} closed", self.log.topic)));
            }
        }
    }

    /// Whether enough superseded data has piled up to be worth a compaction.
    pub fn wants_compaction(&self, min_bytes: u64) -> bool {
        let since = self.bytes_since_snapshot.load(Ordering::Relaxed);
        since > min_bytes && since > 2 * self.snapshot_bytes.load(Ordering::Relaxed)
    }

    /// Writes the live set (the latest record per key) at the start of a new segment, makes it
    /// durable, then deletes every older segment. Blocking: call off the async workers.
    pub fn compact(&self) -> Result<(), StoreError> {
        let start = {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            let io = |e: std::io::Error| StoreError(format!("{} roll failed: {e}", self.log.topic));
            self.log.roll().map_err(io)?;
            let start = self.log.offsets().log_end;
            let live: Vec<R> = live.values().cloned().collect();
            self.bytes_since_snapshot.store(0, Ordering::Relaxed);
            self.append_locked(&live)?;
            self.snapshot_bytes.store(
                self.bytes_since_snapshot.swap(0, Ordering::Relaxed),
                Ordering::Relaxed,
            );
            start
        };
        self.log.flush_now();
        if self.log.offsets().high_watermark < self.log.offsets().log_end {
            return Err(StoreError(format!(
                "{} snapshot did not become durable",
                self.log.topic
            )));
        }
        let removed = self.log.delete_segments_before(start);
        tracing::info!(name = %self.log.topic, segments = removed, "compacted a state log");
        Ok(())
    }

    pub fn close(&self) {
        self.log.close();
    }
}

fn apply<R: StateRecord>(live: &mut BTreeMap<String, R>, r: &R) {
    if let Some(prefix) = r.removes_prefix() {
        let doomed: Vec<String> = live
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            live.remove(&k);
        }
    }
    if r.is_removal() {
        live.remove(&r.key());
    } else {
        live.insert(r.key(), r.clone());
    }
}

fn encode_batch<R: StateRecord>(records: &[R]) -> Result<Bytes, StoreError> {
    let now = crate::log::now_ms();
    let records = records
        .iter()
        .map(|r| NewRecord {
            key: None,
            value: Some(Bytes::from(
                serde_json::to_vec(r).expect("state records always serialize"),
            )),
            timestamp: now,
        })
        .collect();
    record_batch::encode(records, &Producer::NONE, Compression::None)
        .map_err(|e| StoreError(format!("encoding a state log batch: {e}")))
}
