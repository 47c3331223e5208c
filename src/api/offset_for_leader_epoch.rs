//! OffsetForLeaderEpoch: the end offset of the epoch asked about. On a single node a partition
//! has one leader epoch; in cluster mode the partition's leader-epoch cache answers for older
//! epochs, as Kafka's, so a consumer validating its position after a leader change (KIP-320)
//! learns where its epoch ended.

use super::errors::{lookup_error, ResponseError};
use super::{Handled, RequestContext};
use crate::security::{Operation, ResourceType};
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
            let authorized = ctx.authorize(
                Operation::Describe,
                ResourceType::Topic,
                topic.topic.0.as_str(),
            );
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut out = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let led = ctx.broker.led_partition_by_name(
                        topic.topic.0.as_str(),
                        p.partition,
                        p.current_leader_epoch,
                    );
                    if !authorized {
                        out.error_code = ResponseError::TopicAuthorizationFailed.code();
                        return out;
                    }
                    match led.map(|(_, led)| led) {
                        Err(e) => out.error_code = lookup_error(e).code(),
                        Ok(led) if p.leader_epoch == led.leader_epoch => {
                            out.leader_epoch = led.leader_epoch;
                            out.end_offset = led.log.offsets().log_end;
                        }
                        // An older epoch, from the cache; an unknown one (newer than ours, or
                        // -1) has no end offset: UNDEFINED, as in Kafka.
                        Ok(led) if p.leader_epoch < led.leader_epoch => {
                            (out.leader_epoch, out.end_offset) =
                                led.log.epoch_end_offset(p.leader_epoch);
                        }
                        Ok(_) => {}
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
