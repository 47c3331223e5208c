//! Cluster metadata on etcd (`sluice serve --cluster etcd://...`). Every broker keeps a copy of
//! the cluster's keys, fed by one watch on the prefix, and answers reads from it; writes go to
//! etcd as transactions and return once the watch has brought them back, so a broker reads its
//! own writes. Keys under the prefix:
//!
//! - `cluster_id`                  created once by the first broker
//! - `brokers/<id>`                a broker's registration, under its lease (the broker epoch)
//! - `controller`                  the controller's id, under its lease (election by create)
//! - `topics/<name>`               TopicMeta
//! - `partitions/<topic>/<index>`  PartitionState, changed only by compare-and-swap on its
//!   revision, so a stale controller cannot overwrite a newer decision
//! - `broker_configs/<entity>`     dynamic broker configs ("<default>": the cluster default)
//! - `acls`, `scram`, `quotas`     the security state, one key each
//! - `producer_ids`                the end of the last producer-id block handed out

mod client;
mod controller;
pub use controller::NoElection;

use client::{Compare, Etcd, Event, Op};

use super::{
    AclEntry, BrokerRegistration, ClientQuota, ClusterMetadata, PartitionState, ScramCredentials,
    TopicExists, TopicMeta,
};
use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Where the cluster's metadata lives and how this broker takes part.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// etcd members, "host:port".
    pub endpoints: Vec<String>,
    /// Every key of this cluster starts with it; ends with '/'.
    pub prefix: String,
    /// broker.session.timeout.ms: the registration lease; a broker silent this long is gone.
    pub session_timeout_ms: u64,
    /// broker.heartbeat.interval.ms: how often the lease is renewed.
    pub heartbeat_interval_ms: u64,
}

impl ClusterConfig {
    /// `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.
    pub fn parse(url: &str) -> Result<ClusterConfig> {
        let rest = url.strip_prefix("etcd://").ok_or_else(|| {
            anyhow!("--cluster {url}: expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
        })?;
        let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, "sluice"));
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect();
        if endpoints.is_empty() || endpoints.iter().any(|e| !e.contains(':')) {
            bail!("--cluster {url}: every etcd endpoint needs HOST:PORT");
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { "sluice" } else { prefix };
        Ok(ClusterConfig {
            endpoints,
            prefix: format!("/{prefix}/"),
            session_timeout_ms: 9000,
            heartbeat_interval_ms: 2000,
        })
    }
}

/// The cluster's keys as this broker last saw them.
#[derive(Default)]
struct View {
    /// The etcd revision this view reflects.
    revision: i64,
    cluster_id: Option<String>,
    brokers: BTreeMap<i32, BrokerRegistration>,
    controller: Option<i32>,
    topics: BTreeMap<String, TopicMeta>,
    /// With the revision each state was last written at (the CAS token).
    partitions: BTreeMap<(String, i32), (PartitionState, i64)>,
    broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    acls: Vec<AclEntry>,
    scram: ScramCredentials,
    quotas: Vec<ClientQuota>,
    producer_ids: (i64, i64),
}

const DEFAULT_ENTITY: &str = "<default>";

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("metadata values serialize")
}

fn parse<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %e, "ignoring an unreadable metadata key");
            None
        }
    }
}

impl View {
    fn apply(&mut self, prefix: &str, event: &Event) {
        let (key, value) = match event {
            Event::Put(kv) => (kv.key.as_str(), Some(kv)),
            Event::Delete(key) => (key.as_str(), None),
        };
        let Some(rel) = key.strip_prefix(prefix) else {
            return;
        };
        let mut parts = rel.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next(), value) {
            (Some("cluster_id"), None, _, Some(kv)) => {
                self.cluster_id = String::from_utf8(kv.value.clone()).ok();
            }
            (Some("brokers"), Some(id), None, kv) => {
                let Ok(id) = id.parse::<i32>() else { return };
                match kv.and_then(|kv| parse::<BrokerRegistration>(key, &kv.value)) {
                    Some(mut r) => {
                        r.epoch = kv.map_or(0, |kv| kv.create_revision);
                        self.brokers.insert(id, r);
                    }
                    None => {
                        self.brokers.remove(&id);
                    }
                }
            }
            (Some("controller"), None, _, kv) => {
                self.controller = kv.and_then(|kv| parse::<i32>(key, &kv.value));
            }
            (Some("topics"), Some(name), None, kv) => {
                match kv.and_then(|kv| parse::<TopicMeta>(key, &kv.value)) {
                    Some(t) => {
                        self.topics.insert(name.to_string(), t);
                    }
                    None => {
                        self.topics.remove(name);
                    }
                }
            }
            (Some("partitions"), Some(topic), Some(index), kv) => {
                let Ok(index) = index.parse::<i32>() else {
                    return;
                };
                let id = (topic.to_string(), index);
                match kv.and_then(|kv| parse::<PartitionState>(key, &kv.value).map(|s| (s, kv))) {
                    Some((s, kv)) => {
                        self.partitions.insert(id, (s, kv.mod_revision));
                    }
                    None => {
                        self.partitions.remove(&id);
                    }
                }
            }
            (Some("broker_configs"), Some(entity), None, kv) => {
                let entity = if entity == DEFAULT_ENTITY { "" } else { entity };
                match kv.and_then(|kv| parse(key, &kv.value)) {
                    Some(c) => {
                        self.broker_configs.insert(entity.to_string(), c);
                    }
                    None => {
                        self.broker_configs.remove(entity);
                    }
                }
            }
            (Some("acls"), None, _, kv) => {
                self.acls = kv.and_then(|kv| parse(key, &kv.value)).unwrap_or_default();
            }
            (Some("scram"), None, _, kv) => {
                self.scram = kv.and_then(|kv| parse(key, &kv.value)).unwrap_or_default();
            }
            (Some("quotas"), None, _, kv) => {
                self.quotas = kv.and_then(|kv| parse(key, &kv.value)).unwrap_or_default();
            }
            (Some("producer_ids"), None, _, kv) => {
                self.producer_ids = (
                    kv.and_then(|kv| parse(key, &kv.value)).unwrap_or(0),
                    kv.map_or(0, |kv| kv.mod_revision),
                );
            }
            _ => {}
        }
    }
}

/// The next producer ids this broker may hand out: [next, end).
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

pub struct EtcdMetadata {
    node_id: i32,
    config: ClusterConfig,
    etcd: Etcd,
    /// The metadata's own runtime: the watch, the lease and the controller run here, and
    /// synchronous callers block on it (never on the caller's runtime).
    runtime: &'static tokio::runtime::Runtime,
    view: Mutex<View>,
    /// The view's revision, for read-your-writes waits and change notifications.
    revision: watch::Sender<u64>,
    producer_ids: Mutex<ProducerIdBlock>,
    /// The lease of this broker's registration (its broker epoch); 0 before registering.
    lease: Mutex<i64>,
}

/// Producer ids are reserved in etcd in blocks, like Kafka's ProducerIdManager.
const PRODUCER_ID_BLOCK: i64 = 1000;

impl EtcdMetadata {
    /// Connects, loads the cluster's keys and follows them; creates the cluster id if this is
    /// the first broker. The broker joins with `join` once its listeners are up.
    pub fn start(config: ClusterConfig, node_id: i32) -> Result<Arc<EtcdMetadata>> {
        let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("sluice-etcd")
                .enable_all()
                .build()
                .context("starting the etcd runtime")?,
        ));
        let etcd = Etcd::new(config.endpoints.clone())?;
        let metadata = Arc::new(EtcdMetadata {
            node_id,
            config,
            etcd,
            runtime,
            view: Mutex::new(View::default()),
            revision: watch::channel(0).0,
            producer_ids: Mutex::new(ProducerIdBlock { next: 0, end: 0 }),
            lease: Mutex::new(0),
        });
        let m = metadata.clone();
        metadata
            .block(async move { m.load_and_watch().await })
            .with_context(|| {
                format!(
                    "reading the cluster metadata from etcd at {}",
                    metadata.config.endpoints.join(",")
                )
            })?;
        let m = metadata.clone();
        metadata.block(async move { m.ensure_cluster_id().await })?;
        Ok(metadata)
    }

    /// Registers this broker (what the others see of it) and runs for controller.
    pub fn join(self: &Arc<Self>, registration: BrokerRegistration) -> Result<()> {
        let m = self.clone();
        self.block(async move { m.register(registration).await })?;
        controller::spawn(self.clone());
        Ok(())
    }

    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.config.prefix)
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `future` on the metadata's runtime and waits for it, from any thread.
    fn block<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        let wait = move || rx.recv().expect("the etcd runtime dropped a call");
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// Reads every key, then follows changes from there; on a broken watch, reads again.
    async fn load_and_watch(self: Arc<Self>) -> Result<()> {
        let stream = self.load().await?;
        let m = self.clone();
        tokio::spawn(async move {
            let mut stream = Some(stream);
            loop {
                if let Some(mut events) = stream.take() {
                    while let Some(batch) = events.next().await {
                        match batch {
                            Ok((revision, events)) => m.apply(revision, &events),
                            Err(e) => {
                                tracing::warn!(error = %e, "etcd watch broke; reloading");
                                break;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                match m.load().await {
                    Ok(s) => stream = Some(s),
                    Err(e) => tracing::warn!(error = %e, "reloading cluster metadata from etcd"),
                }
            }
        });
        Ok(())
    }

    /// Replaces the view with etcd's keys; the watch to follow them from there.
    async fn load(&self) -> Result<futures::stream::BoxStream<'static, Result<(i64, Vec<Event>)>>> {
        let (revision, kvs) = self.etcd.range_prefix(&self.config.prefix).await?;
        let mut view = View::default();
        for kv in kvs {
            view.apply(&self.config.prefix, &Event::Put(kv));
        }
        view.revision = revision;
        *self.view() = view;
        self.revision.send_replace(revision as u64);
        self.etcd
            .watch_prefix(&self.config.prefix, revision + 1)
            .await
    }

    fn apply(&self, revision: i64, events: &[Event]) {
        let mut view = self.view();
        for e in events {
            view.apply(&self.config.prefix, e);
        }
        view.revision = view.revision.max(revision);
        drop(view);
        self.revision.send_replace(revision as u64);
    }

    /// Waits until the view has caught up with `revision` (a write of ours).
    async fn caught_up(&self, revision: i64) {
        let mut rx = self.revision.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|r| *r as i64 >= revision),
        )
        .await;
    }

    /// A transaction, then the wait until the view shows it: whether the comparisons held.
    async fn txn(&self, compare: Vec<Compare>, success: Vec<Op>) -> Result<bool> {
        let (ok, revision) = self.etcd.txn(&compare, &success, &[]).await?;
        self.caught_up(revision).await;
        Ok(ok)
    }

    /// Unconditional writes, read back.
    fn put(&self, ops: Vec<Op>) -> Result<()> {
        self.block_txn(Vec::new(), ops).map(|_| ())
    }

    async fn ensure_cluster_id(self: Arc<Self>) -> Result<()> {
        let key = self.key("cluster_id");
        let id = super::new_cluster_id();
        self.txn(
            vec![Compare::Absent(key.clone())],
            vec![Op::Put {
                key,
                value: id.into_bytes(),
                lease: 0,
            }],
        )
        .await?;
        if self.view().cluster_id.is_none() {
            bail!("etcd holds no cluster id under {}", self.config.prefix);
        }
        Ok(())
    }

    /// Registers under a fresh lease and keeps it alive; a lost lease registers again (a new
    /// broker epoch), as a Kafka broker whose session expired re-registers.
    async fn register(self: Arc<Self>, registration: BrokerRegistration) -> Result<()> {
        // A broker restarted after a crash may find its old registration still alive until the
        // old session times out (Kafka retries on DUPLICATE_BROKER_REGISTRATION the same way).
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(2 * self.config.session_timeout_ms + 2000);
        let lease = loop {
            match self.register_once(&registration).await {
                Ok(lease) => break lease,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "waiting to register");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let m = self.clone();
        tokio::spawn(async move {
            let mut lease = lease;
            let interval = Duration::from_millis(m.config.heartbeat_interval_ms.max(100));
            loop {
                tokio::time::sleep(interval).await;
                match m.etcd.keep_alive(lease).await {
                    Ok(ttl) if ttl > 0 => continue,
                    Ok(_) => {
                        tracing::warn!(node = m.node_id, "broker lease expired; registering again")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the broker lease");
                        continue;
                    }
                }
                match m.register_once(&registration).await {
                    Ok(l) => lease = l,
                    Err(e) => tracing::warn!(error = %e, "registering with etcd"),
                }
            }
        });
        Ok(())
    }

    async fn register_once(&self, registration: &BrokerRegistration) -> Result<i64> {
        let ttl = (self.config.session_timeout_ms as i64 / 1000).max(2);
        let lease = self.etcd.grant(ttl).await?;
        let key = self.key(&format!("brokers/{}", self.node_id));
        // Another live broker with this id keeps its registration (Kafka: DUPLICATE_BROKER_REGISTRATION).
        let (ok, revision) = self
            .etcd
            .txn(
                &[Compare::Absent(key.clone())],
                &[Op::Put {
                    key: key.clone(),
                    value: json(registration),
                    lease,
                }],
                &[],
            )
            .await?;
        if !ok {
            let _ = self.etcd.revoke(lease).await;
            bail!(
                "broker {} is already registered in etcd under {} (another broker with this node id is running, or its session has not yet expired)",
                self.node_id,
                self.config.prefix
            );
        }
        self.caught_up(revision).await;
        *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = lease;
        tracing::info!(node = self.node_id, lease, "registered with etcd");
        Ok(lease)
    }

    /// Leaves the cluster at once (controlled shutdown) instead of after the session timeout.
    pub fn unregister(&self) {
        let lease = *self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if lease != 0 {
            let etcd = self.etcd.clone();
            let _ = self.block(async move { etcd.revoke(lease).await });
        }
    }

    /// Partition states with their CAS tokens, for the controller.
    fn partition_states(&self) -> Vec<((String, i32), PartitionState, i64)> {
        self.view()
            .partitions
            .iter()
            .map(|(k, (s, rev))| (k.clone(), s.clone(), *rev))
            .collect()
    }

    /// The leader's ISR change (Kafka's AlterPartition): written if the partition's state is
    /// still `seen` (same leader, epochs and ISR), with the partition epoch bumped. Runs on the
    /// metadata's runtime; the outcome shows in the watched state.
    pub fn request_isr_change(
        self: &Arc<Self>,
        topic: &str,
        index: i32,
        seen: PartitionState,
        isr: Vec<i32>,
    ) {
        let m = self.clone();
        let topic = topic.to_string();
        self.runtime.spawn(async move {
            let current = m.view().partitions.get(&(topic.clone(), index)).cloned();
            let Some((state, revision)) = current.filter(|(s, _)| *s == seen) else {
                return;
            };
            if state.leader != m.node_id {
                return;
            }
            let mut next = state;
            next.isr = isr;
            next.partition_epoch += 1;
            match m.swap_partition(&topic, index, revision, &next).await {
                Ok(true) => {
                    tracing::info!(topic, partition = index, isr = ?next.isr, "ISR changed")
                }
                Ok(false) => tracing::info!(
                    topic,
                    partition = index,
                    "ISR change lost a race; the state changed meanwhile"
                ),
                Err(e) => tracing::warn!(topic, partition = index, error = %e, "changing the ISR"),
            }
        });
    }

    /// Writes a partition's state if it was last written at `revision`.
    async fn swap_partition(
        &self,
        topic: &str,
        index: i32,
        revision: i64,
        state: &PartitionState,
    ) -> Result<bool> {
        let key = self.key(&format!("partitions/{topic}/{index}"));
        self.txn(
            vec![Compare::ModRevision(key.clone(), revision)],
            vec![Op::Put {
                key,
                value: json(state),
                lease: 0,
            }],
        )
        .await
    }
}

impl ClusterMetadata for EtcdMetadata {
    fn cluster_id(&self) -> String {
        self.view().cluster_id.clone().unwrap_or_default()
    }

    fn node_id(&self) -> i32 {
        self.node_id
    }

    fn brokers(&self) -> Vec<i32> {
        self.view().brokers.keys().copied().collect()
    }

    fn registrations(&self) -> Vec<BrokerRegistration> {
        self.view().brokers.values().cloned().collect()
    }

    fn controller_id(&self) -> i32 {
        self.view().controller.unwrap_or(-1)
    }

    fn topics(&self) -> Vec<TopicMeta> {
        self.view().topics.values().cloned().collect()
    }

    fn create_topic(&self, topic: TopicMeta, replicas: &[Vec<i32>]) -> Result<()> {
        let key = self.key(&format!("topics/{}", topic.name));
        let mut ops = vec![Op::Put {
            key: key.clone(),
            value: json(&topic),
            lease: 0,
        }];
        ops.extend(self.partition_puts(&topic.name, 0, replicas));
        let created = self.block_txn(vec![Compare::Absent(key)], ops)?;
        if !created {
            return Err(TopicExists.into());
        }
        Ok(())
    }

    fn delete_topic(&self, name: &str) -> Result<Option<TopicMeta>> {
        let Some(old) = self.view().topics.get(name).cloned() else {
            return Ok(None);
        };
        self.put(vec![
            Op::Delete(self.key(&format!("topics/{name}"))),
            Op::DeletePrefix(self.key(&format!("partitions/{name}/"))),
        ])?;
        Ok(Some(old))
    }

    fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<bool> {
        let Some(mut topic) = self.view().topics.get(name).cloned() else {
            return Ok(false);
        };
        topic.configs = configs;
        let key = self.key(&format!("topics/{name}"));
        self.put(vec![Op::Put {
            key,
            value: json(&topic),
            lease: 0,
        }])?;
        Ok(true)
    }

    fn broker_configs(&self, entity: &str) -> BTreeMap<String, String> {
        self.view()
            .broker_configs
            .get(entity)
            .cloned()
            .unwrap_or_default()
    }

    fn set_broker_configs(&self, entity: &str, configs: BTreeMap<String, String>) -> Result<()> {
        let name = if entity.is_empty() {
            DEFAULT_ENTITY
        } else {
            entity
        };
        let key = self.key(&format!("broker_configs/{name}"));
        self.put(vec![if configs.is_empty() {
            Op::Delete(key)
        } else {
            Op::Put {
                key,
                value: json(&configs),
                lease: 0,
            }
        }])
    }

    fn add_partitions(&self, name: &str, partitions: i32, replicas: &[Vec<i32>]) -> Result<bool> {
        let Some(mut topic) = self.view().topics.get(name).cloned() else {
            return Ok(false);
        };
        let from = topic.partitions;
        topic.partitions = partitions;
        let key = self.key(&format!("topics/{name}"));
        let mut ops = vec![Op::Put {
            key: key.clone(),
            value: json(&topic),
            lease: 0,
        }];
        ops.extend(self.partition_puts(name, from, replicas));
        // Compare the value: a concurrent change of the topic wins and this one fails.
        let old = json(&TopicMeta {
            partitions: from,
            ..topic.clone()
        });
        self.block_txn(vec![Compare::Value(key, old)], ops)
    }

    fn partition_state(&self, topic: &str, partition: i32) -> Option<PartitionState> {
        self.view()
            .partitions
            .get(&(topic.to_string(), partition))
            .map(|(s, _)| s.clone())
    }

    fn acls(&self) -> Vec<AclEntry> {
        self.view().acls.clone()
    }

    fn set_acls(&self, acls: Vec<AclEntry>) -> Result<()> {
        self.put(vec![Op::Put {
            key: self.key("acls"),
            value: json(&acls),
            lease: 0,
        }])
    }

    fn scram_credentials(&self) -> ScramCredentials {
        self.view().scram.clone()
    }

    fn set_scram_credentials(&self, credentials: ScramCredentials) -> Result<()> {
        self.put(vec![Op::Put {
            key: self.key("scram"),
            value: json(&credentials),
            lease: 0,
        }])
    }

    fn client_quotas(&self) -> Vec<ClientQuota> {
        self.view().quotas.clone()
    }

    fn set_client_quotas(&self, quotas: Vec<ClientQuota>) -> Result<()> {
        self.put(vec![Op::Put {
            key: self.key("quotas"),
            value: json(&quotas),
            lease: 0,
        }])
    }

    fn allocate_producer_id(&self) -> Result<i64> {
        let mut block = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        while block.next >= block.end {
            let (end, revision) = self.view().producer_ids;
            let key = self.key("producer_ids");
            let compare = if revision == 0 {
                Compare::Absent(key.clone())
            } else {
                Compare::ModRevision(key.clone(), revision)
            };
            let claimed = self.block_txn(
                vec![compare],
                vec![Op::Put {
                    key,
                    value: json(&(end + PRODUCER_ID_BLOCK)),
                    lease: 0,
                }],
            )?;
            if claimed {
                *block = ProducerIdBlock {
                    next: end,
                    end: end + PRODUCER_ID_BLOCK,
                };
            }
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }
}

impl EtcdMetadata {
    fn partition_puts(&self, topic: &str, first: i32, replicas: &[Vec<i32>]) -> Vec<Op> {
        replicas
            .iter()
            .enumerate()
            .map(|(i, nodes)| Op::Put {
                key: self.key(&format!("partitions/{topic}/{}", first + i as i32)),
                value: json(&PartitionState {
                    leader: nodes.first().copied().unwrap_or(-1),
                    leader_epoch: 0,
                    partition_epoch: 0,
                    replicas: nodes.clone(),
                    isr: nodes.clone(),
                }),
                lease: 0,
            })
            .collect()
    }

    fn block_txn(&self, compare: Vec<Compare>, ops: Vec<Op>) -> Result<bool> {
        let etcd = self.etcd.clone();
        let (ok, revision) = self.block(async move { etcd.txn(&compare, &ops, &[]).await })?;
        self.wait_revision(revision);
        Ok(ok)
    }

    fn wait_revision(&self, revision: i64) {
        let mut rx = self.revision.subscribe();
        self.block(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                rx.wait_for(|r| *r as i64 >= revision),
            )
            .await;
        });
    }
}
