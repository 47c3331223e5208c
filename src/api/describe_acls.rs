//! DescribeAcls: with no authorizer (until the security issue lands) Kafka answers
//! SECURITY_DISABLED, which admin tools and UIs read as "ACLs are off".

use super::errors::{ResponseError, NO_AUTHORIZER};
use super::{str_bytes, Handled, RequestContext};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, ResponseKind};

pub fn handle(_ctx: &RequestContext, request: DescribeAclsRequest) -> Handled {
    // Kafka refuses to parse a filter with the UNKNOWN (0) resource or pattern type and
    // closes the connection.
    if request.resource_type_filter == 0 || request.pattern_type_filter == 0 {
        return Handled::Close(
            "DescribeAcls filter with an unknown resource or pattern type".into(),
        );
    }
    Handled::ready(ResponseKind::DescribeAcls(
        DescribeAclsResponse::default()
            .with_error_code(ResponseError::SecurityDisabled.code())
            .with_error_message(Some(str_bytes(NO_AUTHORIZER))),
    ))
}
