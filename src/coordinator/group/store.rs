//! The group log: committed offsets and group metadata, appended to an internal partition
//! (our `__consumer_offsets`) and replayed on start. Compaction rewrites the live state as a
//! snapshot at the head of a fresh segment and drops every older segment.

use crate::log::{flush::Flusher, LogConfig, Partition, ReadOutcome};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One fact in the group log. Later records override earlier ones for the same key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum GroupRecord {
    /// A committed offset.
    Offset {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
        metadata: Option<String>,
        commit_ms: i64,
    },
    /// An offset removed by OffsetDelete, DeleteGroups or expiry.
    OffsetRemoved {
        group: String,
        topic: String,
        partition: i32,
    },
    /// A group's durable metadata (members rejoin after a restart, as in Kafka).
    Group(GroupMeta),
    GroupRemoved {
        group: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    pub group: String,
    /// "classic" or "consumer".
    pub kind: String,
    pub protocol_type: String,
    /// Classic generation or consumer group epoch.
    pub generation: i32,
    pub protocol: Option<String>,
    /// When the group last became empty (offset expiry counts from here).
    pub empty_since_ms: Option<i64>,
}

#[derive(Debug)]
pub struct StoreError(pub String);

/// The latest record per key: what a compaction writes out.
type Live = BTreeMap<String, GroupRecord>;

pub struct GroupStore {
    log: Arc<Partition>,
    /// Keeps appends and compaction snapshots in one order, and the live set they imply.
    live: Mutex<Live>,
    bytes_since_snapshot: AtomicU64,
    snapshot_bytes: AtomicU64,
}

/// Records per appended batch: bounded so one batch stays far below max.message.bytes.
const RECORDS_PER_BATCH: usize = 2000;

impl GroupStore {
    pub fn open(dir: PathBuf, segment_bytes: u64, flusher: Flusher) -> std::io::Result<GroupStore> {
        let config = LogConfig {
            segment_bytes,
            segment_ms: i64::MAX / 2,
            retention_ms: -1,
            retention_bytes: -1,
            max_message_bytes: 64 << 20,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            ..LogConfig::default()
        };
        let log = Partition::open("__consumer_offsets", 0, dir, config, flusher)?;
        Ok(GroupStore {
            log,
            live: Mutex::new(Live::new()),
            bytes_since_snapshot: AtomicU64::new(0),
            snapshot_bytes: AtomicU64::new(0),
        })
    }

    /// Every record from the log start, in order.
    pub fn replay(&self) -> std::io::Result<Vec<GroupRecord>> {
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
                    match r
                        .value
                        .as_deref()
                        .map(serde_json::from_slice::<GroupRecord>)
                    {
                        Some(Ok(rec)) => out.push(rec),
                        _ => tracing::warn!(
                            offset = r.offset,
                            "skipping unreadable group log record"
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
    pub fn append(&self, records: &[GroupRecord]) -> Result<i64, StoreError> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let end = self.append_locked(records)?;
        for r in records {
            apply(&mut live, r);
        }
        Ok(end)
    }

    fn append_locked(&self, records: &[GroupRecord]) -> Result<i64, StoreError> {
        let mut end = self.log.offsets().log_end;
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            let batch = encode_batch(chunk)?;
            self.bytes_since_snapshot
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let outcome = self
                .log
                .append(&batch)
                .map_err(|e| StoreError(format!("group log append failed: {e:?}")))?;
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
                return Err(StoreError(
                    "group log is offline after a storage error".into(),
                ));
            }
            if rx.changed().await.is_err() {
                return Err(StoreError("group log closed".into()));
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
            let io = |e: std::io::Error| StoreError(format!("group log roll failed: {e}"));
            self.log.roll().map_err(io)?;
            let start = self.log.offsets().log_end;
            let live: Vec<GroupRecord> = live.values().cloned().collect();
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
            return Err(StoreError(
                "group log snapshot did not become durable".into(),
            ));
        }
        let removed = self.log.delete_segments_before(start);
        tracing::info!(segments = removed, "compacted the group log");
        Ok(())
    }

    pub fn close(&self) {
        self.log.close();
    }
}

fn key(r: &GroupRecord) -> String {
    match r {
        GroupRecord::Offset {
            group,
            topic,
            partition,
            ..
        }
        | GroupRecord::OffsetRemoved {
            group,
            topic,
            partition,
        } => format!("o\0{group}\0{topic}\0{partition}"),
        GroupRecord::Group(meta) => format!("g\0{}", meta.group),
        GroupRecord::GroupRemoved { group } => format!("g\0{group}"),
    }
}

fn apply(live: &mut Live, r: &GroupRecord) {
    match r {
        GroupRecord::Offset { .. } | GroupRecord::Group(_) => {
            live.insert(key(r), r.clone());
        }
        GroupRecord::OffsetRemoved { .. } | GroupRecord::GroupRemoved { .. } => {
            live.remove(&key(r));
        }
    }
}

fn encode_batch(records: &[GroupRecord]) -> Result<Bytes, StoreError> {
    let now = crate::log::now_ms();
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence stays constant.
            sequence: i as i32,
            timestamp: now,
            key: None,
            value: Some(Bytes::from(
                serde_json::to_vec(r).expect("group records always serialize"),
            )),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| StoreError(format!("encoding a group log batch: {e}")))?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(group: &str, p: i32, o: i64) -> GroupRecord {
        GroupRecord::Offset {
            group: group.into(),
            topic: "t".into(),
            partition: p,
            offset: o,
            leader_epoch: -1,
            metadata: Some("m".into()),
            commit_ms: 1,
        }
    }

    #[test]
    fn append_replay_and_compact() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let flusher = Flusher::start();
        let store = GroupStore::open(dir.path().join("g"), 4096, flusher.clone()).unwrap();
        for i in 0..200 {
            let end = store.append(&[offset("g1", i % 3, i as i64)]).unwrap();
            rt.block_on(store.wait_durable(end)).unwrap();
        }
        let all = store.replay().unwrap();
        assert_eq!(all.len(), 200);
        assert_eq!(all[199], offset("g1", 199 % 3, 199));
        store
            .append(&[GroupRecord::OffsetRemoved {
                group: "g1".into(),
                topic: "t".into(),
                partition: 2,
            }])
            .unwrap();
        store.compact().unwrap();
        let live = vec![offset("g1", 0, 198), offset("g1", 1, 199)];
        assert_eq!(store.replay().unwrap(), live);
        store.close();
        drop(store);
        let reopened = GroupStore::open(dir.path().join("g"), 4096, flusher).unwrap();
        assert_eq!(reopened.replay().unwrap(), live);
    }
}
