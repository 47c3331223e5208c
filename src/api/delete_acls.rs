//! DeleteAcls: removes the bindings each filter matches (durably before answering) and reports
//! them per filter. Needs ALTER on the cluster; SECURITY_DISABLED with no authorizer, as Kafka.

use super::describe_acls::filter;
use super::errors::{ResponseError, NO_AUTHORIZER};
use super::{str_bytes, Handled, RequestContext};
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse, ResponseKind};

fn all_failed(count: usize, error: ResponseError, message: Option<&str>) -> Handled {
    let results = (0..count)
        .map(|_| {
            DeleteAclsFilterResult::default()
                .with_error_code(error.code())
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    Handled::ready(ResponseKind::DeleteAcls(
        DeleteAclsResponse::default().with_filter_results(results),
    ))
}

pub fn handle(ctx: &RequestContext, request: DeleteAclsRequest) -> Handled {
    let filters: Option<Vec<_>> = request
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let Some(filters) = filters else {
        return Handled::Close(
            "DeleteAcls filter with an unknown resource, pattern, operation or permission type"
                .into(),
        );
    };
    let Some(authorizer) = ctx.broker.authorizer.clone() else {
        return all_failed(
            filters.len(),
            ResponseError::SecurityDisabled,
            Some(NO_AUTHORIZER),
        );
    };
    if !ctx.authorize(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        return all_failed(
            filters.len(),
            ResponseError::ClusterAuthorizationFailed,
            None,
        );
    }
    // A metadata fsync: off the async workers.
    let removed = match tokio::task::block_in_place(|| authorizer.delete(&filters)) {
        Ok(removed) => removed,
        Err(e) => {
            tracing::error!(error = %e, "persisting ACLs failed");
            return all_failed(
                filters.len(),
                ResponseError::KafkaStorageError,
                Some(&e.to_string()),
            );
        }
    };
    let results = removed
        .into_iter()
        .map(|acls| {
            DeleteAclsFilterResult::default()
                .with_error_message(None)
                .with_matching_acls(
                    acls.into_iter()
                        .map(|a| {
                            DeleteAclsMatchingAcl::default()
                                .with_error_message(None)
                                .with_resource_type(a.resource_type)
                                .with_resource_name(str_bytes(&a.resource_name))
                                .with_pattern_type(a.pattern_type)
                                .with_principal(str_bytes(&a.principal))
                                .with_host(str_bytes(&a.host))
                                .with_operation(a.operation)
                                .with_permission_type(a.permission)
                        })
                        .collect(),
                )
        })
        .collect();
    Handled::ready(ResponseKind::DeleteAcls(
        DeleteAclsResponse::default().with_filter_results(results),
    ))
}
