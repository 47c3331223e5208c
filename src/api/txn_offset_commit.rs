//! TxnOffsetCommit: a transactional producer's consumed offsets, pending in the group log until
//! the transaction's marker commits or drops them (coordinator/group). Kafka's order: partitions
//! that do not exist answer UNKNOWN_TOPIC_OR_PARTITION and take no further part; then the group
//! id; then the transaction coordinator verifies that the group's `__consumer_offsets`
//! partition is in the producer's transaction (v5+, KIP-890 part 2: adds it, as the Java
//! client with transaction.version 2 sends no AddOffsetsToTxn); then the group's checks; and
//! the answer waits until the offsets are fsynced.

use super::offset_commit::{existing_offsets, partition_codes};
use super::{Handled, RequestContext};
use crate::coordinator::group::{CommitOutcome, TxnCommitRequest};
use crate::coordinator::txn::{offsets_partition, TransactionVersion};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ResponseKind, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError as E;

/// The first version whose verification adds the offsets partition to the transaction
/// (Kafka's txnOffsetCommitRequestVersionToTransactionSupportedOperation: ADD_PARTITION).
const FIRST_ADDING_VERSION: i16 = 5;
/// The first version whose clients know TRANSACTION_ABORTABLE (GENERIC_ERROR_SUPPORTED).
const FIRST_ABORTABLE_VERSION: i16 = 4;

/// A failed verification as Kafka's AddPartitionsToTxnManager hands it to TxnOffsetCommit.
fn verification_error(code: i16, version: i16) -> i16 {
    if code == E::ProducerFenced.code() {
        // "Producers expect to handle INVALID_PRODUCER_EPOCH in this scenario" (every version).
        E::InvalidProducerEpoch.code()
    } else if code == E::TransactionAbortable.code() && version < FIRST_ABORTABLE_VERSION {
        E::InvalidTxnState.code()
    } else {
        code
    }
}

pub fn handle(ctx: &RequestContext, request: TxnOffsetCommitRequest) -> Handled {
    let version = ctx.api_version;
    // Kafka: WRITE on the transactional id, then READ on the group, then on each topic; a
    // refused id or group fails every partition and commits nothing.
    let blanket = super::add_offsets_to_txn::txn_and_group_denied(
        ctx,
        &request.transactional_id,
        &request.group_id,
    );
    let (exists, offsets) = existing_offsets(
        ctx,
        blanket,
        request.topics.iter().flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    t.name.as_str(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_deref(),
                )
            })
        }),
    );
    let group_id = request.group_id.to_string();
    let transactional_id = request.transactional_id.to_string();
    let producer_id = request.producer_id.0;
    let producer_epoch = request.producer_epoch;
    let commit = TxnCommitRequest {
        producer_epoch,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation_id: request.generation_id,
        offsets,
    };
    let count = commit.offsets.len();
    // One code per existing partition, in request order.
    let build = move |errors: &[i16]| {
        let mut codes = partition_codes(&exists, errors);
        let topics = request
            .topics
            .iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(codes.next().unwrap_or(0))
                            })
                            .collect(),
                    )
            })
            .collect();
        ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics))
    };
    if count == 0 {
        return Handled::ready(build(&[]));
    }
    if group_id.is_empty() {
        return Handled::ready(build(&vec![E::InvalidGroupId.code(); count]));
    }
    let broker = ctx.broker.clone();
    Handled::Deferred(Box::pin(async move {
        // Before the verification: a marker written after it fences the write below.
        let guard = broker.groups.txn_offset_guard(producer_id);
        let (verify_only, client_version) = if version >= FIRST_ADDING_VERSION {
            (false, TransactionVersion::TV_2)
        } else {
            (true, TransactionVersion::TV_0)
        };
        let verified = broker
            .transactions
            .add_partitions(
                &transactional_id,
                producer_id,
                producer_epoch,
                &[offsets_partition(&group_id)],
                verify_only,
                client_version,
            )
            .await;
        if let Some(&(_, code)) = verified.iter().find(|(_, code)| *code != 0) {
            return build(&vec![verification_error(code, version); count]);
        }
        let CommitOutcome {
            errors,
            durable_end,
        } = broker.groups.txn_commit_offsets(&group_id, &guard, commit);
        drop(guard);
        let Some(end) = durable_end else {
            return build(&errors);
        };
        match broker.groups.wait_durable(end).await {
            Ok(()) => build(&errors),
            Err(e) => {
                tracing::error!(error = %e, "transactional offset commit not made durable");
                build(&vec![E::CoordinatorNotAvailable.code(); count])
            }
        }
    }))
}
