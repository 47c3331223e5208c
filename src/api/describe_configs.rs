//! DescribeConfigs: every topic config of a topic, every broker setting Kafka 4.4 reports (the
//! registry's, then Kafka's others), the cluster-wide dynamic defaults (resource name ""), and
//! log levels (BROKER_LOGGER). Values, sources and synonyms all come from the one resolution
//! in config/ (topic override, dynamic per-broker, dynamic cluster default, static, default).

use super::incremental_alter_configs::{broker_entity, BROKER, BROKER_LOGGER, TOPIC};
use super::{str_bytes, Handled, RequestContext};
use crate::broker::Broker;
use crate::config::kafka_broker::KAFKA_BROKER;
use crate::config::registry::{self, Source, Type};
use crate::config::BrokerLayers;
use crate::logging;
use crate::security::Operation;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::ResponseError as E;
use std::collections::BTreeMap;

/// One described config (the web console lists the broker's too).
pub struct Entry {
    pub name: String,
    /// None: null (no value, or sensitive).
    pub value: Option<String>,
    pub source: Source,
    pub synonyms: Vec<(String, Option<String>, Source)>,
    pub read_only: bool,
    pub sensitive: bool,
    /// Kafka's config type code (0: unknown, as Kafka answers for loggers).
    pub ty: i8,
    pub doc: &'static str,
}

fn topic_entries(ctx: &RequestContext, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
    ctx.broker
        .describe_topic(overrides)
        .into_iter()
        .map(|(s, r)| Entry {
            name: s.name.to_string(),
            ty: s.answered_type(&r.value).code(),
            value: Some(r.value),
            source: r.source,
            synonyms: r
                .synonyms
                .into_iter()
                .map(|(n, v, s)| (n.to_string(), Some(v), s))
                .collect(),
            read_only: false,
            sensitive: false,
            doc: s.doc,
        })
        .collect()
}

/// A broker setting's entry: its synonyms (Kafka's dropWhile rule in BrokerLayers::synonyms)
/// decide the value and the source.
#[allow(clippy::too_many_arguments)]
fn broker_entry(
    layers: &BrokerLayers,
    name: &'static str,
    chain: &[(&'static str, Option<&'static str>)],
    ty: Type,
    read_only: bool,
    sensitive: bool,
    doc: &'static str,
) -> Entry {
    let synonyms = layers.synonyms(name, chain);
    let (value, source) = synonyms
        .first()
        .map(|(_, v, s)| (Some(v.clone()), *s))
        .unwrap_or((None, Source::Default));
    let hide = |v: Option<String>| if sensitive { None } else { v };
    Entry {
        name: name.to_string(),
        ty: match (&value, ty) {
            (Some(v), _) => answered(name, ty, v),
            (None, t) => t.code(),
        },
        value: hide(value),
        source,
        synonyms: synonyms
            .into_iter()
            .map(|(n, v, s)| (n.to_string(), hide(Some(v)), s))
            .collect(),
        read_only,
        sensitive,
        doc,
    }
}

/// The type answered for a registry setting's value (registry::Setting::answered_type), or the
/// declared one for Kafka's others.
fn answered(name: &str, ty: Type, value: &str) -> i8 {
    registry::broker(name)
        .map(|s| s.answered_type(value))
        .unwrap_or(ty)
        .code()
}

/// Every broker setting: the registry's (with the coarser units of topic defaults as their
/// synonyms), then each of Kafka's the registry does not declare. Sorted by name.
pub fn broker_entries(broker: &Broker) -> Vec<Entry> {
    broker.with_layers(|layers| {
        let mut out: Vec<Entry> = registry::BROKER
            .iter()
            .map(|s| {
                let chain = match s.topic_config() {
                    Some(t) => registry::chain(t),
                    None => vec![(s.name, s.effective_default())],
                };
                broker_entry(
                    layers,
                    s.name,
                    &chain,
                    s.ty,
                    s.read_only,
                    s.ty == Type::Password,
                    s.doc,
                )
            })
            .collect();
        out.extend(
            KAFKA_BROKER
                .iter()
                .filter(|k| registry::broker(k.name).is_none())
                .map(|k| {
                    broker_entry(
                        layers,
                        k.name,
                        &[(k.name, k.default)],
                        k.ty,
                        !k.dynamic,
                        k.sensitive,
                        k.doc,
                    )
                }),
        );
        // Names neither table knows, set on this broker: reported sensitive with no value,
        // as Kafka does.
        let custom = layers.node.keys().filter(|n| {
            registry::broker(n).is_none() && !KAFKA_BROKER.iter().any(|k| k.name == *n)
        });
        out.extend(custom.map(|n| Entry {
            name: n.clone(),
            value: None,
            source: Source::DynamicBroker,
            synonyms: vec![(n.clone(), None, Source::DynamicBroker)],
            read_only: false,
            sensitive: true,
            ty: Type::String.code(),
            doc: "",
        }));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    })
}

/// The cluster-wide dynamic defaults that are set (Kafka lists only those). A name neither
/// table knows is reported sensitive, with no value, as Kafka does.
fn cluster_default_entries(ctx: &RequestContext) -> Vec<Entry> {
    ctx.broker
        .dynamic_configs(true)
        .into_iter()
        .map(|(name, value)| {
            let known = registry::broker(&name)
                .map(|s| (s.ty, s.read_only, s.ty == Type::Password, s.doc))
                .or_else(|| {
                    KAFKA_BROKER
                        .iter()
                        .find(|k| k.name == name)
                        .map(|k| (k.ty, !k.dynamic, k.sensitive, k.doc))
                });
            let (ty, read_only, sensitive, doc) = known.unwrap_or((Type::String, false, true, ""));
            let value = (!sensitive).then_some(value);
            Entry {
                synonyms: vec![(name.clone(), value.clone(), Source::DynamicDefaultBroker)],
                name,
                ty: ty.code(),
                value,
                source: Source::DynamicDefaultBroker,
                read_only,
                sensitive,
                doc,
            }
        })
        .collect()
}

fn logger_entries() -> Vec<Entry> {
    logging::describe()
        .into_iter()
        .map(|(name, level)| Entry {
            name,
            value: Some(level),
            source: Source::DynamicBrokerLogger,
            synonyms: Vec::new(),
            read_only: false,
            sensitive: false,
            ty: 0,
            doc: "",
        })
        .collect()
}

pub fn handle(ctx: &RequestContext, request: DescribeConfigsRequest) -> Handled {
    let version = ctx.api_version;
    let results = request
        .resources
        .iter()
        .map(|res| {
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let authorized = super::incremental_alter_configs::authorize_configs(
                ctx,
                res.resource_type,
                &res.resource_name,
                Operation::DescribeConfigs,
            );
            let entries = authorized.and_then(|()| match res.resource_type {
                TOPIC => match ctx.broker.topic(&res.resource_name) {
                    Some(t) => Ok(topic_entries(ctx, &t.configs)),
                    None => Err((E::UnknownTopicOrPartition, "unknown topic".to_string())),
                },
                BROKER => broker_entity(ctx, &res.resource_name).map(|cluster| {
                    if cluster {
                        cluster_default_entries(ctx)
                    } else {
                        broker_entries(&ctx.broker)
                    }
                }),
                BROKER_LOGGER => match broker_entity(ctx, &res.resource_name) {
                    Ok(false) => Ok(logger_entries()),
                    Ok(true) => Err((
                        E::InvalidRequest,
                        "Node id must be an integer, but it is: ".to_string(),
                    )),
                    Err(e) => Err(e),
                },
                other => Err((
                    E::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            });
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
                                .with_value(e.value.as_deref().map(str_bytes))
                                .with_read_only(e.read_only)
                                .with_config_source(e.source.code())
                                .with_is_sensitive(e.sensitive);
                            if request.include_synonyms {
                                c.synonyms = e
                                    .synonyms
                                    .iter()
                                    .map(|(n, v, s)| {
                                        DescribeConfigsSynonym::default()
                                            .with_name(str_bytes(n))
                                            .with_value(v.as_deref().map(str_bytes))
                                            .with_source(s.code())
                                    })
                                    .collect();
                            }
                            if version >= 3 {
                                c.config_type = e.ty;
                                if request.include_documentation {
                                    c.documentation = Some(str_bytes(e.doc));
                                }
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
