//! AlterPartitionReassignments: Kafka's controller rules (ReplicationControlManager) on a
//! cluster of one broker. The only valid target is this broker alone, which every partition
//! already has, so a valid request changes nothing; cancelling finds no reassignment. Kafka's
//! check first: ALTER on the cluster, refused with CLUSTER_AUTHORIZATION_FAILED at the top and
//! on every partition (AlterPartitionReassignmentsRequest.getErrorResponse).

use super::{str_bytes, Handled, RequestContext};
use crate::security::Operation;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId, ResponseKind,
};
use kafka_protocol::ResponseError;

/// Why the target replica list is refused, as Kafka's validateManualPartitionAssignment says.
fn invalid_target(brokers: &[i32], replicas: &[BrokerId]) -> Option<String> {
    if replicas.is_empty() {
        return Some("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted: Vec<i32> = replicas.iter().map(|b| b.0).collect();
    sorted.sort_unstable();
    for (i, id) in sorted.iter().enumerate() {
        if !brokers.contains(id) {
            return Some(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            ));
        }
        if i > 0 && sorted[i - 1] == *id {
            return Some(format!(
                "The manual partition assignment includes the broker {id} more than once."
            ));
        }
    }
    None
}

pub fn handle(ctx: &RequestContext, request: AlterPartitionReassignmentsRequest) -> Handled {
    let broker = &ctx.broker;
    let brokers = broker.metadata.brokers();
    // v0 has no such flag: the replication factor may change.
    let allow_rf_change = ctx.api_version < 1 || request.allow_replication_factor_change;
    let denied = !ctx.authorize_cluster(Operation::Alter);
    const DENIED: &str = "Request AlterPartitionReassignments is not authorized.";
    let responses = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(&t.name.0);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let index = p.partition_index;
                    let refused = match &topic {
                        _ if denied => Some((
                            ResponseError::ClusterAuthorizationFailed,
                            DENIED.to_string(),
                        )),
                        None => Some((
                            ResponseError::UnknownTopicOrPartition,
                            format!("Unable to find a topic named {}.", t.name.0.as_str()),
                        )),
                        Some(topic) => {
                            match topic.states.get(index as usize).filter(|_| index >= 0) {
                                None => Some((
                                    ResponseError::UnknownTopicOrPartition,
                                    format!(
                                        "Unable to find partition {}:{index}.",
                                        t.name.0.as_str()
                                    ),
                                )),
                                // Null replicas cancels a reassignment: there never is one (Kafka
                                // sends no message with this code).
                                Some(_) if p.replicas.is_none() => {
                                    Some((ResponseError::NoReassignmentInProgress, String::new()))
                                }
                                Some(state) => {
                                    let target = p.replicas.as_deref().unwrap_or_default();
                                    // The brokers are checked first; with one broker a valid target
                                    // is this broker alone, so the factor check never bites.
                                    match invalid_target(&brokers, target) {
                                        Some(m) => {
                                            Some((ResponseError::InvalidReplicaAssignment, m))
                                        }
                                        None if !allow_rf_change
                                            && target.len() != state.replicas.len() =>
                                        {
                                            Some((
                                                ResponseError::InvalidReplicationFactor,
                                                format!(
                                                "The replication factor is changed from {} to {}",
                                                state.replicas.len(),
                                                target.len()
                                            ),
                                            ))
                                        }
                                        None => None,
                                    }
                                }
                            }
                        }
                    };
                    let (code, message) = match refused {
                        Some((e, m)) => (e.code(), (!m.is_empty()).then(|| str_bytes(&m))),
                        None => (0, None),
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(index)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    let mut response = AlterPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_responses(responses);
    if denied {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(str_bytes(DENIED));
    }
    if ctx.api_version >= 1 {
        response.allow_replication_factor_change = allow_rf_change;
    }
    Handled::ready(ResponseKind::AlterPartitionReassignments(response))
}
