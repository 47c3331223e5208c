//! ListOffsets: earliest, latest (read_committed: the last stable offset), max timestamp and
//! by-timestamp lookups.

use super::errors::{lookup_error, ResponseError};
use super::{Handled, RequestContext};
use crate::broker::Topic;
use crate::log::Partition;
use crate::security::{Operation, ResourceType};
use crate::tier::Tier;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// By timestamp, older records first: the tier when it holds offsets below the local start.
fn by_timestamp(
    tier: Option<&Arc<Tier>>,
    topic: &Topic,
    log: &Partition,
    ts: i64,
) -> std::io::Result<Option<(i64, i64)>> {
    if let (Some(tier), Some((start, _))) = (tier, log.remote()) {
        if start < log.local_start() {
            let runtime = tokio::runtime::Handle::current();
            // One below a log start set by DeleteRecords is not an answer: the local log's is.
            if let Some(found) = runtime
                .block_on(tier.offset_for_timestamp(topic, log.index, ts))?
                .filter(|&(_, offset)| offset >= log.offsets().log_start)
            {
                return Ok(Some(found));
            }
        }
    }
    log.offset_for_timestamp(ts)
}

fn lookup(
    tier: Option<&Arc<Tier>>,
    topic: &Topic,
    log: &Partition,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64), ResponseError> {
    let offsets = log.offsets();
    let found = match timestamp {
        EARLIEST => return Ok((-1, offsets.log_start)),
        // A client's log start (DeleteRecords) may lie inside the first local segment.
        EARLIEST_LOCAL => return Ok((-1, log.local_start().max(offsets.log_start))),
        // A read_committed consumer's end is the last stable offset, as in Kafka.
        LATEST if read_committed => return Ok((-1, offsets.last_stable_offset)),
        LATEST => return Ok((-1, offsets.high_watermark)),
        // KIP-1005: the last offset copied to the tier.
        LATEST_TIERED => {
            return Ok(match log.remote() {
                Some((start, end)) if start < end => (-1, end - 1),
                _ => (-1, -1),
            })
        }
        MAX_TIMESTAMP => log.offset_of_max_timestamp(),
        ts if ts >= 0 => by_timestamp(tier, topic, log, ts),
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
    let read_committed = request.isolation_level == 1;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let authorized = ctx.authorize(
                Operation::Describe,
                ResourceType::Topic,
                topic.name.0.as_str(),
            );
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let found = ctx.broker.led_partition_by_name(
                        topic.name.0.as_str(),
                        p.partition_index,
                        p.current_leader_epoch,
                    );
                    let result = match found {
                        _ if !authorized => Err(ResponseError::TopicAuthorizationFailed),
                        Err(e) => Err(lookup_error(e)),
                        // Disk (or object store) reads and possibly decompression: off the
                        // async workers.
                        Ok((t, led)) => tokio::task::block_in_place(|| {
                            lookup(
                                ctx.broker.tier.as_ref(),
                                &t,
                                &led.log,
                                p.timestamp,
                                read_committed,
                            )
                        })
                        .map(|found| (found, led.leader_epoch)),
                    };
                    match result {
                        Ok(((timestamp, offset), leader_epoch)) => {
                            out.timestamp = timestamp;
                            out.offset = offset;
                            if ctx.api_version >= 4 && offset >= 0 {
                                out.leader_epoch = leader_epoch;
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
