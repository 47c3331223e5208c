//! DescribeCluster: the registered brokers and the controller (on a single node, this broker).

use super::{str_bytes, Handled, RequestContext};
use crate::security::ResourceType;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: DescribeClusterRequest) -> Handled {
    let brokers = ctx
        .brokers()
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(str_bytes(&b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&ctx.broker.cluster_id))
        .with_controller_id(BrokerId(ctx.controller_id()))
        .with_brokers(brokers);
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = ctx.authorized_operations(
            ResourceType::Cluster,
            crate::security::authorizer::CLUSTER_NAME,
        );
    }
    if ctx.api_version >= 1 {
        // 1 = brokers: the endpoint type this listener is. Kafka answers a request for
        // controllers (2) with MISMATCHED_ENDPOINT_TYPE, any other with UNSUPPORTED_ENDPOINT_TYPE.
        response.endpoint_type = 1;
        let refused = match request.endpoint_type {
            1 => None,
            2 => Some((
                kafka_protocol::ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )),
            _ => Some((
                kafka_protocol::ResponseError::UnsupportedEndpointType,
                "Unsupported endpoint type",
            )),
        };
        if let Some((error, message)) = refused {
            response.error_code = error.code();
            response.error_message = Some(str_bytes(message));
            response.brokers.clear();
        }
    }
    Handled::ready(ResponseKind::DescribeCluster(response))
}
