//! OffsetForLeaderEpoch: a single broker has one leader epoch (0) for every partition.

use super::errors::ResponseError;
use super::{Handled, RequestContext, LEADER_EPOCH};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: OffsetForLeaderEpochRequest) -> Handled {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut out = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    match ctx.broker.partition(topic.topic.0.as_str(), p.partition) {
                        None => out.error_code = ResponseError::UnknownTopicOrPartition.code(),
                        Some(_) if p.current_leader_epoch > LEADER_EPOCH => {
                            out.error_code = ResponseError::UnknownLeaderEpoch.code()
                        }
                        // An unknown epoch (newer than ours, or -1) has no end offset: UNDEFINED, as in Kafka.
                        Some(_) if p.leader_epoch != LEADER_EPOCH => {}
                        Some(log) => {
                            out.leader_epoch = LEADER_EPOCH;
                            out.end_offset = log.offsets().log_end;
                        }
                    }
                    out
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    Handled::ready(ResponseKind::OffsetForLeaderEpoch(
        OffsetForLeaderEpochResponse::default().with_topics(topics),
    ))
}
