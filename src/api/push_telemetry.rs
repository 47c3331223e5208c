//! PushTelemetry (KIP-714): checked as Kafka's ClientMetricsManager checks it, then the metrics
//! are dropped (no receiver). Not advertised, see get_telemetry_subscriptions.rs.

use super::get_telemetry_subscriptions::{
    subscription_id, ACCEPTED_COMPRESSION_TYPES, TELEMETRY_MAX_BYTES,
};
use super::{Handled, RequestContext};
use kafka_protocol::messages::{PushTelemetryRequest, PushTelemetryResponse, ResponseKind};
use kafka_protocol::ResponseError;

pub fn handle(_ctx: &RequestContext, request: PushTelemetryRequest) -> Handled {
    let id = request.client_instance_id;
    // Kafka's reserved ids: zero and the metadata topic's id (one).
    let reserved = id.is_nil() || id.as_u128() == 1;
    let error = if reserved {
        Some(ResponseError::InvalidRequest)
    } else if request.subscription_id != subscription_id(&id) {
        Some(ResponseError::UnknownSubscriptionId)
    } else if request.compression_type != 0
        && !ACCEPTED_COMPRESSION_TYPES.contains(&request.compression_type)
    {
        Some(ResponseError::UnsupportedCompressionType)
    } else if request.metrics.len() > TELEMETRY_MAX_BYTES as usize {
        Some(ResponseError::TelemetryTooLarge)
    } else {
        None
    };
    Handled::ready(ResponseKind::PushTelemetry(
        PushTelemetryResponse::default().with_error_code(error.map_or(0, |e| e.code())),
    ))
}
