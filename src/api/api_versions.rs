//! ApiVersions: the list comes from the single table in api/mod.rs.

use super::str_bytes;
use super::{Handled, RequestContext, APIS};
use crate::broker::Broker;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};

/// A Kafka feature flag (KIP-584) as this broker implements it. The Java client and franz-go
/// switch behaviour on finalized features (transactions v2 on `transaction.version`, so that one
/// is listed only once transactions work).
struct Feature {
    name: &'static str,
    min: i16,
    max: i16,
    finalized: fn(&Broker) -> i16,
}

static FEATURES: &[Feature] = &[
    // 7..27 = 3.3-IV3 (Kafka 4's minimum) .. 4.1-IV1: the schemas of the kafka-protocol crate.
    Feature {
        name: "metadata.version",
        min: 7,
        max: 27,
        finalized: |_| 27,
    },
    // transaction.version 2 = KIP-890 part 2: partitions added by Produce v12+, an epoch bump
    // at every EndTxn v5+.
    Feature {
        name: "transaction.version",
        min: 0,
        max: 2,
        finalized: |b| b.config.transactions.server_version.0,
    },
    // group.version 1 = the KIP-848 consumer protocol.
    Feature {
        name: "group.version",
        min: 0,
        max: 1,
        finalized: |b| i16::from(b.config.groups.consumer_protocol_enabled),
    },
];

/// A feature this broker implements: (name, lowest level, highest level, finalized level;
/// 0 = not finalized). UpdateFeatures checks requests against these.
pub fn features(broker: &Broker) -> Vec<(&'static str, i16, i16, i16)> {
    FEATURES
        .iter()
        .map(|f| (f.name, f.min, f.max, (f.finalized)(broker)))
        .collect()
}

/// The epoch of the finalized features: a single node never changes them while it runs.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

pub fn supported_apis(broker: &Broker) -> Vec<ApiVersion> {
    // Like Kafka, KIP-848 APIs are advertised only while the consumer protocol is enabled, and
    // the KIP-714 telemetry APIs only with a client-telemetry receiver, which sluice has not.
    let kip848 = broker.config.groups.consumer_protocol_enabled;
    APIS.iter()
        .filter(|e| {
            kip848
                || !matches!(
                    e.key,
                    ApiKey::ConsumerGroupHeartbeat | ApiKey::ConsumerGroupDescribe
                )
        })
        .filter(|e| {
            !matches!(
                e.key,
                ApiKey::GetTelemetrySubscriptions | ApiKey::PushTelemetry
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

/// Kafka's rule for ClientSoftwareName and ClientSoftwareVersion (v3+): letters, digits, '-'
/// and '.', starting and ending with a letter or digit. Anything else is INVALID_REQUEST.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

pub fn handle(ctx: &RequestContext, request: ApiVersionsRequest) -> Handled {
    if ctx.api_version >= 3
        && !(valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version))
    {
        return Handled::ready(ResponseKind::ApiVersions(
            ApiVersionsResponse::default()
                .with_error_code(kafka_protocol::ResponseError::InvalidRequest.code()),
        ));
    }
    if ctx.api_version >= 3 {
        tracing::info!(
            peer = %ctx.session.peer,
            client_id = ctx.session.client(),
            software = %request.client_software_name.as_str(),
            software_version = %request.client_software_version.as_str(),
            "client software"
        );
    }
    let broker = &ctx.broker;
    let features = features(broker);
    let supported = features
        .iter()
        .map(|&(name, min, max, _)| {
            SupportedFeatureKey::default()
                .with_name(str_bytes(name))
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    // Like Kafka, a feature at level 0 is not finalized at all.
    let finalized = features
        .iter()
        .map(|&(name, _, _, level)| (name, level))
        .filter(|&(_, level)| level > 0)
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(str_bytes(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    let response = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(supported_apis(broker))
        .with_supported_features(supported)
        .with_finalized_features_epoch(FINALIZED_FEATURES_EPOCH)
        .with_finalized_features(finalized);
    Handled::ready(ResponseKind::ApiVersions(response))
}

/// KIP-511: a version we do not know still gets a v0 response with UNSUPPORTED_VERSION and,
/// as Kafka answers, only ApiVersions' own range, so the client retries with a version we
/// serve. A full list would be taken as the answer (franz-go does): no features, so no
/// transactions v2.
pub fn unsupported_version_response(broker: &Broker) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(kafka_protocol::ResponseError::UnsupportedVersion.code())
        .with_api_keys(
            supported_apis(broker)
                .into_iter()
                .filter(|a| a.api_key == ApiKey::ApiVersions as i16)
                .collect(),
        )
}
