//! `sluice topic create|list|describe|alter-config|add-partitions|delete|trim-prefix`.

use super::client::{str, AlterOp, Client, ConfigEntry, ADMIN_TIMEOUT_MS, RESOURCE_TOPIC};
use super::output::{ids, print_json, print_pairs, Format, Table};
use super::{key_value, partition_list, report, CliError, Common, Result};
use clap::Subcommand;
use kafka_protocol::messages::*;
use serde::Serialize;

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create topics.
    Create {
        #[arg(required = true)]
        topics: Vec<String>,
        /// Partitions (default: the broker's num.partitions).
        #[arg(short = 'p', long, default_value_t = -1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(short = 'r', long, default_value_t = -1, allow_negative_numbers = true)]
        replicas: i16,
        /// Topic config KEY=VALUE (repeatable).
        #[arg(short = 'c', long = "config")]
        configs: Vec<String>,
        /// Only validate the request.
        #[arg(long)]
        dry_run: bool,
    },
    /// List topics.
    List {
        /// Include internal topics.
        #[arg(short = 'i', long)]
        internal: bool,
    },
    /// Partitions (leader, replicas, ISR, offsets) and configs of topics.
    Describe {
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Set, delete, append to or subtract from topic configs.
    AlterConfig {
        topic: String,
        /// KEY=VALUE to set (repeatable).
        #[arg(short = 's', long = "set")]
        set: Vec<String>,
        /// KEY to remove, back to its default (repeatable).
        #[arg(short = 'd', long = "delete")]
        delete: Vec<String>,
        /// KEY=VALUE to append to a list config (repeatable).
        #[arg(long)]
        append: Vec<String>,
        /// KEY=VALUE to remove from a list config (repeatable).
        #[arg(long)]
        subtract: Vec<String>,
        /// Only validate the request.
        #[arg(long)]
        dry_run: bool,
    },
    /// Add partitions to topics.
    AddPartitions {
        #[arg(required = true)]
        topics: Vec<String>,
        /// How many partitions to add.
        #[arg(short = 'n', long)]
        num: i32,
    },
    /// Delete topics.
    Delete {
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Delete the records before an offset (DeleteRecords): the new log start offset.
    TrimPrefix {
        topic: String,
        /// The new start offset: a number, or `end` (the high watermark).
        #[arg(short = 'o', long)]
        offset: String,
        /// Partitions (default: all), e.g. 0,2,4-6.
        #[arg(short = 'p', long = "partitions")]
        partitions: Vec<String>,
    },
}

pub fn run(common: &Common, format: Format, command: TopicCommand) -> Result<()> {
    let mut client = Client::new(common)?;
    match command {
        TopicCommand::Create {
            topics,
            partitions,
            replicas,
            configs,
            dry_run,
        } => create(
            &mut client,
            format,
            &topics,
            partitions,
            replicas,
            &configs,
            dry_run,
        ),
        TopicCommand::List { internal } => list(&mut client, format, internal),
        TopicCommand::Describe { topics } => describe(&mut client, format, &topics),
        TopicCommand::AlterConfig {
            topic,
            set,
            delete,
            append,
            subtract,
            dry_run,
        } => {
            let mut ops = Vec::new();
            for (list, op) in [
                (&set, AlterOp::Set),
                (&append, AlterOp::Append),
                (&subtract, AlterOp::Subtract),
            ] {
                for kv in list {
                    let (k, v) = key_value(kv)?;
                    ops.push((k, op, Some(v)));
                }
            }
            ops.extend(delete.into_iter().map(|k| (k, AlterOp::Delete, None)));
            if ops.is_empty() {
                return Err(CliError::Usage(
                    "nothing to alter: give --set, --delete, --append or --subtract".into(),
                ));
            }
            client.topic(&topic)?;
            client.alter_configs(RESOURCE_TOPIC, &topic, &ops, None, dry_run)?;
            let verb = if dry_run { "validated" } else { "altered" };
            if format == Format::Json {
                print_json(&serde_json::json!({"topic": topic, verb: ops.len()}));
            } else {
                println!("{verb} {} config(s) of topic '{topic}'", ops.len());
            }
            Ok(())
        }
        TopicCommand::AddPartitions { topics, num } => {
            add_partitions(&mut client, format, &topics, num)
        }
        TopicCommand::Delete { topics } => delete(&mut client, format, &topics),
        TopicCommand::TrimPrefix {
            topic,
            offset,
            partitions,
        } => trim_prefix(&mut client, format, &topic, &offset, &partitions),
    }
}

#[derive(Serialize)]
struct Outcome {
    topic: String,
    status: String,
}

/// Prints per-topic outcomes (table or JSON); Err(Reported) when any failed.
fn outcomes(format: Format, rows: Vec<(String, Result<String>)>) -> Result<()> {
    let mut failed = false;
    let mut out = Vec::new();
    for (topic, r) in rows {
        match r {
            Ok(status) => out.push(Outcome { topic, status }),
            Err(e) => {
                failed = true;
                report(&format!("topic '{topic}'"), &e);
                out.push(Outcome {
                    topic,
                    status: e.to_string(),
                });
            }
        }
    }
    match format {
        Format::Json => print_json(&out),
        Format::Text => {
            let mut t = Table::new(&["TOPIC", "STATUS"]);
            for o in &out {
                t.row(vec![o.topic.clone(), o.status.clone()]);
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

fn create(
    client: &mut Client,
    format: Format,
    topics: &[String],
    partitions: i32,
    replicas: i16,
    configs: &[String],
    dry_run: bool,
) -> Result<()> {
    let configs = configs
        .iter()
        .map(|c| key_value(c))
        .collect::<Result<Vec<_>>>()?;
    let conn = client.controller()?;
    let v = conn.version::<CreateTopicsRequest>(7)?;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_validate_only(dry_run)
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    create_topics_request::CreatableTopic::default()
                        .with_name(str(t).into())
                        .with_num_partitions(partitions)
                        .with_replication_factor(replicas)
                        .with_configs(
                            configs
                                .iter()
                                .map(|(k, v)| {
                                    create_topics_request::CreatableTopicConfig::default()
                                        .with_name(str(k))
                                        .with_value(Some(str(v)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response = conn.send_at(&request, v)?;
    let rows = response
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.to_string();
            let r = CliError::check(t.error_code, t.error_message.as_deref(), || {
                format!("creating topic '{name}'")
            })
            .map(|()| if dry_run { "OK (dry run)" } else { "OK" }.to_string());
            (name, r)
        })
        .collect();
    outcomes(format, rows)
}

#[derive(Serialize)]
struct Listed {
    name: String,
    partitions: usize,
    replicas: usize,
    internal: bool,
}

fn list(client: &mut Client, format: Format, internal: bool) -> Result<()> {
    let md = client.metadata(None)?;
    let mut rows: Vec<Listed> = md
        .topics
        .iter()
        .filter(|t| internal || !t.is_internal)
        .map(|t| Listed {
            name: t.name.as_ref().map_or("", |n| n.as_str()).to_string(),
            partitions: t.partitions.len(),
            replicas: t.partitions.first().map_or(0, |p| p.replica_nodes.len()),
            internal: t.is_internal,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    match format {
        Format::Json => print_json(&rows),
        Format::Text => {
            let mut t = Table::new(&["NAME", "PARTITIONS", "REPLICAS"]);
            for r in &rows {
                let name = if r.internal {
                    format!("{} (internal)", r.name)
                } else {
                    r.name.clone()
                };
                t.row(vec![name, r.partitions.to_string(), r.replicas.to_string()]);
            }
            t.print();
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct DescribedPartition {
    partition: i32,
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    log_start_offset: Option<i64>,
    high_watermark: Option<i64>,
    error: Option<String>,
}

#[derive(Serialize)]
struct Described {
    name: String,
    topic_id: String,
    internal: bool,
    partitions: Vec<DescribedPartition>,
    configs: Vec<ConfigEntry>,
}

fn describe(client: &mut Client, format: Format, topics: &[String]) -> Result<()> {
    let mut out = Vec::new();
    let mut failed = false;
    for name in topics {
        match describe_one(client, name) {
            Ok(d) => out.push(d),
            Err(e @ CliError::Connection(_)) => return Err(e),
            Err(e) => {
                failed = true;
                report(&format!("topic '{name}'"), &e);
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
                println!("SUMMARY\n=======");
                print_pairs(&[
                    ("NAME", d.name.clone()),
                    ("TOPIC-ID", d.topic_id.clone()),
                    ("INTERNAL", d.internal.to_string()),
                    ("PARTITIONS", d.partitions.len().to_string()),
                    (
                        "REPLICAS",
                        d.partitions
                            .first()
                            .map_or(0, |p| p.replicas.len())
                            .to_string(),
                    ),
                ]);
                println!("\nCONFIGS\n=======");
                let mut t = Table::new(&["KEY", "VALUE", "SOURCE"]);
                for c in &d.configs {
                    let value = match (&c.value, c.sensitive) {
                        (_, true) => "(sensitive)".to_string(),
                        (Some(v), _) => v.clone(),
                        (None, _) => "(null)".to_string(),
                    };
                    t.row(vec![c.name.clone(), value, c.source.to_string()]);
                }
                t.print();
                println!("\nPARTITIONS\n==========");
                let mut t = Table::new(&[
                    "PARTITION",
                    "LEADER",
                    "EPOCH",
                    "REPLICAS",
                    "ISR",
                    "LOG-START-OFFSET",
                    "HIGH-WATERMARK",
                ]);
                for p in &d.partitions {
                    let off = |o: Option<i64>| o.map_or("-".to_string(), |o| o.to_string());
                    let mut row = vec![
                        p.partition.to_string(),
                        p.leader.to_string(),
                        p.leader_epoch.to_string(),
                        ids(&p.replicas),
                        ids(&p.isr),
                        off(p.log_start_offset),
                        off(p.high_watermark),
                    ];
                    if let Some(e) = &p.error {
                        row.push(e.clone());
                    }
                    t.row(row);
                }
                t.print();
            }
        }
    }
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

fn describe_one(client: &mut Client, name: &str) -> Result<Described> {
    let t = client.topic(name)?;
    let mut leaders: Vec<(i32, i32)> = t
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect();
    leaders.sort_unstable();
    let starts = client.list_offsets(name, &leaders, -2)?;
    let ends = client.list_offsets(name, &leaders, -1)?;
    let mut partitions: Vec<DescribedPartition> = t
        .partitions
        .iter()
        .map(|p| {
            let i = p.partition_index;
            let start = starts.get(&i);
            let end = ends.get(&i);
            let error = [start, end]
                .into_iter()
                .flatten()
                .find_map(|r| r.as_ref().err().map(|e| e.to_string()))
                .or_else(|| (p.error_code != 0).then(|| super::error::error_name(p.error_code)));
            DescribedPartition {
                partition: i,
                leader: p.leader_id.0,
                leader_epoch: p.leader_epoch,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                log_start_offset: start.and_then(|r| r.as_ref().ok().copied()),
                high_watermark: end.and_then(|r| r.as_ref().ok().copied()),
                error,
            }
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    let configs = client.describe_configs(RESOURCE_TOPIC, name, &[], None)?;
    Ok(Described {
        name: name.to_string(),
        topic_id: t.topic_id.to_string(),
        internal: t.is_internal,
        partitions,
        configs,
    })
}

fn add_partitions(client: &mut Client, format: Format, topics: &[String], num: i32) -> Result<()> {
    if num < 1 {
        return Err(CliError::Usage("--num must be at least 1".into()));
    }
    let mut rows = Vec::new();
    let mut request = CreatePartitionsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_validate_only(false);
    for name in topics {
        match client.topic(name) {
            Ok(t) => request.topics.push(
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(str(name).into())
                    .with_count(t.partitions.len() as i32 + num)
                    .with_assignments(None),
            ),
            Err(e @ CliError::Connection(_)) => return Err(e),
            Err(e) => rows.push((name.clone(), Err(e))),
        }
    }
    if !request.topics.is_empty() {
        let conn = client.controller()?;
        let (_, response) = conn.send(&request, 3)?;
        for r in response.results {
            let name = r.name.to_string();
            let count = request
                .topics
                .iter()
                .find(|t| t.name.as_str() == name)
                .map_or(0, |t| t.count);
            let res = CliError::check(r.error_code, r.error_message.as_deref(), || {
                format!("adding partitions to '{name}'")
            })
            .map(|()| format!("OK ({count} partitions)"));
            rows.push((name, res));
        }
    }
    outcomes(format, rows)
}

fn delete(client: &mut Client, format: Format, topics: &[String]) -> Result<()> {
    let conn = client.controller()?;
    let v = conn.version::<DeleteTopicsRequest>(6)?;
    let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
    if v >= 6 {
        request.topics = topics
            .iter()
            .map(|t| {
                delete_topics_request::DeleteTopicState::default().with_name(Some(str(t).into()))
            })
            .collect();
    } else {
        request.topic_names = topics.iter().map(|t| str(t).into()).collect();
    }
    let response = conn.send_at(&request, v)?;
    let rows = response
        .responses
        .into_iter()
        .map(|r| {
            let name = r.name.as_ref().map_or("", |n| n.as_str()).to_string();
            let res = CliError::check(r.error_code, r.error_message.as_deref(), || {
                match r.error_code {
                    3 => format!("Topic '{name}' does not exist."),
                    _ => format!("deleting topic '{name}'"),
                }
            })
            .map(|()| "OK".to_string());
            (name, res)
        })
        .collect();
    outcomes(format, rows)
}

#[derive(Serialize)]
struct Trimmed {
    partition: i32,
    log_start_offset: Option<i64>,
    error: Option<String>,
}

fn trim_prefix(
    client: &mut Client,
    format: Format,
    topic: &str,
    offset: &str,
    partitions: &[String],
) -> Result<()> {
    let target: i64 = match offset {
        "end" => -1,
        n => n
            .parse()
            .ok()
            .filter(|n: &i64| *n >= 0)
            .ok_or_else(|| CliError::Usage(format!("bad --offset '{n}' (want N or end)")))?,
    };
    let mut leaders = client.leaders(topic)?;
    if !partitions.is_empty() {
        let want = partition_list(partitions)?;
        for p in &want {
            if !leaders.iter().any(|(q, _)| q == p) {
                return Err(CliError::kafka(
                    3,
                    format!("Topic '{topic}' has no partition {p}."),
                ));
            }
        }
        leaders.retain(|(p, _)| want.contains(p));
    }
    let mut by_leader: std::collections::BTreeMap<i32, Vec<i32>> = Default::default();
    for &(p, l) in &leaders {
        by_leader.entry(l).or_default().push(p);
    }
    let mut rows: Vec<Trimmed> = Vec::new();
    for (leader, parts) in by_leader {
        let conn = client.broker(leader)?;
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(ADMIN_TIMEOUT_MS)
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(str(topic).into())
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| {
                            delete_records_request::DeleteRecordsPartition::default()
                                .with_partition_index(p)
                                .with_offset(target)
                        })
                        .collect(),
                )]);
        let (_, response) = conn.send(&request, 2)?;
        for t in response.topics {
            for p in t.partitions {
                let r = CliError::check(p.error_code, None, || {
                    format!("trimming {topic}/{}", p.partition_index)
                });
                rows.push(Trimmed {
                    partition: p.partition_index,
                    log_start_offset: r.is_ok().then_some(p.low_watermark),
                    error: r.err().map(|e| e.to_string()),
                });
            }
        }
    }
    rows.sort_by_key(|r| r.partition);
    let failed = rows.iter().any(|r| r.error.is_some());
    for r in rows.iter().filter(|r| r.error.is_some()) {
        eprintln!(
            "sluice: {topic}/{}: {}",
            r.partition,
            r.error.as_deref().unwrap_or_default()
        );
    }
    match format {
        Format::Json => print_json(&rows),
        Format::Text => {
            let mut t = Table::new(&["PARTITION", "LOG-START-OFFSET", "ERROR"]);
            for r in &rows {
                t.row(vec![
                    r.partition.to_string(),
                    r.log_start_offset.map_or("-".into(), |o| o.to_string()),
                    r.error.clone().unwrap_or_default(),
                ]);
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
