//! DescribeQuorum (`kafka-metadata-quorum describe`): Kafka's KRaft quorum, as a combined
//! broker+controller node that is the only voter answers it. sluice has no `__cluster_metadata`
//! log; its stand-ins: leader epoch 1 (the epoch a single voter elects itself in), high
//! watermark and the voter's log end offset = the count of metadata changes since start (topics
//! created or deleted, partition states changed), and the node's endpoint is the listener the
//! request came in on (sluice has no separate controller listener). Kafka's check first:
//! DESCRIBE on the cluster, refused with a top-level CLUSTER_AUTHORIZATION_FAILED and no topics
//! (DescribeQuorumRequest.getTopLevelErrorResponse).

use super::{str_bytes, Handled, RequestContext};
use crate::security::Operation;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, ResponseKind, TopicName,
};
use kafka_protocol::ResponseError;

/// The topic of Kafka's metadata log, the only one DescribeQuorum describes.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The epoch a lone voter elects itself in.
const LEADER_EPOCH: i32 = 1;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn handle(ctx: &RequestContext, request: DescribeQuorumRequest) -> Handled {
    let v = ctx.api_version;
    if !ctx.authorize_cluster(Operation::Describe) {
        let error = ResponseError::ClusterAuthorizationFailed;
        let mut response = DescribeQuorumResponse::default().with_error_code(error.code());
        if v >= 2 {
            response.error_message = Some(str_bytes("Cluster authorization failed."));
        }
        return Handled::ready(ResponseKind::DescribeQuorum(response));
    }
    let valid = request.topics.len() == 1
        && request.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !valid {
        // Kafka's answer: each partition asked for, with UNKNOWN_TOPIC_OR_PARTITION.
        let error = ResponseError::UnknownTopicOrPartition;
        let topics = request
            .topics
            .into_iter()
            .map(|t| {
                TopicData::default()
                    .with_topic_name(t.topic_name)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                let mut data = PartitionData::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(error.code());
                                if v >= 2 {
                                    data.error_message = Some(str_bytes(
                                        "This server does not host this topic-partition.",
                                    ));
                                }
                                data
                            })
                            .collect(),
                    )
            })
            .collect();
        return Handled::ready(ResponseKind::DescribeQuorum(
            DescribeQuorumResponse::default().with_topics(topics),
        ));
    }
    let node = ctx.broker.config.node_id;
    let offset = *ctx.broker.metadata.subscribe().borrow() as i64;
    let now = now_ms();
    // The leader reports itself fetched and caught up now, as Kafka's leader does.
    let voter = ReplicaState::default()
        .with_replica_id(BrokerId(node))
        .with_log_end_offset(offset)
        .with_last_fetch_timestamp(if v >= 1 { now } else { -1 })
        .with_last_caught_up_timestamp(if v >= 1 { now } else { -1 });
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(node))
        .with_leader_epoch(LEADER_EPOCH)
        .with_high_watermark(offset)
        .with_current_voters(vec![voter]);
    let mut response = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
        .with_partitions(vec![partition])]);
    if v >= 2 {
        let listener = &ctx.session.listener;
        response.nodes = vec![Node::default()
            .with_node_id(BrokerId(node))
            .with_listeners(vec![Listener::default()
                .with_name(str_bytes(&listener.name))
                .with_host(str_bytes(&listener.advertised_host))
                .with_port(listener.advertised_port)])];
    }
    Handled::ready(ResponseKind::DescribeQuorum(response))
}
