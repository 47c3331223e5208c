//! Cluster mode's data path, Kafka's replication protocol: followers fetch from the leader
//! (Fetch with ReplicaState), the leader tracks what each follower holds, the high watermark
//! covers only what every in-sync replica has fsynced, and the ISR shrinks and grows by
//! compare-and-swap on the partition's state in etcd.
//!
//! - `leader`   what a leader tracks of its followers, the high watermark limit, ISR changes
//! - `follower` the fetcher of one followed partition: fetch, append, truncate on divergence
//! - `wire`     a minimal async Kafka client for the follower's requests
//!
//! Roles follow the partition states the metadata holds: `apply` runs whenever a topic is
//! (re)registered with new states. On a single node nothing here runs.

mod follower;
mod leader;
mod wire;

use crate::log::Partition;
use crate::metadata::{EtcdMetadata, PartitionState};
use crate::topic::Topic;
use dashmap::DashMap;
pub use leader::FollowerFetch;
use leader::Led;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct ReplicationConfig {
    pub node_id: i32,
    /// replica.lag.time.max.ms
    pub lag_time_max: Duration,
    /// replica.fetch.wait.max.ms
    pub fetch_wait_max_ms: i32,
}

/// A running follower fetcher.
struct Following {
    leader: i32,
    leader_epoch: i32,
    task: tokio::task::JoinHandle<()>,
}

pub struct Replication {
    config: ReplicationConfig,
    cluster: Arc<EtcdMetadata>,
    /// Partitions this broker leads, by (topic, index).
    led: DashMap<(String, i32), Arc<Led>>,
    following: Mutex<HashMap<(String, i32), Following>>,
}

impl Replication {
    pub fn start(config: ReplicationConfig, cluster: Arc<EtcdMetadata>) -> Arc<Replication> {
        let replication = Arc::new(Replication {
            config,
            cluster,
            led: DashMap::new(),
            following: Mutex::new(HashMap::new()),
        });
        leader::spawn_isr_checks(Arc::downgrade(&replication));
        replication
    }

    /// Takes up the roles `topic.states` give this broker: leader, follower, or neither.
    pub fn apply(&self, topic: &Topic) {
        let me = self.config.node_id;
        for (log, state) in topic.partitions.iter().zip(&topic.states) {
            let key = (topic.name.clone(), log.index);
            if state.leader == me {
                self.stop_following(&key);
                log.set_replicated(true);
                log.set_follower(false);
                let led = self
                    .led
                    .entry(key)
                    .or_insert_with(|| Led::new(log.clone(), state.clone()))
                    .clone();
                led.update(log.clone(), state.clone(), me);
            } else if state.leader >= 0 && state.replicas.contains(&me) {
                self.led.remove(&key);
                log.set_replicated(true);
                log.set_follower(true);
                self.follow(topic, log, state, key);
            } else {
                self.led.remove(&key);
                self.stop_following(&key);
                // Not a replica here (or no leader): nothing to tier from this copy.
                log.set_follower(true);
            }
        }
    }

    /// Forgets a deleted topic's partitions.
    pub fn forget(&self, topic: &str) {
        self.led.retain(|(t, _), _| t != topic);
        let mut following = self.following.lock().unwrap_or_else(|p| p.into_inner());
        following.retain(|(t, _), f| {
            if t == topic {
                f.task.abort();
            }
            t != topic
        });
    }

    fn stop_following(&self, key: &(String, i32)) {
        let mut following = self.following.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = following.remove(key) {
            f.task.abort();
        }
    }

    fn follow(
        &self,
        topic: &Topic,
        log: &Arc<Partition>,
        state: &PartitionState,
        key: (String, i32),
    ) {
        let mut following = self.following.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = following.get(&key) {
            if f.leader == state.leader
                && f.leader_epoch == state.leader_epoch
                && !f.task.is_finished()
            {
                return;
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(topic = %topic.name, partition = log.index, "no runtime to follow the leader on");
            return;
        };
        let target = follower::Target {
            topic_id: topic.id,
            topic: topic.name.clone(),
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            node_id: self.config.node_id,
            fetch_wait_max_ms: self.config.fetch_wait_max_ms,
        };
        let task = runtime.spawn(follower::run(log.clone(), target, self.cluster.clone()));
        if let Some(old) = following.insert(
            key,
            Following {
                leader: state.leader,
                leader_epoch: state.leader_epoch,
                task,
            },
        ) {
            old.task.abort();
        }
    }

    /// A follower's fetch of a partition this broker leads (Kafka's Partition.fetchRecords for
    /// a replica): records its progress, moves the high watermark, and says where the
    /// follower's log diverges when `last_fetched_epoch` (v12+) shows it does.
    pub fn follower_fetch(
        &self,
        topic: &str,
        log: &Arc<Partition>,
        replica: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    ) -> FollowerFetch {
        let Some(led) = self
            .led
            .get(&(topic.to_string(), log.index))
            .map(|l| l.clone())
        else {
            return FollowerFetch::NotLeader;
        };
        led.follower_fetch(self, replica, fetch_offset, last_fetched_epoch)
    }
}
