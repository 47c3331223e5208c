//! CreateTopics: partitions, replication factor (a single broker: 1 or -1), validated
//! topic configs, validate_only.

use super::errors::ResponseError;
use super::{str_bytes, Handled, RequestContext};
use crate::broker::{validate_topic_name, TopicError};
use crate::config::{validate_topic_config, validate_topic_configs};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, ResponseKind};
use std::collections::{BTreeMap, HashMap};

/// Like KRaft's limit on records per user operation: one request cannot create unbounded
/// numbers of partitions (each is a directory, files and fsyncs).
pub const MAX_PARTITIONS_PER_REQUEST: i32 = 10_000;

struct Checked {
    partitions: i32,
    configs: BTreeMap<String, String>,
}

fn check(ctx: &RequestContext, t: &CreatableTopic) -> Result<Checked, (ResponseError, String)> {
    let name = t.name.0.as_str();
    validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    let node = ctx.broker.config.node_id;
    let partitions = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err((
                ResponseError::InvalidRequest,
                "both assignments and partitions/replication factor were given".into(),
            ));
        }
        for (i, a) in t.assignments.iter().enumerate() {
            if a.partition_index != i as i32 || a.broker_ids.len() != 1 || a.broker_ids[0].0 != node
            {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "partition {} must be assigned to exactly broker {node}",
                        a.partition_index
                    ),
                ));
            }
        }
        t.assignments.len() as i32
    } else {
        match t.num_partitions {
            -1 => ctx.broker.config.num_partitions,
            n if n >= 1 => n,
            n => {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("Number of partitions was set to an invalid non-positive value: {n}"),
                ))
            }
        }
    };
    // Each partition has exactly one replica until replication exists (cluster issue).
    if t.assignments.is_empty() && !matches!(t.replication_factor, -1 | 1) {
        let brokers = ctx.broker.metadata.brokers().len();
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only {brokers} broker(s) are registered.", t.replication_factor, t.replication_factor),
        ));
    }
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let Some(value) = &c.value else {
            return Err((
                ResponseError::InvalidConfig,
                format!(
                    "Null value not supported for topic configs: {}",
                    c.name.as_str()
                ),
            ));
        };
        validate_topic_config(c.name.as_str(), value.as_str())
            .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    validate_topic_configs(&configs).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    Ok(Checked {
        partitions,
        configs,
    })
}

/// Every topic config with its effective value and where it came from (CreateTopics v5+).
fn described_configs(
    ctx: &RequestContext,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    ctx.broker
        .describe_topic(overrides)
        .into_iter()
        .map(|(s, resolved)| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(s.name))
                .with_value(Some(str_bytes(&resolved.value)))
                .with_config_source(resolved.source.code())
        })
        .collect()
}

pub fn handle(ctx: &RequestContext, request: CreateTopicsRequest) -> Handled {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.as_str()).or_default() += 1;
    }
    let mut partition_budget = MAX_PARTITIONS_PER_REQUEST;
    // Kafka: CREATE on the cluster, else on each topic.
    let cluster_create = ctx.authorize(
        Operation::Create,
        ResourceType::Cluster,
        crate::security::authorizer::CLUSTER_NAME,
    );
    let results = request
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let mut result = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_message(None);
            let outcome = if seen[name] > 1 {
                Err((
                    ResponseError::InvalidRequest,
                    format!("Create topics request from client contains a duplicate topic: {name}"),
                ))
            } else if !cluster_create
                && !ctx.authorize(Operation::Create, ResourceType::Topic, name)
            {
                Err((
                    ResponseError::TopicAuthorizationFailed,
                    "Authorization failed.".to_string(),
                ))
            } else {
                let exists = ctx.broker.topic(name).is_some();
                if exists {
                    Err((
                        ResponseError::TopicAlreadyExists,
                        format!("Topic '{name}' already exists."),
                    ))
                } else {
                    check(ctx, t)
                }
                .and_then(|checked| {
                    if checked.partitions > partition_budget {
                        return Err((
                            ResponseError::PolicyViolation,
                            format!(
                                "more than {MAX_PARTITIONS_PER_REQUEST} partitions in one request"
                            ),
                        ));
                    }
                    partition_budget -= checked.partitions;
                    if request.validate_only {
                        // Kafka answers with the id the topic would get; nothing is kept.
                        return Ok((uuid::Uuid::new_v4(), checked));
                    }
                    // Directories, files and fsyncs: off the async workers.
                    let created = tokio::task::block_in_place(|| {
                        ctx.broker
                            .create_topic(name, checked.partitions, checked.configs.clone())
                    });
                    match created {
                        Ok(topic) => Ok((topic.id, checked)),
                        Err(TopicError::AlreadyExists) => Err((
                            ResponseError::TopicAlreadyExists,
                            format!("Topic '{name}' already exists."),
                        )),
                        Err(TopicError::InvalidName(m)) => {
                            Err((ResponseError::InvalidTopicException, m))
                        }
                        Err(TopicError::Storage(m)) => Err((ResponseError::KafkaStorageError, m)),
                    }
                })
            };
            match outcome {
                Ok((id, checked)) => {
                    if ctx.api_version >= 5 {
                        result.num_partitions = checked.partitions;
                        result.replication_factor = 1;
                        result.configs = Some(described_configs(ctx, &checked.configs));
                    }
                    if ctx.api_version >= 7 {
                        result.topic_id = id;
                    }
                }
                Err((error, message)) => {
                    tracing::info!(topic = name, error = ?error, "create topic refused: {message}");
                    result.error_code = error.code();
                    result.error_message = Some(str_bytes(&message));
                    // Kafka sends an empty list (v5+), not null, with an error.
                    result.configs = Some(Vec::new());
                }
            }
            result
        })
        .collect();
    Handled::ready(ResponseKind::CreateTopics(
        CreateTopicsResponse::default().with_topics(results),
    ))
}
