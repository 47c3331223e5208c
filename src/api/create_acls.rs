//! CreateAcls: validates each binding as Kafka does (INVALID_REQUEST for a filter-only code,
//! a CLUSTER resource not named kafka-cluster, an empty name, a principal without a type), then
//! adds the valid ones durably before answering. Needs ALTER on the cluster; SECURITY_DISABLED
//! with no authorizer, as Kafka.

use super::errors::{ResponseError, NO_AUTHORIZER};
use super::{str_bytes, Handled, RequestContext};
use crate::metadata::AclEntry;
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::{Operation, PatternType, Permission, ResourceType};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, ResponseKind};

/// The binding, or Kafka's INVALID_REQUEST message.
fn validate(c: &AclCreation) -> Result<AclEntry, String> {
    let resource = ResourceType::from_code(c.resource_type)
        .filter(|r| *r != ResourceType::Any)
        .ok_or_else(|| format!("Invalid resourceType {}", c.resource_type))?;
    PatternType::from_code(c.resource_pattern_type)
        .filter(|p| matches!(p, PatternType::Literal | PatternType::Prefixed))
        .ok_or_else(|| format!("Invalid patternType {}", c.resource_pattern_type))?;
    Operation::from_code(c.operation)
        .filter(|o| *o != Operation::Any)
        .ok_or_else(|| format!("Invalid operation {}", c.operation))?;
    Permission::from_code(c.permission_type)
        .filter(|p| *p != Permission::Any)
        .ok_or_else(|| format!("Invalid permissionType {}", c.permission_type))?;
    if resource == ResourceType::Cluster && *c.resource_name != *CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if c.resource_name.is_empty() {
        return Err("Invalid empty resource name".to_string());
    }
    match c.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => {
            return Err(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                c.principal.as_str()
            ))
        }
    }
    if c.host.is_empty() {
        return Err("Invalid empty host".to_string());
    }
    Ok(AclEntry {
        resource_type: c.resource_type,
        resource_name: c.resource_name.to_string(),
        pattern_type: c.resource_pattern_type,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: c.operation,
        permission: c.permission_type,
    })
}

fn all_failed(count: usize, error: ResponseError, message: Option<&str>) -> Handled {
    let results = (0..count)
        .map(|_| {
            AclCreationResult::default()
                .with_error_code(error.code())
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    Handled::ready(ResponseKind::CreateAcls(
        CreateAclsResponse::default().with_results(results),
    ))
}

pub fn handle(ctx: &RequestContext, request: CreateAclsRequest) -> Handled {
    let count = request.creations.len();
    let Some(authorizer) = ctx.broker.authorizer.clone() else {
        return all_failed(count, ResponseError::SecurityDisabled, Some(NO_AUTHORIZER));
    };
    if !ctx.authorize(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        return all_failed(count, ResponseError::ClusterAuthorizationFailed, None);
    }
    let checked: Vec<Result<AclEntry, String>> = request.creations.iter().map(validate).collect();
    let valid: Vec<AclEntry> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    // A metadata fsync: off the async workers.
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        tokio::task::block_in_place(|| authorizer.create(&valid))
    };
    let results = checked
        .into_iter()
        .map(|c| match (c, &stored) {
            (Err(message), _) => AclCreationResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(&message))),
            (Ok(_), Err(e)) => AclCreationResult::default()
                .with_error_code(ResponseError::KafkaStorageError.code())
                .with_error_message(Some(str_bytes(&e.to_string()))),
            (Ok(_), Ok(())) => AclCreationResult::default().with_error_message(None),
        })
        .collect();
    if let Err(e) = &stored {
        tracing::error!(error = %e, "persisting ACLs failed");
    }
    Handled::ready(ResponseKind::CreateAcls(
        CreateAclsResponse::default().with_results(results),
    ))
}
