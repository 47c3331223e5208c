//! The leader's side: what each follower holds, the high watermark limit that follows from
//! it, and ISR changes. A follower only ever fetches what the leader fsynced, and fetches
//! again only once it fsynced what it got, so its fetch offset is what it holds durably: the
//! high watermark is the lowest fetch offset over the in-sync followers (and never above the
//! leader's own durable offset, which the log engine enforces).
//!
//! ISR changes are the leader's to ask for, as with Kafka's AlterPartition, but written
//! straight to etcd by compare-and-swap on the partition's state (the same fencing: a leader
//! whose epoch is stale, or a state changed meanwhile, fails the swap).

use super::Replication;
use crate::log::Partition;
use crate::metadata::PartitionState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// What a follower's fetch gets besides records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerFetch {
    /// Read on from the fetch offset.
    Read,
    /// The follower's log diverges: (epoch, end offset) for it to truncate to.
    Diverging(i32, i64),
    /// This broker does not lead the partition (any more).
    NotLeader,
    /// The fetching broker is not a replica of the partition.
    NotReplica,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    /// The follower's last fetch offset: what it holds durably.
    offset: i64,
    /// The leader's durable offset when the follower fetched last.
    leader_end_at_fetch: i64,
    /// When the follower last reached the leader's end (Kafka's lastCaughtUpTimeMs).
    caught_up: Instant,
}

/// One partition this broker leads.
pub struct Led {
    inner: Mutex<LedState>,
}

struct LedState {
    log: Arc<Partition>,
    state: PartitionState,
    followers: HashMap<i32, Progress>,
    /// When an ISR change was last asked for (at most one a second).
    isr_asked: Option<Instant>,
    /// When this broker took the lead at this epoch.
    since: Instant,
}

impl Led {
    pub fn new(log: Arc<Partition>, state: PartitionState) -> Arc<Led> {
        let led = Arc::new(Led {
            inner: Mutex::new(LedState {
                log: log.clone(),
                state: state.clone(),
                followers: HashMap::new(),
                isr_asked: None,
                since: Instant::now(),
            }),
        });
        // A new leader knows nothing of its followers yet: the high watermark stays where it
        // is until each in-sync follower has fetched (alone in the ISR, it follows the log).
        let limit = if state.isr.len() <= 1 {
            i64::MAX
        } else {
            log.offsets().high_watermark
        };
        log.set_high_watermark_limit(limit, true);
        led
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LedState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new state of the partition (the ISR changed, or a new epoch).
    pub fn update(&self, log: Arc<Partition>, state: PartitionState, me: i32) {
        let mut st = self.lock();
        if st.state.leader_epoch != state.leader_epoch {
            st.followers.clear();
            st.since = Instant::now();
            let limit = if state.isr.len() <= 1 {
                i64::MAX
            } else {
                log.offsets().high_watermark
            };
            log.set_high_watermark_limit(limit, true);
        }
        if st.state != state {
            st.isr_asked = None;
        }
        st.log = log;
        st.state = state;
        st.refresh_limit(me);
    }

    pub(super) fn follower_fetch(
        &self,
        replication: &Replication,
        replica: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    ) -> FollowerFetch {
        let me = replication.config.node_id;
        let mut st = self.lock();
        if st.state.leader != me {
            return FollowerFetch::NotLeader;
        }
        if !st.state.replicas.contains(&replica) || replica == me {
            return FollowerFetch::NotReplica;
        }
        if last_fetched_epoch >= 0 {
            let (epoch, end) = st.log.epoch_end_offset(last_fetched_epoch);
            if epoch < last_fetched_epoch || end < fetch_offset {
                return FollowerFetch::Diverging(epoch, end);
            }
        }
        let now = Instant::now();
        let leader_end = st.log.durable_offset();
        let previous = st.followers.get(&replica).copied();
        let caught_up = match previous {
            Some(p) if fetch_offset >= p.leader_end_at_fetch => now,
            None if fetch_offset >= leader_end => now,
            Some(p) => p.caught_up,
            // Not heard from since this broker took the lead: as Kafka, from then.
            None => st.since,
        };
        st.followers.insert(
            replica,
            Progress {
                offset: fetch_offset,
                leader_end_at_fetch: leader_end,
                caught_up,
            },
        );
        st.refresh_limit(me);
        // A follower out of the ISR that reached the high watermark joins it again.
        let high_watermark = st.log.offsets().high_watermark;
        if !st.state.isr.contains(&replica) && fetch_offset >= high_watermark {
            let mut isr = st.state.isr.clone();
            isr.push(replica);
            st.ask_isr(replication, isr);
        }
        FollowerFetch::Read
    }

    /// Drops followers that fell behind for longer than replica.lag.time.max.ms.
    fn check_lagging(&self, replication: &Replication) {
        let me = replication.config.node_id;
        let mut st = self.lock();
        if st.state.leader != me {
            return;
        }
        let lag = replication.config.lag_time_max;
        let now = Instant::now();
        let keep: Vec<i32> = st
            .state
            .isr
            .iter()
            .copied()
            .filter(|&r| {
                r == me
                    || now.duration_since(st.followers.get(&r).map_or(st.since, |p| p.caught_up))
                        < lag
            })
            .collect();
        if keep.len() < st.state.isr.len() {
            st.ask_isr(replication, keep);
        }
    }
}

impl LedState {
    /// The high watermark may reach the lowest offset the in-sync followers hold. The limit
    /// may come down (a follower rejoining the ISR at the high watermark, behind a limit the
    /// others had raised above the leader's durable offset); the high watermark never does.
    fn refresh_limit(&mut self, me: i32) {
        let mut limit = i64::MAX;
        for r in self.state.isr.iter().filter(|r| **r != me) {
            match self.followers.get(r) {
                Some(p) => limit = limit.min(p.offset),
                // Not heard from yet: no further than where the high watermark is.
                None => limit = limit.min(self.log.offsets().high_watermark),
            }
        }
        self.log.set_high_watermark_limit(limit, true);
    }

    fn ask_isr(&mut self, replication: &Replication, isr: Vec<i32>) {
        if self
            .isr_asked
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.isr_asked = Some(Instant::now());
        tracing::info!(topic = %self.log.topic, partition = self.log.index, from = ?self.state.isr, to = ?isr, "changing the ISR");
        replication.cluster.request_isr_change(
            &self.log.topic,
            self.log.index,
            self.state.clone(),
            isr,
        );
    }
}

/// Every second, each led partition drops the followers that lag.
pub(super) fn spawn_isr_checks(replication: Weak<Replication>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(r) = replication.upgrade() else {
                return;
            };
            let led: Vec<Arc<Led>> = r.led.iter().map(|l| l.value().clone()).collect();
            for l in led {
                l.check_lagging(&r);
            }
        }
    });
}
