//! Maps broker and log-engine errors to Kafka error codes, and the messages said more than once.

use crate::broker::LookupError;
use crate::log::batch::BatchError;
use crate::log::producer_state::SequenceError;
use crate::log::AppendError;
use kafka_protocol::messages::ResponseKind;
pub use kafka_protocol::ResponseError;

pub const NONE: i16 = 0;

/// PRODUCER_FENCED (KIP-588) is known to clients from `since` on (InitProducerId v4, EndTxn
/// v4, AddPartitionsToTxn v3...); older ones get INVALID_PRODUCER_EPOCH, as Kafka answers.
pub fn producer_fenced_for(e: ResponseError, version: i16, since: i16) -> ResponseError {
    if e == ResponseError::ProducerFenced && version < since {
        ResponseError::InvalidProducerEpoch
    } else {
        e
    }
}

/// The Kafka error for a partition a request cannot use here.
pub fn lookup_error(e: LookupError) -> ResponseError {
    match e {
        LookupError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        LookupError::UnknownTopicId => ResponseError::UnknownTopicId,
        LookupError::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
        LookupError::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        LookupError::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
    }
}

/// The Kafka error code and message for a failed append.
pub fn append_error(e: &AppendError) -> (i16, String) {
    let code = match e {
        AppendError::Batch(BatchError::Corrupt(_)) => ResponseError::CorruptMessage,
        AppendError::Batch(BatchError::Invalid(_)) => ResponseError::InvalidRecord,
        AppendError::TooLarge => ResponseError::MessageTooLarge,
        AppendError::InvalidTimestamp => ResponseError::InvalidTimestamp,
        AppendError::Offline => ResponseError::KafkaStorageError,
        AppendError::Sequence(SequenceError::OutOfOrder) => ResponseError::OutOfOrderSequenceNumber,
        AppendError::Sequence(SequenceError::StaleEpoch) => ResponseError::InvalidProducerEpoch,
        AppendError::Transactional => ResponseError::TransactionalIdAuthorizationFailed,
        AppendError::InvalidTxnState => ResponseError::InvalidTxnState,
        AppendError::CoordinatorFenced => ResponseError::TransactionCoordinatorFenced,
        AppendError::Deleted => ResponseError::UnknownTopicOrPartition,
        AppendError::Io(_) => ResponseError::KafkaStorageError,
    };
    let message = match e {
        AppendError::Batch(BatchError::Corrupt(m)) | AppendError::Batch(BatchError::Invalid(m)) => {
            m.to_string()
        }
        AppendError::TooLarge => "record batch is larger than max.message.bytes".to_string(),
        AppendError::InvalidTimestamp => {
            "a record timestamp is outside message.timestamp.before.max.ms / message.timestamp.after.max.ms".to_string()
        }
        AppendError::Offline => "the partition is offline after a storage error".to_string(),
        AppendError::Sequence(SequenceError::OutOfOrder) => {
            "out of order sequence number".to_string()
        }
        AppendError::Sequence(SequenceError::StaleEpoch) => {
            "producer epoch is older than the current one".to_string()
        }
        AppendError::Transactional => {
            "transactional or control batches need a transactional id (control batches are written by the coordinator only)".to_string()
        }
        AppendError::InvalidTxnState => {
            "a non-transactional batch from a producer with an open transaction".to_string()
        }
        AppendError::CoordinatorFenced => {
            "the marker's coordinator epoch is older than the current one".to_string()
        }
        AppendError::Deleted => "the topic was deleted".to_string(),
        AppendError::Io(e) => format!("storage error: {e}"),
    };
    (code.code(), message)
}

/// What Kafka answers the ACL APIs with while no authorizer runs (SECURITY_DISABLED);
/// `kafka-acls` and UIs (kafbat) treat exactly this as "ACLs are off".
pub const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

/// Calls `count` with every error code `response` carries (top level, per group, topic and
/// partition), for /metrics. APIs whose responses are not walked here count nothing.
pub fn response_errors(response: &ResponseKind, mut count: impl FnMut(i16)) {
    let mut c = |code: i16| {
        if code != NONE {
            count(code)
        }
    };
    match response {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| c(p.error_code)),
        ResponseKind::Fetch(r) => {
            c(r.error_code);
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| c(p.error_code));
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| c(p.error_code)),
        ResponseKind::Metadata(r) => {
            c(r.error_code);
            for t in &r.topics {
                c(t.error_code);
                t.partitions.iter().for_each(|p| c(p.error_code));
            }
        }
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| c(p.error_code)),
        ResponseKind::TxnOffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| c(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            c(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| c(p.error_code));
            for g in &r.groups {
                c(g.error_code);
                g.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .for_each(|p| c(p.error_code));
            }
        }
        ResponseKind::FindCoordinator(r) => {
            c(r.error_code);
            r.coordinators.iter().for_each(|k| c(k.error_code));
        }
        ResponseKind::JoinGroup(r) => c(r.error_code),
        ResponseKind::SyncGroup(r) => c(r.error_code),
        ResponseKind::Heartbeat(r) => c(r.error_code),
        ResponseKind::LeaveGroup(r) => {
            c(r.error_code);
            r.members.iter().for_each(|m| c(m.error_code));
        }
        ResponseKind::ConsumerGroupHeartbeat(r) => c(r.error_code),
        ResponseKind::DescribeGroups(r) => r.groups.iter().for_each(|g| c(g.error_code)),
        ResponseKind::InitProducerId(r) => c(r.error_code),
        ResponseKind::AddOffsetsToTxn(r) => c(r.error_code),
        ResponseKind::EndTxn(r) => c(r.error_code),
        ResponseKind::AddPartitionsToTxn(r) => {
            c(r.error_code);
            r.results_by_transaction
                .iter()
                .flat_map(|t| &t.topic_results)
                .flat_map(|t| &t.results_by_partition)
                .for_each(|p| c(p.partition_error_code));
        }
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| c(t.error_code)),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| c(t.error_code)),
        _ => {}
    }
}
