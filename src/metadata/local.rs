//! The single-node metadata store: cluster id, topics with ids and configs, producer id
//! blocks, persisted atomically as one JSON snapshot (write temp, fsync, rename, fsync the
//! directory). This node leads every partition at epoch 0 with itself as the only replica.

use super::{AclEntry, ClientQuota, ClusterMetadata, PartitionState, ScramCredentials, TopicMeta};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::watch;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Snapshot {
    cluster_id: String,
    /// Producer ids below this may have been handed out; allocation resumes here after restart.
    producer_id_block_end: i64,
    topics: BTreeMap<String, TopicMeta>,
    /// Dynamic broker configs by entity ("" the cluster default, else a node id).
    #[serde(default)]
    broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    acls: Vec<AclEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    scram_credentials: ScramCredentials,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    client_quotas: Vec<ClientQuota>,
}

struct Inner {
    snapshot: Snapshot,
    next_producer_id: i64,
}

pub struct LocalMetadata {
    node_id: i32,
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Bumped after every persisted change.
    changes: watch::Sender<u64>,
}

/// Producer ids are reserved on disk in blocks, like Kafka's ProducerIdManager.
const PRODUCER_ID_BLOCK: i64 = 1000;

impl LocalMetadata {
    pub fn open(data_dir: &Path, node_id: i32) -> Result<LocalMetadata> {
        Self::open_formatting(data_dir, node_id, BTreeMap::new())
    }

    /// Opens the store; a new one starts with `cluster_configs` as the cluster-wide dynamic
    /// broker configs, as Kafka's storage format writes min.insync.replicas.
    pub fn open_formatting(
        data_dir: &Path,
        node_id: i32,
        cluster_configs: BTreeMap<String, String>,
    ) -> Result<LocalMetadata> {
        let dir = data_dir.join("meta");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("cluster.json");
        let (snapshot, fresh) = match fs::read(&path) {
            Ok(bytes) => (
                serde_json::from_slice::<Snapshot>(&bytes)
                    .with_context(|| format!("parsing {}", path.display()))?,
                false,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                Snapshot {
                    cluster_id: super::new_cluster_id(),
                    producer_id_block_end: 0,
                    topics: BTreeMap::new(),
                    broker_configs: [(String::new(), cluster_configs)]
                        .into_iter()
                        .filter(|(_, c)| !c.is_empty())
                        .collect(),
                    acls: Vec::new(),
                    scram_credentials: BTreeMap::new(),
                    client_quotas: Vec::new(),
                },
                true,
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let next_producer_id = snapshot.producer_id_block_end;
        let store = LocalMetadata {
            node_id,
            path,
            changes: watch::Sender::new(0),
            inner: Mutex::new(Inner {
                snapshot,
                next_producer_id,
            }),
        };
        if fresh {
            store.persist(&store.lock().snapshot)?;
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, snapshot: &Snapshot) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(snapshot)?;
        let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        File::open(self.path.parent().unwrap())?.sync_all()?;
        Ok(())
    }

    /// Applies `change` to a copy of the snapshot and persists it when it says so.
    fn update(&self, change: impl FnOnce(&mut Snapshot) -> bool) -> Result<bool> {
        let mut inner = self.lock();
        let mut next = inner.snapshot.clone();
        if !change(&mut next) {
            return Ok(false);
        }
        self.persist(&next)?;
        inner.snapshot = next;
        self.changed();
        Ok(true)
    }

    fn changed(&self) {
        self.changes.send_modify(|v| *v += 1);
    }
}

impl ClusterMetadata for LocalMetadata {
    fn cluster_id(&self) -> String {
        self.lock().snapshot.cluster_id.clone()
    }

    fn node_id(&self) -> i32 {
        self.node_id
    }

    fn brokers(&self) -> Vec<i32> {
        vec![self.node_id]
    }

    fn controller_id(&self) -> i32 {
        self.node_id
    }

    fn topics(&self) -> Vec<TopicMeta> {
        self.lock().snapshot.topics.values().cloned().collect()
    }

    /// Adds a topic and persists before returning.
    fn create_topic(&self, topic: TopicMeta, _replicas: &[Vec<i32>]) -> Result<()> {
        let mut inner = self.lock();
        let mut next = inner.snapshot.clone();
        next.topics.insert(topic.name.clone(), topic);
        self.persist(&next)?;
        inner.snapshot = next;
        self.changed();
        Ok(())
    }

    fn delete_topic(&self, name: &str) -> Result<Option<TopicMeta>> {
        let mut inner = self.lock();
        let mut next = inner.snapshot.clone();
        let removed = next.topics.remove(name);
        if removed.is_some() {
            self.persist(&next)?;
            inner.snapshot = next;
            self.changed();
        }
        Ok(removed)
    }

    fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<bool> {
        self.update(|s| match s.topics.get_mut(name) {
            Some(t) => {
                t.configs = configs;
                true
            }
            None => false,
        })
    }

    fn broker_configs(&self, entity: &str) -> BTreeMap<String, String> {
        let inner = self.lock();
        inner
            .snapshot
            .broker_configs
            .get(entity)
            .cloned()
            .unwrap_or_default()
    }

    fn set_broker_configs(&self, entity: &str, configs: BTreeMap<String, String>) -> Result<()> {
        self.update(|s| {
            if configs.is_empty() {
                s.broker_configs.remove(entity);
            } else {
                s.broker_configs.insert(entity.to_string(), configs);
            }
            true
        })
        .map(|_| ())
    }

    fn add_partitions(&self, name: &str, partitions: i32, _replicas: &[Vec<i32>]) -> Result<bool> {
        let mut inner = self.lock();
        let mut next = inner.snapshot.clone();
        let Some(topic) = next.topics.get_mut(name) else {
            return Ok(false);
        };
        anyhow::ensure!(
            partitions >= topic.partitions,
            "a topic's partitions are never removed"
        );
        topic.partitions = partitions;
        self.persist(&next)?;
        inner.snapshot = next;
        self.changed();
        Ok(true)
    }

    fn acls(&self) -> Vec<AclEntry> {
        self.lock().snapshot.acls.clone()
    }

    fn set_acls(&self, acls: Vec<AclEntry>) -> Result<()> {
        self.update(|s| {
            s.acls = acls;
            true
        })
        .map(|_| ())
    }

    fn scram_credentials(&self) -> ScramCredentials {
        self.lock().snapshot.scram_credentials.clone()
    }

    fn set_scram_credentials(&self, credentials: ScramCredentials) -> Result<()> {
        self.update(|s| {
            s.scram_credentials = credentials;
            true
        })
        .map(|_| ())
    }

    fn client_quotas(&self) -> Vec<ClientQuota> {
        self.lock().snapshot.client_quotas.clone()
    }

    fn set_client_quotas(&self, quotas: Vec<ClientQuota>) -> Result<()> {
        self.update(|s| {
            s.client_quotas = quotas;
            true
        })
        .map(|_| ())
    }

    /// A producer id never handed out before, even across restarts.
    fn allocate_producer_id(&self) -> Result<i64> {
        let mut inner = self.lock();
        if inner.next_producer_id >= inner.snapshot.producer_id_block_end {
            let mut next = inner.snapshot.clone();
            next.producer_id_block_end = inner.next_producer_id + PRODUCER_ID_BLOCK;
            self.persist(&next)?;
            inner.snapshot = next;
        }
        let id = inner.next_producer_id;
        inner.next_producer_id += 1;
        Ok(id)
    }

    fn partition_state(&self, topic: &str, partition: i32) -> Option<PartitionState> {
        let inner = self.lock();
        let meta = inner.snapshot.topics.get(topic)?;
        (0..meta.partitions)
            .contains(&partition)
            .then(|| PartitionState::sole_replica(self.node_id))
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalMetadata::open(dir.path(), 1).unwrap();
        let cluster = store.cluster_id();
        assert_eq!(cluster.len(), 22);
        let topic = TopicMeta {
            name: "a".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 3,
            configs: BTreeMap::new(),
        };
        let changes = store.subscribe();
        store.create_topic(topic.clone(), &[]).unwrap();
        assert!(changes.has_changed().unwrap());
        assert_eq!(store.partition_state("a", 2).unwrap().leader, 1);
        assert!(store.partition_state("a", 3).is_none());
        let p1 = store.allocate_producer_id().unwrap();
        let p2 = store.allocate_producer_id().unwrap();
        assert_eq!(p2, p1 + 1);
        drop(store);
        let store = LocalMetadata::open(dir.path(), 1).unwrap();
        assert_eq!(store.cluster_id(), cluster);
        assert_eq!(store.topics(), vec![topic]);
        assert!(store.allocate_producer_id().unwrap() > p2);
        let configs = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        assert!(store.set_topic_configs("a", configs.clone()).unwrap());
        assert!(!store.set_topic_configs("b", configs.clone()).unwrap());
        store.set_broker_configs("", configs.clone()).unwrap();
        drop(store);
        let store = LocalMetadata::open(dir.path(), 1).unwrap();
        assert_eq!(store.topics()[0].configs, configs);
        assert_eq!(store.broker_configs(""), configs);
        assert!(store.broker_configs("1").is_empty());
        assert!(store.add_partitions("a", 5, &[]).unwrap());
        assert!(!store.add_partitions("nope", 5, &[]).unwrap());
        assert!(store.add_partitions("a", 4, &[]).is_err());
        drop(store);
        let store = LocalMetadata::open(dir.path(), 1).unwrap();
        assert_eq!(store.topics()[0].partitions, 5);
        assert!(store.partition_state("a", 4).is_some());
        assert!(store.delete_topic("a").unwrap().is_some());
        assert!(store.topics().is_empty());
        let acl = AclEntry {
            resource_type: 2,
            resource_name: "t".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission: 3,
        };
        store.set_acls(vec![acl.clone()]).unwrap();
        drop(store);
        let store = LocalMetadata::open(dir.path(), 1).unwrap();
        assert_eq!(store.acls(), vec![acl]);
        let quota = ClientQuota {
            entity: BTreeMap::from([("user".to_string(), None)]),
            values: BTreeMap::from([("producer_byte_rate".to_string(), 1024.0)]),
        };
        store.set_client_quotas(vec![quota.clone()]).unwrap();
        drop(store);
        let store = LocalMetadata::open(dir.path(), 1).unwrap();
        assert_eq!(store.client_quotas(), vec![quota]);
    }
}
