//! Consumer groups: the list with total lag, and one group's members and per-partition lag.
//! Lag is what `sluice group describe` reports: high watermark minus the committed offset
//! (the whole high watermark when nothing is committed), over the partitions the group
//! committed for or its members own.

use super::html::{self, esc, url};
use super::{not_found, Console, Page};
use crate::broker::Broker;
use crate::coordinator::group::GroupKind;
use axum::extract::{Path, State};
use axum::response::Html;
use bytes::Buf;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct Member {
    pub id: String,
    pub client_id: String,
    pub host: String,
    pub assignment: BTreeMap<String, Vec<i32>>,
}

pub struct Described {
    pub kind: &'static str,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<Member>,
}

pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub end: Option<i64>,
    pub lag: Option<i64>,
    pub member: Option<Member>,
}

/// A classic consumer's assignment (ConsumerProtocolAssignment, version-prefixed).
fn decode_assignment(mut b: bytes::Bytes) -> BTreeMap<String, Vec<i32>> {
    let mut out = BTreeMap::new();
    if b.len() < 2 {
        return out;
    }
    let version = b.get_i16();
    if let Ok(a) = ConsumerProtocolAssignment::decode(&mut b, version.clamp(0, 3)) {
        for tp in a.assigned_partitions {
            out.entry(tp.topic.to_string())
                .or_insert_with(Vec::new)
                .extend(tp.partitions);
        }
    }
    out
}

pub fn describe(broker: &Broker, group: &str) -> Option<Described> {
    broker.groups.inspect(group, |g| {
        let (protocol, members) = match &g.kind {
            GroupKind::Classic(c) => {
                let consumer = c.protocol_type() == Some("consumer");
                let members = c
                    .summaries()
                    .into_iter()
                    .map(|m| Member {
                        id: m.member_id,
                        client_id: m.client_id,
                        host: m.client_host,
                        assignment: if consumer {
                            decode_assignment(m.assignment)
                        } else {
                            BTreeMap::new()
                        },
                    })
                    .collect();
                (c.protocol().unwrap_or_default().to_string(), members)
            }
            GroupKind::Consumer(c) => {
                let members = c
                    .members()
                    .map(|m| Member {
                        id: m.id.clone(),
                        client_id: m.client_id.clone(),
                        host: m.client_host.clone(),
                        assignment: m
                            .assigned
                            .iter()
                            .map(|(id, ps)| {
                                let name = c
                                    .topic_name(id)
                                    .map(str::to_string)
                                    .or_else(|| broker.topic_by_id(id).map(|t| t.name.clone()))
                                    .unwrap_or_else(|| id.to_string());
                                (name, ps.iter().copied().collect())
                            })
                            .collect(),
                    })
                    .collect();
                (c.assignor_name(), members)
            }
        };
        Described {
            kind: g.type_name(),
            state: g.state_name(),
            protocol_type: g.protocol_type(),
            protocol,
            members,
        }
    })
}

/// Per partition the committed offset, the high watermark and the lag.
pub fn lag(broker: &Broker, group: &str, members: &[Member]) -> Vec<PartitionLag> {
    let committed: BTreeMap<(String, i32), i64> = broker
        .groups
        .fetch_offsets(group, None, None, false)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(t, ps)| {
            ps.into_iter().filter_map(move |(p, o)| {
                let o = o.ok().flatten()?;
                Some(((t.clone(), p), o.offset))
            })
        })
        .collect();
    let mut owner: BTreeMap<(String, i32), &Member> = BTreeMap::new();
    for m in members {
        for (t, ps) in &m.assignment {
            for p in ps {
                owner.insert((t.clone(), *p), m);
            }
        }
    }
    let mut keys: Vec<(String, i32)> = committed.keys().chain(owner.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(topic, partition)| {
            let end = broker
                .topic(&topic)
                .and_then(|t| t.partitions.get(partition as usize).cloned())
                .map(|p| p.offsets().high_watermark);
            let c = committed.get(&(topic.clone(), partition)).copied();
            let lag = match (c, end) {
                (Some(c), Some(e)) => Some((e - c).max(0)),
                (None, Some(e)) => Some(e),
                _ => None,
            };
            let member = owner.get(&(topic.clone(), partition)).map(|m| (*m).clone());
            PartitionLag {
                topic,
                partition,
                committed: c,
                end,
                lag,
                member,
            }
        })
        .collect()
}

fn opt(o: Option<i64>) -> String {
    o.map_or("-".to_string(), |o| o.to_string())
}

pub async fn list(State(c): State<Arc<Console>>) -> Page {
    let broker = c.broker()?;
    let rows: Vec<Vec<String>> = broker
        .groups
        .list_groups(&[], &[])
        .into_iter()
        .map(|l| {
            let members = describe(&broker, &l.group_id).map_or(Vec::new(), |d| d.members);
            let total: i64 = lag(&broker, &l.group_id, &members)
                .iter()
                .filter_map(|p| p.lag)
                .sum();
            vec![
                format!(
                    "<a href=\"/console/groups/{}\">{}</a>",
                    url(&l.group_id),
                    esc(&l.group_id)
                ),
                esc(l.group_type),
                esc(l.state),
                esc(&l.protocol_type),
                members.len().to_string(),
                format!("<span class=\"total-lag\">{total}</span>"),
            ]
        })
        .collect();
    let body = format!(
        "<h1>Consumer groups</h1>{}",
        html::table(
            "groups",
            &[
                "group",
                "type",
                "state",
                "protocol type",
                "members",
                "total lag"
            ],
            &rows
        )
    );
    Ok(Html(html::layout("Consumer groups", &body)))
}

pub async fn detail(State(c): State<Arc<Console>>, Path(group): Path<String>) -> Page {
    let broker = c.broker()?;
    let described = describe(&broker, &group);
    let partitions = lag(
        &broker,
        &group,
        described.as_ref().map_or(&[][..], |d| &d.members),
    );
    let Some(d) = described.or_else(|| {
        // Offsets committed outside any membership (a simple consumer) still make a group.
        (!partitions.is_empty()).then(|| Described {
            kind: "classic",
            state: "Dead",
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        })
    }) else {
        return Err(not_found(format!("no group '{group}'")));
    };
    let total: i64 = partitions.iter().filter_map(|p| p.lag).sum();
    let members: Vec<Vec<String>> = d
        .members
        .iter()
        .map(|m| {
            let assigned: Vec<String> = m
                .assignment
                .iter()
                .map(|(t, ps)| {
                    let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                    format!("{}: {}", esc(t), ps.join(","))
                })
                .collect();
            vec![
                esc(&m.id),
                esc(&m.client_id),
                esc(&m.host),
                assigned.join("<br>"),
            ]
        })
        .collect();
    let mut rows = String::new();
    for p in &partitions {
        let m = p.member.as_ref();
        rows.push_str(&format!(
            "<tr class=\"lag\" data-topic=\"{}\" data-partition=\"{}\" data-lag=\"{}\"><td>{}</td><td>{}</td>\
<td class=\"committed\">{}</td><td class=\"end\">{}</td><td class=\"lag-value\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.topic),
            p.partition,
            opt(p.lag),
            esc(&p.topic),
            p.partition,
            opt(p.committed),
            opt(p.end),
            opt(p.lag),
            m.map_or("-".to_string(), |m| esc(&m.id)),
            m.map_or("-".to_string(), |m| esc(&m.client_id)),
        ));
    }
    if partitions.is_empty() {
        rows.push_str("<tr><td colspan=\"7\" class=\"empty\">none</td></tr>");
    }
    let body = format!(
        "<h1>Group {}</h1>{}<h2>Members</h2>{}<h2>Lag</h2>\
<table id=\"lag\"><thead><tr><th>topic</th><th>partition</th><th>committed offset</th><th>high watermark</th><th>lag</th><th>member</th><th>client id</th></tr></thead><tbody>{rows}</tbody></table>\
<p><a class=\"button\" href=\"/console/groups/{}/reset\">Reset offsets…</a></p>",
        esc(&group),
        html::pairs(
            "group",
            &[
                ("Type", esc(d.kind)),
                ("State", esc(d.state)),
                ("Protocol type", esc(&d.protocol_type)),
                ("Protocol / assignor", esc(&d.protocol)),
                ("Members", d.members.len().to_string()),
                (
                    "Total lag",
                    format!("<span id=\"total-lag\">{total}</span>")
                ),
            ]
        ),
        html::table(
            "members",
            &["member id", "client id", "host", "assigned partitions"],
            &members
        ),
        url(&group),
    );
    Ok(Html(html::layout(&format!("Group {group}"), &body)))
}
