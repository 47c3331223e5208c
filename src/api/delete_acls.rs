//! DeleteAcls: with no authorizer every filter gets SECURITY_DISABLED, as in Kafka.

use super::errors::{ResponseError, NO_AUTHORIZER};
use super::{str_bytes, Handled, RequestContext};
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse, ResponseKind};

pub fn handle(_ctx: &RequestContext, request: DeleteAclsRequest) -> Handled {
    let results = request
        .filters
        .iter()
        .map(|_| {
            DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::SecurityDisabled.code())
                .with_error_message(Some(str_bytes(NO_AUTHORIZER)))
        })
        .collect();
    Handled::ready(ResponseKind::DeleteAcls(
        DeleteAclsResponse::default().with_filter_results(results),
    ))
}
