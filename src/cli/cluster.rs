//! `sluice cluster info|health|config get|config set`.

use super::client::{api_name, AlterOp, BrokerInfo, Client, ConfigEntry, Conn, RESOURCE_BROKER};
use super::output::{ids, print_json, print_pairs, Format, Table};
use super::{key_value, CliError, Common, Result};
use clap::Subcommand;
use serde::Serialize;

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers, and the API versions and features of a broker.
    Info,
    /// Whether every broker answers and every partition has a leader and a full ISR
    /// (exit code 1 when not).
    Health,
    /// Broker configs.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Show broker configs (DescribeConfigs): all, or the names given.
    Get {
        names: Vec<String>,
        /// The broker (default: the lowest id); `--broker default` for the cluster-wide
        /// dynamic defaults.
        #[arg(long)]
        broker: Option<String>,
    },
    /// Set (NAME=VALUE) or delete (--delete NAME) dynamic broker configs
    /// (IncrementalAlterConfigs), cluster-wide unless --broker names one.
    Set {
        settings: Vec<String>,
        /// NAME to remove (repeatable).
        #[arg(short = 'd', long = "delete")]
        delete: Vec<String>,
        /// Only this broker's dynamic config.
        #[arg(long)]
        broker: Option<i32>,
    },
}

pub fn run(common: &Common, format: Format, command: ClusterCommand) -> Result<()> {
    let mut client = Client::new(common)?;
    match command {
        ClusterCommand::Info => info(&mut client, format),
        ClusterCommand::Health => health(&mut client, format),
        ClusterCommand::Config {
            command: ConfigCommand::Get { names, broker },
        } => {
            client.metadata(Some(&[]))?;
            let (name, target) = match broker.as_deref() {
                Some("default") => (String::new(), None),
                Some(id) => {
                    let id: i32 = id.parse().map_err(|_| {
                        CliError::Usage(format!("bad --broker '{id}' (want an id or default)"))
                    })?;
                    (id.to_string(), Some(id))
                }
                None => {
                    let id = *client
                        .brokers
                        .keys()
                        .next()
                        .ok_or_else(|| CliError::Other("the cluster lists no broker".into()))?;
                    (id.to_string(), Some(id))
                }
            };
            let entries = client.describe_configs(RESOURCE_BROKER, &name, &names, target)?;
            print_configs(format, &entries);
            Ok(())
        }
        ClusterCommand::Config {
            command:
                ConfigCommand::Set {
                    settings,
                    delete,
                    broker,
                },
        } => {
            let mut ops = Vec::new();
            for s in &settings {
                let (k, v) = key_value(s)?;
                ops.push((k, AlterOp::Set, Some(v)));
            }
            ops.extend(delete.into_iter().map(|k| (k, AlterOp::Delete, None)));
            if ops.is_empty() {
                return Err(CliError::Usage(
                    "nothing to set: give NAME=VALUE or --delete NAME".into(),
                ));
            }
            let name = broker.map_or(String::new(), |b| b.to_string());
            client.metadata(Some(&[]))?;
            client.alter_configs(RESOURCE_BROKER, &name, &ops, broker, false)?;
            let scope = broker.map_or("cluster-wide".to_string(), |b| format!("on broker {b}"));
            match format {
                Format::Json => {
                    print_json(&serde_json::json!({"altered": ops.len(), "broker": broker}))
                }
                Format::Text => println!("altered {} broker config(s) {scope}", ops.len()),
            }
            Ok(())
        }
    }
}

fn print_configs(format: Format, entries: &[ConfigEntry]) {
    match format {
        Format::Json => print_json(&entries),
        Format::Text => {
            let mut t = Table::new(&["NAME", "VALUE", "SOURCE"]);
            for c in entries {
                let value = match (&c.value, c.sensitive) {
                    (_, true) => "(sensitive)".to_string(),
                    (Some(v), _) => v.clone(),
                    (None, _) => "(null)".to_string(),
                };
                t.row(vec![c.name.clone(), value, c.source.to_string()]);
            }
            t.print();
        }
    }
}

#[derive(Serialize)]
struct Broker {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    controller: bool,
}

#[derive(Serialize)]
struct Api {
    key: i16,
    name: String,
    min_version: i16,
    max_version: i16,
}

#[derive(Serialize)]
struct Feature {
    name: String,
    supported_min: i16,
    supported_max: i16,
    finalized: Option<i16>,
}

#[derive(Serialize)]
struct Info {
    cluster_id: Option<String>,
    controller_id: i32,
    brokers: Vec<Broker>,
    api_versions_of: String,
    apis: Vec<Api>,
    features: Vec<Feature>,
}

fn info(client: &mut Client, format: Format) -> Result<()> {
    let md = client.metadata(Some(&[]))?;
    let brokers: Vec<Broker> = client
        .brokers
        .values()
        .map(|b: &BrokerInfo| Broker {
            id: b.id,
            host: b.host.clone(),
            port: b.port,
            rack: b.rack.clone(),
            controller: b.id == md.controller_id.0,
        })
        .collect();
    let conn: &mut Conn = client.any()?;
    let av = &conn.api_versions;
    let info = Info {
        cluster_id: md.cluster_id.as_ref().map(|c| c.to_string()),
        controller_id: md.controller_id.0,
        brokers,
        api_versions_of: conn.addr.clone(),
        apis: av
            .api_keys
            .iter()
            .map(|k| Api {
                key: k.api_key,
                name: api_name(k.api_key),
                min_version: k.min_version,
                max_version: k.max_version,
            })
            .collect(),
        features: av
            .supported_features
            .iter()
            .map(|f| Feature {
                name: f.name.to_string(),
                supported_min: f.min_version,
                supported_max: f.max_version,
                finalized: av
                    .finalized_features
                    .iter()
                    .find(|x| x.name == f.name)
                    .map(|x| x.max_version_level),
            })
            .collect(),
    };
    match format {
        Format::Json => print_json(&info),
        Format::Text => {
            println!("CLUSTER\n=======");
            print_pairs(&[
                ("ID", info.cluster_id.clone().unwrap_or_else(|| "-".into())),
                ("CONTROLLER", info.controller_id.to_string()),
            ]);
            println!("\nBROKERS\n=======");
            let mut t = Table::new(&["ID", "HOST", "PORT", "RACK"]);
            for b in &info.brokers {
                let id = if b.controller {
                    format!("{}*", b.id)
                } else {
                    b.id.to_string()
                };
                t.row(vec![
                    id,
                    b.host.clone(),
                    b.port.to_string(),
                    b.rack.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            t.print();
            println!("\nAPI VERSIONS ({})\n============", info.api_versions_of);
            let mut t = Table::new(&["KEY", "NAME", "MIN", "MAX"]);
            for a in &info.apis {
                t.row(vec![
                    a.key.to_string(),
                    a.name.clone(),
                    a.min_version.to_string(),
                    a.max_version.to_string(),
                ]);
            }
            t.print();
            if !info.features.is_empty() {
                println!("\nFEATURES\n========");
                let mut t = Table::new(&["NAME", "SUPPORTED", "FINALIZED"]);
                for f in &info.features {
                    t.row(vec![
                        f.name.clone(),
                        format!("{}-{}", f.supported_min, f.supported_max),
                        f.finalized.map_or("-".into(), |v| v.to_string()),
                    ]);
                }
                t.print();
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Health {
    healthy: bool,
    controller_id: i32,
    brokers: Vec<i32>,
    brokers_down: Vec<i32>,
    leaderless_partitions: Vec<String>,
    under_replicated_partitions: Vec<String>,
}

fn health(client: &mut Client, format: Format) -> Result<()> {
    let md = client.metadata(None)?;
    let brokers: Vec<i32> = client.brokers.keys().copied().collect();
    let mut down = Vec::new();
    for &id in &brokers {
        if let Err(e) = client.broker(id) {
            eprintln!("sluice: broker {id}: {e}");
            down.push(id);
        }
    }
    let mut leaderless = Vec::new();
    let mut under = Vec::new();
    for t in &md.topics {
        let name = t.name.as_ref().map_or("", |n| n.as_str());
        for p in &t.partitions {
            let tp = format!("{name}/{}", p.partition_index);
            if p.leader_id.0 < 0 || down.contains(&p.leader_id.0) {
                leaderless.push(tp.clone());
            }
            if p.isr_nodes.len() < p.replica_nodes.len() {
                under.push(tp);
            }
        }
    }
    leaderless.sort();
    under.sort();
    let h = Health {
        healthy: down.is_empty()
            && leaderless.is_empty()
            && under.is_empty()
            && !brokers.is_empty(),
        controller_id: md.controller_id.0,
        brokers,
        brokers_down: down,
        leaderless_partitions: leaderless,
        under_replicated_partitions: under,
    };
    match format {
        Format::Json => print_json(&h),
        Format::Text => print_pairs(&[
            ("HEALTHY", h.healthy.to_string()),
            ("CONTROLLER", h.controller_id.to_string()),
            ("BROKERS", ids(&h.brokers)),
            ("BROKERS-DOWN", ids(&h.brokers_down)),
            ("LEADERLESS-PARTITIONS", h.leaderless_partitions.join(",")),
            (
                "UNDER-REPLICATED-PARTITIONS",
                h.under_replicated_partitions.join(","),
            ),
        ]),
    }
    if h.healthy {
        Ok(())
    } else {
        Err(CliError::Reported)
    }
}
