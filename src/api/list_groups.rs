//! ListGroups, with the state filter (v4+) and the type filter (v5+).

use super::{str_bytes, Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, ResponseKind};

pub fn handle(ctx: &RequestContext, request: ListGroupsRequest) -> Handled {
    let version = ctx.api_version;
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_string())
        .collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_string()).collect();
    // Kafka: every group with DESCRIBE on the cluster, else those with DESCRIBE on the group.
    let all = ctx.authorize(
        Operation::Describe,
        ResourceType::Cluster,
        crate::security::authorizer::CLUSTER_NAME,
    );
    let groups = ctx
        .broker
        .groups
        .list_groups(&states, &types)
        .into_iter()
        .filter(|g| all || ctx.authorize(Operation::Describe, ResourceType::Group, &g.group_id))
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&g.group_id)))
                .with_protocol_type(str_bytes(&g.protocol_type));
            if version >= 4 {
                listed.group_state = str_bytes(g.state);
            }
            if version >= 5 {
                listed.group_type = str_bytes(g.group_type);
            }
            listed
        })
        .collect();
    Handled::ready(ResponseKind::ListGroups(
        ListGroupsResponse::default().with_groups(groups),
    ))
}
