//! The fetcher of one followed partition: Fetch (v15, with ReplicaState) from the leader at
//! this broker's log end, append what comes as it is, fsync, and only then fetch again, so the
//! fetch offset the leader sees is what this broker holds durably. A diverging epoch in the
//! answer cuts the local tail first. The high watermark follows the leader's.

use super::wire::Wire;
use crate::log::{Partition, UNDEFINED_EPOCH};
use crate::metadata::{ClusterMetadata, EtcdMetadata};
use anyhow::{anyhow, bail, Result};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Fetch v15: topic ids (v13), ReplicaState (v15), diverging epochs (v12).
const FETCH_VERSION: i16 = 15;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RETRY: Duration = Duration::from_millis(250);

pub struct Target {
    pub topic_id: Uuid,
    pub topic: String,
    pub leader: i32,
    pub leader_epoch: i32,
    pub node_id: i32,
    pub fetch_wait_max_ms: i32,
}

/// Runs until aborted (the role changed).
pub async fn run(log: Arc<Partition>, target: Target, cluster: Arc<EtcdMetadata>) {
    loop {
        if let Err(e) = follow(&log, &target, &cluster).await {
            tracing::debug!(topic = %target.topic, partition = log.index, leader = target.leader, error = %e, "following the leader");
        }
        tokio::time::sleep(RETRY).await;
    }
}

fn leader_address(cluster: &EtcdMetadata, leader: i32) -> Result<String> {
    let registration = cluster
        .registrations()
        .into_iter()
        .find(|r| r.node_id == leader)
        .ok_or_else(|| anyhow!("leader {leader} is not registered"))?;
    let endpoint = registration
        .endpoints
        .first()
        .ok_or_else(|| anyhow!("leader {leader} has no endpoint"))?;
    Ok(format!("{}:{}", endpoint.host, endpoint.port))
}

async fn follow(log: &Arc<Partition>, target: &Target, cluster: &Arc<EtcdMetadata>) -> Result<()> {
    let addr = leader_address(cluster, target.leader)?;
    let mut wire = Wire::connect(&addr, format!("sluice-replica-{}", target.node_id)).await?;
    let broker_epoch = cluster
        .registrations()
        .into_iter()
        .find(|r| r.node_id == target.node_id)
        .map_or(-1, |r| r.epoch);
    loop {
        let fetch_offset = log.offsets().log_end;
        // Only what is durable here counts for the leader's high watermark.
        if !log.wait_durable(fetch_offset).await {
            bail!("the partition is offline");
        }
        let request = FetchRequest::default()
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(target.node_id))
                    .with_replica_epoch(broker_epoch),
            )
            .with_max_wait_ms(target.fetch_wait_max_ms)
            .with_min_bytes(1)
            .with_max_bytes(8 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(target.topic_id)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(log.index)
                    .with_current_leader_epoch(target.leader_epoch)
                    .with_fetch_offset(fetch_offset)
                    .with_last_fetched_epoch(log.latest_epoch())
                    .with_log_start_offset(log.offsets().log_start)
                    .with_partition_max_bytes(PARTITION_MAX_BYTES)])]);
        let response = wire.send(&request, FETCH_VERSION).await?;
        if response.error_code != 0 {
            bail!("fetch failed with error {}", response.error_code);
        }
        let Some(data) = response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == log.index)
        else {
            bail!("the leader answered without the partition");
        };
        if data.error_code != 0 {
            bail!(
                "fetch of the partition failed with error {}",
                data.error_code
            );
        }
        let diverging = (data.diverging_epoch.epoch, data.diverging_epoch.end_offset);
        if diverging.1 >= 0 || diverging.0 >= 0 {
            let (local_epoch, local_end) = log.epoch_end_offset(diverging.0);
            let cut = if diverging == UNDEFINED_EPOCH || local_epoch < 0 {
                log.offsets().high_watermark
            } else {
                diverging.1.min(local_end)
            };
            log.truncate_to(cut)?;
            continue;
        }
        if let Some(records) = data.records.filter(|r| !r.is_empty()) {
            log.append_replicated(&records)
                .map_err(|e| anyhow!("appending the leader's batches: {e:?}"))?;
        }
        log.set_high_watermark_limit(data.high_watermark, false);
    }
}
