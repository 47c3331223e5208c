//! InitProducerId. Without a transactional id (idempotent producers) a fresh producer id with
//! epoch 0, as Kafka (this also serves KIP-360 epoch bumps). With one, the transaction
//! coordinator bumps the id's epoch, fencing any older producer; an open transaction is aborted
//! first (the client gets CONCURRENT_TRANSACTIONS and retries).

use super::errors::{producer_fenced_for, ResponseError};
use super::{Handled, RequestContext};
use crate::coordinator::txn::{ProducerIdAndEpoch, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use crate::security::authorizer::CLUSTER_NAME;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: InitProducerIdRequest) -> Handled {
    let mut response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(NO_PRODUCER_ID))
        .with_producer_epoch(NO_PRODUCER_EPOCH);
    let Some(transactional_id) = request
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .filter(|t| !t.is_empty())
    else {
        // Kafka: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
        if !ctx.authorize(
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ) && !ctx.authorize_any(Operation::Write, ResourceType::Topic)
        {
            response.error_code = ResponseError::ClusterAuthorizationFailed.code();
            return Handled::ready(ResponseKind::InitProducerId(response));
        }
        match ctx.broker.metadata.allocate_producer_id() {
            Ok(id) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = 0;
            }
            Err(e) => {
                tracing::error!(error = %e, "persisting the producer id block failed");
                response.error_code = ResponseError::KafkaStorageError.code();
            }
        }
        return Handled::ready(ResponseKind::InitProducerId(response));
    };
    if !ctx.authorize(
        Operation::Write,
        ResourceType::TransactionalId,
        &transactional_id,
    ) {
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return Handled::ready(ResponseKind::InitProducerId(response));
    }
    // KIP-360 (v3+): the producer's current id and epoch, -1/-1 for a new producer.
    let expected = (request.producer_id.0 != NO_PRODUCER_ID).then_some(ProducerIdAndEpoch {
        producer_id: request.producer_id.0,
        epoch: request.producer_epoch,
    });
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    Handled::Deferred(Box::pin(async move {
        let outcome = broker
            .transactions
            .init_producer_id(&transactional_id, request.transaction_timeout_ms, expected)
            .await;
        if let Some(job) = outcome.markers {
            // The fenced transaction's abort; the client retries once it is complete.
            broker.finish_transaction(job);
        }
        match outcome.result {
            Ok(id) => {
                response.producer_id = ProducerId(id.producer_id);
                response.producer_epoch = id.epoch;
            }
            Err(e) => response.error_code = producer_fenced_for(e, version, 4).code(),
        }
        ResponseKind::InitProducerId(response)
    }))
}
