//! GetTelemetrySubscriptions (KIP-714), answered as Kafka answers with no client-metrics
//! subscriptions configured: an empty list of requested metrics, so the client pushes nothing
//! and asks again after the push interval. Like Kafka without a client-telemetry receiver,
//! sluice does not advertise this API or PushTelemetry (api_versions.rs), so clients that
//! negotiate (the Java client, librdkafka) never send them; one that sends them anyway gets
//! this answer.

use super::{Handled, RequestContext};
use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, ResponseKind,
};

/// Kafka's default push interval of a client with no subscription (5 minutes).
pub const PUSH_INTERVAL_MS: i32 = 300_000;
/// Kafka's `telemetry.max.bytes` default.
pub const TELEMETRY_MAX_BYTES: i32 = 1024 * 1024;
/// The compression types Kafka accepts for pushed metrics: zstd, lz4, gzip, snappy.
pub const ACCEPTED_COMPRESSION_TYPES: [i8; 4] = [4, 3, 1, 2];

/// The subscription a client instance holds: derived from its id, so PushTelemetry can check
/// it without remembering clients (every subscription is the same empty one).
pub fn subscription_id(client_instance_id: &uuid::Uuid) -> i32 {
    let b = client_instance_id.as_bytes();
    b.chunks(4)
        .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .fold(0, |acc, x| acc ^ x)
}

pub fn handle(_ctx: &RequestContext, request: GetTelemetrySubscriptionsRequest) -> Handled {
    // A client without an id yet (the zero UUID) gets a new one.
    let id = if request.client_instance_id.is_nil() {
        uuid::Uuid::new_v4()
    } else {
        request.client_instance_id
    };
    let response = GetTelemetrySubscriptionsResponse::default()
        .with_client_instance_id(id)
        .with_subscription_id(subscription_id(&id))
        .with_accepted_compression_types(ACCEPTED_COMPRESSION_TYPES.to_vec())
        .with_push_interval_ms(PUSH_INTERVAL_MS)
        .with_telemetry_max_bytes(TELEMETRY_MAX_BYTES)
        .with_delta_temporality(true)
        .with_requested_metrics(Vec::new());
    Handled::ready(ResponseKind::GetTelemetrySubscriptions(response))
}
