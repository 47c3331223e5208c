//! DescribeConfigs for topics (overrides over broker defaults) and for this broker.

use super::{str_bytes, Handled, RequestContext};
use crate::config::registry::{Setting, Source};
use crate::config::resolve_topic;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::ResponseError as E;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

struct Entry {
    setting: &'static Setting,
    value: String,
    source: Source,
    synonyms: Vec<(&'static str, String, Source)>,
}

fn topic_entries(
    ctx: &RequestContext,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Vec<Entry> {
    crate::config::registry::TOPIC
        .iter()
        .map(|setting| {
            let r = resolve_topic(setting, &ctx.broker.config.topic_defaults, overrides);
            Entry {
                setting,
                value: r.value,
                source: r.source,
                synonyms: r.synonyms,
            }
        })
        .collect()
}

fn broker_entries(ctx: &RequestContext) -> Vec<Entry> {
    ctx.broker
        .config
        .broker_settings()
        .into_iter()
        .map(|(setting, value, explicit)| {
            let source = if explicit {
                Source::StaticBroker
            } else {
                Source::Default
            };
            Entry {
                setting,
                synonyms: vec![(setting.name, value.clone(), source)],
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
                        .filter(|e| keys.is_none_or(|k| k.iter().any(|k| **k == *e.setting.name)))
                        .map(|e| {
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(e.setting.name))
                                .with_value(Some(str_bytes(&e.value)))
                                .with_read_only(e.setting.read_only)
                                .with_config_source(e.source.code())
                                .with_is_sensitive(false);
                            if request.include_synonyms {
                                c.synonyms = e
                                    .synonyms
                                    .iter()
                                    .map(|(n, v, s)| {
                                        DescribeConfigsSynonym::default()
                                            .with_name(str_bytes(n))
                                            .with_value(Some(str_bytes(v)))
                                            .with_source(s.code())
                                    })
                                    .collect();
                            }
                            if version >= 3 {
                                c.config_type = e.setting.answered_type(&e.value).code();
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
