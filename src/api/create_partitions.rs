//! CreatePartitions: raises a topic's partition count (never lowers it), with validate_only and
//! explicit assignments checked as Kafka's controller checks them (ReplicationControlManager)
//! on a cluster of this one broker. The new count is persisted in the metadata before the new
//! partitions are answered by Metadata.

use super::create_topics::MAX_PARTITIONS_PER_REQUEST;
use super::errors::ResponseError;
use super::{str_bytes, Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind};
use std::collections::HashMap;

type Refusal = (ResponseError, Option<String>);

fn refuse(error: ResponseError, message: String) -> Refusal {
    (error, Some(message))
}

/// Kafka's checks, in its order. Returns the number of partitions to add.
fn check(ctx: &RequestContext, t: &CreatePartitionsTopic) -> Result<i32, Refusal> {
    let name = t.name.0.as_str();
    // Kafka's UnknownTopicOrPartitionException here carries no message.
    let topic = ctx
        .broker
        .topic(name)
        .ok_or((ResponseError::UnknownTopicOrPartition, None))?;
    let current = topic.partitions.len() as i32;
    if t.count == current {
        return Err(refuse(
            ResponseError::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if t.count < current {
        return Err(refuse(
            ResponseError::InvalidPartitions,
            format!(
                "The topic {name} currently has {current} partition(s); {} would not be an increase.",
                t.count
            ),
        ));
    }
    let additional = t.count - current;
    let Some(assignments) = &t.assignments else {
        return Ok(additional);
    };
    if assignments.len() as i64 != additional as i64 {
        return Err(refuse(
            ResponseError::InvalidReplicaAssignment,
            format!(
                "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                assignments.len()
            ),
        ));
    }
    let brokers = ctx.broker.metadata.brokers();
    // Every partition here has one replica (no replication yet).
    let replication_factor = 1;
    for a in assignments {
        if a.broker_ids.is_empty() {
            return Err(refuse(
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes an empty replica list.".into(),
            ));
        }
        let mut ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
        ids.sort_unstable();
        for (i, id) in ids.iter().enumerate() {
            if !brokers.contains(id) {
                return Err(refuse(
                    ResponseError::InvalidReplicaAssignment,
                    format!("The manual partition assignment includes broker {id}, but no such broker is registered."),
                ));
            }
            if i > 0 && ids[i - 1] == *id {
                return Err(refuse(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "The manual partition assignment includes the broker {id} more than once."
                    ),
                ));
            }
        }
        if ids.len() != replication_factor {
            return Err(refuse(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {replication_factor} replica(s).",
                    ids.len()
                ),
            ));
        }
    }
    Ok(additional)
}

pub fn handle(ctx: &RequestContext, request: CreatePartitionsRequest) -> Handled {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.as_str()).or_default() += 1;
    }
    // Kafka answers each duplicated name once, first, and leaves it out of the rest.
    let mut results: Vec<CreatePartitionsTopicResult> = Vec::new();
    let mut reported = std::collections::HashSet::new();
    for t in &request.topics {
        let name = t.name.0.as_str();
        if seen[name] > 1 && reported.insert(name) {
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes("Duplicate topic name."))),
            );
        }
    }
    let mut budget = MAX_PARTITIONS_PER_REQUEST;
    for t in request
        .topics
        .iter()
        .filter(|t| seen[t.name.0.as_str()] == 1)
    {
        let name = t.name.0.as_str();
        // Kafka: ALTER on the topic, before anything else about it.
        let authorized = if ctx.authorize(Operation::Alter, ResourceType::Topic, name) {
            Ok(())
        } else {
            Err(refuse(
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            ))
        };
        let outcome = authorized
            .and_then(|()| check(ctx, t))
            .and_then(|additional| {
                if additional > budget {
                    return Err(refuse(
                        ResponseError::PolicyViolation,
                        format!("more than {MAX_PARTITIONS_PER_REQUEST} partitions in one request"),
                    ));
                }
                budget -= additional;
                if request.validate_only {
                    return Ok(());
                }
                // Directories, files and a metadata fsync: off the async workers.
                match tokio::task::block_in_place(|| ctx.broker.add_partitions(name, t.count)) {
                    Ok(Some(_)) => Ok(()),
                    // Deleted or grown meanwhile: Kafka's answer for the topic as it is now.
                    Ok(None) => check(ctx, t).map(|_| ()),
                    Err(e) => Err(refuse(ResponseError::KafkaStorageError, e.to_string())),
                }
            });
        let mut result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        match outcome {
            Ok(()) => {}
            Err((error, message)) => {
                tracing::info!(topic = name, error = ?error, "create partitions refused: {message:?}");
                result.error_code = error.code();
                result.error_message = message.map(|m| str_bytes(&m));
            }
        }
        results.push(result);
    }
    Handled::ready(ResponseKind::CreatePartitions(
        CreatePartitionsResponse::default().with_results(results),
    ))
}
