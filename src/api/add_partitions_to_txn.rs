//! AddPartitionsToTxn: adds partitions to a producer's transaction before it writes to them
//! (transactions v0/v1; a TV2 producer's partitions are added by Produce). v4+ batches
//! transactions and may ask only to verify membership (KIP-890 part 1, as partition leaders do).

use super::errors::{lookup_error, producer_fenced_for};
use super::{Handled, RequestContext};
use crate::broker::Broker;
use crate::coordinator::txn::{TopicPartition, TransactionVersion};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ResponseKind, TopicName,
};
use kafka_protocol::ResponseError as E;
use std::sync::Arc;

/// The version from which clients know PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 2;

/// The TV a request of this version speaks: v5 is what TV2 partition leaders send.
pub fn client_version(api_version: i16) -> TransactionVersion {
    if api_version >= 5 {
        TransactionVersion::TV_2
    } else {
        TransactionVersion::TV_0
    }
}

struct Txn {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
    /// The principal may not WRITE with this transactional id.
    id_denied: bool,
    /// Topics the principal may not WRITE to.
    topics_denied: Vec<String>,
}

/// Adds (or verifies) one transaction's partitions. Like Kafka, unknown partitions fail the
/// whole transaction's request: they get their error, the others OPERATION_NOT_ATTEMPTED.
async fn add(broker: &Broker, txn: &Txn, api_version: i16) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut unknown: Vec<(TopicPartition, E)> = Vec::new();
    let mut partitions: Vec<TopicPartition> = Vec::new();
    for topic in &txn.topics {
        for &p in &topic.partitions {
            let tp = (topic.name.0.to_string(), p);
            if txn.id_denied {
                unknown.push((tp, E::TransactionalIdAuthorizationFailed));
                continue;
            }
            if txn.topics_denied.contains(&tp.0) {
                unknown.push((tp, E::TopicAuthorizationFailed));
                continue;
            }
            match broker.led_partition_by_name(&tp.0, p, crate::broker::NO_LEADER_EPOCH) {
                Ok(_) => partitions.push(tp),
                Err(e) => unknown.push((tp, lookup_error(e))),
            }
        }
    }
    let codes: Vec<(TopicPartition, i16)> = if !unknown.is_empty() {
        unknown
            .into_iter()
            .map(|(tp, e)| (tp, e.code()))
            .chain(
                partitions
                    .into_iter()
                    .map(|tp| (tp, E::OperationNotAttempted.code())),
            )
            .collect()
    } else {
        broker
            .transactions
            .add_partitions(
                &txn.transactional_id,
                txn.producer_id,
                txn.producer_epoch,
                &partitions,
                txn.verify_only,
                client_version(api_version),
            )
            .await
            .into_iter()
            .map(|(tp, code)| {
                let e = E::try_from_code(code).map_or(code, |e| {
                    producer_fenced_for(e, api_version, PRODUCER_FENCED_SINCE).code()
                });
                (tp, e)
            })
            .collect()
    };
    let mut results: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in codes {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(partition)
            .with_partition_error_code(code);
        match results.iter_mut().find(|r| r.name.0.as_str() == topic) {
            Some(r) => r.results_by_partition.push(result),
            None => results.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(super::str_bytes(&topic)))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    results
}

pub fn handle(ctx: &RequestContext, request: AddPartitionsToTxnRequest) -> Handled {
    let version = ctx.api_version;
    let txns: Vec<Txn> = if version >= 4 {
        request
            .transactions
            .into_iter()
            .map(|t| Txn {
                transactional_id: t.transactional_id.0.to_string(),
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                verify_only: t.verify_only,
                topics: t.topics,
                id_denied: false,
                topics_denied: Vec::new(),
            })
            .collect()
    } else {
        vec![Txn {
            transactional_id: request.v3_and_below_transactional_id.0.to_string(),
            producer_id: request.v3_and_below_producer_id.0,
            producer_epoch: request.v3_and_below_producer_epoch,
            verify_only: false,
            topics: request.v3_and_below_topics,
            id_denied: false,
            topics_denied: Vec::new(),
        }]
    };
    // Kafka: verify-only batches come from brokers (CLUSTER_ACTION on the cluster); then WRITE
    // on each transactional id, then on each topic.
    let mut txns = txns;
    if txns.iter().any(|t| t.verify_only)
        && !ctx.authorize(
            Operation::ClusterAction,
            ResourceType::Cluster,
            crate::security::authorizer::CLUSTER_NAME,
        )
    {
        return Handled::ready(ResponseKind::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default()
                .with_error_code(E::ClusterAuthorizationFailed.code()),
        ));
    }
    for txn in &mut txns {
        txn.id_denied = !ctx.authorize(
            Operation::Write,
            ResourceType::TransactionalId,
            &txn.transactional_id,
        );
        txn.topics_denied = txn
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .filter(|t| !ctx.authorize(Operation::Write, ResourceType::Topic, t))
            .collect();
    }
    let broker: Arc<Broker> = ctx.broker.clone();
    Handled::Deferred(Box::pin(async move {
        let mut response = AddPartitionsToTxnResponse::default();
        for txn in &txns {
            let results = add(&broker, txn, version).await;
            if version >= 4 {
                response.results_by_transaction.push(
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(super::str_bytes(&txn.transactional_id).into())
                        .with_topic_results(results),
                );
            } else {
                response.results_by_topic_v3_and_below = results;
            }
        }
        ResponseKind::AddPartitionsToTxn(response)
    }))
}
