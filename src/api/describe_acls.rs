//! DescribeAcls: with no authorizer (until the security issue lands) Kafka answers
//! SECURITY_DISABLED, which admin tools and UIs read as "ACLs are off".

use super::errors::{ResponseError, NO_AUTHORIZER};
use super::{str_bytes, Handled, RequestContext};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, ResponseKind};

pub fn handle(_ctx: &RequestContext, _request: DescribeAclsRequest) -> Handled {
    Handled::ready(ResponseKind::DescribeAcls(
        DescribeAclsResponse::default()
            .with_error_code(ResponseError::SecurityDisabled.code())
            .with_error_message(Some(str_bytes(NO_AUTHORIZER))),
    ))
}
