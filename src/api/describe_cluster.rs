//! DescribeCluster: this broker is the whole cluster and its controller.

use super::{str_bytes, Handled, RequestContext};
use crate::security::ResourceType;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: DescribeClusterRequest) -> Handled {
    let node = BrokerId(ctx.broker.config.node_id);
    let this_broker = DescribeClusterBroker::default()
        .with_broker_id(node)
        .with_host(str_bytes(&ctx.session.listener.advertised_host))
        .with_port(ctx.session.listener.advertised_port as i32);
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&ctx.broker.cluster_id))
        .with_controller_id(node)
        .with_brokers(vec![this_broker]);
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
