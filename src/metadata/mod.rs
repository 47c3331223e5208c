//! What the cluster knows: brokers, topics (ids, configs), partitions (leader, leader epoch,
//! partition epoch, replicas, ISR), producer-id blocks, and a change notification. Handlers and
//! the broker see only `ClusterMetadata`; today the local JSON store implements it (this node
//! leads everything at epoch 0), cluster mode will implement it on etcd.

mod local;

pub use local::LocalMetadata;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level config overrides (Kafka names).
    pub configs: BTreeMap<String, String>,
}

/// Leadership of one partition, as Kafka's PartitionRegistration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped on every change of the partition's state (ISR, replicas, leader).
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl PartitionState {
    /// A partition with one replica, `node`, which leads it and never changes.
    pub fn sole_replica(node: i32) -> PartitionState {
        PartitionState {
            leader: node,
            leader_epoch: 0,
            partition_epoch: 0,
            replicas: vec![node],
            isr: vec![node],
        }
    }
}

pub trait ClusterMetadata: Send + Sync {
    fn cluster_id(&self) -> String;
    /// This broker's id.
    fn node_id(&self) -> i32;
    /// Ids of the registered brokers.
    fn brokers(&self) -> Vec<i32>;
    fn controller_id(&self) -> i32;
    fn topics(&self) -> Vec<TopicMeta>;
    /// Adds a topic, durably, before returning.
    fn create_topic(&self, topic: TopicMeta) -> Result<()>;
    fn delete_topic(&self, name: &str) -> Result<Option<TopicMeta>>;
    /// None: no such topic or partition.
    fn partition_state(&self, topic: &str, partition: i32) -> Option<PartitionState>;
    /// A producer id never handed out before, even across restarts.
    fn allocate_producer_id(&self) -> Result<i64>;
    /// Changes whenever topics or partition states change.
    fn subscribe(&self) -> watch::Receiver<u64>;
}
