//! AlterConfigs (the legacy API): a resource's configs are replaced as a whole by the ones in
//! the request (for a topic its overrides, for a broker entity its dynamic configs); names
//! not in the request are removed. No BROKER_LOGGER, as in Kafka. The checks and stores are
//! IncrementalAlterConfigs'.

use super::incremental_alter_configs::{
    alter_broker, alter_topic, broker_entity, check_entries, duplicated_resources,
    resource_outcome, unsupported_type, Refusal, BROKER, TOPIC,
};
use super::{Handled, RequestContext};
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ResponseKind};
use std::collections::BTreeMap;

fn alter(
    ctx: &RequestContext,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Refusal> {
    check_entries(
        resource
            .configs
            .iter()
            .map(|c| (c.name.as_str(), c.value.is_none())),
    )?;
    let configs: BTreeMap<String, String> = resource
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_deref().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        TOPIC => alter_topic(ctx, name, configs, validate_only),
        BROKER => {
            let cluster_default = broker_entity(ctx, name)?;
            alter_broker(ctx, cluster_default, configs, validate_only)
        }
        other => Err(unsupported_type(other)),
    }
}

pub fn handle(ctx: &RequestContext, request: AlterConfigsRequest) -> Handled {
    let twice = duplicated_resources(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let responses = request
        .resources
        .iter()
        .map(|r| {
            let (code, message) = resource_outcome(
                ctx,
                &twice,
                r.resource_type,
                r.resource_name.as_str(),
                || alter(ctx, r, request.validate_only),
            );
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    Handled::ready(ResponseKind::AlterConfigs(
        AlterConfigsResponse::default().with_responses(responses),
    ))
}
