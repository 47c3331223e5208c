//! WriteTxnMarkers: a COMMIT/ABORT marker into partitions this broker leads. Kafka's
//! coordinators send it to partition leaders; here the coordinator writes its own markers
//! directly, and this API serves `kafka-transactions abort` (Admin.abortTransaction), which
//! ends a hanging transaction the coordinator does not know.

use super::errors::{append_error, lookup_error, NONE};
use super::{Handled, RequestContext};
use crate::broker::NO_LEADER_EPOCH;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ResponseKind, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::ResponseError;
use std::time::Duration;

/// How long a marker may take to become durable before the answer says so.
const DURABLE_WAIT: Duration = Duration::from_secs(30);

pub fn handle(ctx: &RequestContext, request: WriteTxnMarkersRequest) -> Handled {
    let mut waits = Vec::new();
    // Kafka: markers come from brokers, CLUSTER_ACTION on the cluster.
    let authorized = ctx.authorize(
        Operation::ClusterAction,
        ResourceType::Cluster,
        crate::security::authorizer::CLUSTER_NAME,
    );
    let markers = request
        .markers
        .iter()
        .enumerate()
        .map(|(m_idx, marker)| {
            let topics = marker
                .topics
                .iter()
                .enumerate()
                .map(|(t_idx, topic)| {
                    let partitions = topic
                        .partition_indexes
                        .iter()
                        .enumerate()
                        .map(|(p_idx, &index)| {
                            let result = WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(index);
                            if !authorized {
                                return result.with_error_code(
                                    kafka_protocol::ResponseError::ClusterAuthorizationFailed
                                        .code(),
                                );
                            }
                            let led = ctx.broker.led_partition_by_name(
                                &topic.name,
                                index,
                                NO_LEADER_EPOCH,
                            );
                            let log = match led {
                                Ok((_, led)) => led.log,
                                Err(e) => return result.with_error_code(lookup_error(e).code()),
                            };
                            match log.append_marker(
                                marker.producer_id.0,
                                marker.producer_epoch,
                                marker.transaction_result,
                                marker.coordinator_epoch,
                            ) {
                                Ok(offset) => {
                                    waits.push(((m_idx, t_idx, p_idx), log, offset));
                                    result.with_error_code(NONE)
                                }
                                Err(e) => result.with_error_code(append_error(&e).0),
                            }
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(topic.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics)
        })
        .collect();
    let response = WriteTxnMarkersResponse::default().with_markers(markers);
    Handled::Deferred(Box::pin(async move {
        let mut response = response;
        for ((m, t, p), log, offset) in waits {
            let durable = tokio::time::timeout(DURABLE_WAIT, log.wait_durable(offset + 1)).await;
            if durable != Ok(true) {
                response.markers[m].topics[t].partitions[p].error_code =
                    ResponseError::KafkaStorageError.code();
            }
        }
        ResponseKind::WriteTxnMarkers(response)
    }))
}
