//! DescribeAcls: the bindings matching one filter, grouped by resource pattern. Needs DESCRIBE
//! on the cluster; with no authorizer Kafka answers SECURITY_DISABLED, which admin tools and UIs
//! read as "ACLs are off".

use super::errors::{ResponseError, NO_AUTHORIZER};
use super::{str_bytes, Handled, RequestContext};
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::{AclBindingFilter, Operation, PatternType, Permission, ResourceType};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

/// A filter from its wire fields; None when a code is UNKNOWN or undefined, which Kafka
/// refuses to parse (the connection closes).
pub(super) fn filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Option<AclBindingFilter> {
    Some(AclBindingFilter {
        resource_type: ResourceType::from_code(resource_type)?,
        name: name.map(|n| n.to_string()),
        pattern_type: PatternType::from_code(pattern_type)?,
        principal: principal.map(|p| p.to_string()),
        host: host.map(|h| h.to_string()),
        operation: Operation::from_code(operation)?,
        permission: Permission::from_code(permission)?,
    })
}

pub fn handle(ctx: &RequestContext, request: DescribeAclsRequest) -> Handled {
    let Some(filter) = filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    ) else {
        return Handled::Close(
            "DescribeAcls filter with an unknown resource, pattern, operation or permission type"
                .into(),
        );
    };
    let response = DescribeAclsResponse::default();
    let Some(authorizer) = &ctx.broker.authorizer else {
        return Handled::ready(ResponseKind::DescribeAcls(
            response
                .with_error_code(ResponseError::SecurityDisabled.code())
                .with_error_message(Some(str_bytes(NO_AUTHORIZER))),
        ));
    };
    if !ctx.authorize(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return Handled::ready(ResponseKind::DescribeAcls(
            response
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(None),
        ));
    }
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut matching: Vec<_> = authorizer
        .acls()
        .iter()
        .filter(|a| filter.matches(a))
        .cloned()
        .collect();
    matching.sort();
    for acl in matching {
        let description = AclDescription::default()
            .with_principal(str_bytes(&acl.principal))
            .with_host(str_bytes(&acl.host))
            .with_operation(acl.operation)
            .with_permission_type(acl.permission);
        match resources.iter_mut().find(|r| {
            r.resource_type == acl.resource_type
                && r.pattern_type == acl.pattern_type
                && *r.resource_name == *acl.resource_name
        }) {
            Some(r) => r.acls.push(description),
            None => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(acl.resource_type)
                    .with_resource_name(str_bytes(&acl.resource_name))
                    .with_pattern_type(acl.pattern_type)
                    .with_acls(vec![description]),
            ),
        }
    }
    Handled::ready(ResponseKind::DescribeAcls(
        response.with_error_message(None).with_resources(resources),
    ))
}
