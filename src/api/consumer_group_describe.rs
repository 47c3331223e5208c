//! ConsumerGroupDescribe (KIP-848): members, epochs, current and target assignments.

use super::{str_bytes, Handled, RequestContext};
use crate::coordinator::group::assignor::Assignment;
use crate::coordinator::group::consumer::ConsumerGroup;
use crate::coordinator::group::GroupKind;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ResponseKind, TopicName,
};
use kafka_protocol::ResponseError as E;

fn wire(group: &ConsumerGroup, a: &Assignment) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(str_bytes(group.topic_name(id).unwrap_or(""))))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub fn handle(ctx: &RequestContext, request: ConsumerGroupDescribeRequest) -> Handled {
    let version = ctx.api_version;
    let groups = request
        .group_ids
        .iter()
        .map(|id| {
            let mut out = DescribedGroup::default().with_group_id(id.clone());
            if !ctx.authorize(Operation::Describe, ResourceType::Group, id) {
                out.error_code = E::GroupAuthorizationFailed.code();
                return out;
            }
            let found = ctx.broker.groups.inspect(id, |g| match &g.kind {
                GroupKind::Consumer(c) => {
                    out.group_state = str_bytes(c.state_name());
                    out.group_epoch = c.epoch();
                    out.assignment_epoch = c.assignment_epoch();
                    out.assignor_name = str_bytes(&c.assignor_name());
                    out.members = c
                        .members()
                        .map(|m| {
                            let mut member = Member::default()
                                .with_member_id(str_bytes(&m.id))
                                .with_instance_id(m.instance_id.as_deref().map(str_bytes))
                                .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                                .with_member_epoch(m.epoch)
                                .with_client_id(str_bytes(&m.client_id))
                                .with_client_host(str_bytes(&m.client_host))
                                .with_subscribed_topic_names(
                                    m.subscribed_names
                                        .iter()
                                        .map(|n| TopicName(str_bytes(n)))
                                        .collect(),
                                )
                                // Kafka sends "" for a member without a regex.
                                .with_subscribed_topic_regex(Some(str_bytes(
                                    m.regex.as_deref().unwrap_or(""),
                                )))
                                .with_assignment(wire(c, &m.assigned))
                                .with_target_assignment(wire(c, &c.target_of(&m.id)));
                            if version >= 1 {
                                // 1 = a member using the consumer protocol.
                                member.member_type = 1;
                            }
                            member
                        })
                        .collect();
                    true
                }
                GroupKind::Classic(_) => false,
            });
            if found != Some(true) {
                out.error_code = E::GroupIdNotFound.code();
                out.error_message = Some(str_bytes(&match found {
                    Some(false) => format!("Group {} is not a consumer group.", id.as_str()),
                    _ => format!("Group {} not found.", id.as_str()),
                }));
            }
            if request.include_authorized_operations && out.error_code == 0 {
                out.authorized_operations = ctx.authorized_operations(ResourceType::Group, id);
            }
            out
        })
        .collect();
    Handled::ready(ResponseKind::ConsumerGroupDescribe(
        ConsumerGroupDescribeResponse::default().with_groups(groups),
    ))
}
