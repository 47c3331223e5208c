//! JoinGroup (classic protocol). A join that waits for the rebalance is deferred until the
//! coordinator completes it.

use super::{str_bytes, Handled, RequestContext};
use crate::coordinator::group::classic::{JoinOutcome, JoinParams};
use crate::coordinator::group::Reply;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

/// Kafka reports the client's address as "/ip".
pub fn client_host(ctx: &RequestContext) -> String {
    format!("/{}", ctx.session.peer.ip())
}

fn response(outcome: JoinOutcome, version: i16) -> ResponseKind {
    let mut r = JoinGroupResponse::default()
        .with_error_code(outcome.error)
        .with_generation_id(outcome.generation)
        .with_leader(str_bytes(&outcome.leader))
        .with_member_id(str_bytes(&outcome.member_id))
        .with_members(
            outcome
                .members
                .into_iter()
                .map(|m| {
                    let mut member = JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_metadata(m.metadata);
                    if version >= 5 {
                        member.group_instance_id = m.instance_id.as_deref().map(str_bytes);
                    }
                    member
                })
                .collect(),
        );
    // Before v7 the protocol name is not nullable.
    r.protocol_name = match (outcome.protocol_name, version >= 7) {
        (Some(n), _) => Some(str_bytes(&n)),
        (None, true) => None,
        (None, false) => Some(str_bytes("")),
    };
    if version >= 7 {
        r.protocol_type = outcome.protocol_type.as_deref().map(str_bytes);
    }
    if version >= 9 {
        r.skip_assignment = outcome.skip_assignment;
    }
    ResponseKind::JoinGroup(r)
}

pub fn handle(ctx: &RequestContext, request: JoinGroupRequest) -> Handled {
    let version = ctx.api_version;
    if !ctx.authorize(Operation::Read, ResourceType::Group, &request.group_id) {
        let outcome = JoinOutcome {
            error: E::GroupAuthorizationFailed.code(),
            generation: -1,
            member_id: request.member_id.to_string(),
            ..Default::default()
        };
        return Handled::ready(response(outcome, version));
    }
    let params = JoinParams {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.session.client().to_string(),
        client_host: client_host(ctx),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    match ctx.broker.groups.join(&request.group_id, params) {
        Reply::Now(outcome) => Handled::ready(response(outcome, version)),
        Reply::Later(rx) => {
            let member_id = request.member_id.to_string();
            Handled::Deferred(Box::pin(async move {
                let outcome = rx.await.unwrap_or_else(|_| JoinOutcome {
                    error: E::RebalanceInProgress.code(),
                    generation: -1,
                    member_id,
                    ..Default::default()
                });
                response(outcome, version)
            }))
        }
    }
}
