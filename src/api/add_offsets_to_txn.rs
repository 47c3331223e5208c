//! AddOffsetsToTxn: adds a group's offsets to a producer's transaction, before TxnOffsetCommit
//! (sendOffsetsToTransaction). The transaction gets the group's `__consumer_offsets` partition,
//! as in Kafka; the offsets stay pending in the group coordinator until the transaction ends.

use super::errors::producer_fenced_for;
use super::{Handled, RequestContext};
use crate::coordinator::txn::{offsets_partition, TransactionVersion};
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

/// The version from which clients know PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 2;

pub fn handle(ctx: &RequestContext, request: AddOffsetsToTxnRequest) -> Handled {
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
