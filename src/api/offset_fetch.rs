//! OffsetFetch: committed offsets of one group (v0-7) or of several (v8+). Partitions with
//! no committed offset answer -1, as in Kafka. With `require_stable` (v7+) a partition with a
//! pending transactional offset answers UNSTABLE_OFFSET_COMMIT (offset -1), a partition error
//! in every version; without it pending offsets are invisible.

use super::{str_bytes, Handled, RequestContext};
use crate::coordinator::group::{FetchedOffset, FetchedOffsets};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, ResponseKind, TopicName};
use kafka_protocol::ResponseError as E;

/// Offset, leader epoch, metadata and error code of one partition.
fn fields(o: &FetchedOffset) -> (i64, i32, String, i16) {
    match o {
        Ok(Some(o)) => (
            o.offset,
            o.leader_epoch,
            o.metadata.clone().unwrap_or_default(),
            0,
        ),
        Ok(None) => (-1, -1, String::new(), 0),
        Err(e) => (-1, -1, String::new(), e.code()),
    }
}

/// Kafka: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED), then DESCRIBE on each topic:
/// topics asked for by name get TOPIC_AUTHORIZATION_FAILED, "all topics" leaves them out.
fn fetch(
    ctx: &RequestContext,
    group: &str,
    asked: Option<Vec<(String, Vec<i32>)>>,
    member: Option<(String, i32)>,
    require_stable: bool,
) -> Result<FetchedOffsets, E> {
    if !ctx.authorize(Operation::Describe, ResourceType::Group, group) {
        return Err(E::GroupAuthorizationFailed);
    }
    let all = asked.is_none();
    let fetched = ctx
        .broker
        .groups
        .fetch_offsets(group, asked, member, require_stable)?;
    Ok(fetched
        .into_iter()
        .filter_map(|(topic, parts)| {
            if ctx.authorize(Operation::Describe, ResourceType::Topic, &topic) {
                Some((topic, parts))
            } else if all {
                None
            } else {
                let denied = parts
                    .into_iter()
                    .map(|(p, _)| (p, Err(E::TopicAuthorizationFailed)))
                    .collect();
                Some((topic, denied))
            }
        })
        .collect())
}

pub fn handle(ctx: &RequestContext, request: OffsetFetchRequest) -> Handled {
    let mut response = OffsetFetchResponse::default();
    if ctx.api_version < 8 {
        let asked = request.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        // require_stable is v7+ (false, its default, below).
        match fetch(ctx, &request.group_id, asked, None, request.require_stable) {
            Ok(fetched) => response.topics = v0_topics(fetched, ctx.api_version),
            Err(e) => response.error_code = e.code(),
        }
    } else {
        response.groups = request
            .groups
            .iter()
            .map(|g| {
                let asked = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let member = g
                    .member_id
                    .as_ref()
                    .filter(|m| !m.is_empty())
                    .map(|m| (m.to_string(), g.member_epoch));
                let mut out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match fetch(ctx, &g.group_id, asked, member, request.require_stable) {
                    Ok(fetched) => out.topics = batched_topics(fetched),
                    Err(e) => out.error_code = e.code(),
                }
                out
            })
            .collect();
    }
    Handled::ready(ResponseKind::OffsetFetch(response))
}

fn v0_topics(fetched: FetchedOffsets, version: i16) -> Vec<OffsetFetchResponseTopic> {
    fetched
        .into_iter()
        .map(|(topic, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, o)| {
                            let (offset, epoch, metadata, error) = fields(o);
                            let mut part = OffsetFetchResponsePartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(offset)
                                .with_metadata(Some(str_bytes(&metadata)))
                                .with_error_code(error);
                            if version >= 5 {
                                part.committed_leader_epoch = epoch;
                            }
                            part
                        })
                        .collect(),
                )
        })
        .collect()
}

fn batched_topics(fetched: FetchedOffsets) -> Vec<OffsetFetchResponseTopics> {
    fetched
        .into_iter()
        .map(|(topic, parts)| {
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, o)| {
                            let (offset, epoch, metadata, error) = fields(o);
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(*p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(str_bytes(&metadata)))
                                .with_error_code(error)
                        })
                        .collect(),
                )
        })
        .collect()
}
