//! OffsetCommit: validated against the group's generation (classic) or member epoch
//! (KIP-848), written to the group log and answered once that write is fsynced.

use super::{Handled, RequestContext};
use crate::coordinator::group::{CommitRequest, OffsetToCommit};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

pub fn handle(ctx: &RequestContext, request: OffsetCommitRequest) -> Handled {
    // Kafka commits only partitions that exist; the others get UNKNOWN_TOPIC_OR_PARTITION.
    let exists: Vec<bool> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ctx.broker.has_partition(&t.name, p.partition_index))
        })
        .collect();
    let mut known = exists.iter();
    let offsets: Vec<OffsetToCommit> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|_| *known.next().unwrap_or(&false))
        .map(|(t, p)| OffsetToCommit {
            topic: t.name.to_string(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
        })
        .collect();
    let outcome = ctx.broker.groups.commit_offsets(
        &request.group_id,
        CommitRequest {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            generation_or_epoch: request.generation_id_or_member_epoch,
            api_version: ctx.api_version,
            offsets,
        },
    );
    let build = move |errors: &[i16]| {
        let mut codes = errors.iter();
        let mut known = exists.iter();
        let topics = request
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(if *known.next().unwrap_or(&false) {
                                        *codes.next().unwrap_or(&0)
                                    } else {
                                        E::UnknownTopicOrPartition.code()
                                    })
                            })
                            .collect(),
                    )
            })
            .collect();
        ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
    };
    match outcome.durable_end {
        None => Handled::ready(build(&outcome.errors)),
        Some(end) => {
            let broker = ctx.broker.clone();
            Handled::Deferred(Box::pin(async move {
                match broker.groups.wait_durable(end).await {
                    Ok(()) => build(&outcome.errors),
                    Err(e) => {
                        tracing::error!(error = %e, "offset commit not made durable");
                        build(&vec![
                            E::CoordinatorNotAvailable.code();
                            outcome.errors.len()
                        ])
                    }
                }
            }))
        }
    }
}
