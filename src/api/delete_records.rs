//! DeleteRecords: moves a partition's log start offset up (offset -1: to the high watermark),
//! as Kafka's ReplicaManager.deleteRecords. The answer's low watermark is the new log start;
//! the log engine persists it before answering (`Partition::delete_records_before`).

use super::errors::ResponseError;
use super::{Handled, RequestContext};
use crate::broker::NO_LEADER_EPOCH;
use crate::log::LogStartError;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

/// Kafka's DeleteRecordsResponse.INVALID_LOW_WATERMARK.
const INVALID_LOW_WATERMARK: i64 = -1;

/// Kafka's Topic.isInternal: records of these cannot be deleted.
pub const INTERNAL_TOPICS: [&str; 3] = [
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

fn delete(ctx: &RequestContext, topic: &str, index: i32, offset: i64) -> (i16, i64) {
    if INTERNAL_TOPICS.contains(&topic) {
        return (
            ResponseError::InvalidTopicException.code(),
            INVALID_LOW_WATERMARK,
        );
    }
    let (_, led) = match ctx
        .broker
        .led_partition_by_name(topic, index, NO_LEADER_EPOCH)
    {
        Ok(found) => found,
        Err(e) => return (super::errors::lookup_error(e).code(), INVALID_LOW_WATERMARK),
    };
    // Kafka refuses compact-only topics (cleanup.policy without delete).
    if !led.log.config().delete {
        return (ResponseError::PolicyViolation.code(), INVALID_LOW_WATERMARK);
    }
    // A checkpoint write and segment deletions: off the async workers.
    match tokio::task::block_in_place(|| led.log.delete_records_before(offset)) {
        Ok(low_watermark) => (0, low_watermark),
        Err(LogStartError::OutOfRange { .. }) => (
            ResponseError::OffsetOutOfRange.code(),
            INVALID_LOW_WATERMARK,
        ),
        Err(LogStartError::Deleted) => (
            ResponseError::UnknownTopicOrPartition.code(),
            INVALID_LOW_WATERMARK,
        ),
        Err(LogStartError::Io(e)) => {
            tracing::error!(topic, partition = index, error = %e, "delete records failed");
            (
                ResponseError::KafkaStorageError.code(),
                INVALID_LOW_WATERMARK,
            )
        }
    }
}

pub fn handle(ctx: &RequestContext, request: DeleteRecordsRequest) -> Handled {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let authorized =
                ctx.authorize(Operation::Delete, ResourceType::Topic, t.name.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let (error_code, low_watermark) = if authorized {
                        delete(ctx, t.name.0.as_str(), p.partition_index, p.offset)
                    } else {
                        (ResponseError::TopicAuthorizationFailed.code(), -1)
                    };
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(low_watermark)
                        .with_error_code(error_code)
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Handled::ready(ResponseKind::DeleteRecords(
        DeleteRecordsResponse::default().with_topics(topics),
    ))
}
