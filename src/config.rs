//! Typed settings: CLI flags (with SLUICE_* env equivalents), an optional TOML file, and
//! broker/topic settings under Kafka's own property names.

use crate::coordinator::group::GroupConfig;
use crate::log::LogConfig;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `sluice serve`. Every flag can also come from the environment or a TOML file.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to accept Kafka clients on (repeatable; IPv4 or [IPv6]:port). Default 127.0.0.1:9092.
    #[arg(
        long = "listen",
        value_name = "HOST:PORT",
        env = "SLUICE_LISTEN",
        value_delimiter = ','
    )]
    pub listen: Vec<String>,
    /// Address clients are told to connect to. Default: the listen address.
    #[arg(
        long = "advertised-listener",
        value_name = "HOST:PORT",
        env = "SLUICE_ADVERTISED_LISTENER"
    )]
    pub advertised_listener: Option<String>,
    /// Data directory (Kafka's log.dirs). Default ./data.
    #[arg(long = "data-dir", value_name = "PATH", env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// This broker's node id. Default 1.
    #[arg(long = "node-id", value_name = "N", env = "SLUICE_NODE_ID")]
    pub node_id: Option<i32>,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive). Default info.
    #[arg(long = "log-level", value_name = "LEVEL", env = "SLUICE_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// A broker or default topic setting under its Kafka name (repeatable), e.g. num.partitions=3.
    #[arg(
        long = "set",
        value_name = "NAME=VALUE",
        env = "SLUICE_SET",
        value_delimiter = ','
    )]
    pub set: Vec<String>,
    /// TOML file with the same keys (listen, advertised_listener, data_dir, node_id, log_level)
    /// and a [settings] table of Kafka properties. Flags and env win over the file.
    #[arg(long = "config", value_name = "FILE", env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Object store for tiered segments: s3://BUCKET/PREFIX (configured from the AWS_*
    /// environment) or file:///PATH. Default: a local store in DATA_DIR/tier.
    #[arg(long = "object-store", value_name = "URL", env = "SLUICE_OBJECT_STORE")]
    pub object_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<Vec<String>>,
    advertised_listener: Option<String>,
    data_dir: Option<PathBuf>,
    node_id: Option<i32>,
    log_level: Option<String>,
    object_store: Option<String>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
}

/// Broker-wide settings, resolved and validated.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub listen: Vec<SocketAddr>,
    pub advertised: Option<(String, u16)>,
    pub data_dir: PathBuf,
    pub node_id: i32,
    pub log_level: String,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    pub default_replication_factor: i16,
    pub socket_request_max_bytes: usize,
    pub retention_check_interval_ms: u64,
    /// Upper bound on the bytes one Fetch response carries.
    pub fetch_max_bytes: usize,
    pub producer_id_expiration_ms: i64,
    /// log.page.cache.max.bytes (sluice): recently written log bytes left in the OS page
    /// cache across all partitions; older ones are dropped once fsynced. -1: the kernel decides.
    pub page_cache_max_bytes: i64,
    pub connections_max_idle_ms: u64,
    /// Topic defaults (Kafka's log.* broker settings), as topic-level names.
    pub topic_defaults: BTreeMap<String, String>,
    pub groups: GroupConfig,
    /// Broker settings given explicitly (file, env or --set), by Kafka name.
    pub explicit_settings: BTreeMap<String, String>,
    pub tier: TierConfig,
}

/// Tiered storage settings (Kafka names where Kafka has one).
#[derive(Debug, Clone)]
pub struct TierConfig {
    /// --object-store; None: a file store in DATA_DIR/tier.
    pub object_store: Option<String>,
    /// remote.log.storage.system.enable
    pub enabled: bool,
    /// remote.log.manager.task.interval.ms: how often segments are copied and remote
    /// retention runs.
    pub task_interval_ms: u64,
    /// remote.log.manager.copier.thread.pool.size: partitions copied at once.
    pub copy_concurrency: usize,
    /// remote.log.manager.copy.max.bytes.per.second: all copies together (i64::MAX: unpaced).
    pub copy_max_bytes_per_second: u64,
    /// remote.fetch.cache.size.bytes (sluice): on-disk cache of fetched remote chunks.
    pub cache_bytes: u64,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            object_store: None,
            enabled: true,
            task_interval_ms: 30_000,
            copy_concurrency: 10,
            copy_max_bytes_per_second: i64::MAX as u64,
            cache_bytes: 1 << 30,
        }
    }
}

/// Broker settings accepted by `--set`, with Kafka's defaults.
const BROKER_SETTINGS: &[(&str, &str)] = &[
    ("num.partitions", "1"),
    ("auto.create.topics.enable", "true"),
    ("default.replication.factor", "1"),
    ("socket.request.max.bytes", "104857600"),
    ("log.retention.check.interval.ms", "300000"),
    ("fetch.max.bytes", "57671680"),
    ("producer.id.expiration.ms", "86400000"),
    ("log.page.cache.max.bytes", "1073741824"),
    ("connections.max.idle.ms", "600000"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("group.max.size", "2147483647"),
    ("group.consumer.session.timeout.ms", "45000"),
    ("group.consumer.heartbeat.interval.ms", "5000"),
    ("group.consumer.max.size", "2147483647"),
    ("group.consumer.assignors", "uniform,range"),
    ("group.coordinator.rebalance.protocols", "classic,consumer"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.retention.check.interval.ms", "600000"),
    ("offset.metadata.max.bytes", "4096"),
    ("offsets.topic.segment.bytes", "104857600"),
    ("remote.log.storage.system.enable", "true"),
    ("remote.log.manager.task.interval.ms", "30000"),
    ("remote.log.manager.copier.thread.pool.size", "10"),
    (
        "remote.log.manager.copy.max.bytes.per.second",
        "9223372036854775807",
    ),
    ("remote.fetch.cache.size.bytes", "1073741824"),
];

/// Broker settings that are defaults for a topic-level config: (broker name, topic name).
const TOPIC_DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("log.segment.bytes", "segment.bytes"),
    ("log.roll.ms", "segment.ms"),
    ("log.retention.ms", "retention.ms"),
    ("log.retention.bytes", "retention.bytes"),
    ("message.max.bytes", "max.message.bytes"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
    ),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
    ),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("compression.type", "compression.type"),
    ("log.local.retention.ms", "local.retention.ms"),
    ("log.local.retention.bytes", "local.retention.bytes"),
];

/// Topic-level configs we implement, with Kafka's defaults.
pub const TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("index.interval.bytes", "4096"),
    ("local.retention.bytes", "-2"),
    ("local.retention.ms", "-2"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.after.max.ms", "3600000"),
    ("message.timestamp.before.max.ms", "9223372036854775807"),
    ("message.timestamp.type", "CreateTime"),
    ("min.insync.replicas", "1"),
    ("remote.storage.enable", "true"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.ms", "604800000"),
];

fn parse_i64(name: &str, value: &str) -> Result<i64> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| anyhow!("{name}: '{value}' is not an integer"))
}

/// An integer setting within `min..=max`.
fn parse_range(name: &str, value: &str, min: i64, max: i64) -> Result<i64> {
    let v = parse_i64(name, value)?;
    if !(min..=max).contains(&v) {
        bail!("{name}: {v} must be between {min} and {max}");
    }
    Ok(v)
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => bail!("{name}: '{value}' is not true or false"),
    }
}

/// Checks one topic-level config value; the error text is what clients see in INVALID_CONFIG.
pub fn validate_topic_config(name: &str, value: &str) -> Result<()> {
    let int = |min: i64| -> Result<()> {
        let v = parse_i64(name, value)?;
        if v < min {
            bail!("{name}: {v} is below the minimum {min}");
        }
        Ok(())
    };
    match name {
        "cleanup.policy" => match value.trim() {
            "delete" => Ok(()),
            "compact" | "compact,delete" | "delete,compact" => {
                bail!("cleanup.policy=compact is not supported yet")
            }
            other => bail!("cleanup.policy: unknown policy '{other}'"),
        },
        "compression.type" => match value.trim() {
            "producer" => Ok(()),
            "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => {
                bail!("compression.type={value}: only 'producer' is supported (batches are stored as sent)")
            }
            other => bail!("compression.type: unknown codec '{other}'"),
        },
        "index.interval.bytes" => int(0),
        "max.message.bytes" => int(0),
        "message.timestamp.type" => match value.trim() {
            "CreateTime" | "LogAppendTime" => Ok(()),
            other => bail!("message.timestamp.type: '{other}' is not CreateTime or LogAppendTime"),
        },
        "min.insync.replicas" => int(1),
        "message.timestamp.before.max.ms" | "message.timestamp.after.max.ms" => int(0),
        "retention.bytes" | "retention.ms" => int(-1),
        "local.retention.bytes" | "local.retention.ms" => int(-2),
        "remote.storage.enable" => parse_bool(name, value).map(|_| ()),
        "segment.bytes" => {
            let v = parse_i64(name, value)?;
            if !(14..=i32::MAX as i64).contains(&v) {
                bail!("segment.bytes: {v} must be between 14 and {}", i32::MAX);
            }
            Ok(())
        }
        "segment.ms" => int(1),
        _ => bail!("unknown topic config '{name}'"),
    }
}

/// Resolves a topic's effective configs (topic overrides over broker defaults) into a LogConfig.
pub fn log_config(
    defaults: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> LogConfig {
    let get = |name: &str| -> String {
        overrides
            .get(name)
            .or_else(|| defaults.get(name))
            .cloned()
            .or_else(|| {
                TOPIC_CONFIGS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
            .unwrap_or_default()
    };
    let num = |name: &str| get(name).trim().parse::<i64>().unwrap_or(-1);
    LogConfig {
        segment_bytes: num("segment.bytes").max(14) as u64,
        segment_ms: num("segment.ms").max(1),
        retention_ms: num("retention.ms"),
        retention_bytes: num("retention.bytes"),
        max_message_bytes: num("max.message.bytes").max(0) as usize,
        log_append_time: get("message.timestamp.type").trim() == "LogAppendTime",
        index_interval_bytes: num("index.interval.bytes").max(0) as u64,
        timestamp_before_max_ms: num("message.timestamp.before.max.ms").max(0),
        timestamp_after_max_ms: num("message.timestamp.after.max.ms").max(0),
        producer_expiration_ms: 86_400_000,
        remote_storage: get("remote.storage.enable")
            .trim()
            .eq_ignore_ascii_case("true"),
        local_retention_ms: num("local.retention.ms").max(-2),
        local_retention_bytes: num("local.retention.bytes").max(-2),
    }
}

fn toml_to_string(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .with_context(|| format!("--listen {s}: expected HOST:PORT"))?
        .next()
        .ok_or_else(|| anyhow!("--listen {s}: address did not resolve"))
}

fn split_host_port(s: &str) -> Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("'{s}': expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("'{s}': the host must not be empty");
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| anyhow!("'{s}': bad port"))?;
    Ok((host.to_string(), port))
}

impl BrokerConfig {
    pub fn resolve(args: &ServeArgs) -> Result<BrokerConfig> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen_strs = if !args.listen.is_empty() {
            args.listen.clone()
        } else {
            file.listen
                .clone()
                .unwrap_or_else(|| vec!["127.0.0.1:9092".to_string()])
        };
        let listen = listen_strs
            .iter()
            .map(|s| parse_listen(s))
            .collect::<Result<Vec<_>>>()?;
        let advertised = match args
            .advertised_listener
            .clone()
            .or(file.advertised_listener.clone())
        {
            Some(s) => Some(split_host_port(&s).context("--advertised-listener")?),
            None => None,
        };

        let mut settings: BTreeMap<String, String> = file
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_string(v)))
            .collect();
        for kv in &args.set {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--set {kv}: expected NAME=VALUE"))?;
            settings.insert(k.trim().to_string(), v.trim().to_string());
        }

        let mut cfg = BrokerConfig {
            listen,
            advertised,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            node_id: args.node_id.or(file.node_id).unwrap_or(1),
            log_level: args
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".to_string()),
            num_partitions: 1,
            auto_create_topics: true,
            default_replication_factor: 1,
            socket_request_max_bytes: 104_857_600,
            retention_check_interval_ms: 300_000,
            fetch_max_bytes: 57_671_680,
            producer_id_expiration_ms: 86_400_000,
            page_cache_max_bytes: 1 << 30,
            connections_max_idle_ms: 600_000,
            topic_defaults: BTreeMap::new(),
            groups: GroupConfig::default(),
            explicit_settings: BTreeMap::new(),
            tier: TierConfig {
                object_store: args.object_store.clone().or(file.object_store.clone()),
                ..TierConfig::default()
            },
        };
        if cfg.node_id < 0 {
            bail!("--node-id must not be negative");
        }
        for (name, value) in &settings {
            cfg.apply(name, value)
                .with_context(|| format!("invalid setting {name}={value}"))?;
        }
        cfg.explicit_settings = settings;
        Ok(cfg)
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "num.partitions" => {
                self.num_partitions = parse_range(name, value, 1, i32::MAX as i64)? as i32
            }
            "auto.create.topics.enable" => self.auto_create_topics = parse_bool(name, value)?,
            "default.replication.factor" => {
                if parse_i64(name, value)? != 1 {
                    bail!("sluice is a single broker: only 1 is possible");
                }
            }
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes =
                    parse_range(name, value, 1, i32::MAX as i64)? as usize
            }
            "log.retention.check.interval.ms" => {
                self.retention_check_interval_ms = parse_range(name, value, 1, i64::MAX)? as u64
            }
            "fetch.max.bytes" => {
                self.fetch_max_bytes = parse_range(name, value, 1024, i32::MAX as i64)? as usize
            }
            "producer.id.expiration.ms" => {
                self.producer_id_expiration_ms = parse_range(name, value, 1, i64::MAX)?
            }
            "log.page.cache.max.bytes" => {
                self.page_cache_max_bytes = parse_range(name, value, -1, i64::MAX)?
            }
            "connections.max.idle.ms" => {
                self.connections_max_idle_ms = parse_range(name, value, 1, i64::MAX)? as u64
            }
            "group.initial.rebalance.delay.ms" => {
                self.groups.initial_rebalance_delay_ms =
                    parse_range(name, value, 0, i32::MAX as i64)? as u64
            }
            "group.min.session.timeout.ms" => {
                self.groups.min_session_timeout_ms =
                    parse_range(name, value, 0, i32::MAX as i64)? as i32
            }
            "group.max.session.timeout.ms" => {
                self.groups.max_session_timeout_ms =
                    parse_range(name, value, 0, i32::MAX as i64)? as i32
            }
            "group.max.size" => {
                self.groups.max_size = parse_range(name, value, 1, i32::MAX as i64)? as usize
            }
            "group.consumer.session.timeout.ms" => {
                self.groups.consumer_session_timeout_ms =
                    parse_range(name, value, 1, i32::MAX as i64)? as i32
            }
            "group.consumer.heartbeat.interval.ms" => {
                self.groups.consumer_heartbeat_interval_ms =
                    parse_range(name, value, 1, i32::MAX as i64)? as i32
            }
            "group.consumer.max.size" => {
                self.groups.consumer_max_size =
                    parse_range(name, value, 1, i32::MAX as i64)? as usize
            }
            "group.consumer.assignors" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    // Kafka takes class names; the simple name picks the built-in assignor.
                    .map(|s| s.rsplit('.').next().unwrap_or(s).to_ascii_lowercase())
                    .map(|s| s.trim_end_matches("assignor").to_string())
                    .collect();
                if names.is_empty() {
                    bail!("at least one assignor is needed");
                }
                if let Some(bad) = names
                    .iter()
                    .find(|n| !["uniform", "range"].contains(&n.as_str()))
                {
                    bail!("unknown assignor '{bad}'; available: uniform, range");
                }
                self.groups.consumer_assignors = names;
            }
            "group.coordinator.rebalance.protocols" => {
                let protocols: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect();
                if !protocols.iter().any(|p| p == "classic") {
                    bail!("the classic protocol cannot be disabled");
                }
                if let Some(bad) = protocols
                    .iter()
                    .find(|p| !["classic", "consumer"].contains(&p.as_str()))
                {
                    bail!("unknown or unsupported rebalance protocol '{bad}'");
                }
                self.groups.consumer_protocol_enabled = protocols.iter().any(|p| p == "consumer");
            }
            "offsets.retention.minutes" => {
                self.groups.offsets_retention_ms =
                    parse_range(name, value, 1, i32::MAX as i64)? * 60_000
            }
            "offsets.retention.check.interval.ms" => {
                self.groups.offsets_retention_check_interval_ms =
                    parse_range(name, value, 1, i64::MAX)? as u64
            }
            "offset.metadata.max.bytes" => {
                self.groups.offset_metadata_max_bytes =
                    parse_range(name, value, 0, i32::MAX as i64)? as usize
            }
            "offsets.topic.segment.bytes" => {
                self.groups.offsets_segment_bytes =
                    parse_range(name, value, 1024, i32::MAX as i64)? as u64
            }
            "remote.log.storage.system.enable" => self.tier.enabled = parse_bool(name, value)?,
            "remote.log.manager.task.interval.ms" => {
                self.tier.task_interval_ms = parse_range(name, value, 10, i64::MAX)? as u64
            }
            "remote.log.manager.copier.thread.pool.size" => {
                self.tier.copy_concurrency = parse_range(name, value, 1, 1024)? as usize
            }
            "remote.log.manager.copy.max.bytes.per.second" => {
                self.tier.copy_max_bytes_per_second = parse_range(name, value, 1, i64::MAX)? as u64
            }
            "remote.fetch.cache.size.bytes" => {
                self.tier.cache_bytes = parse_range(name, value, 0, i64::MAX)? as u64
            }
            "log.retention.minutes" | "log.retention.hours" | "log.roll.hours" => {
                let v = parse_i64(name, value)?;
                let (topic_name, factor) = match name {
                    "log.retention.minutes" => ("retention.ms", 60_000),
                    "log.retention.hours" => ("retention.ms", 3_600_000),
                    _ => ("segment.ms", 3_600_000),
                };
                let ms = if v < 0 { -1 } else { v.saturating_mul(factor) };
                // Settings apply in name order, so log.retention.ms / log.roll.ms (more precise,
                // sorted after hours/minutes) win, as in Kafka.
                validate_topic_config(topic_name, &ms.to_string())?;
                self.topic_defaults
                    .insert(topic_name.to_string(), ms.to_string());
            }
            _ => {
                let Some((_, topic_name)) = TOPIC_DEFAULT_SETTINGS.iter().find(|(b, _)| *b == name)
                else {
                    let known: Vec<&str> = BROKER_SETTINGS
                        .iter()
                        .map(|(n, _)| *n)
                        .chain(TOPIC_DEFAULT_SETTINGS.iter().map(|(n, _)| *n))
                        .chain([
                            "log.retention.minutes",
                            "log.retention.hours",
                            "log.roll.hours",
                        ])
                        .collect();
                    bail!("unknown setting; known settings: {}", known.join(", "));
                };
                validate_topic_config(topic_name, value)?;
                self.topic_defaults
                    .insert(topic_name.to_string(), value.to_string());
            }
        }
        Ok(())
    }

    /// Topic defaults as configured on this broker (Kafka topic-level names).
    pub fn topic_defaults(&self) -> BTreeMap<String, String> {
        self.topic_defaults.clone()
    }

    /// Every broker setting with its effective value and whether it was set explicitly
    /// (DescribeConfigs on the broker resource).
    pub fn broker_settings(&self) -> Vec<(&'static str, String, bool)> {
        let defaults = BROKER_SETTINGS.iter().map(|(n, d)| (*n, d.to_string()));
        let topic_level = TOPIC_DEFAULT_SETTINGS.iter().map(|(b, t)| {
            let d = TOPIC_CONFIGS
                .iter()
                .find(|(n, _)| n == t)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            (*b, d)
        });
        defaults
            .chain(topic_level)
            .map(|(name, default)| match self.explicit_settings.get(name) {
                Some(v) => (name, v.clone(), true),
                None => (name, default, false),
            })
            .collect()
    }

    /// The broker setting that supplies a topic config's default (retention.ms ->
    /// log.retention.ms), and its value when set explicitly.
    pub fn broker_synonym(&self, topic_config: &str) -> Option<(&'static str, Option<String>)> {
        TOPIC_DEFAULT_SETTINGS
            .iter()
            .find(|(_, t)| *t == topic_config)
            .map(|(b, t)| (*b, self.topic_defaults.get(*t).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(set: &[&str]) -> ServeArgs {
        ServeArgs {
            set: set.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let cfg = BrokerConfig::resolve(&args(&[])).unwrap();
        assert_eq!(cfg.listen, vec!["127.0.0.1:9092".parse().unwrap()]);
        assert_eq!(cfg.node_id, 1);
        assert_eq!(cfg.num_partitions, 1);
        let cfg = BrokerConfig::resolve(&args(&[
            "num.partitions=4",
            "log.segment.bytes=65536",
            "log.retention.hours=1",
        ]))
        .unwrap();
        assert_eq!(cfg.num_partitions, 4);
        let lc = log_config(&cfg.topic_defaults(), &BTreeMap::new());
        assert_eq!(lc.segment_bytes, 65536);
        assert_eq!(lc.retention_ms, 3_600_000);
    }

    #[test]
    fn unknown_and_invalid_settings_fail() {
        assert!(BrokerConfig::resolve(&args(&["no.such.thing=1"])).is_err());
        assert!(BrokerConfig::resolve(&args(&["num.partitions=zero"])).is_err());
        assert!(BrokerConfig::resolve(&args(&["default.replication.factor=3"])).is_err());
        assert!(BrokerConfig::resolve(&args(&["log.message.timestamp.type=Sometimes"])).is_err());
    }

    #[test]
    fn advertised_listener_needs_a_host() {
        let mut a = args(&[]);
        a.advertised_listener = Some(":9092".into());
        assert!(BrokerConfig::resolve(&a).is_err());
        a.advertised_listener = Some("[::1]:9093".into());
        assert_eq!(
            BrokerConfig::resolve(&a).unwrap().advertised,
            Some(("::1".into(), 9093))
        );
    }

    #[test]
    fn toml_file_with_flags_winning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(
            &path,
            "listen = [\"127.0.0.1:7000\", \"[::1]:7001\"]\nnode_id = 5\ndata_dir = \"/tmp/x\"\n\n[settings]\n\"num.partitions\" = 3\n\"log.retention.hours\" = 2\n\"auto.create.topics.enable\" = false\n",
        )
        .unwrap();
        let mut a = args(&["num.partitions=6"]);
        a.config = Some(path.clone());
        a.node_id = Some(9);
        let cfg = BrokerConfig::resolve(&a).unwrap();
        assert_eq!(cfg.listen.len(), 2);
        assert!(cfg.listen[1].is_ipv6());
        assert_eq!(cfg.node_id, 9, "flag beats file");
        assert_eq!(cfg.num_partitions, 6, "--set beats file");
        assert!(!cfg.auto_create_topics);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            log_config(&cfg.topic_defaults(), &BTreeMap::new()).retention_ms,
            7_200_000
        );
        std::fs::write(&path, "no_such_key = 1\n").unwrap();
        assert!(
            BrokerConfig::resolve(&a).is_err(),
            "unknown file keys are refused"
        );
    }

    #[test]
    fn topic_config_validation() {
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact").is_err());
        assert!(validate_topic_config("nope", "1").is_err());
    }
}
