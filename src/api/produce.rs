//! Produce: validate and append each partition's batch in request order; acks=all waits for
//! the flusher to make it durable, acks=1 answers after the write, acks=0 gets no response.

use super::errors::{append_error, lookup_error, ResponseError, NONE, NO_TRANSACTIONS};
use super::{str_bytes, Handled, RequestContext};
use crate::broker::NO_LEADER_EPOCH;
use crate::log::batch::BatchHeader;
use crate::log::Partition;
use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use std::sync::Arc;
use std::time::Duration;

/// A durable-offset wait for one partition of an acks=all request.
struct DurableWait {
    topic: usize,
    partition: usize,
    log: Arc<Partition>,
    end_offset: i64,
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

pub fn handle(ctx: &RequestContext, request: ProduceRequest) -> Handled {
    let acks = request.acks;
    let blanket_error = if request
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.0.is_empty())
    {
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            NO_TRANSACTIONS,
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
    let mut waits = Vec::new();
    for (t_idx, topic_data) in request.topic_data.iter().enumerate() {
        let name = topic_data.name.0.as_str();
        // Like Kafka, only Metadata creates topics; Produce to an unknown one is refused.
        let topic = ctx.broker.find_topic(name, &topic_data.topic_id);
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for (p_idx, data) in topic_data.partition_data.iter().enumerate() {
            if let Some((error, message)) = blanket_error {
                partitions.push(error_response(data.index, error, Some(message.to_string())));
                continue;
            }
            let led = topic
                .as_ref()
                .map_err(|e| *e)
                .and_then(|t| ctx.broker.led_partition(t, data.index, NO_LEADER_EPOCH));
            let log = match led {
                Ok(led) => led.log,
                Err(e) => {
                    partitions.push(error_response(data.index, lookup_error(e), None));
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
            if ctx.api_version < 7
                && BatchHeader::parse(records).is_ok_and(|h| h.compression() == 4)
            {
                // zstd needs Produce v7+ (KIP-110), as Kafka enforces.
                partitions.push(error_response(
                    data.index,
                    ResponseError::UnsupportedCompressionType,
                    None,
                ));
                continue;
            }
            // A compressed batch claiming more records than bytes is walked (decompressed) to
            // count them; keep that CPU off the async workers.
            let walks = BatchHeader::parse(records)
                .is_ok_and(|h| h.compression() != 0 && h.records_count as usize > records.len());
            let appended = if walks {
                tokio::task::block_in_place(|| log.append(records))
            } else {
                log.append(records)
            };
            match appended {
                Ok(out) => {
                    partitions.push(
                        PartitionProduceResponse::default()
                            .with_index(data.index)
                            .with_error_code(NONE)
                            .with_base_offset(out.base_offset)
                            .with_log_append_time_ms(out.log_append_time.unwrap_or(-1))
                            .with_log_start_offset(out.log_start_offset),
                    );
                    if acks == -1 {
                        waits.push(DurableWait {
                            topic: t_idx,
                            partition: p_idx,
                            log,
                            end_offset: out.last_offset + 1,
                        });
                    }
                }
                Err(e) => {
                    let (code, message) = append_error(&e);
                    tracing::warn!(
                        client_id = ctx.session.client(),
                        topic = %log.topic,
                        partition = log.index,
                        error_code = code,
                        "produce rejected: {message}"
                    );
                    partitions.push(
                        PartitionProduceResponse::default()
                            .with_index(data.index)
                            .with_error_code(code)
                            .with_base_offset(-1)
                            .with_error_message(Some(str_bytes(&message))),
                    );
                }
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
    if acks == 0 {
        // acks=0 gets no response; like Kafka, an error closes the connection instead, so the
        // producer notices and refreshes its metadata.
        let failed = responses
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
    let response = ProduceResponse::default().with_responses(responses);
    if waits.is_empty() {
        return Handled::ready(ResponseKind::Produce(response));
    }
    let timeout = Duration::from_millis(request.timeout_ms.max(1000) as u64);
    Handled::Deferred(Box::pin(async move {
        let mut response = response;
        let outcomes = join_all(waits.iter().map(|w| async move {
            let mut durability = w.log.subscribe();
            let waited = tokio::time::timeout(
                timeout,
                durability.wait_for(|d| d.durable_offset >= w.end_offset || d.failed),
            )
            .await;
            match waited {
                Ok(Ok(d)) if d.durable_offset >= w.end_offset => None,
                Ok(_) => Some((
                    ResponseError::KafkaStorageError,
                    "the write could not be made durable",
                )),
                Err(_) => Some((
                    ResponseError::RequestTimedOut,
                    "timed out waiting for the write to be fsynced",
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
    }))
}
