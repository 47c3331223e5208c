//! Topics: the list, and one topic's partitions (offsets, local and tiered bytes) and configs.

use super::html::{self, esc, url};
use super::overview::source;
use super::{not_found, Console, Page};
use crate::broker::Broker;
use crate::topic::Topic;
use axum::extract::{Path, State};
use axum::response::Html;
use std::sync::Arc;

/// Remote bytes of a partition as text: "-" without tiering, "?" while unknown.
fn tiered(broker: &Broker, t: &Topic, partition: i32) -> (Option<u64>, String) {
    match &broker.tier {
        None => (None, "-".to_string()),
        Some(tier) => match tier.remote_bytes(t, partition) {
            Some(b) => (Some(b), html::bytes(b)),
            None => (None, "?".to_string()),
        },
    }
}

pub async fn list(State(c): State<Arc<Console>>) -> Page {
    let broker = c.broker()?;
    let mut topics = broker.topics();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            let mut records = 0i64;
            let mut local = 0u64;
            let mut remote = 0u64;
            for p in &t.partitions {
                let o = p.offsets();
                records += (o.high_watermark - o.log_start).max(0);
                local += p.size_bytes();
                remote += tiered(&broker, t, p.index).0.unwrap_or(0);
            }
            vec![
                format!(
                    "<a href=\"/console/topics/{}\">{}</a>",
                    url(&t.name),
                    esc(&t.name)
                ),
                t.partitions.len().to_string(),
                records.to_string(),
                html::bytes(local),
                if broker.tier.is_some() {
                    html::bytes(remote)
                } else {
                    "-".to_string()
                },
                esc(&t.id.to_string()),
            ]
        })
        .collect();
    let body = format!(
        "<h1>Topics</h1><p><a class=\"button\" href=\"/console/create-topic\">Create topic…</a></p>{}",
        html::table(
            "topics",
            &[
                "topic",
                "partitions",
                "records (offsets)",
                "local bytes",
                "tiered bytes",
                "topic id"
            ],
            &rows
        )
    );
    Ok(Html(html::layout("Topics", &body)))
}

pub async fn detail(State(c): State<Arc<Console>>, Path(name): Path<String>) -> Page {
    let broker = c.broker()?;
    let t = broker
        .topic(&name)
        .ok_or_else(|| not_found(format!("no topic '{name}'")))?;
    let partitions: Vec<Vec<String>> = t
        .partitions
        .iter()
        .map(|p| {
            let o = p.offsets();
            let leader = t
                .states
                .get(p.index as usize)
                .map_or("-".to_string(), |s| s.leader.to_string());
            let remote = match p.remote() {
                Some((start, end)) if end > start => format!("{start}..{end}"),
                _ => "-".to_string(),
            };
            vec![
                p.index.to_string(),
                leader,
                o.log_start.to_string(),
                p.local_start().to_string(),
                o.high_watermark.to_string(),
                o.last_stable_offset.to_string(),
                o.log_end.to_string(),
                html::bytes(p.size_bytes()),
                remote,
                tiered(&broker, &t, p.index).1,
                format!(
                    "<a href=\"/console/topics/{}/messages?partition={}&amp;offset={}\">browse</a>",
                    url(&t.name),
                    p.index,
                    o.log_start
                ),
            ]
        })
        .collect();
    let configs: Vec<Vec<String>> = broker
        .describe_topic(&t.configs)
        .into_iter()
        .map(|(s, v)| {
            vec![
                format!("<span title=\"{}\">{}</span>", esc(s.doc), esc(s.name)),
                esc(&v.value),
                source(v.source),
            ]
        })
        .collect();
    let body = format!(
        "<h1>Topic {}</h1>{}<h2>Partitions</h2>{}<h2>Configs</h2>\
<p><a class=\"button\" href=\"/console/topics/{}/config\">Edit a config…</a></p>{}",
        esc(&t.name),
        html::pairs(
            "topic",
            &[
                ("Topic id", esc(&t.id.to_string())),
                ("Partitions", t.partitions.len().to_string()),
                (
                    "Messages",
                    format!(
                        "<a href=\"/console/topics/{}/messages\">browse</a>",
                        url(&t.name)
                    )
                ),
            ]
        ),
        html::table(
            "partitions",
            &[
                "partition",
                "leader",
                "log start",
                "local start",
                "high watermark",
                "last stable",
                "log end",
                "local bytes",
                "tiered offsets",
                "tiered bytes",
                ""
            ],
            &partitions
        ),
        url(&t.name),
        html::table("configs", &["name", "value", "source"], &configs),
    );
    Ok(Html(html::layout(&format!("Topic {name}"), &body)))
}
