//! EndTxn: commits or aborts the producer's transaction. The coordinator makes
//! PrepareCommit/PrepareAbort durable, then the markers are written into every partition of
//! the transaction. Unlike Kafka, the answer waits (a bounded time) for the markers, so a
//! read_committed consumer sees a committed transaction as soon as its producer does. With
//! v5+ (transactions v2) the answer carries the producer's epoch for the next transaction.

use super::errors::producer_fenced_for;
use super::{Handled, RequestContext};
use crate::coordinator::txn::{TransactionVersion, TxnResult, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId, ResponseKind};
use std::time::Duration;

/// The version from which clients know PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 2;

/// How long the answer waits for the markers; after that they finish in the background.
const MARKERS_WAIT: Duration = Duration::from_secs(5);

pub fn handle(ctx: &RequestContext, request: EndTxnRequest) -> Handled {
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    let client_version = if version >= 5 {
        TransactionVersion::TV_2
    } else {
        TransactionVersion::TV_0
    };
    let result = if request.committed {
        TxnResult::Commit
    } else {
        TxnResult::Abort
    };
    let mut response = EndTxnResponse::default()
        .with_producer_id(ProducerId(NO_PRODUCER_ID))
        .with_producer_epoch(NO_PRODUCER_EPOCH);
    if !ctx.authorize(
        Operation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id,
    ) {
        response.error_code =
            kafka_protocol::ResponseError::TransactionalIdAuthorizationFailed.code();
        return Handled::ready(ResponseKind::EndTxn(response));
    }
    Handled::Deferred(Box::pin(async move {
        let outcome = broker
            .transactions
            .end_txn(
                &request.transactional_id,
                request.producer_id.0,
                request.producer_epoch,
                result,
                client_version,
            )
            .await;
        match outcome {
            Ok(outcome) => {
                if let Some(job) = outcome.markers {
                    let finishing = broker.finish_transaction(job);
                    let _ = tokio::time::timeout(MARKERS_WAIT, finishing).await;
                }
                response.producer_id = ProducerId(outcome.producer_id);
                response.producer_epoch = outcome.producer_epoch;
            }
            Err(e) => {
                response.error_code = producer_fenced_for(e, version, PRODUCER_FENCED_SINCE).code()
            }
        }
        ResponseKind::EndTxn(response)
    }))
}
