//! The group log's records: committed offsets, pending transactional offsets and group
//! metadata, kept in a state log (our `__consumer_offsets`) and replayed on start.

use crate::coordinator::state_log::{StateLog, StateRecord};
use serde::{Deserialize, Serialize};

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
        /// Write order among the group log's offsets (see `TxnOffset`); 0 in logs older than
        /// transactional offsets.
        #[serde(default)]
        seq: u64,
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
    /// A TxnOffsetCommit offset, pending until its producer's transaction ends. `seq` orders it
    /// against plain commits of the same partition: at COMMIT it replaces the committed offset
    /// only if it was written later (Kafka compares record offsets, which our compaction does
    /// not keep).
    TxnOffset {
        producer_id: i64,
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
        metadata: Option<String>,
        commit_ms: i64,
        seq: u64,
    },
    /// A pending offset dropped before its transaction ended (OffsetDelete, DeleteGroups).
    TxnOffsetRemoved {
        producer_id: i64,
        group: String,
        topic: String,
        partition: i32,
    },
    /// The transaction of `producer_id` ended: every pending offset of it, in every group, is
    /// done with. At COMMIT the offsets it commits are `Offset` records just before it, in the
    /// same append.
    TxnEnd {
        producer_id: i64,
        commit: bool,
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

/// The group log: an internal partition of group records.
pub type GroupStore = StateLog<GroupRecord>;

impl StateRecord for GroupRecord {
    fn key(&self) -> String {
        match self {
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
            GroupRecord::TxnOffset {
                producer_id,
                group,
                topic,
                partition,
                ..
            }
            | GroupRecord::TxnOffsetRemoved {
                producer_id,
                group,
                topic,
                partition,
            } => format!("{}{group}\0{topic}\0{partition}", txn_prefix(*producer_id)),
            GroupRecord::TxnEnd { producer_id, .. } => format!("t\0{producer_id}"),
        }
    }

    fn is_removal(&self) -> bool {
        matches!(
            self,
            GroupRecord::OffsetRemoved { .. }
                | GroupRecord::GroupRemoved { .. }
                | GroupRecord::TxnOffsetRemoved { .. }
                | GroupRecord::TxnEnd { .. }
        )
    }

    fn removes_prefix(&self) -> Option<String> {
        match self {
            GroupRecord::TxnEnd { producer_id, .. } => Some(txn_prefix(*producer_id)),
            _ => None,
        }
    }
}

/// The key prefix of every pending offset of a producer.
fn txn_prefix(producer_id: i64) -> String {
    format!("t\0{producer_id}\0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::flush::Flusher;

    fn offset(group: &str, p: i32, o: i64) -> GroupRecord {
        GroupRecord::Offset {
            group: group.into(),
            topic: "t".into(),
            partition: p,
            offset: o,
            leader_epoch: -1,
            metadata: Some("m".into()),
            commit_ms: 1,
            seq: o as u64,
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
        let store = GroupStore::open(
            "__consumer_offsets",
            dir.path().join("g"),
            4096,
            flusher.clone(),
        )
        .unwrap();
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
        let reopened =
            GroupStore::open("__consumer_offsets", dir.path().join("g"), 4096, flusher).unwrap();
        assert_eq!(reopened.replay().unwrap(), live);
    }
}
