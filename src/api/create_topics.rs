//! CreateTopics: partitions, replication factor (a single broker: 1 or -1), validated
//! topic configs, validate_only.

use super::errors::ResponseError;
use super::{str_bytes, Handled, RequestContext};
use crate::broker::{validate_topic_name, Placement, TopicError};
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
    placement: Placement,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
}

fn check(ctx: &RequestContext, t: &CreatableTopic) -> Result<Checked, (ResponseError, String)> {
    let name = t.name.0.as_str();
    validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    let mut brokers = ctx.broker.metadata.brokers();
    if brokers.is_empty() {
        brokers.push(ctx.broker.config.node_id);
    }
    let (partitions, placement, replication_factor) = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err((
                ResponseError::InvalidRequest,
                "both assignments and partitions/replication factor were given".into(),
            ));
        }
        let mut replicas = Vec::with_capacity(t.assignments.len());
        for (i, a) in t.assignments.iter().enumerate() {
            let ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
            let distinct: std::collections::BTreeSet<i32> = ids.iter().copied().collect();
            if a.partition_index != i as i32 {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    "partitions should be a consecutive 0-based integer sequence".into(),
                ));
            }
            if ids.is_empty() || distinct.len() != ids.len() {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "The manual partition assignment includes an empty or duplicate replica list for partition {i}."
                    ),
                ));
            }
            if let Some(missing) = ids.iter().find(|b| !brokers.contains(b)) {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "The manual partition assignment includes broker {missing}, but no such broker is registered."
                    ),
                ));
            }
            replicas.push(ids);
        }
        let rf = replicas[0].len() as i16;
        (
            t.assignments.len() as i32,
            Placement::Assigned(replicas),
            rf,
        )
    } else {
        let partitions = match t.num_partitions {
            -1 => ctx.broker.config.num_partitions,
            n if n >= 1 => n,
            n => {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("Number of partitions was set to an invalid non-positive value: {n}"),
                ))
            }
        };
        let rf = match t.replication_factor {
            -1 => ctx.broker.config.default_replication_factor.max(1),
            n if n >= 1 => n,
            _ => {
                return Err((
                    ResponseError::InvalidReplicationFactor,
                    "Replication factor must be larger than 0, or -1 to use the default value."
                        .into(),
                ))
            }
        };
        if rf as usize > brokers.len() {
            return Err((
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.", brokers.len()),
            ));
        }
        (partitions, Placement::Factor(rf as usize), rf)
    };
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
        placement,
        replication_factor,
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
                        ctx.broker.create_topic(
                            name,
                            checked.partitions,
                            checked.placement.clone(),
                            checked.configs.clone(),
                        )
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
                        result.replication_factor = checked.replication_factor;
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
