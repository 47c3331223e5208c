//! The console's three changes, each form -> confirm page -> POST: create a topic, set or
//! delete a topic config, reset a group's committed offsets. The confirm page validates the
//! change (nothing is applied) and carries the token of exactly that change; the POST is
//! refused (403) without it. Validation and application use the same broker calls the Kafka
//! handlers use (CreateTopics, IncrementalAlterConfigs, OffsetCommit).

use super::html::{self, esc, hidden, url};
use super::{bad_request, not_found, Console, Page, Params, Problem};
use crate::api::create_topics::MAX_PARTITIONS_PER_REQUEST;
use crate::api::incremental_alter_configs::alter_topic_configs;
use crate::broker::{validate_topic_name, Broker, TopicError};
use crate::config::{validate_topic_config, validate_topic_configs};
use crate::coordinator::group::{CommitRequest, OffsetToCommit};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::sync::Arc;

fn field<'a>(f: &'a Params, name: &str) -> &'a str {
    f.get(name).map_or("", |v| v.trim())
}

fn refused(m: impl Into<String>) -> Problem {
    Problem(StatusCode::FORBIDDEN, m.into())
}

fn error_name(code: i16) -> String {
    ResponseError::try_from_code(code).map_or(format!("error {code}"), |e| format!("{e:?}"))
}

/// The confirm page: what will change, and the POST form that applies it.
fn confirm_page(
    title: &str,
    summary: &str,
    action: &str,
    fields: &[(&str, &str)],
    token: &str,
    back: &str,
) -> Html<String> {
    let mut hidden_fields = String::new();
    for (k, v) in fields {
        hidden_fields.push_str(&hidden(k, v));
    }
    let body = format!(
        "<h1>{}</h1><div class=\"confirm\">{summary}</div>\
<form method=\"post\" action=\"{}\" id=\"confirm\">{hidden_fields}{}\
<button type=\"submit\" class=\"danger\">Confirm</button> <a href=\"{}\">Cancel</a></form>",
        esc(title),
        esc(action),
        hidden("token", token),
        esc(back),
    );
    Html(html::layout(title, &body))
}

fn done_page(title: &str, message: &str, next: &str) -> Html<String> {
    let body = format!(
        "<h1>{}</h1><p class=\"done\" id=\"done\">{}</p><p><a href=\"{}\">continue</a></p>",
        esc(title),
        esc(message),
        esc(next)
    );
    Html(html::layout(title, &body))
}

// ---- create a topic ----

struct NewTopic {
    name: String,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

/// The configs textarea, one `name=value` per line; as canonical text for the token.
fn parse_configs(text: &str) -> Result<BTreeMap<String, String>, Problem> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| bad_request(format!("config line '{line}' is not name=value")))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

fn configs_text(c: &BTreeMap<String, String>) -> String {
    c.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// CreateTopics' checks (name, partition count, each config and their combination).
fn check_new_topic(broker: &Broker, f: &Params) -> Result<NewTopic, Problem> {
    let name = field(f, "name").to_string();
    validate_topic_name(&name).map_err(bad_request)?;
    if broker.topic(&name).is_some() {
        return Err(Problem(
            StatusCode::CONFLICT,
            format!("Topic '{name}' already exists."),
        ));
    }
    let partitions = match field(f, "partitions") {
        "" => broker.config.num_partitions,
        p => p
            .parse::<i32>()
            .map_err(|_| bad_request(format!("partitions must be an integer, not '{p}'")))?,
    };
    if !(1..=MAX_PARTITIONS_PER_REQUEST).contains(&partitions) {
        return Err(bad_request(format!(
            "partitions must be 1..{MAX_PARTITIONS_PER_REQUEST}"
        )));
    }
    let configs = parse_configs(f.get("configs").map_or("", String::as_str))?;
    for (k, v) in &configs {
        validate_topic_config(k, v).map_err(|e| bad_request(e.to_string()))?;
    }
    validate_topic_configs(&configs).map_err(|e| bad_request(e.to_string()))?;
    Ok(NewTopic {
        name,
        partitions,
        configs,
    })
}

pub async fn create_form(State(c): State<Arc<Console>>) -> Page {
    let broker = c.broker()?;
    let body = format!(
        "<h1>Create topic</h1><form method=\"get\" action=\"/console/create-topic/confirm\" id=\"create\">\
<label>name <input name=\"name\" required maxlength=\"249\"></label>\
<label>partitions <input name=\"partitions\" type=\"number\" min=\"1\" value=\"{}\"></label>\
<label>configs (name=value per line) <textarea name=\"configs\" rows=\"4\"></textarea></label>\
<button type=\"submit\">Review…</button></form>",
        broker.config.num_partitions
    );
    Ok(Html(html::layout("Create topic", &body)))
}

pub async fn create_confirm(State(c): State<Arc<Console>>, Query(q): Query<Params>) -> Page {
    let broker = c.broker()?;
    let t = check_new_topic(&broker, &q)?;
    let partitions = t.partitions.to_string();
    let configs = configs_text(&t.configs);
    let fields = [
        ("name", t.name.as_str()),
        ("partitions", partitions.as_str()),
        ("configs", configs.as_str()),
    ];
    let summary = format!(
        "<p>Create topic <b>{}</b> with {} partition(s){}.</p><pre>{}</pre>",
        esc(&t.name),
        t.partitions,
        if t.configs.is_empty() {
            " and default configs"
        } else {
            " and these configs:"
        },
        esc(&configs)
    );
    let token = c.token("create-topic", &fields);
    Ok(confirm_page(
        "Confirm: create topic",
        &summary,
        "/console/create-topic",
        &fields,
        &token,
        "/console/topics",
    ))
}

pub async fn create_apply(State(c): State<Arc<Console>>, Form(f): Form<Params>) -> Page {
    let broker = c.broker()?;
    // Browsers send the hidden field's newlines as CRLF: compare the canonical text.
    let configs = configs_text(&parse_configs(f.get("configs").map_or("", String::as_str))?);
    let fields = [
        ("name", field(&f, "name")),
        ("partitions", field(&f, "partitions")),
        ("configs", configs.as_str()),
    ];
    if !c.token_ok("create-topic", &fields, field(&f, "token")) {
        return Err(refused(
            "this change was not confirmed: open the confirm page and press Confirm",
        ));
    }
    let t = check_new_topic(&broker, &f)?;
    let created = tokio::task::block_in_place(|| {
        let rf = crate::broker::Placement::Factor(
            broker.config.default_replication_factor.max(1) as usize
        );
        broker.create_topic(&t.name, t.partitions, rf, t.configs)
    });
    match created {
        Ok(topic) => {
            tracing::info!(topic = %topic.name, "topic created from the web console");
            Ok(done_page(
                "Topic created",
                &format!(
                    "Created topic '{}' with {} partition(s).",
                    topic.name,
                    topic.partitions.len()
                ),
                &format!("/console/topics/{}", url(&topic.name)),
            ))
        }
        Err(TopicError::AlreadyExists) => Err(Problem(
            StatusCode::CONFLICT,
            format!("Topic '{}' already exists.", t.name),
        )),
        Err(TopicError::InvalidName(m)) => Err(bad_request(m)),
        Err(TopicError::Storage(m)) => Err(Problem(StatusCode::INTERNAL_SERVER_ERROR, m)),
    }
}

// ---- edit a topic config ----

/// The topic's overrides after the change in `f` (op set|delete, name, value).
fn next_configs(
    broker: &Broker,
    topic: &str,
    f: &Params,
) -> Result<(String, BTreeMap<String, String>), Problem> {
    let t = broker
        .topic(topic)
        .ok_or_else(|| not_found(format!("no topic '{topic}'")))?;
    let name = field(f, "name");
    if name.is_empty() {
        return Err(bad_request("name the config to change"));
    }
    let mut next = t.configs.clone();
    let what = match field(f, "op") {
        "" | "set" => {
            let value = field(f, "value");
            next.insert(name.to_string(), value.to_string());
            format!("Set {name}={value} on topic '{topic}'.")
        }
        "delete" => {
            if next.remove(name).is_none() {
                return Err(bad_request(format!(
                    "topic '{topic}' has no override of {name} to delete"
                )));
            }
            format!("Delete the override of {name} on topic '{topic}' (back to the default).")
        }
        op => return Err(bad_request(format!("op must be set or delete, not '{op}'"))),
    };
    // IncrementalAlterConfigs' validation, nothing applied.
    alter_topic_configs(broker, topic, next.clone(), true)
        .map_err(|(e, m)| bad_request(format!("{e:?}: {m}")))?;
    Ok((what, next))
}

pub async fn config_form(State(c): State<Arc<Console>>, Path(topic): Path<String>) -> Page {
    let broker = c.broker()?;
    let t = broker
        .topic(&topic)
        .ok_or_else(|| not_found(format!("no topic '{topic}'")))?;
    let options: String = crate::config::registry::TOPIC
        .iter()
        .map(|s| format!("<option value=\"{}\">", esc(s.name)))
        .collect();
    let body = format!(
        "<h1>Edit a config of {}</h1><p>Overrides now: <code>{}</code></p>\
<form method=\"get\" action=\"/console/topics/{}/config/confirm\" id=\"edit-config\">\
<label>operation <select name=\"op\"><option value=\"set\">set</option><option value=\"delete\">delete override</option></select></label>\
<label>name <input name=\"name\" list=\"topic-configs\" required></label><datalist id=\"topic-configs\">{options}</datalist>\
<label>value <input name=\"value\"></label><button type=\"submit\">Review…</button></form>",
        esc(&topic),
        esc(configs_text(&t.configs).trim_end()),
        url(&topic),
    );
    Ok(Html(html::layout(&format!("Edit {topic}"), &body)))
}

pub async fn config_confirm(
    State(c): State<Arc<Console>>,
    Path(topic): Path<String>,
    Query(q): Query<Params>,
) -> Page {
    let broker = c.broker()?;
    let (what, next) = next_configs(&broker, &topic, &q)?;
    let fields = [
        ("op", field(&q, "op")),
        ("name", field(&q, "name")),
        ("value", field(&q, "value")),
    ];
    let token = c.token(&format!("config/{topic}"), &fields);
    let summary = format!(
        "<p>{}</p><p>Overrides afterwards:</p><pre>{}</pre>",
        esc(&what),
        esc(&configs_text(&next))
    );
    Ok(confirm_page(
        "Confirm: edit topic config",
        &summary,
        &format!("/console/topics/{}/config", url(&topic)),
        &fields,
        &token,
        &format!("/console/topics/{}", url(&topic)),
    ))
}

pub async fn config_apply(
    State(c): State<Arc<Console>>,
    Path(topic): Path<String>,
    Form(f): Form<Params>,
) -> Page {
    let broker = c.broker()?;
    let fields = [
        ("op", field(&f, "op")),
        ("name", field(&f, "name")),
        ("value", field(&f, "value")),
    ];
    if !c.token_ok(&format!("config/{topic}"), &fields, field(&f, "token")) {
        return Err(refused(
            "this change was not confirmed: open the confirm page and press Confirm",
        ));
    }
    let (what, next) = next_configs(&broker, &topic, &f)?;
    alter_topic_configs(&broker, &topic, next, false)
        .map_err(|(e, m)| bad_request(format!("{e:?}: {m}")))?;
    tracing::info!(topic = %topic, "topic config changed from the web console: {what}");
    Ok(done_page(
        "Config changed",
        &what,
        &format!("/console/topics/{}", url(&topic)),
    ))
}

// ---- reset a group's offsets ----

/// Where each partition's offset goes: (partition, current committed, new).
type Resets = Vec<(i32, Option<i64>, i64)>;

/// The group must have no members (as `sluice group seek` and kafka-consumer-groups require).
fn plan_reset(broker: &Broker, group: &str, f: &Params) -> Result<(String, Resets), Problem> {
    if let Some(d) = super::groups::describe(broker, group) {
        if !d.members.is_empty() || !matches!(d.state, "Empty" | "Dead") {
            return Err(Problem(
                StatusCode::CONFLICT,
                format!(
                    "Group '{group}' has {} active member(s) (state {}); stop them before resetting offsets.",
                    d.members.len(),
                    d.state
                ),
            ));
        }
    }
    let topic = field(f, "topic");
    let t = broker
        .topic(topic)
        .ok_or_else(|| bad_request(format!("no topic '{topic}'")))?;
    let only = match field(f, "partition") {
        "" => None,
        p => Some(
            p.parse::<i32>()
                .ok()
                .filter(|p| *p >= 0 && (*p as usize) < t.partitions.len())
                .ok_or_else(|| bad_request(format!("topic '{topic}' has no partition '{p}'")))?,
        ),
    };
    let value = field(f, "value");
    let number = |what: &str| {
        value
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| {
                bad_request(format!(
                    "{what} must be a non-negative integer, not '{value}'"
                ))
            })
    };
    let to = field(f, "to");
    let target = match to {
        "start" | "end" => None,
        "offset" => Some(number("offset")?),
        "timestamp" => Some(number("timestamp")?),
        _ => {
            return Err(bad_request(format!(
                "to must be start, end, offset or timestamp, not '{to}'"
            )))
        }
    };
    let committed: BTreeMap<i32, i64> = broker
        .groups
        .fetch_offsets(
            group,
            Some(vec![(
                topic.to_string(),
                (0..t.partitions.len() as i32).collect(),
            )]),
            None,
            false,
        )
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(_, ps)| ps)
        .filter_map(|(p, o)| Some((p, o.ok().flatten()?.offset)))
        .collect();
    let mut resets = Vec::new();
    for p in &t.partitions {
        if only.is_some_and(|o| o != p.index) {
            continue;
        }
        let o = p.offsets();
        let new = match (to, target) {
            ("start", _) => o.log_start,
            ("end", _) => o.high_watermark,
            // Clamped into the log, as kafka-consumer-groups does.
            ("offset", Some(n)) => n.clamp(o.log_start, o.high_watermark.max(o.log_start)),
            (_, Some(ts)) => tokio::task::block_in_place(|| p.offset_for_timestamp(ts))
                .map_err(|e| Problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .map_or(o.high_watermark, |(_, off)| off.max(o.log_start)),
            _ => unreachable!("checked above"),
        };
        resets.push((p.index, committed.get(&p.index).copied(), new));
    }
    let what = format!(
        "Reset group '{group}' on topic '{topic}' to {}.",
        match to {
            "start" | "end" => to.to_string(),
            _ => format!("{to} {value}"),
        }
    );
    Ok((what, resets))
}

fn resets_table(resets: &Resets) -> String {
    let rows: Vec<Vec<String>> = resets
        .iter()
        .map(|(p, old, new)| {
            vec![
                p.to_string(),
                old.map_or("-".into(), |o| o.to_string()),
                new.to_string(),
            ]
        })
        .collect();
    html::table(
        "resets",
        &["partition", "committed now", "new offset"],
        &rows,
    )
}

pub async fn reset_form(State(c): State<Arc<Console>>, Path(group): Path<String>) -> Page {
    let broker = c.broker()?;
    let options: String = {
        let mut names: Vec<String> = broker.topics().iter().map(|t| t.name.clone()).collect();
        names.sort();
        names
            .iter()
            .map(|n| format!("<option value=\"{}\">{}</option>", esc(n), esc(n)))
            .collect()
    };
    let body = format!(
        "<h1>Reset offsets of {}</h1><p class=\"note\">The group must have no active members.</p>\
<form method=\"get\" action=\"/console/groups/{}/reset/confirm\" id=\"reset\">\
<label>topic <select name=\"topic\">{options}</select></label>\
<label>partition (empty: all) <input name=\"partition\" type=\"number\" min=\"0\"></label>\
<label>to <select name=\"to\"><option value=\"start\">start</option><option value=\"end\">end</option><option value=\"offset\">offset</option><option value=\"timestamp\">timestamp (ms)</option></select></label>\
<label>offset or timestamp <input name=\"value\" type=\"number\" min=\"0\"></label>\
<button type=\"submit\">Review…</button></form>",
        esc(&group),
        url(&group),
    );
    Ok(Html(html::layout(&format!("Reset {group}"), &body)))
}

fn reset_fields(f: &Params) -> [(&'static str, &str); 4] {
    [
        ("topic", field(f, "topic")),
        ("partition", field(f, "partition")),
        ("to", field(f, "to")),
        ("value", field(f, "value")),
    ]
}

pub async fn reset_confirm(
    State(c): State<Arc<Console>>,
    Path(group): Path<String>,
    Query(q): Query<Params>,
) -> Page {
    let broker = c.broker()?;
    let (what, resets) = plan_reset(&broker, &group, &q)?;
    let fields = reset_fields(&q);
    let token = c.token(&format!("reset/{group}"), &fields);
    let summary = format!("<p>{}</p>{}", esc(&what), resets_table(&resets));
    Ok(confirm_page(
        "Confirm: reset offsets",
        &summary,
        &format!("/console/groups/{}/reset", url(&group)),
        &fields,
        &token,
        &format!("/console/groups/{}", url(&group)),
    ))
}

pub async fn reset_apply(
    State(c): State<Arc<Console>>,
    Path(group): Path<String>,
    Form(f): Form<Params>,
) -> Page {
    let broker = c.broker()?;
    let fields = reset_fields(&f);
    if !c.token_ok(&format!("reset/{group}"), &fields, field(&f, "token")) {
        return Err(refused(
            "this change was not confirmed: open the confirm page and press Confirm",
        ));
    }
    let (what, resets) = plan_reset(&broker, &group, &f)?;
    let topic = field(&f, "topic").to_string();
    let outcome = broker.groups.commit_offsets(
        &group,
        CommitRequest {
            member_id: String::new(),
            instance_id: None,
            generation_or_epoch: -1,
            api_version: 9,
            offsets: resets
                .iter()
                .map(|(p, _, new)| OffsetToCommit {
                    topic: topic.clone(),
                    partition: *p,
                    offset: *new,
                    leader_epoch: -1,
                    metadata: None,
                })
                .collect(),
        },
    );
    if let Some(&code) = outcome.errors.iter().find(|&&c| c != 0) {
        return Err(Problem(
            StatusCode::CONFLICT,
            format!("the commit was refused: {}", error_name(code)),
        ));
    }
    if let Some(end) = outcome.durable_end {
        broker
            .groups
            .wait_durable(end)
            .await
            .map_err(|e| Problem(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    }
    tracing::info!(group = %group, "offsets reset from the web console: {what}");
    Ok(done_page(
        "Offsets reset",
        &what,
        &format!("/console/groups/{}", url(&group)),
    ))
}
