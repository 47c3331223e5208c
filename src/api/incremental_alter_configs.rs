//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on a topic's overrides, on the
//! dynamic broker configs (the cluster default, resource name "", or this broker's, its node
//! id) and on log levels (BROKER_LOGGER). Also the checks and the stores AlterConfigs shares:
//! both compute a resource's complete new set of configs, then `alter_topic` / `alter_broker`
//! validate it as Kafka does and store it.

use super::{str_bytes, Handled, RequestContext};
use crate::broker::Broker;
use crate::config::kafka_broker::{self, KAFKA_BROKER};
use crate::config::registry::{self, check_type, Type};
use crate::logging;
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;
use std::collections::{BTreeMap, HashMap, HashSet};

pub(super) const TOPIC: i8 = 2;
pub(super) const BROKER: i8 = 4;
pub(super) const BROKER_LOGGER: i8 = 8;

/// A resource's error and message.
pub type Refusal = (E, String);

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Kafka's name of an operation.
fn op_name(op: i8) -> &'static str {
    match op {
        APPEND => "APPEND",
        SUBTRACT => "SUBTRACT",
        DELETE => "DELETE",
        _ => "SET",
    }
}

/// Kafka's checks before anything else: a resource named twice in one request.
pub(super) fn duplicated_resources<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> HashSet<(i8, &'a str)> {
    let mut seen: HashMap<(i8, &str), usize> = HashMap::new();
    for r in resources {
        *seen.entry(r).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(r, _)| r)
        .collect()
}

pub(super) const DUPLICATE_RESOURCE: &str = "Each resource must appear at most once.";

/// The same config twice, or a value missing where the operation needs one.
pub(super) fn check_entries<'a>(
    entries: impl Iterator<Item = (&'a str, bool)> + Clone,
) -> Result<(), Refusal> {
    let mut names = HashSet::new();
    if !entries.clone().all(|(n, _)| names.insert(n)) {
        return Err((
            E::InvalidRequest,
            "Error due to duplicate config keys".into(),
        ));
    }
    let nulls: Vec<&str> = entries.filter(|(_, null)| *null).map(|(n, _)| n).collect();
    if !nulls.is_empty() {
        return Err((
            E::InvalidRequest,
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    Ok(())
}

/// A BROKER (or BROKER_LOGGER) resource name: "" the cluster default (true), else this
/// broker's node id (false).
pub(super) fn broker_entity(ctx: &RequestContext, name: &str) -> Result<bool, Refusal> {
    if name.is_empty() {
        return Ok(true);
    }
    let node = ctx.broker.config.node_id;
    match name.parse::<i32>() {
        Err(_) => Err((
            E::InvalidRequest,
            format!("Node id must be an integer, but it is: {name}"),
        )),
        Ok(id) if id != node => Err((
            E::InvalidRequest,
            format!("Unexpected broker id, expected {node}, but received {name}"),
        )),
        Ok(_) => Ok(false),
    }
}

/// Validates a topic's complete new set of overrides and, unless `validate_only`, stores it
/// and applies it to the topic's partitions (Kafka's controller: unknown names and bad values
/// first, INVALID_CONFIG, then whether the topic exists).
pub(super) fn alter_topic(
    ctx: &RequestContext,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), Refusal> {
    alter_topic_configs(&ctx.broker, name, configs, validate_only)
}

/// `alter_topic` for any caller holding the broker (the web console's config edit too).
pub fn alter_topic_configs(
    broker: &Broker,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), Refusal> {
    for (k, v) in &configs {
        let Some(s) = registry::topic(k) else {
            return Err((E::InvalidConfig, format!("Unknown topic config name: {k}")));
        };
        s.kafka_check(v).map_err(|m| (E::InvalidConfig, m))?;
    }
    let missing = || {
        (
            E::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        )
    };
    let Some(topic) = broker.topic(name) else {
        return Err(missing());
    };
    broker
        .check_topic_change(&topic, &configs)
        .map_err(|m| (E::InvalidConfig, m))?;
    if validate_only {
        return Ok(());
    }
    match broker.set_topic_configs(name, configs) {
        Ok(true) => Ok(()),
        Ok(false) => Err(missing()),
        Err(e) => Err((E::KafkaStorageError, format!("{e:#}"))),
    }
}

/// A broker setting as AlterConfigs sees it: whether it may change at runtime and its check.
enum BrokerName {
    /// Declared by sluice's registry.
    Registry(&'static registry::Setting),
    /// One of Kafka's that sluice does not implement (stored and described, no effect).
    Kafka(&'static kafka_broker::KafkaSetting),
    /// A name Kafka does not know either: stored as given, as Kafka does.
    Custom,
}

fn broker_name(name: &str) -> BrokerName {
    match registry::broker(name) {
        Some(s) => BrokerName::Registry(s),
        None => match KAFKA_BROKER.iter().find(|k| k.name == name) {
            Some(k) => BrokerName::Kafka(k),
            None => BrokerName::Custom,
        },
    }
}

fn broker_type(name: &str) -> Option<Type> {
    match broker_name(name) {
        BrokerName::Registry(s) => Some(s.ty),
        BrokerName::Kafka(k) => Some(k.ty),
        BrokerName::Custom => None,
    }
}

/// Validates the complete new set of dynamic configs of the cluster default or this broker
/// (Kafka's DynamicBrokerConfig.validate: settings that cannot change at runtime, then the
/// values, each INVALID_REQUEST) and, unless `validate_only`, stores and applies it.
pub(super) fn alter_broker(
    ctx: &RequestContext,
    cluster_default: bool,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let fixed: Vec<&str> = configs
        .keys()
        .filter(|k| match broker_name(k) {
            BrokerName::Registry(s) => s.read_only,
            BrokerName::Kafka(k) => !k.dynamic,
            BrokerName::Custom => false,
        })
        .map(String::as_str)
        .collect();
    if !fixed.is_empty() {
        return Err((
            E::InvalidRequest,
            format!(
                "Cannot update these configs dynamically: [{}]",
                fixed.join(", ")
            ),
        ));
    }
    for (k, v) in &configs {
        let checked = match broker_name(k) {
            BrokerName::Registry(s) => s.kafka_check(v),
            BrokerName::Kafka(s) => check_type(k, s.ty, v),
            BrokerName::Custom => Ok(()),
        };
        checked.map_err(|m| (E::InvalidRequest, m))?;
    }
    check_cleaner_threads(ctx, &configs).map_err(|m| (E::InvalidRequest, m))?;
    if validate_only {
        return Ok(());
    }
    ctx.broker
        .set_dynamic_configs(cluster_default, configs)
        .map_err(|e| (E::KafkaStorageError, format!("{e:#}")))
}

/// Kafka's LogCleaner.validateReconfiguration: the thread count changes at runtime by at most a
/// factor of two, and stays at least 1 (a huge count would spawn that many threads).
fn check_cleaner_threads(
    ctx: &RequestContext,
    configs: &BTreeMap<String, String>,
) -> Result<(), String> {
    let Some(Ok(threads)) = configs
        .get("log.cleaner.threads")
        .map(|v| v.parse::<usize>())
    else {
        return Ok(());
    };
    let current = ctx.broker.cleaner_config().threads;
    if threads == current {
        return Ok(());
    }
    if threads < 1 {
        return Err("Log cleaner threads should be at least 1".to_string());
    }
    if threads < current / 2 {
        return Err(format!(
            "Log cleaner threads cannot be reduced to less than half the current value {current}"
        ));
    }
    if threads > current.max(1) * 2 {
        return Err(format!(
            "Log cleaner threads cannot be increased to more than double the current value {current}"
        ));
    }
    Ok(())
}

/// Applies one resource's operations to its current configs. `list` says whether a name is
/// list-typed (None: unknown); `default` is the value APPEND and SUBTRACT start from when the
/// name is not set; `not_list` is the refusal of APPEND/SUBTRACT on anything else.
fn apply_ops(
    current: &mut BTreeMap<String, String>,
    resource: &AlterConfigsResource,
    list: impl Fn(&str) -> Option<bool>,
    default: impl Fn(&str) -> Option<String>,
    not_list: impl Fn(i8, &str) -> Refusal,
) -> Result<(), Refusal> {
    for c in &resource.configs {
        let name = c.name.as_str();
        let value = c.value.as_deref().unwrap_or_default();
        match c.config_operation {
            SET => {
                current.insert(name.to_string(), value.to_string());
            }
            DELETE => {
                current.remove(name);
            }
            op @ (APPEND | SUBTRACT) => {
                if list(name) != Some(true) {
                    return Err(not_list(op, name));
                }
                let mut items: Vec<String> = current
                    .get(name)
                    .cloned()
                    .or_else(|| default(name))
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                for v in value.split(',') {
                    if op == APPEND && !items.iter().any(|i| i == v) {
                        items.push(v.to_string());
                    } else if op == SUBTRACT {
                        items.retain(|i| i != v);
                    }
                }
                current.insert(name.to_string(), items.join(","));
            }
            other => {
                return Err((
                    E::InvalidRequest,
                    format!("Unknown operations type {other}"),
                ))
            }
        }
    }
    Ok(())
}

fn alter_logger(
    ctx: &RequestContext,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Refusal> {
    if broker_entity(ctx, &resource.resource_name)? {
        return Err((
            E::InvalidRequest,
            "Node id must be an integer, but it is: ".into(),
        ));
    }
    let mut changes = Vec::new();
    for c in &resource.configs {
        let level = match c.config_operation {
            SET => c.value.as_ref().map(|v| v.to_string()),
            DELETE => None,
            op @ (APPEND | SUBTRACT) => {
                return Err((
                    E::InvalidRequest,
                    format!(
                        "{} operation is not allowed for the BROKER_LOGGER resource",
                        op_name(op)
                    ),
                ))
            }
            other => {
                return Err((
                    E::InvalidRequest,
                    format!(
                    "Unknown operation type {other} is not allowed for the BROKER_LOGGER resource"
                ),
                ))
            }
        };
        changes.push(logging::Change {
            logger: c.name.to_string(),
            level,
        });
    }
    logging::apply(&changes, validate_only).map_err(|r| match r {
        logging::Refused::Config(m) => (E::InvalidConfig, m),
        logging::Refused::Request(m) => (E::InvalidRequest, m),
    })
}

fn alter(
    ctx: &RequestContext,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Refusal> {
    check_entries(resource.configs.iter().map(|c| {
        (
            c.name.as_str(),
            c.value.is_none() && c.config_operation != DELETE,
        )
    }))?;
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        TOPIC => {
            let mut configs = ctx
                .broker
                .topic(name)
                .map(|t| t.configs.clone())
                .unwrap_or_default();
            apply_ops(
                &mut configs,
                resource,
                |n| registry::topic(n).map(|s| s.ty == Type::List),
                |n| {
                    registry::topic(n)
                        .and_then(|s| s.effective_default())
                        .map(str::to_string)
                },
                |op, n| {
                    (
                        E::InvalidConfig,
                        format!(
                            "Can't {} to key {n} because its type is not LIST.",
                            op_name(op)
                        ),
                    )
                },
            )?;
            alter_topic(ctx, name, configs, validate_only)
        }
        BROKER => {
            let cluster_default = broker_entity(ctx, name)?;
            let mut configs = ctx.broker.dynamic_configs(cluster_default);
            apply_ops(
                &mut configs,
                resource,
                |n| broker_type(n).map(|t| t == Type::List),
                |n| match broker_name(n) {
                    BrokerName::Registry(s) => s.effective_default().map(str::to_string),
                    BrokerName::Kafka(k) => k.default.map(str::to_string),
                    BrokerName::Custom => None,
                },
                |op, n| match broker_type(n) {
                    None => (E::InvalidConfig, format!("Unknown config name: {n}")),
                    Some(_) => (
                        E::InvalidConfig,
                        format!(
                            "Config value {} is not allowed for config key: {n}",
                            op_name(op).to_ascii_lowercase()
                        ),
                    ),
                },
            )?;
            alter_broker(ctx, cluster_default, configs, validate_only)
        }
        BROKER_LOGGER => alter_logger(ctx, resource, validate_only),
        other => Err(unsupported_type(other)),
    }
}

/// GROUP and CLIENT_METRICS resources are Kafka's, not served yet; anything else is unknown.
pub(super) fn unsupported_type(code: i8) -> Refusal {
    match code {
        16 | 32 => (
            E::InvalidRequest,
            format!("Resource type {code} is not supported by this broker"),
        ),
        _ => (E::InvalidRequest, format!("Unknown resource type {code}")),
    }
}

/// Kafka's check for config APIs: `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic
/// for a topic, on the cluster for a broker or its loggers.
pub(super) fn authorize_configs(
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
    operation: Operation,
) -> Result<(), (E, String)> {
    let (allowed, error) = match resource_type {
        TOPIC => (
            ctx.authorize(operation, ResourceType::Topic, name),
            E::TopicAuthorizationFailed,
        ),
        BROKER | BROKER_LOGGER => (
            ctx.authorize(
                operation,
                ResourceType::Cluster,
                crate::security::authorizer::CLUSTER_NAME,
            ),
            E::ClusterAuthorizationFailed,
        ),
        _ => (true, E::InvalidRequest),
    };
    if allowed {
        Ok(())
    } else {
        Err((error, "Authorization failed.".to_string()))
    }
}

/// One resource's answer in AlterConfigs or IncrementalAlterConfigs: a duplicated resource is
/// refused, then ALTER_CONFIGS is checked, then `alter` runs. (error code, message).
pub(super) fn resource_outcome(
    ctx: &RequestContext,
    twice: &HashSet<(i8, &str)>,
    resource_type: i8,
    name: &str,
    alter: impl FnOnce() -> Result<(), Refusal>,
) -> (i16, Option<StrBytes>) {
    let outcome = if twice.contains(&(resource_type, name)) {
        Err((E::InvalidRequest, DUPLICATE_RESOURCE.to_string()))
    } else {
        authorize_configs(ctx, resource_type, name, Operation::AlterConfigs).and_then(|()| alter())
    };
    match outcome {
        Ok(()) => (0, None),
        Err((e, m)) => (e.code(), Some(str_bytes(&m))),
    }
}

pub fn handle(ctx: &RequestContext, request: IncrementalAlterConfigsRequest) -> Handled {
    let twice = duplicated_resources(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let responses = request
        .resources
        .iter()
        .map(|r| {
            let (code, message) = resource_outcome(
                ctx,
                &twice,
                r.resource_type,
                r.resource_name.as_str(),
                || alter(ctx, r, request.validate_only),
            );
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    Handled::ready(ResponseKind::IncrementalAlterConfigs(
        IncrementalAlterConfigsResponse::default().with_responses(responses),
    ))
}
