//! ConsumerGroupHeartbeat (KIP-848): join, stay, reconcile and leave in one API; the
//! coordinator computes assignments.

use super::{str_bytes, Handled, RequestContext};
use crate::coordinator::group::assignor::Assignment;
use crate::coordinator::group::consumer::HeartbeatParams;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: ConsumerGroupHeartbeatRequest) -> Handled {
    let owned = request.topic_partitions.as_ref().map(|tps| {
        let mut a = Assignment::new();
        for tp in tps {
            a.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
        a.retain(|_, ps| !ps.is_empty());
        a
    });
    let params = HeartbeatParams {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|ns| ns.iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: request
            .subscribed_topic_regex
            .as_ref()
            .map(|s| s.to_string()),
        server_assignor: request.server_assignor.as_ref().map(|s| s.to_string()),
        owned,
        client_id: ctx.session.client().to_string(),
        client_host: super::join_group::client_host(ctx),
    };
    // Kafka: READ on the group.
    if !ctx.authorize(Operation::Read, ResourceType::Group, &request.group_id) {
        return Handled::ready(ResponseKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(kafka_protocol::ResponseError::GroupAuthorizationFailed.code())
                .with_member_epoch(-1),
        ));
    }
    let outcome =
        ctx.broker
            .groups
            .consumer_heartbeat(&request.group_id, params, ctx.broker.as_ref());
    let mut response = ConsumerGroupHeartbeatResponse::default()
        .with_error_code(outcome.error)
        .with_error_message(outcome.message.as_deref().map(str_bytes))
        // Kafka names the member only in successful responses.
        .with_member_id(
            Some(str_bytes(&outcome.member_id)).filter(|m| !m.is_empty() && outcome.error == 0),
        )
        .with_member_epoch(outcome.member_epoch)
        .with_heartbeat_interval_ms(outcome.heartbeat_interval_ms);
    if outcome.error == 0 {
        response.assignment = outcome.assignment.map(|a| {
            WireAssignment::default().with_topic_partitions(
                a.into_iter()
                    .map(|(id, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(id)
                            .with_partitions(ps.into_iter().collect())
                    })
                    .collect(),
            )
        });
    }
    Handled::ready(ResponseKind::ConsumerGroupHeartbeat(response))
}
