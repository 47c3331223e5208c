//! ListOffsets: earliest, latest, max timestamp and by-timestamp lookups.

use super::errors::ResponseError;
use super::{Handled, RequestContext, LEADER_EPOCH};
use crate::log::Partition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

fn lookup(log: &Partition, timestamp: i64) -> Result<(i64, i64), ResponseError> {
    let offsets = log.offsets();
    let found = match timestamp {
        EARLIEST | EARLIEST_LOCAL => return Ok((-1, offsets.log_start)),
        LATEST => return Ok((-1, offsets.high_watermark)),
        // Nothing is tiered yet.
        LATEST_TIERED => return Ok((-1, -1)),
        MAX_TIMESTAMP => log.offset_of_max_timestamp(),
        ts if ts >= 0 => log.offset_for_timestamp(ts),
        _ => return Err(ResponseError::InvalidRequest),
    };
    match found {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Ok((-1, -1)),
        Err(e) => {
            tracing::error!(topic = %log.topic, partition = log.index, error = %e, "list offsets read failed");
            Err(ResponseError::KafkaStorageError)
        }
    }
}

pub fn handle(ctx: &RequestContext, request: ListOffsetsRequest) -> Handled {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let result = match ctx
                        .broker
                        .partition(topic.name.0.as_str(), p.partition_index)
                    {
                        None => Err(ResponseError::UnknownTopicOrPartition),
                        Some(_) if p.current_leader_epoch > LEADER_EPOCH => {
                            Err(ResponseError::UnknownLeaderEpoch)
                        }
                        // Disk reads and possibly decompression: off the async workers.
                        Some(log) => tokio::task::block_in_place(|| lookup(&log, p.timestamp)),
                    };
                    match result {
                        Ok((timestamp, offset)) => {
                            out.timestamp = timestamp;
                            out.offset = offset;
                            if ctx.api_version >= 4 && offset >= 0 {
                                out.leader_epoch = LEADER_EPOCH;
                            }
                        }
                        Err(e) => {
                            out.error_code = e.code();
                            out.timestamp = -1;
                            out.offset = -1;
                        }
                    }
                    out
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Handled::ready(ResponseKind::ListOffsets(
        ListOffsetsResponse::default().with_topics(topics),
    ))
}
