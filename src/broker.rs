//! Broker state shared by every connection: settings, metadata and the partition registry.

use crate::config::registry::{self, Setting, Source, Target};
use crate::config::{
    log_config, resolve_topic, BrokerConfig, BrokerLayers, CleanerConfig, TopicValue,
};
use crate::coordinator::group::{GroupCoordinator, TopicInfo, TopicSource};
use crate::coordinator::txn::{
    MarkerDurable, MarkerJob, MarkerSink, TopicPartition, TxnCoordinator, TxnResult, OFFSETS_TOPIC,
};
use crate::log::cleaner::{Cleaner, CleanerSettings};
use crate::log::flush::Flusher;
use crate::log::LogConfig;
use crate::log::Partition;
use crate::metadata::{
    BrokerRegistration, ClusterMetadata, Endpoint, EtcdMetadata, LocalMetadata, PartitionState,
    TopicExists, TopicMeta,
};
use crate::replica::{Replication, ReplicationConfig};
use crate::tier::Tier;
pub use crate::topic::Topic;
use anyhow::{Context, Result};
use dashmap::DashMap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
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
/// Broker ids ordered so that racks alternate: the first broker of each rack, then the second
/// of each, and so on (brokers without a rack form one rack of their own).
fn rack_alternating(registrations: &[crate::metadata::BrokerRegistration]) -> Vec<i32> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for r in registrations {
        by_rack
            .entry(r.rack.as_deref())
            .or_default()
            .push(r.node_id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
    }
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()))
        .collect()
}

/// Where a new topic's replicas go.
#[derive(Debug, Clone)]
pub enum Placement {
    /// This many replicas per partition, placed by the broker.
    Factor(usize),
    /// The replicas of each partition, by index (the first is the preferred leader).
    Assigned(Vec<Vec<i32>>),
}

pub struct Led {
    pub log: Arc<Partition>,
    pub leader_epoch: i32,
    /// Members of the partition's ISR (the leader included).
    pub isr: usize,
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

/// Opens the data directory's metadata store, creating it as Kafka's storage format does: with
/// min.insync.replicas as a cluster-wide dynamic default (for eligible leader replicas).
/// `sluice format` and the broker both create it here, so either may come first.
pub fn open_metadata(config: &BrokerConfig) -> Result<LocalMetadata> {
    let min_isr = config
        .topic_defaults
        .get("min.insync.replicas")
        .cloned()
        .unwrap_or_else(|| "1".to_string());
    LocalMetadata::open_formatting(
        &config.data_dir,
        config.node_id,
        BTreeMap::from([("min.insync.replicas".to_string(), min_isr)]),
    )
}

/// Holds `DIR/.lock` (flock) for the life of the process, as Kafka's log-dir lock: a second
/// broker, or `sluice format`, on a directory in use fails instead of corrupting it.
pub fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!(
            "Failed to acquire lock on file .lock in {}: another sluice process is using this directory",
            dir.display()
        );
    }
    Ok(file)
}

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub metadata: Arc<dyn ClusterMetadata>,
    /// Cluster mode: the etcd metadata (also `metadata`); None on a single node.
    pub cluster: Option<Arc<EtcdMetadata>>,
    /// Cluster mode: leading and following partitions (`replica`).
    pub replication: Option<Arc<Replication>>,
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
    /// The ACL authorizer (None: authorizer.class.name is empty, everything is allowed).
    pub authorizer: Option<Arc<crate::security::Authorizer>>,
    /// Client quotas (AlterClientQuotas) and the rates they are measured on.
    pub quotas: crate::security::quotas::ClientQuotas,
    /// max.connections and friends, shared by every listener.
    pub connection_limits: Arc<crate::server::limits::ConnectionLimits>,
    /// Static settings as DescribeConfigs reports them (BrokerConfig::static_settings).
    static_settings: BTreeMap<String, String>,
    /// Dynamic broker configs, as the metadata holds them: (cluster default, this broker).
    dynamic: RwLock<(BTreeMap<String, String>, BTreeMap<String, String>)>,
    /// The running log cleaner and the settings it runs with (restarted when they change).
    cleaner: Mutex<Option<CleanerSlot>>,
    /// What the log cleaner did since start, over its restarts (for /metrics).
    pub cleaner_totals: Arc<crate::log::cleaner::CleanerTotals>,
}

/// The running cleaner, the settings it runs with, and the broker it cleans for.
struct CleanerSlot {
    config: CleanerConfig,
    broker: std::sync::Weak<Broker>,
    cleaner: Option<Cleaner>,
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
        let (metadata, cluster): (Arc<dyn ClusterMetadata>, _) = match &config.cluster {
            Some(cluster) => {
                let etcd = EtcdMetadata::start(cluster.clone(), config.node_id)?;
                (etcd.clone(), Some(etcd))
            }
            None => (Arc::new(open_metadata(&config)?), None),
        };
        let dynamic = RwLock::new((
            metadata.broker_configs(""),
            metadata.broker_configs(&config.node_id.to_string()),
        ));
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
        let static_settings = config.static_settings();
        let authorizer = config.authorizer.enabled.then(|| {
            Arc::new(crate::security::Authorizer::new(
                &config.authorizer,
                metadata.clone(),
            ))
        });
        let quotas = crate::security::quotas::ClientQuotas::new(
            config.quota_window_num,
            config.quota_window_size_seconds,
            &metadata.client_quotas(),
        );
        let connection_limits = Arc::new(crate::server::limits::ConnectionLimits::new(
            &config.connection_limits,
            quotas.window(),
        ));
        let replication = cluster.as_ref().map(|c| {
            Replication::start(
                ReplicationConfig {
                    node_id: config.node_id,
                    lag_time_max: std::time::Duration::from_millis(config.replica_lag_time_max_ms),
                    fetch_wait_max_ms: config.replica_fetch_wait_max_ms as i32,
                },
                c.clone(),
            )
        });
        let broker = Broker {
            replication,
            authorizer,
            quotas,
            connection_limits,
            cluster_id: metadata.cluster_id(),
            config,
            metadata,
            cluster,
            topics: DashMap::new(),
            topic_ids: DashMap::new(),
            flusher,
            admin_lock: Mutex::new(()),
            topics_version: AtomicU64::new(0),
            groups,
            transactions,
            txn_appends: DashMap::new(),
            tier,
            static_settings,
            dynamic,
            cleaner: Mutex::new(None),
            cleaner_totals: Default::default(),
        };
        for meta in broker.metadata.topics() {
            let topic = broker
                .open_topic(&meta)
                .with_context(|| format!("opening topic {}", meta.name))?;
            broker.register(topic);
        }
        let limits = broker.effective_connection_limits();
        if limits != broker.config.connection_limits {
            broker.connection_limits.reconfigure(&limits);
        }
        Ok(Arc::new(broker))
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.config
            .data_dir
            .join("topics")
            .join(format!("{topic}-{index}"))
    }

    /// Runs `f` over the broker-level layers of settings (dynamic per broker, dynamic cluster
    /// default, static), as they are now.
    pub fn with_layers<R>(&self, f: impl FnOnce(&BrokerLayers) -> R) -> R {
        let dynamic = self.dynamic.read().unwrap_or_else(|p| p.into_inner());
        f(&BrokerLayers {
            node: &dynamic.1,
            cluster: &dynamic.0,
            static_: &self.static_settings,
        })
    }

    /// The broker-level default of every topic config (topic-level names).
    pub fn topic_defaults(&self) -> BTreeMap<String, String> {
        self.with_layers(|l| l.topic_defaults())
    }

    /// Every topic config of a topic with these overrides: value, source and synonyms.
    pub fn describe_topic(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Vec<(&'static Setting, TopicValue)> {
        let mut described: Vec<(&'static Setting, TopicValue)> = self.with_layers(|l| {
            let defaults = l.topic_defaults();
            registry::TOPIC
                .iter()
                .map(|s| (s, resolve_topic(s, l, &defaults, overrides)))
                .collect()
        });
        // sluice tiers by default, but never a compacted topic (log_config): its default reads
        // false there, as it is in effect (and as Kafka's default is).
        let compacted = described.iter().any(|(s, v)| {
            s.name == "cleanup.policy" && v.value.split(',').any(|p| p.trim() == "compact")
        });
        for (s, v) in described.iter_mut() {
            if compacted && s.name == "remote.storage.enable" && v.source == Source::Default {
                v.value = "false".to_string();
                for synonym in v.synonyms.iter_mut() {
                    synonym.1 = "false".to_string();
                }
            }
        }
        described
    }

    /// min.insync.replicas of a topic with these overrides.
    fn min_insync_replicas(&self, overrides: &BTreeMap<String, String>) -> usize {
        overrides
            .get("min.insync.replicas")
            .cloned()
            .or_else(|| self.topic_defaults().get("min.insync.replicas").cloned())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }

    /// The LogConfig of a topic with these overrides.
    fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let mut log_cfg = log_config(&self.topic_defaults(), overrides);
        log_cfg.producer_expiration_ms = self.config.producer_id_expiration_ms;
        log_cfg.remote_storage &= self.config.tier.enabled;
        log_cfg
    }

    /// Kafka's checks of a topic's new set of overrides that look at more than one config's
    /// effective value, or at what the topic holds (Kafka's LogConfig.validateTopicLogConfigValues):
    /// the INVALID_CONFIG message of the first that fails.
    pub fn check_topic_change(
        &self,
        topic: &Topic,
        next: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        crate::config::validate_topic_configs(next).map_err(|e| e.to_string())?;
        let values: BTreeMap<&str, String> = self
            .describe_topic(next)
            .into_iter()
            .map(|(s, v)| (s.name, v.value))
            .collect();
        let tiered = self.log_config(next).remote_storage;
        let copy_disabled = values["remote.log.copy.disable"].eq_ignore_ascii_case("true");
        if tiered && copy_disabled {
            for (local, total) in [
                ("local.retention.bytes", "retention.bytes"),
                ("local.retention.ms", "retention.ms"),
            ] {
                if values[local] != "-2" && values[local] != values[total] {
                    return Err(format!("When `remote.log.copy.disable` is set to true, the `{local}` and `{total}` must be set to the identical value because there will be no more logs copied to the remote storage."));
                }
            }
        }
        // Turning tiering off deletes the remote data (the tier's purge), so it takes consent
        // while the tier holds some. Kafka asks whenever the topic was tiered; sluice tiers
        // every topic by default, so it asks only when there is data to lose.
        let holds_remote = topic
            .partitions
            .iter()
            .any(|p| p.remote().is_some_and(|(start, end)| end > start));
        let delete_on_disable = values["remote.log.delete.on.disable"].eq_ignore_ascii_case("true");
        if !tiered && holds_remote && !delete_on_disable {
            return Err("It is invalid to disable remote storage without deleting remote data. If you want to keep the remote data and turn to read only, please set `remote.storage.enable=true,remote.log.copy.disable=true`. If you want to disable remote storage and delete all remote data, please set `remote.storage.enable=false,remote.log.delete.on.disable=true`.".to_string());
        }
        Ok(())
    }

    /// Replaces a topic's config overrides (validated by the caller): persisted, then applied
    /// to its partitions at once. False: no such topic.
    pub fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<bool> {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(old) = self.topic(name) else {
            return Ok(false);
        };
        if !self.metadata.set_topic_configs(name, configs.clone())? {
            return Ok(false);
        }
        let log_cfg = self.log_config(&configs);
        for p in &old.partitions {
            p.set_config(log_cfg.clone());
        }
        let topic = Arc::new(Topic {
            name: old.name.clone(),
            id: old.id,
            partitions: old.partitions.clone(),
            states: old.states.clone(),
            min_insync_replicas: self.min_insync_replicas(&configs),
            configs,
            traffic: old.traffic.clone(),
        });
        self.topics.insert(topic.name.clone(), topic);
        tracing::info!(topic = name, "updated topic configs");
        Ok(true)
    }

    /// The connection limits in effect: the dynamic values (checked when set) over the static
    /// ones.
    pub fn effective_connection_limits(&self) -> crate::config::ConnectionLimitsConfig {
        let mut out = self.config.connection_limits.clone();
        self.with_layers(|layers| {
            let int = |name: &str| {
                layers
                    .value(name)
                    .and_then(|v| v.trim().parse::<i64>().ok())
            };
            if let Some(v) = int("max.connections") {
                out.max_connections = v;
            }
            if let Some(v) = int("max.connections.per.ip") {
                out.max_connections_per_ip = v;
            }
            if let Some(v) = int("max.connection.creation.rate") {
                out.max_connection_creation_rate = v;
            }
            if let Some(v) = layers.value("max.connections.per.ip.overrides") {
                out.per_ip_overrides = v;
            }
        });
        out
    }

    /// Dynamic broker configs of an entity: "" the cluster default, else this broker's id.
    pub fn dynamic_configs(&self, cluster_default: bool) -> BTreeMap<String, String> {
        let dynamic = self.dynamic.read().unwrap_or_else(|p| p.into_inner());
        if cluster_default {
            dynamic.0.clone()
        } else {
            dynamic.1.clone()
        }
    }

    /// Replaces the dynamic broker configs of the cluster default or of this broker (validated
    /// by the caller): persisted, then every topic's partitions get their re-resolved LogConfig.
    pub fn set_dynamic_configs(
        &self,
        cluster_default: bool,
        configs: BTreeMap<String, String>,
    ) -> Result<()> {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let entity = if cluster_default {
            String::new()
        } else {
            self.config.node_id.to_string()
        };
        self.metadata.set_broker_configs(&entity, configs.clone())?;
        {
            let mut dynamic = self.dynamic.write().unwrap_or_else(|p| p.into_inner());
            if cluster_default {
                dynamic.0 = configs;
            } else {
                dynamic.1 = configs;
            }
        }
        for topic in self.topics() {
            let log_cfg = self.log_config(&topic.configs);
            for p in &topic.partitions {
                p.set_config(log_cfg.clone());
            }
        }
        self.reconfigure_cleaner(None);
        self.connection_limits
            .reconfigure(&self.effective_connection_limits());
        tracing::info!(entity, "updated dynamic broker configs");
        Ok(())
    }

    fn open_topic(&self, meta: &TopicMeta) -> Result<Topic> {
        let log_cfg = self.log_config(&meta.configs);
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
            min_insync_replicas: 1,
            traffic: Default::default(),
        })
    }

    /// Makes a topic the metadata already holds visible to requests.
    fn register(&self, mut topic: Topic) -> Arc<Topic> {
        let node = self.config.node_id;
        if let Some(old) = self
            .topics
            .get(&topic.name)
            .filter(|old| old.id == topic.id)
        {
            topic.traffic = old.traffic.clone();
        }
        topic.states = (0..topic.partitions.len() as i32)
            .map(|i| {
                self.metadata
                    .partition_state(&topic.name, i)
                    .unwrap_or_else(|| match self.cluster {
                        // Not in the metadata (yet): led by no one rather than by guess.
                        Some(_) => PartitionState {
                            leader: -1,
                            leader_epoch: 0,
                            partition_epoch: 0,
                            replicas: Vec::new(),
                            isr: Vec::new(),
                        },
                        None => PartitionState::sole_replica(node),
                    })
            })
            .collect();
        for (log, state) in topic.partitions.iter().zip(&topic.states) {
            log.set_leader_epoch(state.leader_epoch);
        }
        topic.min_insync_replicas = self.min_insync_replicas(&topic.configs);
        if let Some(replication) = &self.replication {
            replication.apply(&topic);
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
            isr: state.isr.len(),
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

    /// Creates a topic (name, placement and configs already validated by the caller, except
    /// the name).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        placement: Placement,
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
        let replicas = match placement {
            Placement::Factor(rf) => self.assign_replicas(partitions, rf),
            Placement::Assigned(replicas) => replicas,
        };
        if let Err(e) = self.metadata.create_topic(meta, &replicas) {
            // Another broker took the name first; its topic opens from the metadata.
            for p in &topic.partitions {
                let _ = p.delete();
            }
            return Err(match e.downcast_ref::<TopicExists>() {
                Some(_) => TopicError::AlreadyExists,
                None => TopicError::Storage(e.to_string()),
            });
        }
        tracing::info!(topic = name, partitions, "created topic");
        Ok(self.register(topic))
    }

    /// Raises a topic's partition count to `partitions`: opens the new partitions, persists
    /// the count, then makes them visible. None: the topic is gone, or already has that many.
    pub fn add_partitions(&self, name: &str, partitions: i32) -> Result<Option<Arc<Topic>>> {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(old) = self.topic(name) else {
            return Ok(None);
        };
        let current = old.partitions.len() as i32;
        if partitions <= current {
            return Ok(None);
        }
        let meta = TopicMeta {
            name: old.name.clone(),
            id: old.id,
            partitions,
            configs: old.configs.clone(),
        };
        let log_cfg = self.log_config(&meta.configs);
        let mut logs = old.partitions.clone();
        for i in current..partitions {
            // Leftovers of a crash before the count was persisted must not leak in.
            let dir = self.partition_dir(name, i);
            let _ = std::fs::remove_dir_all(&dir);
            logs.push(Partition::open(
                name,
                i,
                dir,
                log_cfg.clone(),
                self.flusher.clone(),
            )?);
        }
        // New partitions get as many replicas as the first one has.
        let rf = old.states.first().map_or(1, |s| s.replicas.len().max(1));
        let replicas = self.assign_replicas(partitions - current, rf);
        if !self.metadata.add_partitions(name, partitions, &replicas)? {
            return Ok(None);
        }
        tracing::info!(
            topic = name,
            from = current,
            to = partitions,
            "added partitions"
        );
        Ok(Some(self.register(Topic {
            name: meta.name,
            id: meta.id,
            partitions: logs,
            states: Vec::new(),
            configs: meta.configs,
            min_insync_replicas: 1,
            traffic: Default::default(),
        })))
    }

    /// Replicas for `count` new partitions, `rf` each: leaders spread round-robin over the
    /// registered brokers from a random one, each partition's followers the brokers after its
    /// leader in a list that alternates racks (`broker.rack`), so consecutive replicas sit on
    /// different racks where there are several, as Kafka's rack-aware placement.
    fn assign_replicas(&self, count: i32, rf: usize) -> Vec<Vec<i32>> {
        let mut brokers = rack_alternating(&self.metadata.registrations());
        if brokers.is_empty() {
            brokers = self.metadata.brokers();
            brokers.sort_unstable();
        }
        if brokers.is_empty() {
            brokers.push(self.config.node_id);
        }
        let rf = rf.clamp(1, brokers.len());
        let start = Uuid::new_v4().as_u128() as usize;
        (0..count as usize)
            .map(|i| {
                (0..rf)
                    .map(|j| brokers[(start + i + j) % brokers.len()])
                    .collect()
            })
            .collect()
    }

    /// Auto-creation on Metadata/Produce, when enabled.
    pub fn auto_create(&self, name: &str) -> Option<Arc<Topic>> {
        if !self.config.auto_create_topics {
            return None;
        }
        let rf = Placement::Factor(self.config.default_replication_factor.max(1) as usize);
        match self.create_topic(name, self.config.num_partitions, rf, BTreeMap::new()) {
            Ok(t) => Some(t),
            Err(TopicError::AlreadyExists) => self.topic(name),
            Err(_) => None,
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<Option<Arc<Topic>>> {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(topic) = self.unregister(name) else {
            return Ok(None);
        };
        self.metadata.delete_topic(name)?;
        self.remove_files(&topic);
        tracing::info!(topic = name, "deleted topic");
        Ok(Some(topic))
    }

    /// Hides a topic from requests.
    fn unregister(&self, name: &str) -> Option<Arc<Topic>> {
        let (_, topic) = self.topics.remove(name)?;
        if let Some(replication) = &self.replication {
            replication.forget(name);
        }
        self.topic_ids.remove(&topic.id);
        self.topics_version.fetch_add(1, Ordering::Relaxed);
        Some(topic)
    }

    fn remove_files(&self, topic: &Topic) {
        for p in &topic.partitions {
            if let Err(e) = p.delete() {
                tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "removing partition files");
            }
        }
        if let Some(tier) = &self.tier {
            tier.delete_topic(&topic.name, topic.id);
        }
    }

    /// Cluster mode: registers this broker with its listeners' endpoints, runs for controller,
    /// and from then on follows the metadata other brokers write (topics created, deleted,
    /// grown or reconfigured elsewhere; leadership moved by the controller).
    pub fn join_cluster(self: &Arc<Self>, endpoints: Vec<Endpoint>) -> Result<()> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        let mut changes = self.metadata.subscribe();
        self.sync_with_metadata();
        cluster.join(BrokerRegistration {
            node_id: self.config.node_id,
            epoch: 0,
            rack: self.config.rack.clone(),
            endpoints,
        })?;
        let broker = Arc::downgrade(self);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let Some(b) = broker.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || b.sync_with_metadata()).await;
            }
        });
        Ok(())
    }

    /// Brings the open topics in line with the metadata.
    fn sync_with_metadata(&self) {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: BTreeMap<String, TopicMeta> = self
            .metadata
            .topics()
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        for topic in self.topics() {
            if wanted.get(&topic.name).is_none_or(|m| m.id != topic.id) {
                if let Some(topic) = self.unregister(&topic.name) {
                    self.remove_files(&topic);
                    tracing::info!(topic = %topic.name, "topic deleted by another broker");
                }
            }
        }
        for meta in wanted.values() {
            if let Err(e) = self.sync_topic(meta) {
                tracing::warn!(topic = %meta.name, error = %e, "opening a topic from the metadata");
            }
        }
    }

    fn sync_topic(&self, meta: &TopicMeta) -> Result<()> {
        let Some(old) = self.topic(&meta.name) else {
            let topic = self.open_topic(meta)?;
            tracing::info!(topic = %meta.name, partitions = meta.partitions, "topic created by another broker");
            self.register(topic);
            return Ok(());
        };
        let mut partitions = old.partitions.clone();
        let log_cfg = self.log_config(&meta.configs);
        for i in partitions.len() as i32..meta.partitions {
            partitions.push(Partition::open(
                &meta.name,
                i,
                self.partition_dir(&meta.name, i),
                log_cfg.clone(),
                self.flusher.clone(),
            )?);
        }
        let states: Vec<Option<PartitionState>> = (0..meta.partitions)
            .map(|i| self.metadata.partition_state(&meta.name, i))
            .collect();
        let same_states = states.len() == old.states.len()
            && states
                .iter()
                .zip(&old.states)
                .all(|(new, old)| new.as_ref() == Some(old));
        if same_states && partitions.len() == old.partitions.len() && meta.configs == old.configs {
            return Ok(());
        }
        if meta.configs != old.configs {
            for p in &partitions {
                p.set_config(log_cfg.clone());
            }
        }
        self.register(Topic {
            name: meta.name.clone(),
            id: meta.id,
            partitions,
            states: Vec::new(),
            configs: meta.configs.clone(),
            min_insync_replicas: 1,
            traffic: Default::default(),
        });
        Ok(())
    }

    /// Cluster mode: leaves at once (the controller moves leadership now, not after the
    /// session timeout).
    pub fn leave_cluster(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.unregister();
        }
    }

    /// The log cleaner's settings in effect: the static ones under any dynamic values.
    pub fn cleaner_config(&self) -> CleanerConfig {
        let mut config = self.config.clone();
        self.with_layers(|layers| {
            for s in registry::BROKER
                .iter()
                .filter(|s| registry::cleaner_setting(s))
            {
                let value = layers.value(s.name).and_then(|v| s.parse(&v).ok());
                if let (Target::Broker(store), Some(v)) = (s.target, value) {
                    store(&mut config, &v);
                }
            }
        });
        config.cleaner
    }

    /// Starts the log cleaner over every partition (it cleans those with cleanup.policy
    /// compact), or restarts it when its settings changed, as Kafka reconfigures its cleaner.
    /// Nothing runs with log.cleaner.enable=false or no threads.
    pub fn start_cleaner(self: &Arc<Self>) {
        self.reconfigure_cleaner(Some(Arc::downgrade(self)));
    }

    /// (Re)starts the cleaner if its settings changed; `broker` on the first start.
    fn reconfigure_cleaner(&self, broker: Option<std::sync::Weak<Broker>>) {
        let config = self.cleaner_config();
        let mut slot = self.cleaner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(broker) = broker.or_else(|| slot.as_ref().map(|s| s.broker.clone())) else {
            return; // not started (tests of the handlers without the cleaner)
        };
        if slot.as_ref().is_some_and(|s| s.config == config) {
            return;
        }
        // Joins the old threads (a pass in progress finishes first).
        drop(slot.take());
        let cleaner = (config.enabled && config.threads > 0).then(|| {
            let settings = CleanerSettings {
                threads: config.threads,
                dedupe_buffer_bytes: config.dedupe_buffer_bytes,
                io_max_bytes_per_second: config.io_max_bytes_per_second,
                backoff_ms: config.backoff_ms,
            };
            let logs = broker.clone();
            Cleaner::start(
                settings,
                Arc::new(move || {
                    logs.upgrade().map_or_else(Vec::new, |b| {
                        b.topics()
                            .iter()
                            .flat_map(|t| t.partitions.iter().cloned())
                            .collect()
                    })
                }),
                self.cleaner_totals.clone(),
            )
        });
        *slot = Some(CleanerSlot {
            config,
            broker,
            cleaner,
        });
    }

    /// Stops the log cleaner (shutdown).
    pub fn stop_cleaner(&self) {
        let running = self
            .cleaner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(running.and_then(|s| s.cleaner));
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
    fn racks_alternate_in_placement() {
        let reg = |node_id, rack: Option<&str>| crate::metadata::BrokerRegistration {
            node_id,
            epoch: 0,
            rack: rack.map(String::from),
            endpoints: Vec::new(),
        };
        let brokers = [
            reg(1, Some("a")),
            reg(2, Some("a")),
            reg(3, Some("b")),
            reg(4, Some("b")),
            reg(5, Some("c")),
        ];
        assert_eq!(super::rack_alternating(&brokers), vec![1, 3, 5, 2, 4]);
        assert_eq!(
            super::rack_alternating(&[reg(2, None), reg(1, None)]),
            vec![1, 2]
        );
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
