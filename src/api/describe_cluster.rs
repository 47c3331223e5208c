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
        response.endpoint_type = request.endpoint_type;
        // 1 = brokers. Asking a broker for controller endpoints (2) is refused, as in Kafka.
        if request.endpoint_type != 1 {
            response.error_code = kafka_protocol::ResponseError::UnsupportedEndpointType.code();
            response.error_message = Some(str_bytes(
                "only broker endpoints (endpoint_type 1) are served",
            ));
            response.brokers.clear();
        }
    }
    Handled::ready(ResponseKind::DescribeCluster(response))
}
