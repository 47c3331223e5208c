//! SyncGroup (classic protocol): the leader hands out assignments; followers wait for them.

use super::{str_bytes, Handled, RequestContext};
use crate::coordinator::group::classic::{SyncOutcome, SyncParams};
use crate::coordinator::group::Reply;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError as E;

fn response(outcome: SyncOutcome, version: i16) -> ResponseKind {
    let mut r = SyncGroupResponse::default()
        .with_error_code(outcome.error)
        .with_assignment(outcome.assignment);
    if version >= 5 {
        r.protocol_type = outcome.protocol_type.as_deref().map(str_bytes);
        r.protocol_name = outcome.protocol_name.as_deref().map(str_bytes);
    }
    ResponseKind::SyncGroup(r)
}

pub fn handle(ctx: &RequestContext, request: SyncGroupRequest) -> Handled {
    let version = ctx.api_version;
    if !ctx.authorize(Operation::Read, ResourceType::Group, &request.group_id) {
        let outcome = SyncOutcome {
            error: E::GroupAuthorizationFailed.code(),
            ..Default::default()
        };
        return Handled::ready(response(outcome, version));
    }
    let params = SyncParams {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: request.generation_id,
        protocol_type: request.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: request.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    match ctx.broker.groups.sync(&request.group_id, params) {
        Reply::Now(outcome) => Handled::ready(response(outcome, version)),
        Reply::Later(rx) => Handled::Deferred(Box::pin(async move {
            let outcome = rx.await.unwrap_or_else(|_| SyncOutcome {
                error: E::RebalanceInProgress.code(),
                ..Default::default()
            });
            response(outcome, version)
        })),
    }
}
