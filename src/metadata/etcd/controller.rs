//! The controller: one broker at a time, elected by creating `controller` under its broker
//! lease (so it steps down the moment its session ends). It moves leadership off brokers that
//! left: a partition whose leader is gone gets the first live replica of its ISR, or no leader
//! (-1) until an ISR member returns, as Kafka's controller does with unclean election off.
//! Every decision is a compare-and-swap on the partition's revision: a controller that lost
//! its seat, or raced with another, cannot overwrite a newer state.

use super::{json, Compare, EtcdMetadata, Op};
use crate::metadata::PartitionState;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn spawn(metadata: Arc<EtcdMetadata>) {
    metadata.runtime.spawn(async move {
        let mut changes = metadata.revision.subscribe();
        loop {
            if let Err(e) = metadata.campaign().await {
                tracing::warn!(error = %e, "controller election");
            }
            if metadata.view().controller == Some(metadata.node_id) {
                if let Err(e) = metadata.reconcile().await {
                    tracing::warn!(error = %e, "controller: moving leadership");
                }
            }
            // Any change may be a broker leaving; the tick retries failed swaps.
            let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
        }
    });
}

/// What the controller makes of a partition, given the live brokers: None when it stays.
pub(super) fn next_state(state: &PartitionState, alive: &BTreeSet<i32>) -> Option<PartitionState> {
    if state.leader >= 0 && alive.contains(&state.leader) {
        return None;
    }
    let leader = state
        .isr
        .iter()
        .copied()
        .find(|n| alive.contains(n))
        .unwrap_or(-1);
    if leader == state.leader {
        return None;
    }
    let mut next = state.clone();
    next.leader = leader;
    // The ISR keeps its last member while leaderless (Kafka's controller does the same), so
    // that member, and only it, can lead again without losing acknowledged data.
    if leader >= 0 {
        next.isr.retain(|n| alive.contains(n));
    }
    next.leader_epoch += 1;
    next.partition_epoch += 1;
    Some(next)
}

/// Why an asked-for election (ElectLeaders) changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoElection {
    /// Preferred: the first replica leads already; unclean: there is a leader.
    NotNeeded,
    /// Preferred: the first replica is not alive and in the ISR; unclean: no replica is alive.
    NotAvailable,
    UnknownPartition,
}

/// ElectLeaders' decision: the preferred replica (the first) if it is alive and in sync, or
/// for an unclean election of a leaderless partition any live replica, the ISR then being it
/// alone (what it holds becomes the log).
pub(super) fn elect(
    state: &PartitionState,
    alive: &BTreeSet<i32>,
    unclean: bool,
) -> Result<PartitionState, NoElection> {
    let mut next = state.clone();
    if unclean {
        if state.leader >= 0 {
            return Err(NoElection::NotNeeded);
        }
        let leader = state
            .isr
            .iter()
            .chain(&state.replicas)
            .copied()
            .find(|n| alive.contains(n))
            .ok_or(NoElection::NotAvailable)?;
        next.leader = leader;
        if !state.isr.contains(&leader) {
            next.isr = vec![leader];
        }
    } else {
        let preferred = *state.replicas.first().ok_or(NoElection::NotAvailable)?;
        if state.leader == preferred {
            return Err(NoElection::NotNeeded);
        }
        if !alive.contains(&preferred) || !state.isr.contains(&preferred) {
            return Err(NoElection::NotAvailable);
        }
        next.leader = preferred;
    }
    next.leader_epoch += 1;
    next.partition_epoch += 1;
    Ok(next)
}

impl EtcdMetadata {
    /// ElectLeaders for one partition, by compare-and-swap on its state.
    pub fn elect_leader(
        &self,
        topic: &str,
        index: i32,
        unclean: bool,
    ) -> anyhow::Result<Result<i32, NoElection>> {
        let current = self
            .view()
            .partitions
            .get(&(topic.to_string(), index))
            .cloned();
        let Some((state, revision)) = current else {
            return Ok(Err(NoElection::UnknownPartition));
        };
        let alive: BTreeSet<i32> = self.view().brokers.keys().copied().collect();
        let next = match elect(&state, &alive, unclean) {
            Ok(next) => next,
            Err(e) => return Ok(Err(e)),
        };
        let key = self.key(&format!("partitions/{topic}/{index}"));
        let swapped = self.block_txn(
            vec![Compare::ModRevision(key.clone(), revision)],
            vec![Op::Put {
                key,
                value: json(&next),
                lease: 0,
            }],
        )?;
        if !swapped {
            anyhow::bail!("the partition's state changed meanwhile; try again");
        }
        tracing::info!(
            topic,
            partition = index,
            leader = next.leader,
            unclean,
            "elected a leader on request"
        );
        Ok(Ok(next.leader))
    }

    /// Takes the controller seat if it is free.
    async fn campaign(&self) -> anyhow::Result<()> {
        let lease = *self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if lease == 0 || self.view().controller.is_some() {
            return Ok(());
        }
        let key = self.key("controller");
        if self
            .txn(
                vec![Compare::Absent(key.clone())],
                vec![Op::Put {
                    key,
                    value: json(&self.node_id),
                    lease,
                }],
            )
            .await?
        {
            tracing::info!(node = self.node_id, "became the controller");
        }
        Ok(())
    }

    async fn reconcile(&self) -> anyhow::Result<()> {
        let alive: BTreeSet<i32> = self.view().brokers.keys().copied().collect();
        for ((topic, index), state, revision) in self.partition_states() {
            let Some(next) = next_state(&state, &alive) else {
                continue;
            };
            if self.swap_partition(&topic, index, revision, &next).await? {
                tracing::info!(
                    topic,
                    partition = index,
                    leader = next.leader,
                    epoch = next.leader_epoch,
                    "controller moved leadership"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, isr: &[i32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: 3,
            partition_epoch: 5,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn elections_on_request() {
        let alive = BTreeSet::from([1, 2, 3]);
        let moved = elect(&state(2, &[1, 2]), &alive, false).unwrap();
        assert_eq!((moved.leader, moved.leader_epoch), (1, 4));
        assert_eq!(
            elect(&state(1, &[1, 2]), &alive, false),
            Err(NoElection::NotNeeded)
        );
        assert_eq!(
            elect(&state(2, &[2, 3]), &alive, false),
            Err(NoElection::NotAvailable)
        );
        let unclean = elect(&state(-1, &[1]), &BTreeSet::from([3]), true).unwrap();
        assert_eq!((unclean.leader, unclean.isr), (3, vec![3]));
        assert_eq!(
            elect(&state(2, &[2]), &alive, true),
            Err(NoElection::NotNeeded)
        );
    }

    #[test]
    fn a_live_leader_stays() {
        assert_eq!(
            next_state(&state(1, &[1, 2]), &BTreeSet::from([1, 2])),
            None
        );
    }

    #[test]
    fn a_lost_leader_passes_to_a_live_isr_member() {
        let next = next_state(&state(1, &[1, 3]), &BTreeSet::from([2, 3])).unwrap();
        assert_eq!((next.leader, next.isr.clone()), (3, vec![3]));
        assert_eq!((next.leader_epoch, next.partition_epoch), (4, 6));
    }

    #[test]
    fn no_live_isr_member_leaves_the_partition_leaderless_until_one_returns() {
        let gone = next_state(&state(1, &[1]), &BTreeSet::from([2, 3])).unwrap();
        assert_eq!((gone.leader, gone.isr.clone()), (-1, vec![1]));
        assert_eq!(next_state(&gone, &BTreeSet::from([2, 3])), None);
        let back = next_state(&gone, &BTreeSet::from([1, 2])).unwrap();
        assert_eq!((back.leader, back.leader_epoch), (1, 5));
    }
}
