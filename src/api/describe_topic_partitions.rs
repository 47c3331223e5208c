//! DescribeTopicPartitions (KIP-966): Metadata's topic part, paged. Topics are answered in name
//! order, at most `response_partition_limit` partitions per response; `next_cursor` names the
//! first partition left out. `kafka-topics --describe` (4.x) and the Java Admin's
//! describeTopics use it.

use super::{str_bytes, Handled, RequestContext};
use crate::broker::{validate_topic_name, Topic};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, ResponseKind,
    TopicName,
};
use kafka_protocol::ResponseError;
use std::collections::BTreeSet;

/// Kafka's `max.request.partition.size.limit` default: the most partitions one response holds,
/// whatever the request asks.
pub const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

/// Kafka's internal topics (`Topic.isInternal`), reported with `is_internal` even when unknown.
pub fn is_internal(name: &str) -> bool {
    matches!(
        name,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

fn partitions(
    topic: &Topic,
    from: i32,
    upto: i32,
) -> Vec<DescribeTopicPartitionsResponsePartition> {
    let ids = |nodes: &[i32]| nodes.iter().map(|&n| BrokerId(n)).collect::<Vec<_>>();
    (from..upto)
        .filter_map(|i| topic.states.get(i as usize).map(|s| (i, s)))
        .map(|(index, state)| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(state.leader))
                .with_leader_epoch(state.leader_epoch)
                .with_replica_nodes(ids(&state.replicas))
                .with_isr_nodes(ids(&state.isr))
                // Kafka 4.4 formats new clusters with eligible leader replicas on: both lists
                // are empty while the ISR holds every replica.
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
        })
        .collect()
}

fn invalid_request(request: &DescribeTopicPartitionsRequest) -> Handled {
    // Kafka's error response: every requested topic with the error, no partitions.
    let topics = request
        .topics
        .iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_name(Some(t.name.clone()))
        })
        .collect();
    Handled::ready(ResponseKind::DescribeTopicPartitions(
        DescribeTopicPartitionsResponse::default().with_topics(topics),
    ))
}

pub fn handle(ctx: &RequestContext, request: DescribeTopicPartitionsRequest) -> Handled {
    let broker = &ctx.broker;
    let all = request.topics.is_empty();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let cursor_topic = cursor.as_ref().map(|c| c.0.as_str()).unwrap_or("");
    // Names at or after the cursor's topic, sorted and without duplicates.
    let names: BTreeSet<String> = if all {
        broker
            .topics()
            .iter()
            .map(|t| t.name.clone())
            .filter(|n| n.as_str() >= cursor_topic)
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .filter(|n| n.as_str() >= cursor_topic)
            .collect()
    };
    if let Some((topic, partition)) = &cursor {
        // The cursor's topic must be one of those asked for, its partition not negative.
        if (!all && !names.contains(topic)) || *partition < 0 {
            return invalid_request(&request);
        }
    }
    let mut remaining = request
        .response_partition_limit
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            // The previous topics are complete: the next response starts at this one.
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(&name)))
                    .with_partition_index(0),
            );
            break;
        }
        // Kafka: DESCRIBE on the topic; "all topics" leaves the others out.
        if !ctx.authorize(Operation::Describe, ResourceType::Topic, &name) {
            if !all {
                response.topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_name(Some(TopicName(str_bytes(&name))))
                        .with_is_internal(is_internal(&name)),
                );
            }
            continue;
        }
        let Some(topic) = broker.topic(&name) else {
            if !all {
                let error = match validate_topic_name(&name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                response.topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(error.code())
                        .with_name(Some(TopicName(str_bytes(&name))))
                        .with_is_internal(is_internal(&name))
                        .with_topic_authorized_operations(
                            ctx.authorized_operations(ResourceType::Topic, &name),
                        ),
                );
            }
            continue;
        };
        let count = topic.states.len() as i32;
        let from = match &cursor {
            Some((t, p)) if *t == name => *p,
            _ => 0,
        };
        let upto = count.min(from.saturating_add(remaining));
        let listed = partitions(&topic, from, upto);
        remaining -= listed.len() as i32;
        response.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(str_bytes(&topic.name))))
                .with_topic_id(topic.id)
                .with_is_internal(is_internal(&topic.name))
                .with_partitions(listed)
                .with_topic_authorized_operations(
                    ctx.authorized_operations(ResourceType::Topic, &name),
                ),
        );
        if upto < count {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(&topic.name)))
                    .with_partition_index(upto),
            );
            break;
        }
    }
    Handled::ready(ResponseKind::DescribeTopicPartitions(response))
}
