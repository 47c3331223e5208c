//! DescribeCluster: this broker is the whole cluster and its controller.

use super::{str_bytes, Handled, RequestContext};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: DescribeClusterRequest) -> Handled {
    let node = BrokerId(ctx.broker.config.node_id);
    let this_broker = DescribeClusterBroker::default()
        .with_broker_id(node)
        .with_host(str_bytes(&ctx.listener.advertised_host))
        .with_port(ctx.listener.advertised_port as i32);
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&ctx.broker.cluster_id))
        .with_controller_id(node)
        .with_brokers(vec![this_broker]);
    if ctx.api_version >= 1 {
        // 1 = brokers: the endpoint type this listener is. Kafka answers any other request
        // (controllers, 2) with MISMATCHED_ENDPOINT_TYPE and names its own type.
        response.endpoint_type = 1;
        if request.endpoint_type != 1 {
            response.error_code = kafka_protocol::ResponseError::MismatchedEndpointType.code();
            response.error_message = Some(str_bytes(&format!(
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type {}",
                if request.endpoint_type == 2 { "CONTROLLER" } else { "UNKNOWN" }
            )));
            response.brokers.clear();
        }
    }
    Handled::ready(ResponseKind::DescribeCluster(response))
}
