//! ListPartitionReassignments (`kafka-reassign-partitions --list`, and `kafka-topics
//! --describe`): a single broker never moves a replica, so no reassignment is ever in progress
//! and the answer lists none, for any topic asked about.

use super::{Handled, RequestContext};
use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ResponseKind,
};

pub fn handle(_ctx: &RequestContext, _request: ListPartitionReassignmentsRequest) -> Handled {
    Handled::ready(ResponseKind::ListPartitionReassignments(
        ListPartitionReassignmentsResponse::default().with_error_message(None),
    ))
}
