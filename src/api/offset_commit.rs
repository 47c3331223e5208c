//! OffsetCommit: validated against the group's generation (classic) or member epoch
//! (KIP-848), written to the group log and answered once that write is fsynced.

use super::{Handled, RequestContext};
use crate::broker::Broker;
use crate::coordinator::group::{CommitRequest, OffsetToCommit};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

/// Kafka commits only partitions that exist; the others get UNKNOWN_TOPIC_OR_PARTITION. From a
/// commit request's (topic, partition, offset, leader epoch, metadata) in request order: which
/// exist, and the offsets to commit of those that do (OffsetCommit and TxnOffsetCommit).
/// The offsets to commit, and per partition in request order the error it gets before the
/// coordinator sees it (0: none): `blanket` for all (a group or transactional id the principal
/// may not use), TOPIC_AUTHORIZATION_FAILED without READ on the topic, then
/// UNKNOWN_TOPIC_OR_PARTITION, as Kafka checks.
pub(super) fn existing_offsets<'a>(
    ctx: &RequestContext,
    blanket: Option<E>,
    partitions: impl Iterator<Item = (&'a str, i32, i64, i32, Option<&'a str>)>,
) -> (Vec<i16>, Vec<OffsetToCommit>) {
    let broker: &Broker = &ctx.broker;
    let mut exists = Vec::new();
    let mut offsets = Vec::new();
    for (topic, partition, offset, leader_epoch, metadata) in partitions {
        let code = if let Some(e) = blanket {
            e.code()
        } else if !ctx.authorize(Operation::Read, ResourceType::Topic, topic) {
            E::TopicAuthorizationFailed.code()
        } else if !broker.has_partition(topic, partition) {
            E::UnknownTopicOrPartition.code()
        } else {
            0
        };
        exists.push(code);
        if code == 0 {
            offsets.push(OffsetToCommit {
                topic: topic.to_string(),
                partition,
                offset,
                leader_epoch,
                metadata: metadata.map(str::to_string),
            });
        }
    }
    (exists, offsets)
}

/// One error code per requested partition, in request order: the commit's code for each that
/// exists (`errors` has one per existing partition), UNKNOWN_TOPIC_OR_PARTITION for the others.
pub(super) fn partition_codes<'a>(
    exists: &'a [i16],
    errors: &'a [i16],
) -> impl Iterator<Item = i16> + 'a {
    let mut codes = errors.iter();
    exists.iter().map(move |&code| {
        if code == 0 {
            *codes.next().unwrap_or(&0)
        } else {
            code
        }
    })
}

fn commit_response(request: &OffsetCommitRequest, codes: Vec<i16>) -> ResponseKind {
    let mut codes = codes.into_iter();
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
                                .with_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect();
    ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
}

pub fn handle(ctx: &RequestContext, request: OffsetCommitRequest) -> Handled {
    let group_denied = !ctx.authorize(Operation::Read, ResourceType::Group, &request.group_id);
    let (exists, offsets) = existing_offsets(
        ctx,
        group_denied.then_some(E::GroupAuthorizationFailed),
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
    if group_denied {
        let codes = partition_codes(&exists, &[]).collect::<Vec<_>>();
        return Handled::ready(commit_response(&request, codes));
    }
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
    let build =
        move |errors: &[i16]| commit_response(&request, partition_codes(&exists, errors).collect());
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
