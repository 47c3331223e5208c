//! DeleteGroups: removes empty groups and their committed offsets (NON_EMPTY_GROUP while
//! members remain), answered once the removal is fsynced.

use super::{Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

pub fn handle(ctx: &RequestContext, request: DeleteGroupsRequest) -> Handled {
    let mut wait_for = None;
    let results: Vec<DeletableGroupResult> = request
        .groups_names
        .iter()
        .map(|id| {
            // Kafka: DELETE on the group.
            let deleted = if ctx.authorize(Operation::Delete, ResourceType::Group, id) {
                ctx.broker.groups.delete_group(id)
            } else {
                Err(E::GroupAuthorizationFailed)
            };
            let code = match deleted {
                Ok(end) => {
                    wait_for = wait_for.max(end);
                    0
                }
                Err(e) => e.code(),
            };
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(code)
        })
        .collect();
    let response = |results: Vec<DeletableGroupResult>| {
        ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(results))
    };
    match wait_for {
        None => Handled::ready(response(results)),
        Some(end) => {
            let broker = ctx.broker.clone();
            Handled::Deferred(Box::pin(async move {
                if broker.groups.wait_durable(end).await.is_err() {
                    let failed = results
                        .into_iter()
                        .map(|r| r.with_error_code(E::CoordinatorNotAvailable.code()))
                        .collect();
                    return response(failed);
                }
                response(results)
            }))
        }
    }
}
