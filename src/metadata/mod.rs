//! What the cluster knows: brokers, topics (ids, configs), partitions (leader, leader epoch,
//! partition epoch, replicas, ISR), ACLs, SCRAM credentials, client quotas, producer-id blocks, and a change notification. Handlers and
//! the broker see only `ClusterMetadata`: the local JSON store in single-node mode (this node
//! leads everything at epoch 0), etcd in cluster mode.

mod etcd;
mod local;

pub use etcd::{ClusterConfig, EtcdMetadata, NoElection};
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

/// One ACL binding as Kafka's AclBinding, with the protocol's codes (resource type,
/// pattern type, operation, permission type). security/authorizer.rs gives them meaning.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclEntry {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    /// "User:NAME" or "User:*".
    pub principal: String,
    /// A host or "*".
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// What the broker keeps of one user's password for one SCRAM mechanism (RFC 5802): the salt,
/// StoredKey, ServerKey and iteration count, never the password. security/sasl_scram.rs
/// computes and checks them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ScramCredential(iterations={}, keys hidden)",
            self.iterations
        )
    }
}

/// SCRAM credentials by user, then by mechanism name (SCRAM-SHA-256, SCRAM-SHA-512).
pub type ScramCredentials = BTreeMap<String, BTreeMap<String, ScramCredential>>;

mod base64_bytes {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

/// The client quotas of one entity, as Kafka's ClientQuotaRecord: entity type ("user",
/// "client-id", "ip") -> name (None: the default entity), and quota key -> value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientQuota {
    pub entity: BTreeMap<String, Option<String>>,
    pub values: BTreeMap<String, f64>,
}

/// Leadership of one partition, as Kafka's PartitionRegistration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A broker as the others see it (Kafka's BrokerRegistration): its endpoints by listener name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: i32,
    /// The broker epoch: bumped on every registration (the etcd revision that created it).
    #[serde(default)]
    pub epoch: i64,
    pub rack: Option<String>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// `create_topic` found the name taken (by another broker, in cluster mode).
#[derive(Debug)]
pub struct TopicExists;

impl std::fmt::Display for TopicExists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the topic already exists")
    }
}

impl std::error::Error for TopicExists {}

/// A Kafka-style cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
    }
    out
}

pub trait ClusterMetadata: Send + Sync {
    fn cluster_id(&self) -> String;
    /// This broker's id.
    fn node_id(&self) -> i32;
    /// Ids of the registered brokers.
    fn brokers(&self) -> Vec<i32>;
    /// The registered brokers with their endpoints; empty on a single node, where this broker
    /// is the cluster and answers with the listener a client came in on.
    fn registrations(&self) -> Vec<BrokerRegistration> {
        Vec::new()
    }
    fn controller_id(&self) -> i32;
    fn topics(&self) -> Vec<TopicMeta>;
    /// Adds a topic with the replicas of each partition (the first leads), durably, before
    /// returning. Err(TopicExists) when the name is taken.
    fn create_topic(&self, topic: TopicMeta, replicas: &[Vec<i32>]) -> Result<()>;
    fn delete_topic(&self, name: &str) -> Result<Option<TopicMeta>>;
    /// Replaces a topic's config overrides, durably, before returning. False: no such topic.
    fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<bool>;
    /// Dynamic broker configs (Kafka names) of an entity: "" is the cluster default, otherwise
    /// a node id.
    fn broker_configs(&self, entity: &str) -> BTreeMap<String, String>;
    /// Replaces an entity's dynamic broker configs, durably, before returning.
    fn set_broker_configs(&self, entity: &str, configs: BTreeMap<String, String>) -> Result<()>;
    /// Raises a topic's partition count, durably, before returning (the new partitions get
    /// the next indexes, with these replicas). False: no such topic.
    fn add_partitions(&self, name: &str, partitions: i32, replicas: &[Vec<i32>]) -> Result<bool>;
    /// None: no such topic or partition.
    fn partition_state(&self, topic: &str, partition: i32) -> Option<PartitionState>;
    /// Every ACL binding.
    fn acls(&self) -> Vec<AclEntry>;
    /// Replaces the ACL bindings, durably, before returning.
    fn set_acls(&self, acls: Vec<AclEntry>) -> Result<()>;
    /// Every SCRAM credential.
    fn scram_credentials(&self) -> ScramCredentials;
    /// Replaces the SCRAM credentials, durably, before returning.
    fn set_scram_credentials(&self, credentials: ScramCredentials) -> Result<()>;
    /// Every entity's client quotas.
    fn client_quotas(&self) -> Vec<ClientQuota>;
    /// Replaces the client quotas, durably, before returning.
    fn set_client_quotas(&self, quotas: Vec<ClientQuota>) -> Result<()>;
    /// A producer id never handed out before, even across restarts.
    fn allocate_producer_id(&self) -> Result<i64>;
    /// Changes whenever topics or partition states change.
    fn subscribe(&self) -> watch::Receiver<u64>;
}
