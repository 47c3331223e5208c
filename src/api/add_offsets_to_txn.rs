//! AddOffsetsToTxn: adds a group's offsets to a producer's transaction, before TxnOffsetCommit
//! (sendOffsetsToTransaction). The transaction gets the group's `__consumer_offsets` partition,
//! as in Kafka; the offsets stay pending in the group coordinator until the transaction ends.

use super::errors::producer_fenced_for;
use super::{Handled, RequestContext};
use crate::coordinator::txn::{offsets_partition, TransactionVersion};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

/// The version from which clients know PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Kafka's checks for adding a group's offsets to a transaction (AddOffsetsToTxn,
/// TxnOffsetCommit): WRITE on the transactional id, then READ on the group.
pub(super) fn txn_and_group_denied(
    ctx: &RequestContext,
    transactional_id: &str,
    group_id: &str,
) -> Option<E> {
    if !ctx.authorize(
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        Some(E::TransactionalIdAuthorizationFailed)
    } else if !ctx.authorize(Operation::Read, ResourceType::Group, group_id) {
        Some(E::GroupAuthorizationFailed)
    } else {
        None
    }
}

pub fn handle(ctx: &RequestContext, request: AddOffsetsToTxnRequest) -> Handled {
    if let Some(e) = txn_and_group_denied(ctx, &request.transactional_id, &request.group_id) {
        return Handled::ready(ResponseKind::AddOffsetsToTxn(
            AddOffsetsToTxnResponse::default().with_error_code(e.code()),
        ));
    }
    let broker = ctx.broker.clone();
    let version = ctx.api_version;
    Handled::Deferred(Box::pin(async move {
        let partition = offsets_partition(&request.group_id);
        let codes = broker
            .transactions
            .add_partitions(
                &request.transactional_id,
                request.producer_id.0,
                request.producer_epoch,
                &[partition],
                false,
                TransactionVersion::TV_0,
            )
            .await;
        let code = codes.first().map_or(0, |(_, c)| *c);
        let code = E::try_from_code(code).map_or(code, |e| {
            producer_fenced_for(e, version, PRODUCER_FENCED_SINCE).code()
        });
        ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
    }))
}
