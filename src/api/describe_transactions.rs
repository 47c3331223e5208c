//! DescribeTransactions: the coordinator's view of transactional ids (kafka-transactions
//! describe).

use super::{str_bytes, Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, ResponseKind, TopicName,
};

pub fn handle(ctx: &RequestContext, request: DescribeTransactionsRequest) -> Handled {
    let states = request
        .transactional_ids
        .iter()
        .map(|id| {
            // An error leaves every other field at its zero value, as Kafka answers.
            let state = TransactionState::default().with_transactional_id(id.clone());
            if !ctx.authorize(Operation::Describe, ResourceType::TransactionalId, id) {
                return state.with_error_code(
                    kafka_protocol::ResponseError::TransactionalIdAuthorizationFailed.code(),
                );
            }
            match ctx.broker.transactions.describe(id) {
                Ok(d) => state
                    .with_transaction_state(str_bytes(d.state))
                    .with_transaction_timeout_ms(d.timeout_ms)
                    .with_transaction_start_time_ms(d.start_ms)
                    .with_producer_id(ProducerId(d.producer_id))
                    .with_producer_epoch(d.producer_epoch)
                    .with_topics(
                        d.partitions
                            .into_iter()
                            // Kafka leaves out the topics the principal may not DESCRIBE.
                            .filter(|(topic, _)| {
                                ctx.authorize(Operation::Describe, ResourceType::Topic, topic)
                            })
                            .map(|(topic, partitions)| {
                                TopicData::default()
                                    .with_topic(TopicName(str_bytes(&topic)))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    ),
                Err(e) => state.with_error_code(e.code()),
            }
        })
        .collect();
    Handled::ready(ResponseKind::DescribeTransactions(
        DescribeTransactionsResponse::default().with_transaction_states(states),
    ))
}
