//! OffsetDelete: removes committed offsets of topics the group no longer consumes.

use super::{Handled, RequestContext};
use crate::coordinator::group::TopicSource;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    OffsetDeleteRequest, OffsetDeleteResponse, ResponseKind, TopicName,
};
use kafka_protocol::ResponseError as E;

pub fn handle(ctx: &RequestContext, request: OffsetDeleteRequest) -> Handled {
    let asked: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let topics = TopicSource::topics(ctx.broker.as_ref());
    // Kafka: DELETE on the group, then READ on each topic.
    let outcome = if !ctx.authorize(Operation::Delete, ResourceType::Group, &request.group_id) {
        Err(E::GroupAuthorizationFailed)
    } else if request.group_id.is_empty() {
        Err(E::InvalidGroupId)
    } else {
        ctx.broker
            .groups
            .delete_offsets(&request.group_id, &asked, &topics)
    };
    let (results, end) = match outcome {
        Ok(ok) => ok,
        Err(e) => {
            return Handled::ready(ResponseKind::OffsetDelete(
                OffsetDeleteResponse::default().with_error_code(e.code()),
            ))
        }
    };
    let response = OffsetDeleteResponse::default().with_topics(
        results
            .into_iter()
            .map(|(topic, parts)| {
                OffsetDeleteResponseTopic::default()
                    .with_name(TopicName(super::str_bytes(&topic)))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, code)| {
                                // As Kafka: a partition this broker lacks is unknown, whatever
                                // the group holds for it.
                                let code =
                                    if !ctx.authorize(Operation::Read, ResourceType::Topic, &topic)
                                    {
                                        E::TopicAuthorizationFailed.code()
                                    } else if ctx.broker.has_partition(&topic, p) {
                                        code
                                    } else {
                                        E::UnknownTopicOrPartition.code()
                                    };
                                OffsetDeleteResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    match end {
        None => Handled::ready(ResponseKind::OffsetDelete(response)),
        Some(end) => {
            let broker = ctx.broker.clone();
            Handled::Deferred(Box::pin(async move {
                match broker.groups.wait_durable(end).await {
                    Ok(()) => ResponseKind::OffsetDelete(response),
                    Err(_) => ResponseKind::OffsetDelete(
                        OffsetDeleteResponse::default()
                            .with_error_code(E::CoordinatorNotAvailable.code()),
                    ),
                }
            }))
        }
    }
}
