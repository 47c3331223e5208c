//! DescribeGroups: classic groups with members, protocol and (when Stable) assignments.

use super::{str_bytes, Handled, RequestContext};
use crate::coordinator::group::GroupKind;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

pub fn handle(ctx: &RequestContext, request: DescribeGroupsRequest) -> Handled {
    let version = ctx.api_version;
    let groups = request
        .groups
        .iter()
        .map(|id| {
            let mut out = DescribedGroup::default().with_group_id(id.clone());
            if !ctx.authorize(Operation::Describe, ResourceType::Group, id) {
                out.error_code = E::GroupAuthorizationFailed.code();
                return out;
            }
            let found = ctx.broker.groups.inspect(id, |g| match &g.kind {
                GroupKind::Classic(c) => {
                    out.group_state = str_bytes(c.state().name());
                    out.protocol_type = str_bytes(c.protocol_type().unwrap_or_default());
                    out.protocol_data = str_bytes(c.protocol().unwrap_or_default());
                    out.members = c
                        .summaries()
                        .into_iter()
                        .map(|m| {
                            let mut member = DescribedGroupMember::default()
                                .with_member_id(str_bytes(&m.member_id))
                                .with_client_id(str_bytes(&m.client_id))
                                .with_client_host(str_bytes(&m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment);
                            if version >= 4 {
                                member.group_instance_id = m.instance_id.as_deref().map(str_bytes);
                            }
                            member
                        })
                        .collect();
                    true
                }
                // Kafka: a KIP-848 group is not a classic group (ConsumerGroupDescribe shows it).
                GroupKind::Consumer(_) => false,
            });
            if found != Some(true) {
                out.group_state = str_bytes("Dead");
                if version >= 6 {
                    out.error_code = E::GroupIdNotFound.code();
                    out.error_message = Some(str_bytes(&match found {
                        Some(false) => format!("Group {} is not a classic group.", id.as_str()),
                        _ => format!("Group {} not found.", id.as_str()),
                    }));
                }
            }
            if request.include_authorized_operations && out.error_code == 0 {
                out.authorized_operations = ctx.authorized_operations(ResourceType::Group, id);
            }
            out
        })
        .collect();
    Handled::ready(ResponseKind::DescribeGroups(
        DescribeGroupsResponse::default().with_groups(groups),
    ))
}
