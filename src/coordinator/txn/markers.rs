//! Ending a decided transaction: its COMMIT/ABORT marker into every partition, then
//! Complete* in the transaction log (Kafka's TransactionMarkerChannelManager, without the
//! network: the partitions are local). The coordinator knows no partitions; a [`MarkerSink`]
//! (the broker) appends each marker and says when it is durable.
//!
//! A marker must be durable before Complete* is written: a Complete* that survives a crash
//! while its marker does not would leave the transaction open in that partition forever (the
//! LSO stuck). Until Complete* is durable the transaction stays in Prepare*, and a restart
//! writes its markers again (a second marker for a decided transaction decides nothing).

use super::{MarkerJob, TopicPartition, TxnCoordinator, TxnResult};
use crate::failpoint;
use futures::future::{join_all, BoxFuture};
use kafka_protocol::ResponseError as E;
use std::time::Duration;

/// Resolves once a written marker is durable.
pub type MarkerDurable<'a> = BoxFuture<'a, Result<(), String>>;

/// The group offsets "partition" of every group: pending transactional offsets live in the
/// group coordinator, not in a log of record batches. Named as Kafka names the partition of
/// `__consumer_offsets` that AddOffsetsToTxn adds, so DescribeTransactions reads the same.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's offsets.topic.num.partitions default: the partition a group's offsets would live in.
const OFFSETS_TOPIC_PARTITIONS: i32 = 50;

/// The `__consumer_offsets` partition AddOffsetsToTxn adds for a group: Kafka's
/// `abs(groupId.hashCode) % offsets.topic.num.partitions`, with Java's String.hashCode.
pub fn offsets_partition(group_id: &str) -> TopicPartition {
    let hash = group_id
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    // Kafka's Utils.abs: i32::MIN maps to 0.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    (OFFSETS_TOPIC.to_string(), abs % OFFSETS_TOPIC_PARTITIONS)
}

/// Where markers go.
pub trait MarkerSink: Send + Sync {
    /// Appends the marker ending `producer_id`'s transaction in `partition`. Ok(None): the
    /// partition no longer exists, there is nothing to end. Err: retry later.
    fn append_marker(
        &self,
        partition: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
    ) -> Result<Option<MarkerDurable<'_>>, String>;
}

const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(5);

impl TxnCoordinator {
    /// Writes every marker of `job`, retrying what fails, then completes the transaction.
    /// Returns once Complete* is durable; runs until then (a restart resumes it from the log).
    pub async fn finish(&self, job: MarkerJob, sink: &dyn MarkerSink) {
        failpoint::hit("txn.before_markers");
        let mut remaining = job.partitions.clone();
        let mut retry = FIRST_RETRY;
        while !remaining.is_empty() {
            // Appended one after another (no fsync in between), then waited for together: one
            // group commit covers them all.
            let mut waits = Vec::new();
            let mut failed = Vec::new();
            for (i, partition) in remaining.iter().enumerate() {
                match sink.append_marker(partition, job.producer_id, job.producer_epoch, job.result)
                {
                    Ok(Some(durable)) => {
                        if i == 0 && remaining.len() > 1 && failpoint::armed("txn.between_markers")
                        {
                            let _ = durable.await;
                            failpoint::hit("txn.between_markers");
                            unreachable!("the failpoint ends the process");
                        }
                        waits.push((partition.clone(), durable));
                    }
                    Ok(None) => {
                        tracing::info!(transactional_id = %job.transactional_id,
                            topic = %partition.0, partition = partition.1,
                            "no marker for a partition that no longer exists");
                    }
                    Err(e) => {
                        tracing::warn!(transactional_id = %job.transactional_id,
                            topic = %partition.0, partition = partition.1, error = %e,
                            "writing a transaction marker failed; retrying");
                        failed.push(partition.clone());
                    }
                }
            }
            let (partitions, durables): (Vec<_>, Vec<_>) = waits.into_iter().unzip();
            for (partition, outcome) in partitions.into_iter().zip(join_all(durables).await) {
                if let Err(e) = outcome {
                    tracing::warn!(transactional_id = %job.transactional_id,
                        topic = %partition.0, partition = partition.1, error = %e,
                        "a transaction marker was not made durable; retrying");
                    failed.push(partition);
                }
            }
            remaining = failed;
            if !remaining.is_empty() {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
        failpoint::hit("txn.before_complete");
        let mut retry = FIRST_RETRY;
        while let Err(e) = self.complete(&job).await {
            if matches!(e, E::InvalidTxnState | E::InvalidProducerIdMapping) {
                // Not waiting for these markers any more: completed by another job.
                return;
            }
            tracing::warn!(transactional_id = %job.transactional_id, error = ?e,
                "completing a transaction failed; retrying");
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::offsets_partition;

    #[test]
    fn offsets_partition_is_kafkas() {
        // Java: "my-group".hashCode() = -1906497762 -> 1906497762 % 50 = 12.
        assert_eq!(offsets_partition("my-group").1, 12);
        assert_eq!(offsets_partition("").1, 0);
        assert_eq!(offsets_partition("my-group").0, "__consumer_offsets");
    }
}
