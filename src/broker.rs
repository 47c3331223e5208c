//! Broker state shared by every connection: settings, metadata and the partition registry.

use crate::config::{log_config, BrokerConfig};
use crate::coordinator::group::{GroupCoordinator, TopicInfo, TopicSource};
use crate::coordinator::txn::{
    MarkerDurable, MarkerJob, MarkerSink, TopicPartition, TxnCoordinator, TxnResult, OFFSETS_TOPIC,
};
use crate::log::flush::Flusher;
use crate::log::Partition;
use crate::metadata::{ClusterMetadata, LocalMetadata, PartitionState, TopicMeta};
use crate::tier::Tier;
pub use crate::topic::Topic;
use anyhow::{Context, Result};
use dashmap::DashMap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Why a request cannot use a partition here (each is a Kafka error code, mapped in api/).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupError {
    UnknownTopicOrPartition,
    /// Asked by topic id (empty name) and no topic has it.
    UnknownTopicId,
    NotLeaderOrFollower,
    /// The client's leader epoch is older than the partition's.
    FencedLeaderEpoch,
    /// The client's leader epoch is newer than this broker knows.
    UnknownLeaderEpoch,
}

/// A partition this broker leads, and the epoch it leads it in.
pub struct Led {
    pub log: Arc<Partition>,
    pub leader_epoch: i32,
}

/// Resolves when a queued transactional append is done (Err: it was dropped; done all the same).
pub type AppendDone = futures::future::Shared<tokio::sync::oneshot::Receiver<()>>;

/// The client's epoch when a request carries none.
pub const NO_LEADER_EPOCH: i32 = -1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    AlreadyExists,
    InvalidName(String),
    Storage(String),
}

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub metadata: Arc<dyn ClusterMetadata>,
    topics: DashMap<String, Arc<Topic>>,
    topic_ids: DashMap<Uuid, String>,
    flusher: Flusher,
    /// Serializes topic creation and deletion (not on the produce/fetch path).
    admin_lock: Mutex<()>,
    /// Bumped on every topic creation and deletion (KIP-848 groups re-resolve subscriptions).
    topics_version: AtomicU64,
    pub groups: GroupCoordinator,
    pub transactions: TxnCoordinator,
    /// Transactional appends waiting for their partition to join the transaction, by
    /// (topic, partition, producer id): the latest one, which the next queues behind.
    pub txn_appends: DashMap<(String, i32, i64), (u64, AppendDone)>,
    /// Tiered storage (None when remote.log.storage.system.enable=false).
    pub tier: Option<Arc<Tier>>,
}

/// Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], and not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be '{name}'"));
    }
    if name.len() > 249 {
        return Err("topic name is longer than 249 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name '{name}' contains '{c}'; legal characters are ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

impl Broker {
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let topics_dir = config.data_dir.join("topics");
        std::fs::create_dir_all(&topics_dir)
            .with_context(|| format!("creating {}", topics_dir.display()))?;
        std::fs::File::open(&config.data_dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", config.data_dir.display()))?;
        let metadata: Arc<dyn ClusterMetadata> =
            Arc::new(LocalMetadata::open(&config.data_dir, config.node_id)?);
        let flusher = Flusher::with_page_cache_budget(config.page_cache_max_bytes);
        let groups = GroupCoordinator::open(
            config.groups.clone(),
            config
                .data_dir
                .join("internal")
                .join("__consumer_offsets-0"),
            flusher.clone(),
        )
        .context("opening the group log")?;
        let producer_ids = metadata.clone();
        let transactions = TxnCoordinator::open(
            config.transactions.clone(),
            config
                .data_dir
                .join("internal")
                .join("__transaction_state-0"),
            flusher.clone(),
            Arc::new(move || producer_ids.allocate_producer_id()),
        )
        .context("opening the transaction log")?;
        let tier = if config.tier.enabled {
            Some(Arc::new(
                Tier::open(&config.tier, &config.data_dir).context("opening the object store")?,
            ))
        } else {
            None
        };
        let broker = Broker {
            cluster_id: metadata.cluster_id(),
            config,
            metadata,
            topics: DashMap::new(),
            topic_ids: DashMap::new(),
            flusher,
            admin_lock: Mutex::new(()),
            topics_version: AtomicU64::new(0),
            groups,
            transactions,
            txn_appends: DashMap::new(),
            tier,
        };
        for meta in broker.metadata.topics() {
            let topic = broker
                .open_topic(&meta)
                .with_context(|| format!("opening topic {}", meta.name))?;
            broker.register(topic);
        }
        Ok(Arc::new(broker))
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.config
            .data_dir
            .join("topics")
            .join(format!("{topic}-{index}"))
    }

    fn open_topic(&self, meta: &TopicMeta) -> Result<Topic> {
        let mut log_cfg = log_config(&self.config.topic_defaults(), &meta.configs);
        log_cfg.producer_expiration_ms = self.config.producer_id_expiration_ms;
        log_cfg.remote_storage &= self.config.tier.enabled;
        let partitions = (0..meta.partitions)
            .map(|i| {
                Partition::open(
                    &meta.name,
                    i,
                    self.partition_dir(&meta.name, i),
                    log_cfg.clone(),
                    self.flusher.clone(),
                )
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Topic {
            name: meta.name.clone(),
            id: meta.id,
            partitions,
            states: Vec::new(),
            configs: meta.configs.clone(),
        })
    }

    /// Makes a topic the metadata already holds visible to requests.
    fn register(&self, mut topic: Topic) -> Arc<Topic> {
        let node = self.config.node_id;
        topic.states = (0..topic.partitions.len() as i32)
            .map(|i| {
                self.metadata
                    .partition_state(&topic.name, i)
                    .unwrap_or_else(|| PartitionState::sole_replica(node))
            })
            .collect();
        for (log, state) in topic.partitions.iter().zip(&topic.states) {
            log.set_leader_epoch(state.leader_epoch);
        }
        let topic = Arc::new(topic);
        self.topic_ids.insert(topic.id, topic.name.clone());
        self.topics.insert(topic.name.clone(), topic.clone());
        // After the insert, so a group that sees the new version also sees the topic.
        self.topics_version.fetch_add(1, Ordering::Relaxed);
        topic
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.get(name).map(|t| t.clone())
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        let name = self.topic_ids.get(id)?.clone();
        self.topic(&name)
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<Arc<Topic>> = self.topics.iter().map(|t| t.value().clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// A topic as requests name it: by name, or by id when the name is empty (newer versions).
    pub fn find_topic(&self, name: &str, id: &Uuid) -> Result<Arc<Topic>, LookupError> {
        if !name.is_empty() {
            self.topic(name).ok_or(LookupError::UnknownTopicOrPartition)
        } else {
            self.topic_by_id(id).ok_or(LookupError::UnknownTopicId)
        }
    }

    /// The partition, if this broker leads it, after Kafka's check of the client's view of
    /// leadership: `current_leader_epoch` newer than the leader's is UNKNOWN_LEADER_EPOCH, older
    /// is FENCED_LEADER_EPOCH, NO_LEADER_EPOCH skips the check.
    pub fn led_partition(
        &self,
        topic: &Topic,
        index: i32,
        current_leader_epoch: i32,
    ) -> Result<Led, LookupError> {
        let i = usize::try_from(index).map_err(|_| LookupError::UnknownTopicOrPartition)?;
        let (log, state) = topic
            .partitions
            .get(i)
            .zip(topic.states.get(i))
            .ok_or(LookupError::UnknownTopicOrPartition)?;
        if state.leader != self.config.node_id {
            return Err(LookupError::NotLeaderOrFollower);
        }
        match current_leader_epoch {
            NO_LEADER_EPOCH => {}
            e if e > state.leader_epoch => return Err(LookupError::UnknownLeaderEpoch),
            e if e < state.leader_epoch => return Err(LookupError::FencedLeaderEpoch),
            _ => {}
        }
        Ok(Led {
            log: log.clone(),
            leader_epoch: state.leader_epoch,
        })
    }

    /// `led_partition` of a topic named in the request.
    pub fn led_partition_by_name(
        &self,
        topic: &str,
        index: i32,
        current_leader_epoch: i32,
    ) -> Result<(Arc<Topic>, Led), LookupError> {
        let t = self
            .topic(topic)
            .ok_or(LookupError::UnknownTopicOrPartition)?;
        let led = self.led_partition(&t, index, current_leader_epoch)?;
        Ok((t, led))
    }

    /// Whether the cluster has this partition, wherever it is led (offsets may be committed
    /// for any).
    pub fn has_partition(&self, topic: &str, index: i32) -> bool {
        self.topic(topic)
            .is_some_and(|t| usize::try_from(index).is_ok_and(|i| i < t.partitions.len()))
    }

    /// Creates a topic (name and configs already validated by the caller, except the name).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        validate_topic_name(name).map_err(TopicError::InvalidName)?;
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.topics.contains_key(name) {
            return Err(TopicError::AlreadyExists);
        }
        // Kafka refuses names that differ only by '.' vs '_' (they collide in metric names).
        let canonical = name.replace('.', "_");
        if let Some(other) = self
            .topics
            .iter()
            .find(|t| t.key().replace('.', "_") == canonical)
        {
            return Err(TopicError::InvalidName(format!(
                "Topic '{name}' collides with existing topic: {}",
                other.key()
            )));
        }
        let meta = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        // Leftovers of an earlier topic with this name (e.g. a crash mid-delete) must not leak in.
        for i in 0..partitions {
            let _ = std::fs::remove_dir_all(self.partition_dir(name, i));
        }
        let topic = self
            .open_topic(&meta)
            .map_err(|e| TopicError::Storage(e.to_string()))?;
        self.metadata
            .create_topic(meta)
            .map_err(|e| TopicError::Storage(e.to_string()))?;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(self.register(topic))
    }

    /// Auto-creation on Metadata/Produce, when enabled.
    pub fn auto_create(&self, name: &str) -> Option<Arc<Topic>> {
        if !self.config.auto_create_topics {
            return None;
        }
        match self.create_topic(name, self.config.num_partitions, BTreeMap::new()) {
            Ok(t) => Some(t),
            Err(TopicError::AlreadyExists) => self.topic(name),
            Err(_) => None,
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<Option<Arc<Topic>>> {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some((_, topic)) = self.topics.remove(name) else {
            return Ok(None);
        };
        self.topic_ids.remove(&topic.id);
        self.topics_version.fetch_add(1, Ordering::Relaxed);
        self.metadata.delete_topic(name)?;
        for p in &topic.partitions {
            if let Err(e) = p.delete() {
                tracing::warn!(topic = name, partition = p.index, error = %e, "removing partition files");
            }
        }
        if let Some(tier) = &self.tier {
            tier.delete_topic(name, topic.id);
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(Some(topic))
    }

    /// One retention pass over every partition.
    pub fn apply_retention(&self) {
        let now = crate::log::now_ms();
        for topic in self.topics() {
            for p in &topic.partitions {
                p.apply_retention(now);
            }
        }
    }

    /// Makes every write durable (graceful shutdown).
    pub fn close(&self) {
        for topic in self.topics() {
            for p in &topic.partitions {
                p.close();
            }
        }
        self.groups.close();
        self.transactions.close();
    }

    /// Writes the markers of a decided transaction and completes it, in a task of its own:
    /// a client that goes away must not stop a transaction half-ended.
    pub fn finish_transaction(self: &Arc<Self>, job: MarkerJob) -> tokio::task::JoinHandle<()> {
        let broker = self.clone();
        tokio::spawn(async move { broker.transactions.finish(job, &*broker).await })
    }
}

impl MarkerSink for Broker {
    fn append_marker(
        &self,
        (topic, index): &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
    ) -> Result<Option<MarkerDurable<'_>>, String> {
        let commit = result == TxnResult::Commit;
        if topic == OFFSETS_TOPIC {
            // Every group's pending offsets of this producer, in one group-log record.
            return self.groups.end_txn_offsets(producer_id, commit).map(|end| {
                end.map(|end| -> MarkerDurable<'_> { Box::pin(self.groups.wait_durable(end)) })
            });
        }
        let Ok((_, led)) = self.led_partition_by_name(topic, *index, NO_LEADER_EPOCH) else {
            return Ok(None);
        };
        let log = led.log;
        // A single node is the only coordinator there has been: coordinator epoch 0.
        match log.append_marker(producer_id, producer_epoch, commit, 0) {
            Ok(offset) => Ok(Some(Box::pin(async move {
                if log.wait_durable(offset + 1).await {
                    Ok(())
                } else {
                    Err("the partition failed before the marker was durable".to_string())
                }
            }))),
            Err(crate::log::AppendError::Deleted) => Ok(None),
            Err(e) => Err(format!("{e:?}")),
        }
    }
}

impl TopicSource for Broker {
    fn topics_version(&self) -> u64 {
        self.topics_version.load(Ordering::Relaxed)
    }
    fn topics(&self) -> Vec<TopicInfo> {
        Broker::topics(self)
            .iter()
            .map(|t| TopicInfo {
                name: t.name.clone(),
                id: t.id,
                partitions: t.partitions.len() as i32,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::validate_topic_name;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
