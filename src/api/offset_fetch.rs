//! OffsetFetch: committed offsets of one group (v0-7) or of several (v8+). Partitions with
//! no committed offset answer -1, as in Kafka.

use super::{str_bytes, Handled, RequestContext};
use crate::coordinator::group::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, ResponseKind, TopicName};

type Fetched = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

fn fields(o: &Option<CommittedOffset>) -> (i64, i32, String) {
    match o {
        Some(o) => (
            o.offset,
            o.leader_epoch,
            o.metadata.clone().unwrap_or_default(),
        ),
        None => (-1, -1, String::new()),
    }
}

pub fn handle(ctx: &RequestContext, request: OffsetFetchRequest) -> Handled {
    let groups = &ctx.broker.groups;
    let mut response = OffsetFetchResponse::default();
    if ctx.api_version < 8 {
        let asked = request.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        match groups.fetch_offsets(&request.group_id, asked, None) {
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
                match groups.fetch_offsets(&g.group_id, asked, member) {
                    Ok(fetched) => out.topics = batched_topics(fetched),
                    Err(e) => out.error_code = e.code(),
                }
                out
            })
            .collect();
    }
    Handled::ready(ResponseKind::OffsetFetch(response))
}

fn v0_topics(fetched: Fetched, version: i16) -> Vec<OffsetFetchResponseTopic> {
    fetched
        .into_iter()
        .map(|(topic, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, o)| {
                            let (offset, epoch, metadata) = fields(o);
                            let mut part = OffsetFetchResponsePartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(offset)
                                .with_metadata(Some(str_bytes(&metadata)));
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

fn batched_topics(fetched: Fetched) -> Vec<OffsetFetchResponseTopics> {
    fetched
        .into_iter()
        .map(|(topic, parts)| {
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, o)| {
                            let (offset, epoch, metadata) = fields(o);
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(*p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(str_bytes(&metadata)))
                        })
                        .collect(),
                )
        })
        .collect()
}
