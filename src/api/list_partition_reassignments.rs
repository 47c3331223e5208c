//! ListPartitionReassignments (`kafka-reassign-partitions --list`, and `kafka-topics
//! --describe`): a single broker never moves a replica, so no reassignment is ever in progress
//! and the answer lists none, for any topic asked about. Kafka's check first: DESCRIBE on the
//! cluster; refused, the answer echoes the partitions asked for under
//! CLUSTER_AUTHORIZATION_FAILED (ListPartitionReassignmentsRequest.getErrorResponse).

use super::{str_bytes, Handled, RequestContext};
use crate::security::Operation;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ResponseKind,
};
use kafka_protocol::ResponseError;

pub fn handle(ctx: &RequestContext, request: ListPartitionReassignmentsRequest) -> Handled {
    let mut response = ListPartitionReassignmentsResponse::default().with_error_message(None);
    if !ctx.authorize_cluster(Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(str_bytes(
            "Request ListPartitionReassignments is not authorized.",
        ));
        response.topics = request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                OngoingTopicReassignment::default()
                    .with_name(t.name)
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| {
                                OngoingPartitionReassignment::default().with_partition_index(p)
                            })
                            .collect(),
                    )
            })
            .collect();
    }
    Handled::ready(ResponseKind::ListPartitionReassignments(response))
}
