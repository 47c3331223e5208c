//! Heartbeat (classic protocol): keeps the member's session and reports rebalances.

use super::{Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, ResponseKind};

pub fn handle(ctx: &RequestContext, request: HeartbeatRequest) -> Handled {
    if !ctx.authorize(Operation::Read, ResourceType::Group, &request.group_id) {
        return Handled::ready(ResponseKind::Heartbeat(
            HeartbeatResponse::default()
                .with_error_code(kafka_protocol::ResponseError::GroupAuthorizationFailed.code()),
        ));
    }
    let error = ctx.broker.groups.heartbeat(
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    Handled::ready(ResponseKind::Heartbeat(
        HeartbeatResponse::default().with_error_code(error),
    ))
}
