//! `sluice group list|describe|seek|delete`.

use super::client::{str, Client, Offsets};
use super::output::{print_json, print_pairs, Format, Table};
use super::{report, CliError, Common, Result};
use bytes::Buf;
use clap::Subcommand;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List the groups of every broker.
    List,
    /// State, members, and per partition the committed offset, log end offset and lag.
    Describe {
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets (the group must have no active members).
    Seek {
        group: String,
        /// start, end, an offset, or @TIMESTAMP_MS (the first record at or after it).
        #[arg(long)]
        to: String,
        /// Topics to seek (default: those the group has committed offsets for).
        #[arg(long = "topics", value_delimiter = ',')]
        topics: Vec<String>,
    },
    /// Delete groups (they must have no active members).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

pub fn run(common: &Common, format: Format, command: GroupCommand) -> Result<()> {
    let mut client = Client::new(common)?;
    match command {
        GroupCommand::List => list(&mut client, format),
        GroupCommand::Describe { groups } => {
            let mut out = Vec::new();
            let mut failed = false;
            for g in &groups {
                match describe(&mut client, g) {
                    Ok(d) => out.push(d),
                    Err(e @ CliError::Connection(_)) => return Err(e),
                    Err(e) => {
                        failed = true;
                        report(&format!("group '{g}'"), &e);
                    }
                }
            }
            match format {
                Format::Json => print_json(&out),
                Format::Text => {
                    for (i, d) in out.iter().enumerate() {
                        if i > 0 {
                            println!();
                        }
                        print_described(d);
                    }
                }
            }
            if failed {
                Err(CliError::Reported)
            } else {
                Ok(())
            }
        }
        GroupCommand::Seek { group, to, topics } => seek(&mut client, format, &group, &to, &topics),
        GroupCommand::Delete { groups } => delete(&mut client, format, &groups),
    }
}

#[derive(Serialize)]
struct Listed {
    group: String,
    coordinator: i32,
    state: String,
    protocol_type: String,
}

fn list(client: &mut Client, format: Format) -> Result<()> {
    client.metadata(Some(&[]))?;
    let ids: Vec<i32> = client.brokers.keys().copied().collect();
    let mut rows = Vec::new();
    for id in ids {
        let conn = client.broker(id)?;
        let (_, response) = conn.send(&ListGroupsRequest::default(), 4)?;
        CliError::check(response.error_code, None, || {
            format!("ListGroups on broker {id}")
        })?;
        for g in response.groups {
            rows.push(Listed {
                group: g.group_id.to_string(),
                coordinator: id,
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
            });
        }
    }
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    match format {
        Format::Json => print_json(&rows),
        Format::Text => {
            let mut t = Table::new(&["GROUP", "COORDINATOR", "STATE", "PROTOCOL-TYPE"]);
            for r in &rows {
                t.row(vec![
                    r.group.clone(),
                    r.coordinator.to_string(),
                    r.state.clone(),
                    r.protocol_type.clone(),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

#[derive(Serialize, Clone)]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    /// topic -> partitions
    assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Serialize)]
struct PartitionLag {
    topic: String,
    partition: i32,
    committed_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    member_id: Option<String>,
    client_id: Option<String>,
    host: Option<String>,
}

#[derive(Serialize)]
struct Described {
    group: String,
    coordinator: i32,
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
    total_lag: i64,
    partitions: Vec<PartitionLag>,
}

/// The group's state and members: DescribeGroups, or ConsumerGroupDescribe for a KIP-848
/// group (which DescribeGroups does not describe).
fn members(
    client: &mut Client,
    group: &str,
    coordinator: i32,
) -> Result<(String, String, String, Vec<Member>)> {
    let conn = client.broker(coordinator)?;
    let request = DescribeGroupsRequest::default().with_groups(vec![str(group).into()]);
    let (_, response) = conn.send(&request, 6)?;
    let g = response
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Other("DescribeGroups answered no group".into()))?;
    // DescribeGroups does not describe KIP-848 groups: GROUP_ID_NOT_FOUND from v6, "Dead"
    // before; ConsumerGroupDescribe does.
    let unknown = g.error_code == 69 || (g.error_code == 0 && g.group_state.as_str() == "Dead");
    if unknown && !conn.supports(ApiKey::ConsumerGroupDescribe) {
        return Ok(("Dead".into(), String::new(), String::new(), Vec::new()));
    }
    if unknown {
        let request =
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![str(group).into()]);
        let (_, response) = conn.send(&request, 1)?;
        let g = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Other("ConsumerGroupDescribe answered no group".into()))?;
        if g.error_code == 69 {
            // Neither a classic nor a KIP-848 group.
            return Ok(("Dead".into(), String::new(), String::new(), Vec::new()));
        }
        CliError::check(g.error_code, g.error_message.as_deref(), || {
            format!("Group '{group}' does not exist.")
        })?;
        let members = g
            .members
            .into_iter()
            .map(|m| {
                let mut assignment: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for tp in m.assignment.topic_partitions {
                    assignment
                        .entry(tp.topic_name.to_string())
                        .or_default()
                        .extend(tp.partitions);
                }
                Member {
                    member_id: m.member_id.to_string(),
                    instance_id: m.instance_id.map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment,
                }
            })
            .collect();
        return Ok((
            g.group_state.to_string(),
            "consumer".into(),
            g.assignor_name.to_string(),
            members,
        ));
    }
    CliError::check(g.error_code, g.error_message.as_deref(), || {
        format!("describing group '{group}'")
    })?;
    let members = g
        .members
        .into_iter()
        .map(|m| Member {
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.map(|s| s.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assignment: if g.protocol_type.as_str() == "consumer" {
                decode_assignment(m.member_assignment)
            } else {
                BTreeMap::new()
            },
        })
        .collect();
    Ok((
        g.group_state.to_string(),
        g.protocol_type.to_string(),
        g.protocol_data.to_string(),
        members,
    ))
}

/// A classic consumer's assignment: a version, then ConsumerProtocolAssignment.
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

fn describe(client: &mut Client, group: &str) -> Result<Described> {
    let (coordinator, (state, protocol_type, protocol, members)) =
        client.on_coordinator(group, |c, id| members(c, group, id).map(|m| (id, m)))?;
    let committed = client.committed(group, None)?;
    if state == "Dead" && committed.is_empty() {
        return Err(CliError::kafka(
            69,
            format!("Group '{group}' does not exist."),
        ));
    }
    // Every partition a member owns or the group committed for.
    let mut owner: BTreeMap<(String, i32), Member> = BTreeMap::new();
    for m in &members {
        for (t, ps) in &m.assignment {
            for p in ps {
                owner.insert((t.clone(), *p), m.clone());
            }
        }
    }
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, ps) in &committed {
        topics.entry(t.clone()).or_default().extend(ps.keys());
    }
    for (t, p) in owner.keys() {
        topics.entry(t.clone()).or_default().push(*p);
    }
    let mut partitions = Vec::new();
    let mut total_lag = 0;
    for (t, mut ps) in topics {
        ps.sort_unstable();
        ps.dedup();
        let ends = match client.leaders(&t) {
            Ok(leaders) => {
                let wanted: Vec<(i32, i32)> = leaders
                    .into_iter()
                    .filter(|(p, _)| ps.contains(p))
                    .collect();
                client.list_offsets(&t, &wanted, -1)?
            }
            Err(e @ CliError::Connection(_)) => return Err(e),
            Err(_) => BTreeMap::new(),
        };
        for p in ps {
            let c = committed.get(&t).and_then(|m| m.get(&p)).copied();
            let end = ends.get(&p).and_then(|r| r.as_ref().ok().copied());
            let lag = match (c, end) {
                (Some(c), Some(e)) => Some((e - c).max(0)),
                (None, Some(e)) => Some(e),
                _ => None,
            };
            total_lag += lag.unwrap_or(0);
            let m = owner.get(&(t.clone(), p));
            partitions.push(PartitionLag {
                topic: t.clone(),
                partition: p,
                committed_offset: c,
                log_end_offset: end,
                lag,
                member_id: m.map(|m| m.member_id.clone()),
                client_id: m.map(|m| m.client_id.clone()),
                host: m.map(|m| m.host.clone()),
            });
        }
    }
    Ok(Described {
        group: group.to_string(),
        coordinator,
        state,
        protocol_type,
        protocol,
        members,
        total_lag,
        partitions,
    })
}

fn print_described(d: &Described) {
    print_pairs(&[
        ("GROUP", d.group.clone()),
        ("COORDINATOR", d.coordinator.to_string()),
        ("STATE", d.state.clone()),
        ("PROTOCOL-TYPE", d.protocol_type.clone()),
        ("PROTOCOL", d.protocol.clone()),
        ("MEMBERS", d.members.len().to_string()),
        ("TOTAL-LAG", d.total_lag.to_string()),
    ]);
    println!();
    let mut t = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "MEMBER-ID",
        "CLIENT-ID",
        "HOST",
    ]);
    let opt = |o: Option<i64>| o.map_or("-".to_string(), |o| o.to_string());
    for p in &d.partitions {
        t.row(vec![
            p.topic.clone(),
            p.partition.to_string(),
            opt(p.committed_offset),
            opt(p.log_end_offset),
            opt(p.lag),
            p.member_id.clone().unwrap_or_else(|| "-".into()),
            p.client_id.clone().unwrap_or_else(|| "-".into()),
            p.host.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t.print();
}

#[derive(Serialize)]
struct Seeked {
    topic: String,
    partition: i32,
    previous_offset: Option<i64>,
    new_offset: i64,
}

fn seek(
    client: &mut Client,
    format: Format,
    group: &str,
    to: &str,
    topics: &[String],
) -> Result<()> {
    let target: i64 = match to {
        "start" | "beginning" => -2,
        "end" => -1,
        s => {
            let bad = || {
                CliError::Usage(format!(
                    "bad --to '{s}' (want start, end, OFFSET or @TIMESTAMP_MS)"
                ))
            };
            match s.strip_prefix('@') {
                Some(ts) => ts.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(bad)?,
                None => {
                    let o = s.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(bad)?;
                    -3 - o // an exact offset, told apart from timestamps below
                }
            }
        }
    };
    let (state, _, _, members) = client.on_coordinator(group, |c, id| members(c, group, id))?;
    if !members.is_empty() || !matches!(state.as_str(), "Empty" | "Dead" | "") {
        return Err(CliError::kafka(
            25,
            format!(
                "Group '{group}' has {} active member(s) (state {state}); stop them before seeking.",
                members.len()
            ),
        ));
    }
    let previous = client.committed(group, None)?;
    let topics: Vec<String> = if topics.is_empty() {
        previous.keys().cloned().collect()
    } else {
        topics.to_vec()
    };
    if topics.is_empty() {
        return Err(CliError::Usage(format!(
            "group '{group}' has no committed offsets; name the topics with --topics"
        )));
    }
    let mut offsets = Offsets::new();
    let mut rows = Vec::new();
    for t in &topics {
        let leaders = client.leaders(t)?;
        let resolved: BTreeMap<i32, i64> = if target <= -3 {
            // An offset outside the log is clamped into it, as kafka-consumer-groups does.
            let starts = client.list_offsets(t, &leaders, -2)?;
            let ends = client.list_offsets(t, &leaders, -1)?;
            let mut at = BTreeMap::new();
            for (p, _) in &leaders {
                let lo = *starts[p]
                    .as_ref()
                    .map_err(|e| CliError::Other(e.to_string()))?;
                let hi = *ends[p]
                    .as_ref()
                    .map_err(|e| CliError::Other(e.to_string()))?;
                at.insert(*p, (-3 - target).clamp(lo, hi.max(lo)));
            }
            at
        } else {
            let mut at = BTreeMap::new();
            let ends = client.list_offsets(t, &leaders, -1)?;
            for (p, r) in client.list_offsets(t, &leaders, target)? {
                let o = r?;
                let o = if o < 0 {
                    *ends[&p]
                        .as_ref()
                        .map_err(|e| CliError::Other(e.to_string()))?
                } else {
                    o
                };
                at.insert(p, o);
            }
            at
        };
        for (&p, &o) in &resolved {
            rows.push(Seeked {
                topic: t.clone(),
                partition: p,
                previous_offset: previous.get(t).and_then(|m| m.get(&p)).copied(),
                new_offset: o,
            });
        }
        offsets.insert(t.clone(), resolved);
    }
    client.commit(group, &offsets)?;
    match format {
        Format::Json => print_json(&rows),
        Format::Text => {
            let mut t = Table::new(&["TOPIC", "PARTITION", "PRIOR-OFFSET", "CURRENT-OFFSET"]);
            for r in &rows {
                t.row(vec![
                    r.topic.clone(),
                    r.partition.to_string(),
                    r.previous_offset.map_or("-".into(), |o| o.to_string()),
                    r.new_offset.to_string(),
                ]);
            }
            t.print();
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Deleted {
    group: String,
    status: String,
}

fn delete(client: &mut Client, format: Format, groups: &[String]) -> Result<()> {
    let mut rows = Vec::new();
    let mut failed = false;
    for g in groups {
        let r = delete_one(client, g);
        match r {
            Ok(()) => rows.push(Deleted {
                group: g.clone(),
                status: "OK".into(),
            }),
            Err(e @ CliError::Connection(_)) => return Err(e),
            Err(e) => {
                failed = true;
                report(&format!("group '{g}'"), &e);
                rows.push(Deleted {
                    group: g.clone(),
                    status: e.to_string(),
                });
            }
        }
    }
    match format {
        Format::Json => print_json(&rows),
        Format::Text => {
            let mut t = Table::new(&["GROUP", "STATUS"]);
            for r in &rows {
                t.row(vec![r.group.clone(), r.status.clone()]);
            }
            t.print();
        }
    }
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

fn delete_one(client: &mut Client, g: &str) -> Result<()> {
    client.on_coordinator(g, |client, coordinator| {
        let conn = client.broker(coordinator)?;
        let request = DeleteGroupsRequest::default().with_groups_names(vec![str(g).into()]);
        let (_, response) = conn.send(&request, 2)?;
        for r in response.results {
            CliError::check(r.error_code, None, || match r.error_code {
                69 => format!("Group '{g}' does not exist."),
                68 => format!("Group '{g}' is not empty (it has active members)."),
                _ => format!("deleting group '{g}'"),
            })?;
        }
        Ok(())
    })
}
