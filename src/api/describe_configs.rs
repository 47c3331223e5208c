//! DescribeConfigs for topics (overrides over broker defaults) and for this broker.

use super::{str_bytes, Handled, RequestContext};
use crate::config::TOPIC_CONFIGS;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

// Kafka's ConfigType values.
const BOOLEAN: i8 = 1;
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const LIST: i8 = 7;

fn config_type(name: &str, value: &str) -> i8 {
    match name.strip_prefix("log.").unwrap_or(name) {
        "cleanup.policy" | "group.consumer.assignors" | "group.coordinator.rebalance.protocols" => {
            LIST
        }
        "compression.type" | "message.timestamp.type" => STRING,
        "retention.ms"
        | "retention.bytes"
        | "segment.ms"
        | "roll.ms"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "retention.check.interval.ms"
        | "producer.id.expiration.ms"
        | "page.cache.max.bytes"
        | "connections.max.idle.ms"
        | "offsets.retention.check.interval.ms" => LONG,
        _ if value == "true" || value == "false" => BOOLEAN,
        _ if value.parse::<i32>().is_ok() => INT,
        _ if value.parse::<i64>().is_ok() => LONG,
        _ => STRING,
    }
}

/// Broker settings Kafka declares without a default of their own (it comes from the coarser
/// `.hours` setting): Kafka lists them as synonyms of a topic config only when they are set.
const NO_KAFKA_DEFAULT: &[&str] = &["log.retention.ms", "log.roll.ms"];

struct Entry {
    name: String,
    value: String,
    source: i8,
    synonyms: Vec<(String, String, i8)>,
}

fn topic_entries(
    ctx: &RequestContext,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Vec<Entry> {
    TOPIC_CONFIGS
        .iter()
        .map(|(name, default)| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(*name) {
                synonyms.push((name.to_string(), v.clone(), DYNAMIC_TOPIC_CONFIG));
            }
            if let Some((broker_name, Some(v))) = ctx.broker.config.broker_synonym(name) {
                synonyms.push((broker_name.to_string(), v, STATIC_BROKER_CONFIG));
            }
            let default_name = ctx
                .broker
                .config
                .broker_synonym(name)
                .map(|(b, _)| b.to_string())
                .unwrap_or_else(|| name.to_string());
            if !NO_KAFKA_DEFAULT.contains(&default_name.as_str()) {
                synonyms.push((default_name, default.to_string(), DEFAULT_CONFIG));
            }
            let (value, source) = synonyms
                .first()
                .map(|(_, v, s)| (v.clone(), *s))
                .unwrap_or_else(|| (default.to_string(), DEFAULT_CONFIG));
            Entry {
                name: name.to_string(),
                value,
                source,
                synonyms,
            }
        })
        .collect()
}

fn broker_entries(ctx: &RequestContext) -> Vec<Entry> {
    ctx.broker
        .config
        .broker_settings()
        .into_iter()
        .map(|(name, value, explicit)| {
            let source = if explicit {
                STATIC_BROKER_CONFIG
            } else {
                DEFAULT_CONFIG
            };
            Entry {
                name: name.to_string(),
                synonyms: vec![(name.to_string(), value.clone(), source)],
                value,
                source,
            }
        })
        .collect()
}

pub fn handle(ctx: &RequestContext, request: DescribeConfigsRequest) -> Handled {
    let version = ctx.api_version;
    let node = ctx.broker.config.node_id.to_string();
    let results = request
        .resources
        .iter()
        .map(|res| {
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let entries = match res.resource_type {
                TOPIC => match ctx.broker.topic(&res.resource_name) {
                    Some(t) => Ok(topic_entries(ctx, &t.configs)),
                    None => Err((E::UnknownTopicOrPartition, "unknown topic".to_string())),
                },
                // "" is the cluster-wide dynamic default entity: sluice has no dynamic
                // broker configs, so it holds none (Kafka answers the same until one is set).
                BROKER if res.resource_name.is_empty() => Ok(Vec::new()),
                BROKER if *res.resource_name == *node => Ok(broker_entries(ctx)),
                BROKER => Err((
                    E::InvalidRequest,
                    format!("unexpected broker id, expected {node}"),
                )),
                other => Err((
                    E::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            };
            match entries {
                Err((e, msg)) => {
                    out.error_code = e.code();
                    out.error_message = Some(str_bytes(&msg));
                }
                Ok(entries) => {
                    // Null (or empty) asks for every config.
                    let keys = res.configuration_keys.as_ref().filter(|k| !k.is_empty());
                    out.configs = entries
                        .into_iter()
                        .filter(|e| keys.is_none_or(|k| k.iter().any(|k| **k == *e.name)))
                        .map(|e| {
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(&e.name))
                                .with_value(Some(str_bytes(&e.value)))
                                .with_read_only(res.resource_type == BROKER)
                                .with_config_source(e.source)
                                .with_is_sensitive(false);
                            if request.include_synonyms {
                                c.synonyms = e
                                    .synonyms
                                    .iter()
                                    .map(|(n, v, s)| {
                                        DescribeConfigsSynonym::default()
                                            .with_name(str_bytes(n))
                                            .with_value(Some(str_bytes(v)))
                                            .with_source(*s)
                                    })
                                    .collect();
                            }
                            if version >= 3 {
                                c.config_type = config_type(&e.name, &e.value);
                            }
                            c
                        })
                        .collect();
                }
            }
            out
        })
        .collect();
    Handled::ready(ResponseKind::DescribeConfigs(
        DescribeConfigsResponse::default().with_results(results),
    ))
}
