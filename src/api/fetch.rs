//! Fetch: stored batches as written, never past the high watermark (read_committed: the last
//! stable offset, with the aborted transactions of the range read). Long-poll waits on the
//! partitions' watermark notifications until min_bytes is reached or max_wait expires.

use super::context::BrokerView;
use super::errors::{lookup_error, ResponseError};
use super::{str_bytes, Handled, RequestContext};
use crate::broker::{LookupError, Topic};
use crate::log::batch;
use crate::log::{Durability, Partition, ReadOutcome};
use crate::replica::FollowerFetch;
use crate::security::{Operation, ResourceType};
use crate::tier::Tier;
use bytes::Bytes;
use futures::future::{join_all, select_all};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ProducerId, ResponseKind, TopicName,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

struct Wanted {
    /// Index into the response's topic list.
    topic: usize,
    partition: i32,
    /// The partition, or why it cannot be read here (unknown, or the request's current leader
    /// epoch, v9+, does not match).
    log: Result<Arc<Partition>, ResponseError>,
    /// For reads that go to the tier.
    topic_ref: Option<Arc<Topic>>,
    fetch_offset: i64,
    max_bytes: usize,
    /// A follower's fetch (cluster mode): what the leader made of it.
    follower: Option<FollowerFetch>,
    /// KIP-951: the partition's leader (id, epoch) when this broker is not it.
    current_leader: Option<(i32, i32)>,
}

struct Plan {
    topics: Vec<(TopicName, uuid::Uuid)>,
    /// The brokers at the client's listener, for KIP-951's endpoints (filled only when some
    /// partition has moved).
    brokers: Vec<BrokerView>,
    wanted: Vec<Wanted>,
    max_bytes: usize,
    min_bytes: usize,
    version: i16,
    read_committed: bool,
}

/// Records read from the tier.
struct RemoteRead {
    /// read_committed: cut at the last stable offset.
    records: Bytes,
    /// read_committed: the aborted transactions with records among them, remote and local
    /// indexes searched (`Tier::aborted_transactions`).
    aborted: Vec<(i64, i64)>,
}

/// Results of reads from the tier, by index into `Plan::wanted` (None: the tier lacks it).
type RemoteReads = HashMap<usize, Result<Option<RemoteRead>, String>>;

struct Read {
    response: FetchResponse,
    bytes: usize,
    /// Some partition had an error (Kafka answers those at once).
    had_error: bool,
    /// Partitions whose offset lies in the tier and was not read yet.
    needs_remote: Vec<usize>,
}

impl Read {
    /// The response to send: its records are counted into their topics' traffic. The
    /// response's partitions are `plan.wanted` in order (grouped by topic, as `read` builds
    /// them), so the two are walked together.
    fn respond(self, plan: &Plan) -> ResponseKind {
        let partitions = self.response.responses.iter().flat_map(|t| &t.partitions);
        for (w, data) in plan.wanted.iter().zip(partitions) {
            match (&w.topic_ref, &data.records) {
                (Some(t), Some(bytes)) if data.error_code == 0 && !bytes.is_empty() => {
                    t.traffic.fetched(bytes.len(), records_in(bytes))
                }
                _ => {}
            }
        }
        ResponseKind::Fetch(self.response)
    }
}

/// Records in the batches of `bytes`, control batches (transaction markers) left out.
fn records_in(bytes: &[u8]) -> u64 {
    batch::headers(bytes)
        .filter(|(_, h)| !h.is_control())
        .map(|(_, h)| h.records_count.max(0) as u64)
        .sum()
}

impl Plan {
    /// Reads every partition once, taking what lies below the local log start from `remote`.
    fn read(&self, remote: &RemoteReads) -> Read {
        let mut topics: Vec<FetchableTopicResponse> = self
            .topics
            .iter()
            .map(|(name, id)| {
                let mut t = FetchableTopicResponse::default();
                if self.version >= 13 {
                    t.topic_id = *id;
                } else {
                    t.topic = name.clone();
                }
                t
            })
            .collect();
        let mut total = 0usize;
        let mut had_error = false;
        let mut needs_remote = Vec::new();
        // Like Kafka: the first partition with data may exceed the limits by one batch.
        let mut min_one = true;
        for (i, w) in self.wanted.iter().enumerate() {
            let mut data = PartitionData::default().with_partition_index(w.partition);
            if let Some((leader, epoch)) = w.current_leader {
                data.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
            }
            match &w.log {
                Err(e) => data.error_code = e.code(),
                Ok(log) => {
                    let limit = w.max_bytes.min(self.max_bytes.saturating_sub(total));
                    let local = match w.follower {
                        Some(FollowerFetch::Diverging(epoch, end_offset)) => {
                            data.diverging_epoch = EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset);
                            Ok(ReadOutcome::Records(Bytes::new()))
                        }
                        Some(_) => log.read_for_follower(w.fetch_offset, limit),
                        None if self.read_committed => {
                            log.read_committed(w.fetch_offset, limit, min_one)
                        }
                        None => log.read(w.fetch_offset, limit, min_one),
                    };
                    // Set for records from the tier: their aborted transactions, found then.
                    let mut remote_aborted = None;
                    let outcome = match local {
                        Ok(ReadOutcome::Remote) => match remote.get(&i) {
                            Some(Ok(Some(read))) => {
                                remote_aborted = Some(&read.aborted);
                                Ok(ReadOutcome::Records(read.records.clone()))
                            }
                            Some(Ok(None)) => Ok(ReadOutcome::OutOfRange),
                            Some(Err(e)) => Err(std::io::Error::other(e.clone())),
                            None => {
                                needs_remote.push(i);
                                Ok(ReadOutcome::Records(Bytes::new()))
                            }
                        },
                        other => other,
                    };
                    match outcome {
                        Ok(ReadOutcome::Records(bytes)) => {
                            if !bytes.is_empty() {
                                min_one = false;
                                total += bytes.len();
                            }
                            if self.read_committed {
                                let aborted = match remote_aborted {
                                    Some(found) => Ok(to_protocol(found)),
                                    None => aborted_in(log, w.fetch_offset, &bytes),
                                };
                                match aborted {
                                    Ok(aborted) => data.aborted_transactions = Some(aborted),
                                    Err(e) => {
                                        tracing::error!(topic = %log.topic, partition = log.index, error = %e, "reading the aborted-transaction index failed");
                                        data.error_code = ResponseError::KafkaStorageError.code();
                                    }
                                }
                            }
                            data.records = Some(bytes);
                        }
                        Ok(ReadOutcome::OutOfRange) | Ok(ReadOutcome::Remote) => {
                            data.error_code = ResponseError::OffsetOutOfRange.code();
                        }
                        Err(e) => {
                            tracing::error!(topic = %log.topic, partition = log.index, error = %e, "fetch read failed");
                            data.error_code = ResponseError::KafkaStorageError.code();
                        }
                    }
                    if data.error_code == 0 {
                        // Taken after the read, so the records never run past the reported watermark.
                        let offsets = log.offsets();
                        data.high_watermark = offsets.high_watermark;
                        data.last_stable_offset = offsets.last_stable_offset;
                        data.log_start_offset = offsets.log_start;
                    }
                }
            }
            if data.error_code != 0 {
                // Kafka's error partitions: no offsets, and an aborted-transaction list only
                // (empty) for a partition it does not have.
                had_error = true;
                data.high_watermark = -1;
                data.last_stable_offset = -1;
                data.log_start_offset = -1;
                let missing = matches!(
                    w.log,
                    Err(ResponseError::UnknownTopicOrPartition | ResponseError::UnknownTopicId)
                );
                if !missing {
                    data.aborted_transactions = None;
                }
            } else if !self.read_committed {
                // Kafka sends the aborted-transaction list to read_committed consumers only.
                data.aborted_transactions = None;
            }
            topics[w.topic].partitions.push(data);
        }
        let leaders: std::collections::BTreeSet<i32> = self
            .wanted
            .iter()
            .filter_map(|w| w.current_leader.map(|(id, _)| id))
            .collect();
        let node_endpoints = self
            .brokers
            .iter()
            .filter(|b| leaders.contains(&b.node_id))
            .map(|b| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(b.node_id))
                    .with_host(str_bytes(&b.host))
                    .with_port(b.port as i32)
                    .with_rack(b.rack.as_deref().map(str_bytes))
            })
            .collect();
        Read {
            response: FetchResponse::default()
                .with_responses(topics)
                .with_node_endpoints(node_endpoints),
            bytes: total,
            had_error,
            needs_remote,
        }
    }
}

/// The whole batches of `bytes` that start below `offset`.
fn below(bytes: &Bytes, offset: i64) -> Bytes {
    let keep: usize = batch::headers(bytes)
        .take_while(|(_, h)| h.base_offset < offset)
        .map(|(_, h)| h.total_len)
        .sum();
    bytes.slice(..keep)
}

/// End of the last whole batch of `bytes`; None when there is none.
fn end_of(bytes: &Bytes) -> Option<i64> {
    batch::headers(bytes)
        .last()
        .map(|(_, last)| last.last_offset() + 1)
}

/// The aborted transactions a read_committed consumer needs for the records read locally from
/// `fetch_offset`: those with records in [fetch_offset, end of the last batch).
fn aborted_in(
    log: &Partition,
    fetch_offset: i64,
    bytes: &Bytes,
) -> std::io::Result<Vec<AbortedTransaction>> {
    let Some(upto) = end_of(bytes) else {
        return Ok(Vec::new());
    };
    Ok(to_protocol(&log.aborted_transactions(fetch_offset, upto)?))
}

fn to_protocol(aborted: &[(i64, i64)]) -> Vec<AbortedTransaction> {
    aborted
        .iter()
        .map(|&(producer_id, first_offset)| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(producer_id))
                .with_first_offset(first_offset)
        })
        .collect()
}

/// Reads `w` from the tier (its offset lies below the local log start). For read_committed
/// the records are cut at the last stable offset (an open transaction may have begun in a
/// tiered segment) and come with the aborted transactions of their range, which the tier's
/// indexes hold for segments no longer local.
async fn read_remote(
    tier: &Arc<Tier>,
    t: &Topic,
    log: &Partition,
    w: &Wanted,
    max_bytes: usize,
    read_committed: bool,
) -> Result<Option<RemoteRead>, String> {
    // Taken before the read: the LSO only grows, so cutting at an older one is safe.
    let last_stable_offset = log.offsets().last_stable_offset;
    let read = tier
        .read(t, w.partition, w.fetch_offset, max_bytes)
        .await
        .map_err(|e| e.to_string())?;
    let Some(records) = read else {
        return Ok(None);
    };
    if !read_committed {
        return Ok(Some(RemoteRead {
            records,
            aborted: Vec::new(),
        }));
    }
    let records = below(&records, last_stable_offset);
    let aborted = match end_of(&records) {
        None => Vec::new(),
        Some(upto) => tier
            .aborted_transactions(t, log, w.fetch_offset, upto)
            .await
            .map_err(|e| format!("reading the aborted-transaction indexes: {e}"))?,
    };
    Ok(Some(RemoteRead { records, aborted }))
}

/// The most bytes a fetch may return under the client's consumer_byte_rate quota (Kafka's
/// getMaxValueInQuotaWindow); unbounded without one.
fn quota_window_bytes(ctx: &RequestContext) -> usize {
    ctx.broker
        .quotas
        .max_in_window(
            crate::security::quotas::Kind::Fetch,
            &ctx.session.principal.name,
            ctx.session.client(),
        )
        .map(|b| b.max(1.0) as usize)
        .unwrap_or(usize::MAX)
}

pub fn handle(ctx: &RequestContext, request: FetchRequest) -> Handled {
    // A follower names itself (v15+: in ReplicaState); consumers send -1.
    let replica_id = if ctx.api_version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let replication = ctx.broker.replication.as_ref().filter(|_| replica_id >= 0);
    if replication.is_some() && !ctx.authorize_cluster(Operation::ClusterAction) {
        // Kafka: followers need CLUSTER_ACTION on the cluster.
        return Handled::ready(ResponseKind::Fetch(
            FetchResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        ));
    }
    let mut plan = Plan {
        brokers: Vec::new(),
        topics: Vec::with_capacity(request.topics.len()),
        wanted: Vec::new(),
        // Kafka: min(request max_bytes, fetch.max.bytes, what the consumer_byte_rate quota
        // allows in one window); the first batch may still exceed it.
        max_bytes: (request.max_bytes.max(0) as usize)
            .min(ctx.broker.config.fetch_max_bytes)
            .min(quota_window_bytes(ctx)),
        min_bytes: request.min_bytes.max(0) as usize,
        version: ctx.api_version,
        read_committed: request.isolation_level == 1,
    };
    for topic in &request.topics {
        let found = match ctx
            .broker
            .find_topic(topic.topic.0.as_str(), &topic.topic_id)
        {
            // Below v13 topics go by name: an empty one is unknown, not an unknown id.
            Err(LookupError::UnknownTopicId) if ctx.api_version < 13 => {
                Err(LookupError::UnknownTopicOrPartition)
            }
            found => found,
        };
        // Kafka: READ on the topic, checked for the topics it knows (by id, an unknown id
        // stays UNKNOWN_TOPIC_ID).
        let authorized = match &found {
            _ if replication.is_some() => true,
            Ok(t) => ctx.authorize(Operation::Read, ResourceType::Topic, &t.name),
            Err(LookupError::UnknownTopicId) => true,
            Err(_) => ctx.authorize(Operation::Read, ResourceType::Topic, topic.topic.0.as_str()),
        };
        plan.topics.push((topic.topic.clone(), topic.topic_id));
        let t_idx = plan.topics.len() - 1;
        for p in &topic.partitions {
            let log = if !authorized {
                Err(ResponseError::TopicAuthorizationFailed)
            } else {
                found
                    .as_ref()
                    .map_err(|e| *e)
                    .and_then(|t| {
                        ctx.broker
                            .led_partition(t, p.partition, p.current_leader_epoch)
                            .map(|led| led.log)
                    })
                    .map_err(lookup_error)
            };
            let follower = match (&log, replication) {
                (Ok(l), Some(r)) => Some(r.follower_fetch(
                    &l.topic,
                    l,
                    replica_id,
                    p.fetch_offset,
                    p.last_fetched_epoch,
                )),
                _ => None,
            };
            let log = match follower {
                Some(FollowerFetch::NotLeader | FollowerFetch::NotReplica) => {
                    Err(ResponseError::NotLeaderOrFollower)
                }
                _ => log,
            };
            // KIP-951 (v16+): where the partition's leader is now.
            let current_leader = match (&log, &found) {
                (
                    Err(ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch),
                    Ok(t),
                ) if ctx.api_version >= 16 => ctx.current_leader(t, p.partition),
                _ => None,
            };
            plan.wanted.push(Wanted {
                current_leader,
                follower,
                topic: t_idx,
                partition: p.partition,
                log,
                topic_ref: found.as_ref().ok().cloned(),
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
            });
        }
    }
    if plan.wanted.iter().any(|w| w.current_leader.is_some()) {
        plan.brokers = ctx.brokers();
    }
    // Subscribe before the first read so no append between the read and the wait is missed.
    let mut watchers: Vec<watch::Receiver<Durability>> = plan
        .wanted
        .iter()
        .filter_map(|w| w.log.as_ref().ok().map(|l| l.subscribe()))
        .collect();
    let first = plan.read(&RemoteReads::new());
    if !first.needs_remote.is_empty() {
        // Old offsets: read them from the tier off the connection's reader, then answer.
        let tier = ctx.broker.tier.clone();
        return Handled::Deferred(Box::pin(async move {
            let reads = first.needs_remote.iter().map(|&i| {
                let w = &plan.wanted[i];
                let tier = tier.clone();
                let max_bytes = w.max_bytes.min(plan.max_bytes).max(1);
                let read_committed = plan.read_committed;
                async move {
                    let result = match (&tier, &w.topic_ref, &w.log) {
                        (Some(tier), Some(t), Ok(log)) => {
                            read_remote(tier, t, log, w, max_bytes, read_committed).await
                        }
                        _ => Ok(None),
                    };
                    if let Err(e) = &result {
                        tracing::warn!(partition = w.partition, offset = w.fetch_offset, error = %e, "reading from the tier failed");
                    }
                    (i, result)
                }
            });
            let remote: RemoteReads = join_all(reads).await.into_iter().collect();
            plan.read(&remote).respond(&plan)
        }));
    }
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    if first.bytes >= plan.min_bytes || first.had_error || max_wait.is_zero() || watchers.is_empty()
    {
        return Handled::ready(first.respond(&plan));
    }
    let deadline = Instant::now() + max_wait;
    Handled::Deferred(Box::pin(async move {
        loop {
            let woke = tokio::time::timeout_at(
                deadline,
                select_all(watchers.iter_mut().map(|w| Box::pin(w.changed()))),
            )
            .await;
            let again = plan.read(&RemoteReads::new());
            if woke.is_err()
                || again.bytes >= plan.min_bytes
                || again.had_error
                || !again.needs_remote.is_empty()
            {
                return again.respond(&plan);
            }
        }
    }))
}

/// The record batches of a Fetch response: the writer sends them by reference, not copied.
pub fn record_batches(response: &ResponseKind) -> Vec<Bytes> {
    match response {
        ResponseKind::Fetch(fetch) => fetch
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().filter_map(|p| p.records.clone()))
            .collect(),
        _ => Vec::new(),
    }
}
