//! ElectLeaders (`kafka-leader-election`). On a single node this broker is every partition's
//! only replica and leads it, so no partition ever needs an election. In cluster mode the
//! preferred replica (the first) takes the lead if it is alive and in sync, and an unclean
//! election gives a leaderless partition any live replica, each by compare-and-swap in etcd.
//! Answered as Kafka's controller answers (ReplicationControlManager.electLeaders), after its
//! check: ALTER on the cluster, refused with CLUSTER_AUTHORIZATION_FAILED at the top and on
//! every partition asked for (ElectLeadersRequest.getErrorResponse).

use super::{str_bytes, Handled, RequestContext};
use crate::metadata::NoElection;
use crate::security::Operation;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, ResponseKind, TopicName,
};
use kafka_protocol::ResponseError;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

fn result(partition: i32, error: ResponseError, message: String) -> PartitionResult {
    PartitionResult::default()
        .with_partition_id(partition)
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(&message)))
}

/// Kafka's error response: the top-level code, and every partition asked for, carry it.
fn error_response(request: ElectLeadersRequest, error: ResponseError, message: String) -> Handled {
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|&p| result(p, error, message.clone()))
                        .collect(),
                )
        })
        .collect();
    Handled::ready(ResponseKind::ElectLeaders(
        ElectLeadersResponse::default()
            .with_error_code(error.code())
            .with_replica_election_results(results),
    ))
}

fn elect_in_cluster(
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    unclean: bool,
) -> PartitionResult {
    let Some(cluster) = &ctx.broker.cluster else {
        return result(partition, ResponseError::UnknownServerError, String::new());
    };
    let outcome = tokio::task::block_in_place(|| cluster.elect_leader(topic, partition, unclean));
    match outcome {
        Ok(Ok(_)) => PartitionResult::default().with_partition_id(partition),
        Ok(Err(NoElection::NotNeeded)) => result(
            partition,
            ResponseError::ElectionNotNeeded,
            "Leader election not needed for topic partition.".to_string(),
        ),
        Ok(Err(NoElection::NotAvailable)) if unclean => result(
            partition,
            ResponseError::EligibleLeadersNotAvailable,
            format!("Failed to elect leader for partition {topic}-{partition} under strategy UncleanLeaderElection"),
        ),
        Ok(Err(NoElection::NotAvailable)) => result(
            partition,
            ResponseError::PreferredLeaderNotAvailable,
            format!("Failed to elect leader for partition {topic}-{partition} under strategy PreferredReplicaPartitionLeaderElectionStrategy"),
        ),
        Ok(Err(NoElection::UnknownPartition)) => result(
            partition,
            ResponseError::UnknownTopicOrPartition,
            format!("No such partition as {topic}-{partition}"),
        ),
        Err(e) => result(partition, ResponseError::UnknownServerError, e.to_string()),
    }
}

pub fn handle(ctx: &RequestContext, request: ElectLeadersRequest) -> Handled {
    let broker = &ctx.broker;
    if !ctx.authorize_cluster(Operation::Alter) {
        return error_response(
            request,
            ResponseError::ClusterAuthorizationFailed,
            "Request ElectLeaders is not authorized.".to_string(),
        );
    }
    // v0 has no election type: preferred.
    let election_type = if ctx.api_version >= 1 {
        request.election_type
    } else {
        PREFERRED
    };
    if election_type != PREFERRED && election_type != UNCLEAN {
        let message = format!("Unknown election type {election_type}");
        return error_response(request, ResponseError::InvalidRequest, message);
    }
    let results = match request.topic_partitions {
        // Null asks for every partition; Kafka lists each topic but only the partitions that
        // needed an election: none here.
        None => broker
            .topics()
            .iter()
            .map(|t| ReplicaElectionResult::default().with_topic(TopicName(str_bytes(&t.name))))
            .collect(),
        Some(topics) => topics
            .into_iter()
            .map(|t| {
                let topic = broker.topic(&t.topic.0);
                let partitions = t
                    .partitions
                    .iter()
                    .map(|&p| match &topic {
                        None => result(
                            p,
                            ResponseError::UnknownTopicOrPartition,
                            format!("No such topic as {}", t.topic.0.as_str()),
                        ),
                        Some(topic) if p < 0 || p as usize >= topic.states.len() => result(
                            p,
                            ResponseError::UnknownTopicOrPartition,
                            format!("No such partition as {}-{p}", t.topic.0.as_str()),
                        ),
                        Some(_) if broker.cluster.is_some() => {
                            elect_in_cluster(ctx, t.topic.0.as_str(), p, election_type == UNCLEAN)
                        }
                        // Preferred: the leader is the first replica. Unclean: there is a leader.
                        Some(_) => result(
                            p,
                            ResponseError::ElectionNotNeeded,
                            "Leader election not needed for topic partition.".to_string(),
                        ),
                    })
                    .collect();
                ReplicaElectionResult::default()
                    .with_topic(t.topic)
                    .with_partition_result(partitions)
            })
            .collect(),
    };
    Handled::ready(ResponseKind::ElectLeaders(
        ElectLeadersResponse::default().with_replica_election_results(results),
    ))
}
