//! Typed settings: CLI flags (with SLUICE_* env equivalents), an optional TOML file, and
//! broker/topic settings under Kafka's own property names, declared in the registry.

pub mod registry;

use crate::coordinator::group::GroupConfig;
use crate::coordinator::txn::{TransactionVersion, TxnConfig};
use crate::log::LogConfig;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use registry::{Setting, Source, Target, Value};
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
    pub transactions: TxnConfig,
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
        let mut tier = TierConfig {
            object_store: None,
            // Each of the following is set from the registry's defaults.
            enabled: false,
            task_interval_ms: 0,
            copy_concurrency: 0,
            copy_max_bytes_per_second: 0,
            cache_bytes: 0,
        };
        for s in registry::BROKER {
            if let (Target::Tier(store), Some(v)) = (s.target, registry::parsed_default(s)) {
                store(&mut tier, &v);
            }
        }
        tier
    }
}

// Here rather than in coordinator/group: the defaults are the registry's.
impl Default for GroupConfig {
    fn default() -> Self {
        let mut groups = GroupConfig {
            // Each of the following is set from the registry's defaults.
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 0,
            max_session_timeout_ms: 0,
            max_size: 0,
            offsets_retention_ms: 0,
            offsets_retention_check_interval_ms: 0,
            offset_metadata_max_bytes: 0,
            offsets_segment_bytes: 0,
            consumer_session_timeout_ms: 0,
            consumer_heartbeat_interval_ms: 0,
            consumer_max_size: 0,
            consumer_assignors: Vec::new(),
            consumer_protocol_enabled: false,
        };
        for s in registry::BROKER {
            if let (Target::Group(store), Some(v)) = (s.target, registry::parsed_default(s)) {
                store(&mut groups, &v);
            }
        }
        groups
    }
}

impl Default for TxnConfig {
    fn default() -> Self {
        let mut txn = TxnConfig {
            // Each of the following but the version is set from the registry's defaults.
            max_timeout_ms: 0,
            transactional_id_expiration_ms: 0,
            abort_timed_out_interval_ms: 0,
            remove_expired_interval_ms: 0,
            log_segment_bytes: 0,
            partition_verification: false,
            server_version: TransactionVersion::TV_2,
        };
        for s in registry::BROKER {
            if let (Target::Txn(store), Some(v)) = (s.target, registry::parsed_default(s)) {
                store(&mut txn, &v);
            }
        }
        txn
    }
}

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
    match registry::topic(name) {
        Some(s) => s.parse(value).map(|_| ()),
        None => bail!("unknown topic config '{name}'"),
    }
}

/// A topic config's effective value, where it came from, and the chain behind it (Kafka's
/// DescribeConfigs synonyms, most specific first).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicValue {
    pub value: String,
    pub source: Source,
    pub synonyms: Vec<(&'static str, String, Source)>,
}

/// Topic override, then the broker's value, then the Kafka default: the one place that order
/// is written. `broker` holds the broker's topic defaults under topic-level names.
pub fn resolve_topic(
    setting: &Setting,
    broker: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> TopicValue {
    let name = setting.name;
    let default = setting.effective_default().unwrap_or_default();
    let synonym = registry::broker_synonym(name);
    let mut synonyms = Vec::new();
    if let Some(v) = overrides.get(name) {
        synonyms.push((name, v.clone(), Source::DynamicTopic));
    }
    if let (Some(b), Some(v)) = (synonym, broker.get(name)) {
        synonyms.push((b.name, v.clone(), Source::StaticBroker));
    }
    match synonym {
        Some(b) if !b.has_kafka_default() => {}
        Some(b) => synonyms.push((b.name, default.to_string(), Source::Default)),
        None => synonyms.push((name, default.to_string(), Source::Default)),
    }
    let (value, source) = synonyms
        .first()
        .map(|(_, v, s)| (v.clone(), *s))
        .unwrap_or_else(|| (default.to_string(), Source::Default));
    TopicValue {
        value,
        source,
        synonyms,
    }
}

/// Resolves a topic's effective configs (topic overrides over broker defaults) into a LogConfig.
pub fn log_config(
    defaults: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> LogConfig {
    let mut c = LogConfig {
        // Each of these is set from a topic config below.
        segment_bytes: 0,
        segment_ms: 0,
        retention_ms: 0,
        retention_bytes: 0,
        max_message_bytes: 0,
        log_append_time: false,
        index_interval_bytes: 0,
        timestamp_before_max_ms: 0,
        timestamp_after_max_ms: 0,
        remote_storage: false,
        local_retention_ms: 0,
        local_retention_bytes: 0,
        // A broker setting: the broker sets its own value when it opens a topic.
        producer_expiration_ms: registry::broker("producer.id.expiration.ms")
            .and_then(registry::parsed_default)
            .map(|v| match v {
                Value::Int(ms) => ms,
                _ => 0,
            })
            .unwrap_or_default(),
    };
    for s in registry::TOPIC {
        if let Target::Log(store) = s.target {
            store(&mut c, &resolve_topic(s, defaults, overrides).value);
        }
    }
    c
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
            // Each of these is set from the registry's defaults below.
            num_partitions: 0,
            auto_create_topics: false,
            default_replication_factor: 0,
            socket_request_max_bytes: 0,
            retention_check_interval_ms: 0,
            fetch_max_bytes: 0,
            producer_id_expiration_ms: 0,
            page_cache_max_bytes: 0,
            connections_max_idle_ms: 0,
            topic_defaults: BTreeMap::new(),
            groups: GroupConfig::default(),
            transactions: TxnConfig::default(),
            explicit_settings: BTreeMap::new(),
            tier: TierConfig {
                object_store: args.object_store.clone().or(file.object_store.clone()),
                ..TierConfig::default()
            },
        };
        if cfg.node_id < 0 {
            bail!("--node-id must not be negative");
        }
        for s in registry::BROKER {
            if let (Target::Broker(store), Some(v)) = (s.target, registry::parsed_default(s)) {
                store(&mut cfg, &v);
            }
        }
        for (name, value) in &settings {
            cfg.apply(name, value)
                .with_context(|| format!("invalid setting {name}={value}"))?;
        }
        cfg.explicit_settings = settings;
        Ok(cfg)
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<()> {
        let Some(setting) = registry::broker(name) else {
            let known: Vec<&str> = registry::BROKER.iter().map(|s| s.name).collect();
            bail!("unknown setting; known settings: {}", known.join(", "));
        };
        let v = setting.parse(value)?;
        match setting.target {
            Target::Broker(store) => store(self, &v),
            Target::Group(store) => store(&mut self.groups, &v),
            Target::Txn(store) => store(&mut self.transactions, &v),
            Target::Tier(store) => store(&mut self.tier, &v),
            Target::TopicDefault(topic) | Target::TopicDefaultIn { topic, .. } => {
                self.topic_defaults.insert(topic.to_string(), v.str());
            }
            Target::Log(_) => bail!("{name} is a topic config"),
        }
        Ok(())
    }

    /// Topic defaults as configured on this broker (Kafka topic-level names).
    pub fn topic_defaults(&self) -> BTreeMap<String, String> {
        self.topic_defaults.clone()
    }

    /// Every broker setting DescribeConfigs lists, with its effective value and whether it
    /// was set explicitly.
    pub fn broker_settings(&self) -> Vec<(&'static Setting, String, bool)> {
        registry::BROKER
            .iter()
            .filter(|s| s.listed())
            .map(|s| match self.explicit_settings.get(s.name) {
                Some(v) => (s, v.clone(), true),
                None => (
                    s,
                    s.effective_default().unwrap_or_default().to_string(),
                    false,
                ),
            })
            .collect()
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

/// The refactor onto the registry changed no answer: the values, types and messages sluice gave
/// before it, written out here once more.
#[cfg(test)]
mod before_the_registry {
    use super::*;

    // The DescribeConfigs type function the registry replaced.
    fn config_type(name: &str, value: &str) -> i8 {
        match name.strip_prefix("log.").unwrap_or(name) {
            "cleanup.policy"
            | "group.consumer.assignors"
            | "group.coordinator.rebalance.protocols" => 7,
            "compression.type" | "message.timestamp.type" => 2,
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
            | "offsets.retention.check.interval.ms" => 5,
            _ if value == "true" || value == "false" => 1,
            _ if value.parse::<i32>().is_ok() => 3,
            _ if value.parse::<i64>().is_ok() => 5,
            _ => 2,
        }
    }

    #[test]
    fn described_types_are_unchanged() {
        let samples = ["true", "TRUE", "1", "-2", "4000000000", "x", " 4", "delete"];
        let cfg = BrokerConfig::resolve(&ServeArgs::default()).unwrap();
        for (s, default, _) in cfg.broker_settings() {
            for v in samples.iter().copied().chain([default.as_str()]) {
                assert_eq!(
                    s.answered_type(v).code(),
                    config_type(s.name, v),
                    "{} {v}",
                    s.name
                );
            }
        }
        for s in registry::TOPIC {
            for v in samples.iter().copied().chain(s.effective_default()) {
                assert_eq!(
                    s.answered_type(v).code(),
                    config_type(s.name, v),
                    "{} {v}",
                    s.name
                );
            }
        }
    }

    #[test]
    fn defaults_are_unchanged() {
        let cfg = BrokerConfig::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(
            (
                cfg.num_partitions,
                cfg.auto_create_topics,
                cfg.default_replication_factor,
                cfg.socket_request_max_bytes,
                cfg.retention_check_interval_ms,
                cfg.fetch_max_bytes,
                cfg.producer_id_expiration_ms,
                cfg.page_cache_max_bytes,
                cfg.connections_max_idle_ms,
            ),
            (
                1,
                true,
                1,
                104_857_600,
                300_000,
                57_671_680,
                86_400_000,
                1 << 30,
                600_000
            )
        );
        assert!(cfg.topic_defaults.is_empty());
        let g = &cfg.groups;
        assert_eq!(
            (
                g.initial_rebalance_delay_ms,
                g.min_session_timeout_ms,
                g.max_session_timeout_ms,
                g.max_size,
                g.offsets_retention_ms,
                g.offsets_retention_check_interval_ms,
                g.offset_metadata_max_bytes,
                g.offsets_segment_bytes,
                g.consumer_session_timeout_ms,
                g.consumer_heartbeat_interval_ms,
                g.consumer_max_size,
                g.consumer_protocol_enabled,
            ),
            (
                3000,
                6000,
                1_800_000,
                i32::MAX as usize,
                7 * 24 * 3600 * 1000,
                600_000,
                4096,
                104_857_600,
                45_000,
                5000,
                i32::MAX as usize,
                true
            )
        );
        assert_eq!(g.consumer_assignors, ["uniform", "range"]);
        let t = &cfg.tier;
        assert_eq!(
            (
                t.enabled,
                t.task_interval_ms,
                t.copy_concurrency,
                t.copy_max_bytes_per_second,
                t.cache_bytes
            ),
            (true, 30_000, 10, i64::MAX as u64, 1 << 30)
        );
        let lc = log_config(&BTreeMap::new(), &BTreeMap::new());
        assert!(lc.remote_storage);
    }

    #[test]
    fn messages_are_unchanged() {
        let err = |set: &str| {
            format!(
                "{:#}",
                BrokerConfig::resolve(&ServeArgs {
                    set: vec![set.to_string()],
                    ..Default::default()
                })
                .unwrap_err()
            )
        };
        assert_eq!(
            err("num.partitions=0"),
            "invalid setting num.partitions=0: num.partitions: 0 must be between 1 and 2147483647"
        );
        assert_eq!(
            err("log.retention.ms=x"),
            "invalid setting log.retention.ms=x: retention.ms: 'x' is not an integer"
        );
        assert_eq!(
            err("log.roll.hours=0"),
            "invalid setting log.roll.hours=0: segment.ms: 0 is below the minimum 1"
        );
        assert_eq!(
            err("log.retention.hours=h"),
            "invalid setting log.retention.hours=h: log.retention.hours: 'h' is not an integer"
        );
        assert_eq!(
            err("auto.create.topics.enable=yes"),
            "invalid setting auto.create.topics.enable=yes: auto.create.topics.enable: 'yes' is not true or false"
        );
        assert_eq!(
            err("default.replication.factor=3"),
            "invalid setting default.replication.factor=3: sluice is a single broker: only 1 is possible"
        );
        assert_eq!(
            err("group.consumer.assignors=sticky"),
            "invalid setting group.consumer.assignors=sticky: unknown assignor 'sticky'; available: uniform, range"
        );
        assert_eq!(
            err("group.coordinator.rebalance.protocols=consumer"),
            "invalid setting group.coordinator.rebalance.protocols=consumer: the classic protocol cannot be disabled"
        );
        assert!(err("no.such=1").starts_with(
            "invalid setting no.such=1: unknown setting; known settings: num.partitions, auto.create.topics.enable,"
        ));
        assert!(err("no.such=1").ends_with(
            "log.local.retention.bytes, log.retention.minutes, log.retention.hours, log.roll.hours"
        ));
        let topic = |n: &str, v: &str| validate_topic_config(n, v).unwrap_err().to_string();
        assert_eq!(
            topic("segment.bytes", "10"),
            "segment.bytes: 10 must be between 14 and 2147483647"
        );
        assert_eq!(
            topic("retention.ms", "-5"),
            "retention.ms: -5 is below the minimum -1"
        );
        assert_eq!(
            topic("message.timestamp.type", " Sometimes "),
            "message.timestamp.type: 'Sometimes' is not CreateTime or LogAppendTime"
        );
        assert_eq!(
            topic("compression.type", "gzip"),
            "compression.type=gzip: only 'producer' is supported (batches are stored as sent)"
        );
        assert_eq!(
            topic("cleanup.policy", "compact"),
            "cleanup.policy=compact is not supported yet"
        );
        assert_eq!(topic("nope", "1"), "unknown topic config 'nope'");
    }

    #[test]
    fn topic_values_resolve_as_before() {
        let cfg = BrokerConfig::resolve(&ServeArgs {
            set: vec![
                "log.retention.ms=5000".into(),
                "min.insync.replicas=1".into(),
            ],
            ..Default::default()
        })
        .unwrap();
        let overrides = BTreeMap::from([("segment.ms".to_string(), "100".to_string())]);
        let r = |name| {
            resolve_topic(
                registry::topic(name).unwrap(),
                &cfg.topic_defaults,
                &overrides,
            )
        };
        // log.retention.ms has no Kafka default: no DEFAULT synonym.
        assert_eq!(
            r("retention.ms").synonyms,
            [("log.retention.ms", "5000".to_string(), Source::StaticBroker)]
        );
        assert_eq!(
            r("segment.ms").synonyms,
            [("segment.ms", "100".to_string(), Source::DynamicTopic)]
        );
        assert_eq!(
            (r("segment.ms").value, r("segment.ms").source),
            ("100".to_string(), Source::DynamicTopic)
        );
        assert_eq!(
            r("min.insync.replicas").synonyms,
            [
                ("min.insync.replicas", "1".to_string(), Source::StaticBroker),
                ("min.insync.replicas", "1".to_string(), Source::Default)
            ]
        );
        assert_eq!(
            r("remote.storage.enable").synonyms,
            [("remote.storage.enable", "true".to_string(), Source::Default)]
        );
        let lc = log_config(&cfg.topic_defaults, &overrides);
        assert_eq!((lc.retention_ms, lc.segment_ms), (5000, 100));
    }
}
