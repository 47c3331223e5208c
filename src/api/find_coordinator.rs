//! FindCoordinator: this broker coordinates every group and every transactional id. v4+
//! batches keys.

use super::{str_bytes, Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind,
};
use kafka_protocol::ResponseError as E;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// (error, message) for a key type; None means this broker is the coordinator. Every group
/// key is served, the empty one too, as Kafka does (old clients commit offsets under it).
/// Kafka: DESCRIBE on the group or the transactional id the key names.
fn check(ctx: &RequestContext, key_type: i8, key: &str) -> Option<(E, &'static str)> {
    match key_type {
        KEY_TYPE_GROUP if !ctx.authorize(Operation::Describe, ResourceType::Group, key) => Some((
            E::GroupAuthorizationFailed,
            "Not authorized to access group",
        )),
        KEY_TYPE_TRANSACTION
            if !ctx.authorize(Operation::Describe, ResourceType::TransactionalId, key) =>
        {
            Some((
                E::TransactionalIdAuthorizationFailed,
                "Not authorized to access transactional id",
            ))
        }
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => None,
        _ => Some((E::InvalidRequest, "unknown coordinator key type")),
    }
}

pub fn handle(ctx: &RequestContext, request: FindCoordinatorRequest) -> Handled {
    let node = BrokerId(ctx.broker.config.node_id);
    let host = str_bytes(&ctx.session.listener.advertised_host);
    let port = ctx.session.listener.advertised_port as i32;
    let mut response = FindCoordinatorResponse::default();
    if ctx.api_version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default().with_key(key.clone());
                match check(ctx, request.key_type, key) {
                    None => {
                        c.node_id = node;
                        c.host = host.clone();
                        c.port = port;
                    }
                    Some((e, msg)) => {
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = e.code();
                        c.error_message = Some(str_bytes(msg));
                    }
                }
                c
            })
            .collect();
    } else {
        // v0 has no key type: always a group.
        let key_type = if ctx.api_version == 0 {
            KEY_TYPE_GROUP
        } else {
            request.key_type
        };
        match check(ctx, key_type, &request.key) {
            None => {
                response.node_id = node;
                response.host = host;
                response.port = port;
            }
            Some((e, msg)) => {
                response.node_id = BrokerId(-1);
                response.port = -1;
                response.error_code = e.code();
                if ctx.api_version >= 1 {
                    response.error_message = Some(str_bytes(msg));
                }
            }
        }
    }
    Handled::ready(ResponseKind::FindCoordinator(response))
}
