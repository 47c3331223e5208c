//! DescribeProducers: the producers a partition leader remembers and their open transactions
//! (kafka-transactions describe-producers, find-hanging).

use super::errors::lookup_error;
use super::{Handled, RequestContext};
use crate::broker::NO_LEADER_EPOCH;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, ProducerId, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: DescribeProducersRequest) -> Handled {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            // Kafka: READ on the topic.
            let authorized = ctx.authorize(Operation::Read, ResourceType::Topic, &topic.name);
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    if !authorized {
                        return response.with_error_code(
                            kafka_protocol::ResponseError::TopicAuthorizationFailed.code(),
                        );
                    }
                    match ctx
                        .broker
                        .led_partition_by_name(&topic.name, index, NO_LEADER_EPOCH)
                    {
                        Err(e) => response.with_error_code(lookup_error(e).code()),
                        Ok((_, led)) => response.with_active_producers(
                            led.log
                                .producers()
                                .into_iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(p.epoch as i32)
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_append_ms)
                                        .with_coordinator_epoch(p.coordinator_epoch)
                                        .with_current_txn_start_offset(
                                            p.current_txn_first_offset.unwrap_or(-1),
                                        )
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Handled::ready(ResponseKind::DescribeProducers(
        DescribeProducersResponse::default().with_topics(topics),
    ))
}
