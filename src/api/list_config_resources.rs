//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources, KIP-714): the resources
//! DescribeConfigs can describe, as Kafka 4.4 lists them. v0 lists client-metrics
//! subscriptions only: sluice has none. Kafka's check first: DESCRIBE_CONFIGS on the cluster,
//! refused with CLUSTER_AUTHORIZATION_FAILED and no resources.

use super::{str_bytes, Handled, RequestContext};
use crate::security::Operation;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{
    ListConfigResourcesRequest, ListConfigResourcesResponse, ResponseKind,
};
use kafka_protocol::ResponseError;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

pub fn handle(ctx: &RequestContext, request: ListConfigResourcesRequest) -> Handled {
    let mut response = ListConfigResourcesResponse::default();
    if !ctx.authorize_cluster(Operation::DescribeConfigs) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Handled::ready(ResponseKind::ListConfigResources(response));
    }
    if ctx.api_version == 0 {
        // Client-metrics subscriptions: none are configured.
        return Handled::ready(ResponseKind::ListConfigResources(response));
    }
    let supported = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];
    let types: Vec<i8> = if request.resource_types.is_empty() {
        supported.to_vec()
    } else {
        request.resource_types.clone()
    };
    if types.iter().any(|t| !supported.contains(t)) {
        response.error_code = ResponseError::UnsupportedVersion.code();
        return Handled::ready(ResponseKind::ListConfigResources(response));
    }
    let broker = &ctx.broker;
    let mut resources = Vec::new();
    let mut add = |resource_type: i8, name: &str| {
        resources.push(
            ConfigResource::default()
                .with_resource_name(str_bytes(name))
                .with_resource_type(resource_type),
        )
    };
    if types.contains(&TOPIC) {
        for t in broker.topics() {
            add(TOPIC, &t.name);
        }
    }
    // Every broker has configs and loggers; groups and client-metrics subscriptions are
    // listed only once configs are set for them, which sluice does not support yet.
    for resource_type in [BROKER, BROKER_LOGGER] {
        if types.contains(&resource_type) {
            for id in broker.metadata.brokers() {
                add(resource_type, &id.to_string());
            }
        }
    }
    response.config_resources = resources;
    Handled::ready(ResponseKind::ListConfigResources(response))
}
