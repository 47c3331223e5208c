//! LeaveGroup (classic protocol): one member before v3, a batch of members (by member id
//! or static instance id) from v3.

use super::{str_bytes, Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, ResponseKind};

pub fn handle(ctx: &RequestContext, request: LeaveGroupRequest) -> Handled {
    let batched = ctx.api_version >= 3;
    let members: Vec<(String, Option<String>)> = if batched {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    if !ctx.authorize(Operation::Read, ResourceType::Group, &request.group_id) {
        response.error_code = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();
        return Handled::ready(ResponseKind::LeaveGroup(response));
    }
    match ctx.broker.groups.leave(&request.group_id, &members) {
        Err(e) => response.error_code = e.code(),
        Ok(codes) if !batched => response.error_code = codes[0],
        Ok(codes) => {
            response.members = members
                .iter()
                .zip(codes)
                .map(|((member_id, instance_id), code)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(member_id))
                        .with_group_instance_id(instance_id.as_deref().map(str_bytes))
                        .with_error_code(code)
                })
                .collect();
        }
    }
    Handled::ready(ResponseKind::LeaveGroup(response))
}
