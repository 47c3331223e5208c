//! CreateAcls: with no authorizer every creation gets SECURITY_DISABLED, as in Kafka.

use super::errors::{ResponseError, NO_AUTHORIZER};
use super::{str_bytes, Handled, RequestContext};
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, ResponseKind};

pub fn handle(_ctx: &RequestContext, request: CreateAclsRequest) -> Handled {
    let results = request
        .creations
        .iter()
        .map(|_| {
            AclCreationResult::default()
                .with_error_code(ResponseError::SecurityDisabled.code())
                .with_error_message(Some(str_bytes(NO_AUTHORIZER)))
        })
        .collect();
    Handled::ready(ResponseKind::CreateAcls(
        CreateAclsResponse::default().with_results(results),
    ))
}
