//! ApiVersions: the list comes from the single table in api/mod.rs.

use super::{Handled, RequestContext, APIS};
use crate::broker::Broker;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};

pub fn supported_apis(broker: &Broker) -> Vec<ApiVersion> {
    // Like Kafka, KIP-848 APIs are advertised only while the consumer protocol is enabled.
    let kip848 = broker.config.groups.consumer_protocol_enabled;
    APIS.iter()
        .filter(|e| {
            kip848
                || !matches!(
                    e.key,
                    ApiKey::ConsumerGroupHeartbeat | ApiKey::ConsumerGroupDescribe
                )
        })
        .map(|e| {
            ApiVersion::default()
                .with_api_key(e.key as i16)
                .with_min_version(e.min_version)
                .with_max_version(e.max_version)
        })
        .collect()
}

pub fn handle(ctx: &RequestContext, request: ApiVersionsRequest) -> Handled {
    if ctx.api_version >= 3 {
        tracing::info!(
            peer = %ctx.peer,
            client_id = ctx.client_id.as_deref().unwrap_or(""),
            software = %request.client_software_name.as_str(),
            software_version = %request.client_software_version.as_str(),
            "client software"
        );
    }
    let response = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(supported_apis(&ctx.broker));
    Handled::ready(ResponseKind::ApiVersions(response))
}

/// KIP-511: a version we do not know still gets a v0 response with UNSUPPORTED_VERSION and
/// our list, so the client can retry with a version we serve.
pub fn unsupported_version_response(broker: &Broker) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(kafka_protocol::ResponseError::UnsupportedVersion.code())
        .with_api_keys(supported_apis(broker))
}
