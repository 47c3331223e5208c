//! Produce: validate and append each partition's batch in request order; acks=all waits for
//! the flusher to make it durable, acks=1 answers after the write, acks=0 gets no response.
//!
//! A transactional batch is appended only into a partition of its producer's transaction
//! (KIP-890 part 1: the coordinator is asked unless the producer's transaction is already open
//! in the partition). With Produce v12+ and transactions v2 the partition is added to the
//! transaction here (KIP-890 part 2); that waits for the coordinator, and later batches of the
//! same producer to the same partition queue behind it so the log keeps their order.

use super::errors::{append_error, lookup_error, ResponseError, NONE};
use super::{str_bytes, Handled, RequestContext};
use crate::broker::{AppendDone, Broker, LookupError, NO_LEADER_EPOCH};
use crate::coordinator::txn::{TopicPartition, TransactionVersion};
use crate::log::batch::BatchHeader;
use crate::log::{AppendError, AppendOutcome, Partition};
use crate::security::{Operation, ResourceType};
use crate::topic::Traffic;
use bytes::Bytes;
use futures::future::{join_all, FutureExt};
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, ResponseKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Produce v12+ lets a TV2 producer skip AddPartitionsToTxn.
const IMPLICIT_ADD_SINCE: i16 = 12;
/// Produce v11+ clients know TRANSACTION_ABORTABLE; older ones get INVALID_TXN_STATE.
const TRANSACTION_ABORTABLE_SINCE: i16 = 11;

/// Names each queued append, so only its own entry leaves `Broker::txn_appends`.
static NEXT_TICKET: AtomicU64 = AtomicU64::new(0);

/// A transactional batch waiting for the coordinator to add its partition.
struct QueuedAppend {
    topic: usize,
    partition: usize,
    log: Arc<Partition>,
    traffic: Arc<Traffic>,
    records: Bytes,
    /// The same producer's earlier queued batch to this partition: it goes first.
    after: Option<AppendDone>,
    key: (String, i32, i64),
    ticket: u64,
    done: tokio::sync::oneshot::Sender<()>,
}

/// A durable-offset wait for one partition of an acks=all request.
struct DurableWait {
    topic: usize,
    partition: usize,
    log: Arc<Partition>,
    end_offset: i64,
    /// The leader epoch the batch was appended at: if this broker lost the lead meanwhile, a
    /// high watermark past `end_offset` may cover the new leader's records, not these.
    leader_epoch: i32,
}

fn error_response(
    index: i32,
    error: ResponseError,
    message: Option<String>,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_error_message(message.map(|m| str_bytes(&m)))
}

/// What the transactional producer of a request is, when it is one.
struct TxnProducer {
    transactional_id: String,
    /// Whether this request adds partitions itself (v12+ with transactions v2).
    implicit_add: bool,
}

/// How a transactional batch gets into its partition.
enum TxnRoute {
    Now,
    Queue(Option<AppendDone>),
    Refused(ResponseError),
}

/// The Kafka error for a partition the coordinator did not confirm, by produce version. No
/// Produce version gets PRODUCER_FENCED: Kafka answers INVALID_PRODUCER_EPOCH, which producers
/// expect there.
fn verification_error(e: ResponseError, version: i16) -> ResponseError {
    match e {
        ResponseError::TransactionAbortable if version < TRANSACTION_ABORTABLE_SINCE => {
            ResponseError::InvalidTxnState
        }
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        e => e,
    }
}

fn route(
    broker: &Broker,
    txn: &TxnProducer,
    log: &Arc<Partition>,
    header: &BatchHeader,
    version: i16,
) -> TxnRoute {
    let key = (log.topic.clone(), log.index, header.producer_id);
    let queued = broker
        .txn_appends
        .get(&key)
        .map(|entry| entry.value().1.clone());
    if queued.is_none()
        && (!broker.transactions.config().partition_verification
            || log.in_transaction(header.producer_id))
    {
        return TxnRoute::Now;
    }
    if queued.is_some() {
        return TxnRoute::Queue(queued);
    }
    let partition: TopicPartition = (log.topic.clone(), log.index);
    match broker.transactions.in_transaction(
        &txn.transactional_id,
        header.producer_id,
        header.producer_epoch,
        &partition,
    ) {
        Ok(true) => TxnRoute::Now,
        Ok(false) if txn.implicit_add => TxnRoute::Queue(None),
        Ok(false) => TxnRoute::Refused(verification_error(
            ResponseError::TransactionAbortable,
            version,
        )),
        // A transaction being ended: the TV2 add waits for it, as Kafka retries.
        Err(ResponseError::ConcurrentTransactions) if txn.implicit_add => TxnRoute::Queue(None),
        Err(e) => TxnRoute::Refused(verification_error(e, version)),
    }
}

fn appended(
    index: i32,
    out: &AppendOutcome,
    traffic: &Traffic,
    bytes: usize,
) -> PartitionProduceResponse {
    // A retried batch the log already holds is not new traffic.
    if !out.duplicate {
        traffic.produced(bytes, (out.last_offset - out.base_offset + 1).max(0) as u64);
    }
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(NONE)
        .with_base_offset(out.base_offset)
        .with_log_append_time_ms(out.log_append_time.unwrap_or(-1))
        .with_log_start_offset(out.log_start_offset)
}

fn rejected(
    ctx_client: &str,
    log: &Partition,
    index: i32,
    e: &AppendError,
) -> PartitionProduceResponse {
    let (code, message) = append_error(e);
    tracing::warn!(
        client_id = ctx_client,
        topic = %log.topic,
        partition = log.index,
        error_code = code,
        "produce rejected: {message}"
    );
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_error_message(Some(str_bytes(&message)))
}

pub fn handle(ctx: &RequestContext, request: ProduceRequest) -> Handled {
    let acks = request.acks;
    let txn = request
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .filter(|t| !t.is_empty())
        .map(|transactional_id| TxnProducer {
            transactional_id,
            implicit_add: ctx.api_version >= IMPLICIT_ADD_SINCE
                && ctx.broker.transactions.config().server_version >= TransactionVersion::TV_2,
        });
    // Like Kafka: transactional records without a transactional id fail the whole request.
    let untracked_transactional = txn.is_none()
        && request.topic_data.iter().any(|t| {
            t.partition_data.iter().any(|p| {
                p.records
                    .as_ref()
                    .and_then(|r| BatchHeader::parse(r).ok())
                    .is_some_and(|h| h.is_transactional())
            })
        });
    // Like Kafka: a transactional producer needs WRITE on its transactional id, or the whole
    // request fails.
    let txn_denied = txn.as_ref().is_some_and(|t| {
        !ctx.authorize(
            Operation::Write,
            ResourceType::TransactionalId,
            &t.transactional_id,
        )
    });
    let blanket_error = if txn_denied {
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "not authorized to write with this transactional id",
        ))
    } else if untracked_transactional {
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactional records need the producer's transactional id",
        ))
    } else if !matches!(acks, -1..=1) {
        Some((
            ResponseError::InvalidRequiredAcks,
            "acks must be -1, 0 or 1",
        ))
    } else {
        None
    };
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut leaders = std::collections::BTreeSet::new();
    let mut waits = Vec::new();
    let mut queued = Vec::new();
    for (t_idx, topic_data) in request.topic_data.iter().enumerate() {
        let name = topic_data.name.0.as_str();
        // Like Kafka, only Metadata creates topics; Produce to an unknown one is refused.
        let topic = ctx.broker.find_topic(name, &topic_data.topic_id);
        // Kafka checks WRITE on the topic before whether it exists.
        let authorized = match &topic {
            Ok(t) => ctx.authorize(Operation::Write, ResourceType::Topic, &t.name),
            Err(_) => ctx.authorize(Operation::Write, ResourceType::Topic, name),
        };
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for (p_idx, data) in topic_data.partition_data.iter().enumerate() {
            if let Some((error, message)) = blanket_error {
                partitions.push(error_response(data.index, error, Some(message.to_string())));
                continue;
            }
            if !authorized {
                partitions.push(error_response(
                    data.index,
                    ResponseError::TopicAuthorizationFailed,
                    None,
                ));
                continue;
            }
            let led = topic.as_ref().map_err(|e| *e).and_then(|t| {
                ctx.broker
                    .led_partition(t, data.index, NO_LEADER_EPOCH)
                    .map(|led| (led, t))
            });
            let (log, traffic) = match led {
                Ok((led, t)) => {
                    if acks == -1 && led.isr < t.min_insync_replicas {
                        // Kafka refuses before appending when the ISR is too small.
                        partitions.push(error_response(
                            data.index,
                            ResponseError::NotEnoughReplicas,
                            Some(format!(
                                "The size of the current ISR {} is insufficient to satisfy the min.isr requirement of {}",
                                led.isr, t.min_insync_replicas
                            )),
                        ));
                        continue;
                    }
                    (led.log, &t.traffic)
                }
                Err(e) => {
                    let mut response = error_response(data.index, lookup_error(e), None);
                    // KIP-951 (v10+): where the partition's leader is now.
                    let moved = matches!(
                        e,
                        LookupError::NotLeaderOrFollower | LookupError::FencedLeaderEpoch
                    );
                    if let (true, true, Ok(t)) = (moved, ctx.api_version >= 10, &topic) {
                        if let Some((leader, epoch)) = ctx.current_leader(t, data.index) {
                            response.current_leader = LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(leader))
                                .with_leader_epoch(epoch);
                            leaders.insert(leader);
                        }
                    }
                    partitions.push(response);
                    continue;
                }
            };
            let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) else {
                partitions.push(error_response(
                    data.index,
                    ResponseError::InvalidRecord,
                    Some("no records".into()),
                ));
                continue;
            };
            let header = BatchHeader::parse(records).ok();
            if ctx.api_version < 7 && header.as_ref().is_some_and(|h| h.compression() == 4) {
                // zstd needs Produce v7+ (KIP-110), as Kafka enforces.
                partitions.push(error_response(
                    data.index,
                    ResponseError::UnsupportedCompressionType,
                    None,
                ));
                continue;
            }
            if header.as_ref().is_some_and(|h| h.is_control()) {
                // Markers come from the coordinator alone, as in Kafka.
                partitions.push(error_response(
                    data.index,
                    ResponseError::InvalidRecord,
                    Some("control batches are written by the transaction coordinator only".into()),
                ));
                continue;
            }
            let transactional = match (&txn, &header) {
                (Some(txn), Some(h)) if h.is_transactional() && h.has_producer_id() => {
                    match route(&ctx.broker, txn, &log, h, ctx.api_version) {
                        TxnRoute::Now => true,
                        TxnRoute::Refused(e) => {
                            partitions.push(error_response(data.index, e, None));
                            continue;
                        }
                        TxnRoute::Queue(after) => {
                            let key = (log.topic.clone(), log.index, h.producer_id);
                            let (done, signal) = tokio::sync::oneshot::channel();
                            let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
                            ctx.broker
                                .txn_appends
                                .insert(key.clone(), (ticket, signal.shared()));
                            // A placeholder, filled in once the batch is appended.
                            partitions.push(error_response(
                                data.index,
                                ResponseError::UnknownServerError,
                                None,
                            ));
                            queued.push(QueuedAppend {
                                topic: t_idx,
                                partition: p_idx,
                                log,
                                traffic: traffic.clone(),
                                records: records.clone(),
                                after,
                                key,
                                ticket,
                                done,
                            });
                            continue;
                        }
                    }
                }
                _ => false,
            };
            // A compressed batch claiming more records than bytes is walked (decompressed) to
            // count them; keep that CPU off the async workers.
            let walks = header
                .as_ref()
                .is_some_and(|h| h.compression() != 0 && h.records_count as usize > records.len());
            let append = |records: &[u8]| {
                if transactional {
                    log.append_transactional(records)
                } else {
                    log.append(records)
                }
            };
            let result = if walks {
                tokio::task::block_in_place(|| append(records))
            } else {
                append(records)
            };
            match result {
                Ok(out) => {
                    partitions.push(appended(data.index, &out, traffic, records.len()));
                    if acks == -1 {
                        waits.push(DurableWait {
                            topic: t_idx,
                            partition: p_idx,
                            leader_epoch: log.leader_epoch(),
                            log,
                            end_offset: out.last_offset + 1,
                        });
                    }
                }
                Err(e) => partitions.push(rejected(ctx.session.client(), &log, data.index, &e)),
            }
        }
        let mut topic_response =
            TopicProduceResponse::default().with_partition_responses(partitions);
        if ctx.api_version >= 13 {
            topic_response.topic_id = topic_data.topic_id;
        } else {
            topic_response.name = topic_data.name.clone();
        }
        responses.push(topic_response);
    }
    let response = ProduceResponse::default()
        .with_responses(responses)
        .with_node_endpoints(
            ctx.brokers()
                .into_iter()
                .filter(|b| leaders.contains(&b.node_id))
                .map(|b| {
                    NodeEndpoint::default()
                        .with_node_id(BrokerId(b.node_id))
                        .with_host(str_bytes(&b.host))
                        .with_port(b.port as i32)
                        .with_rack(b.rack.as_deref().map(str_bytes))
                })
                .collect(),
        );
    if !queued.is_empty() {
        let txn = txn.expect("only transactional batches queue");
        let broker = ctx.broker.clone();
        let client = ctx.session.client().to_string();
        let version = ctx.api_version;
        let timeout = Duration::from_millis(request.timeout_ms.max(1000) as u64);
        let work = async move {
            let mut response = response;
            let mut waits = waits;
            add_and_append(
                &broker,
                &txn,
                queued,
                version,
                timeout,
                &client,
                acks,
                &mut response,
                &mut waits,
            )
            .await;
            wait_durable(response, waits, timeout).await
        };
        if acks == 0 {
            // No answer is sent; the appends still happen, in order (errors are logged).
            tokio::spawn(work);
            return Handled::NoResponse;
        }
        return Handled::Deferred(Box::pin(work));
    }
    if acks == 0 {
        // acks=0 gets no response; like Kafka, an error closes the connection instead, so the
        // producer notices and refreshes its metadata.
        let failed = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.error_code != NONE);
        return match failed {
            Some(p) => Handled::Close(format!(
                "acks=0 produce failed with error code {}",
                p.error_code
            )),
            None => Handled::NoResponse,
        };
    }
    if waits.is_empty() {
        return Handled::ready(ResponseKind::Produce(response));
    }
    let timeout = Duration::from_millis(request.timeout_ms.max(1000) as u64);
    Handled::Deferred(Box::pin(wait_durable(response, waits, timeout)))
}

/// Adds the queued batches' partitions to the transaction (one coordinator call, retried while
/// the transaction is busy) and appends them, each after its predecessor.
#[allow(clippy::too_many_arguments)]
async fn add_and_append(
    broker: &Broker,
    txn: &TxnProducer,
    queued: Vec<QueuedAppend>,
    version: i16,
    timeout: Duration,
    client: &str,
    acks: i16,
    response: &mut ProduceResponse,
    waits: &mut Vec<DurableWait>,
) {
    for q in &queued {
        if let Some(after) = &q.after {
            let _ = after.clone().await;
        }
    }
    let Some(first) = queued.first() else {
        return;
    };
    let header = BatchHeader::parse(&first.records).expect("parsed before queueing");
    let missing: Vec<TopicPartition> = queued
        .iter()
        .filter(|q| !q.log.in_transaction(header.producer_id))
        .map(|q| (q.log.topic.clone(), q.log.index))
        .collect();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut codes: Vec<(TopicPartition, i16)> = Vec::new();
    if !missing.is_empty() {
        loop {
            codes = broker
                .transactions
                .add_partitions(
                    &txn.transactional_id,
                    header.producer_id,
                    header.producer_epoch,
                    &missing,
                    false,
                    TransactionVersion::TV_2,
                )
                .await;
            let busy = codes
                .iter()
                .any(|(_, c)| *c == ResponseError::ConcurrentTransactions.code());
            if !busy || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for q in queued {
        let tp = (q.log.topic.clone(), q.log.index);
        let code = codes
            .iter()
            .find(|(p, _)| *p == tp)
            .map_or(NONE, |(_, c)| *c);
        let slot = &mut response.responses[q.topic].partition_responses[q.partition];
        let index = slot.index;
        *slot = if code != NONE {
            let e = ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
            error_response(index, verification_error(e, version), None)
        } else {
            match q.log.append_transactional(&q.records) {
                Ok(out) => {
                    if acks == -1 {
                        waits.push(DurableWait {
                            topic: q.topic,
                            partition: q.partition,
                            log: q.log.clone(),
                            end_offset: out.last_offset + 1,
                            leader_epoch: q.log.leader_epoch(),
                        });
                    }
                    appended(index, &out, &q.traffic, q.records.len())
                }
                Err(e) => rejected(client, &q.log, index, &e),
            }
        };
        // Done: the next queued batch may go. Our entry leaves the queue unless a later one
        // replaced it.
        let _ = q.done.send(());
        broker
            .txn_appends
            .remove_if(&q.key, |_, (ticket, _)| *ticket == q.ticket);
    }
}

/// Answers once every acks=all write is under the high watermark: durable on every in-sync
/// replica (or failed, or timed out).
async fn wait_durable(
    mut response: ProduceResponse,
    waits: Vec<DurableWait>,
    timeout: Duration,
) -> ResponseKind {
    let outcomes = join_all(waits.iter().map(|w| async move {
        match tokio::time::timeout(timeout, w.log.wait_replicated(w.end_offset)).await {
            Ok(true) if w.log.leader_epoch() != w.leader_epoch => Some((
                ResponseError::NotLeaderOrFollower,
                "this broker stopped leading the partition before the write was replicated",
            )),
            Ok(true) => None,
            Ok(false) => Some((
                ResponseError::KafkaStorageError,
                "the write could not be made durable",
            )),
            Err(_) => Some((
                ResponseError::RequestTimedOut,
                "timed out waiting for the write to be fsynced by the in-sync replicas",
            )),
        }
    }))
    .await;
    for (w, failure) in waits.iter().zip(outcomes) {
        if let Some((error, message)) = failure {
            let p = &mut response.responses[w.topic].partition_responses[w.partition];
            p.error_code = error.code();
            p.base_offset = -1;
            p.error_message = Some(str_bytes(message));
        }
    }
    ResponseKind::Produce(response)
}
