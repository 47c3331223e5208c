//! Typed settings: CLI flags (with SLUICE_* env equivalents), an optional TOML file, and
//! broker/topic settings under Kafka's own property names, declared in the registry.

pub mod kafka_broker;
pub mod registry;
pub mod security;

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
    /// Log line format: `text` (for people) or `json` (one object a line, for collectors).
    /// Default text.
    #[arg(long = "log-format", value_name = "FORMAT", env = "SLUICE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// A broker or default topic setting under its Kafka name (repeatable), e.g. num.partitions=3.
    #[arg(
        long = "set",
        value_name = "NAME=VALUE",
        env = "SLUICE_SET",
        value_delimiter = ','
    )]
    pub set: Vec<String>,
    /// TOML file with the same keys (listen, advertised_listener, data_dir, node_id, log_level,
    /// log_format, ...)
    /// and a [settings] table of Kafka properties. Flags and env win over the file.
    #[arg(long = "config", value_name = "FILE", env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Object store for tiered segments: s3://BUCKET/PREFIX (configured from the AWS_*
    /// environment) or file:///PATH. Default: a local store in DATA_DIR/tier.
    #[arg(long = "object-store", value_name = "URL", env = "SLUICE_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// Admin HTTP listener (/metrics, /v1/health, /v1/ready), or `none`. Default 127.0.0.1:9644.
    #[arg(
        long = "admin-listen",
        value_name = "HOST:PORT",
        env = "SLUICE_ADMIN_LISTEN"
    )]
    pub admin_listen: Option<String>,
    /// Cluster mode: the etcd members holding the cluster's metadata, and the key prefix
    /// shared by its brokers (etcd://HOST:PORT[,HOST:PORT...]/PREFIX). Needs --node-id.
    /// Default: a single node with local metadata.
    #[arg(long = "cluster", value_name = "URL", env = "SLUICE_CLUSTER")]
    pub cluster: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<Vec<String>>,
    advertised_listener: Option<String>,
    data_dir: Option<PathBuf>,
    node_id: Option<i32>,
    log_level: Option<String>,
    log_format: Option<String>,
    object_store: Option<String>,
    admin_listen: Option<String>,
    cluster: Option<String>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
}

/// Broker-wide settings, resolved and validated.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// --listen: PLAINTEXT listeners (shorthand), advertised as --advertised-listener.
    pub listen: Vec<SocketAddr>,
    pub advertised: Option<(String, u16)>,
    /// The admin HTTP listener; None: off. `explicit`: given by flag, env or file (a bind
    /// failure then stops the broker; on the default address it is only logged).
    pub admin_listen: Option<AdminListen>,
    /// Every listener: --listen's, then `listeners`' (resolved after the settings).
    pub listeners: Vec<security::ListenerConfig>,
    pub security: security::SecurityConfig,
    pub data_dir: PathBuf,
    pub node_id: i32,
    /// Cluster mode (--cluster); None: a single node.
    pub cluster: Option<crate::metadata::ClusterConfig>,
    /// broker.rack, told to the other brokers and clients.
    pub rack: Option<String>,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    /// replica.lag.time.max.ms and replica.fetch.wait.max.ms (cluster mode).
    pub replica_lag_time_max_ms: u64,
    pub replica_fetch_wait_max_ms: u64,
    pub log_level: String,
    pub log_format: crate::logging::LogFormat,
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
    /// connection.failed.authentication.delay.ms
    pub failed_authentication_delay_ms: u64,
    /// max.connections, max.connections.per.ip, max.connections.per.ip.overrides,
    /// max.connection.creation.rate: the static values (dynamic ones override them).
    pub connection_limits: ConnectionLimitsConfig,
    /// quota.window.num and quota.window.size.seconds: the client quotas' rate window.
    pub quota_window_num: u32,
    pub quota_window_size_seconds: u32,
    /// sasl.server.max.receive.size: the frame limit until SASL authentication succeeds.
    pub sasl_server_max_receive_size: usize,
    /// Topic defaults (Kafka's log.* broker settings), as topic-level names.
    pub topic_defaults: BTreeMap<String, String>,
    pub groups: GroupConfig,
    pub transactions: TxnConfig,
    /// Broker settings given explicitly (file, env or --set), by Kafka name.
    pub explicit_settings: BTreeMap<String, String>,
    pub tier: TierConfig,
    pub cleaner: CleanerConfig,
    pub authorizer: AuthorizerConfig,
}

/// authorizer.class.name, super.users, allow.everyone.if.no.acl.found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthorizerConfig {
    /// An authorizer class is configured: ACLs are checked and the ACL APIs work.
    pub enabled: bool,
    /// Principals as "User:NAME".
    pub super_users: Vec<String>,
    pub allow_if_no_acl: bool,
}

/// Kafka's connection limits (ConnectionQuotas).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionLimitsConfig {
    pub max_connections: i64,
    pub max_connections_per_ip: i64,
    /// "host:count,host:count", as given.
    pub per_ip_overrides: String,
    pub max_connection_creation_rate: i64,
}

/// Where the admin HTTP listener binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminListen {
    pub addr: SocketAddr,
    pub explicit: bool,
}

/// The log cleaner's settings (Kafka's log.cleaner.*), set from the registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanerConfig {
    pub enabled: bool,
    pub threads: usize,
    /// Memory for the key -> offset maps, shared by all cleaner threads.
    pub dedupe_buffer_bytes: u64,
    /// Reads plus writes per second over all threads.
    pub io_max_bytes_per_second: f64,
    /// Sleep when no log needs cleaning.
    pub backoff_ms: u64,
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

/// Checks a topic's configs together, after each was checked alone (`validate_topic_config`):
/// the combinations Kafka refuses.
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<()> {
    let compact = configs
        .get("cleanup.policy")
        .is_some_and(|p| p.split(',').any(|p| p.trim() == "compact"));
    let tiered = configs
        .get("remote.storage.enable")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if compact && tiered {
        // Kafka's words; sluice tiers by default, so only an explicit `true` is refused and a
        // compacted topic otherwise just stays local.
        bail!("Remote log storage only supports topics with cleanup.policy=delete or cleanup.policy being an empty list.");
    }
    Ok(())
}

/// A topic config's effective value, where it came from, and the chain behind it (Kafka's
/// DescribeConfigs synonyms, most specific first).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicValue {
    pub value: String,
    pub source: Source,
    pub synonyms: Vec<(&'static str, String, Source)>,
}

/// The broker-level values of settings (Kafka broker names, as given), by where they were set.
#[derive(Debug, Clone, Copy)]
pub struct BrokerLayers<'a> {
    /// AlterConfigs on this broker (resource name = its node id).
    pub node: &'a BTreeMap<String, String>,
    /// AlterConfigs on the cluster default (resource name "").
    pub cluster: &'a BTreeMap<String, String>,
    /// The file, the environment, --set.
    pub static_: &'a BTreeMap<String, String>,
}

impl<'a> BrokerLayers<'a> {
    /// Topic override (not here: per topic), then this broker's dynamic value, then the
    /// cluster's dynamic default, then the static value, then Kafka's default: the one place
    /// this order is written. Every resolution below goes through it.
    fn chain(&self) -> [(&'a BTreeMap<String, String>, Source); 3] {
        [
            (self.node, Source::DynamicBroker),
            (self.cluster, Source::DynamicDefaultBroker),
            (self.static_, Source::StaticBroker),
        ]
    }

    /// Kafka's synonyms of the broker setting `own`: `names` are the settings of its chain,
    /// finest unit first (log.retention.ms, log.retention.minutes, log.retention.hours), with
    /// their Kafka defaults; each layer in order of precedence, then the defaults; the entries
    /// before the first of `own` dropped, as Kafka does. The first entry is the effective
    /// value; none: null.
    pub fn synonyms(
        &self,
        own: &str,
        names: &[(&'static str, Option<&'static str>)],
    ) -> Vec<(&'static str, String, Source)> {
        let mut out = Vec::new();
        for (map, source) in self.chain() {
            for (n, _) in names {
                if let Some(v) = map.get(*n) {
                    out.push((*n, v.clone(), source));
                }
            }
        }
        for (n, d) in names {
            if let Some(d) = d {
                out.push((*n, d.to_string(), Source::Default));
            }
        }
        let skip = out.iter().take_while(|(n, _, _)| *n != own).count();
        out.split_off(skip)
    }

    /// A broker setting's value from the most specific layer that sets it (None: its default).
    pub fn value(&self, name: &str) -> Option<String> {
        self.chain()
            .iter()
            .find_map(|(map, _)| map.get(name).cloned())
    }

    /// The broker-level default of every topic config (topic-level names), each from the most
    /// specific layer that sets one of its broker settings.
    pub fn topic_defaults(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        // Least specific first, so a more specific layer overwrites; within a layer in name
        // order, which puts log.retention.hours before .minutes before .ms: the finer wins.
        for (map, _) in self.chain().iter().rev() {
            for (name, value) in map.iter() {
                let Some(s) = registry::broker(name) else {
                    continue;
                };
                if let (Some(topic), Ok(v)) = (s.topic_config(), s.parse(value)) {
                    out.insert(topic.to_string(), v.str());
                }
            }
        }
        out
    }
}

/// A topic config's value: the topic's override, else the broker-level default from `layers`
/// (already resolved into `defaults` by `BrokerLayers::topic_defaults`), else Kafka's default.
/// Synonyms as Kafka lists them: the override, then the topic config's one broker synonym
/// (log.retention.ms for retention.ms) in each layer and its default; nothing for a topic
/// config without a broker synonym (remote.storage.enable).
pub fn resolve_topic(
    setting: &Setting,
    layers: &BrokerLayers,
    defaults: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> TopicValue {
    let name = setting.name;
    let default = setting.effective_default().unwrap_or_default();
    let mut synonyms = Vec::new();
    if let Some(v) = overrides.get(name) {
        synonyms.push((name, v.clone(), Source::DynamicTopic));
    }
    if let Some(b) = registry::broker_synonym(name) {
        synonyms.extend(layers.synonyms(b.name, &registry::chain(name)));
    }
    let (value, source) = match (overrides.get(name), defaults.get(name)) {
        (Some(v), _) => (v.clone(), Source::DynamicTopic),
        (None, Some(v)) => (
            v.clone(),
            // From a coarser unit when the synonym list has no layer (log.retention.hours).
            synonyms
                .first()
                .map(|s| s.2)
                .filter(|s| *s != Source::Default)
                .unwrap_or(Source::StaticBroker),
        ),
        (None, None) => (default.to_string(), Source::Default),
    };
    TopicValue {
        value,
        source,
        synonyms,
    }
}

/// Resolves a topic's effective configs (topic overrides over the broker-level defaults that
/// `BrokerLayers::topic_defaults` resolved) into a LogConfig.
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
        compact: false,
        delete: false,
        delete_retention_ms: 0,
        min_cleanable_dirty_ratio: 0.0,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: 0,
        compression: None,
        compression_levels: Default::default(),
        remote_copy_disabled: false,
        // A broker setting: the broker sets its own value when it opens a topic.
        producer_expiration_ms: registry::broker("producer.id.expiration.ms")
            .and_then(registry::parsed_default)
            .map(|v| match v {
                Value::Int(ms) => ms,
                _ => 0,
            })
            .unwrap_or_default(),
    };
    let none = BTreeMap::new();
    let layers = BrokerLayers {
        node: &none,
        cluster: &none,
        static_: &none,
    };
    for s in registry::TOPIC {
        if let Target::Log(store) = s.target {
            store(
                &mut c,
                &resolve_topic(s, &layers, defaults, overrides).value,
            );
        }
    }
    // A compacted log is rewritten in place; the tier holds immutable copies (as in Kafka).
    c.remote_storage &= !c.compact;
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

/// `--set` (and SLUICE_SET) split at every comma; a list value (listeners=A,B) comes back
/// as pieces: a piece that does not start with a known setting's NAME= belongs to the one before.
fn rejoin_set(pieces: &[String]) -> Vec<String> {
    let starts_setting = |p: &str| {
        p.split_once('=').is_some_and(|(k, _)| {
            let k = k.trim();
            registry::broker(k).is_some() || k.starts_with("listener.name.")
        })
    };
    let mut out: Vec<String> = Vec::new();
    for p in pieces {
        match out.last_mut() {
            Some(last) if !starts_setting(p) => {
                last.push(',');
                last.push_str(p);
            }
            _ => out.push(p.clone()),
        }
    }
    out
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
        // Without --listen, `listeners` decides (its default is 127.0.0.1:9092, PLAINTEXT).
        let listen_strs = if !args.listen.is_empty() {
            args.listen.clone()
        } else {
            file.listen.clone().unwrap_or_default()
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

        let admin_listen = match args.admin_listen.clone().or(file.admin_listen.clone()) {
            Some(s) if s.trim().eq_ignore_ascii_case("none") => None,
            Some(s) => Some(AdminListen {
                addr: parse_listen(&s).context("--admin-listen")?,
                explicit: true,
            }),
            None => Some(AdminListen {
                addr: SocketAddr::from(([127, 0, 0, 1], 9644)),
                explicit: false,
            }),
        };
        let mut settings: BTreeMap<String, String> = file
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_string(v)))
            .collect();
        for kv in rejoin_set(&args.set) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--set {kv}: expected NAME=VALUE"))?;
            settings.insert(k.trim().to_string(), v.trim().to_string());
        }

        let mut cfg = BrokerConfig {
            listen,
            advertised,
            admin_listen,
            listeners: Vec::new(),
            security: security::SecurityConfig::default(),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            node_id: args.node_id.or(file.node_id).unwrap_or(1),
            cluster: None,
            rack: settings.get("broker.rack").cloned(),
            broker_session_timeout_ms: 0,
            broker_heartbeat_interval_ms: 0,
            replica_lag_time_max_ms: 0,
            replica_fetch_wait_max_ms: 0,
            log_level: args
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".to_string()),
            log_format: match args.log_format.clone().or(file.log_format).as_deref() {
                None => crate::logging::LogFormat::Text,
                Some(f) => crate::logging::LogFormat::parse(f)
                    .ok_or_else(|| anyhow!("--log-format {f}: expected text or json"))?,
            },
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
            failed_authentication_delay_ms: 0,
            connection_limits: ConnectionLimitsConfig::default(),
            quota_window_num: 0,
            quota_window_size_seconds: 0,
            sasl_server_max_receive_size: 0,
            topic_defaults: BTreeMap::new(),
            groups: GroupConfig::default(),
            transactions: TxnConfig::default(),
            explicit_settings: BTreeMap::new(),
            tier: TierConfig {
                object_store: args.object_store.clone().or(file.object_store.clone()),
                ..TierConfig::default()
            },
            cleaner: CleanerConfig::default(),
            authorizer: AuthorizerConfig::default(),
        };
        if cfg.node_id < 0 {
            bail!("--node-id must not be negative");
        }
        if let Some(url) = args.cluster.clone().or(file.cluster.clone()) {
            if args.node_id.or(file.node_id).is_none() {
                bail!("--cluster needs --node-id: every broker of a cluster has its own");
            }
            cfg.cluster = Some(crate::metadata::ClusterConfig::parse(&url)?);
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
        if let Some(cluster) = &mut cfg.cluster {
            cluster.session_timeout_ms = cfg.broker_session_timeout_ms;
            cluster.heartbeat_interval_ms = cfg.broker_heartbeat_interval_ms;
        }
        cfg.security.listeners_explicit = settings.contains_key("listeners");
        cfg.listeners =
            security::resolve_listeners(&cfg.listen, cfg.advertised.clone(), &cfg.security)?;
        cfg.explicit_settings = settings;
        Ok(cfg)
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<()> {
        // listener.name.<listener>.<setting>: a listener-scoped setting for one listener.
        if let Some(rest) = name.strip_prefix("listener.name.") {
            let (listener, key) = rest
                .split_once('.')
                .ok_or_else(|| anyhow!("expected listener.name.<listener>.<setting>"))?;
            // SASL settings kept as given: <mechanism>.sasl.jaas.config, the JAAS options of one
            // mechanism (PLAIN's users; SCRAM's needs none on the broker, as Kafka's
            // ScramLoginModule, but must parse), and OAUTHBEARER's server callback handler
            // (which token validator, by Kafka's class names).
            let sasl = if let Some(mechanism) = key.strip_suffix(".sasl.jaas.config") {
                if !["plain", "scram-sha-256", "scram-sha-512", "oauthbearer"].contains(&mechanism)
                {
                    bail!("sluice serves SASL/PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER");
                }
                crate::security::sasl_plain::jaas_options(value)?;
                true
            } else if key == "oauthbearer.sasl.server.callback.handler.class" {
                use crate::security::sasl_oauthbearer as oauth;
                if value != oauth::UNSECURED_VALIDATOR_CLASS
                    && !oauth::SIGNED_VALIDATOR_CLASSES.contains(&value)
                {
                    bail!("sluice serves Kafka's OAuthBearerValidatorCallbackHandler and OAuthBearerUnsecuredValidatorCallbackHandler only");
                }
                true
            } else {
                false
            };
            if sasl {
                self.security
                    .per_listener
                    .entry(listener.to_ascii_lowercase())
                    .or_default()
                    .insert(key.to_string(), value.to_string());
                return Ok(());
            }
            let setting = registry::broker(key)
                .filter(|s| registry::listener_scoped(s))
                .ok_or_else(|| anyhow!("{key} cannot be set per listener in sluice"))?;
            let v = setting.parse(value)?;
            self.security
                .per_listener
                .entry(listener.to_ascii_lowercase())
                .or_default()
                .insert(key.to_string(), v.str());
            return Ok(());
        }
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

    /// Static values DescribeConfigs reports (STATIC_BROKER_CONFIG): the settings given
    /// explicitly, and Kafka's names for what sluice takes from its own flags.
    pub fn static_settings(&self) -> BTreeMap<String, String> {
        let mut out = self.explicit_settings.clone();
        let listeners: Vec<String> = self
            .listeners
            .iter()
            .map(|l| format!("{}://{}", l.name, l.bind))
            .collect();
        let advertised: Vec<String> = self
            .listeners
            .iter()
            .map(|l| match &l.advertised {
                Some((h, p)) if h.contains(':') => format!("{}://[{h}]:{p}", l.name),
                Some((h, p)) => format!("{}://{h}:{p}", l.name),
                None => format!("{}://{}", l.name, l.bind),
            })
            .collect();
        let advertised = advertised.join(",");
        for (k, v) in [
            ("node.id", self.node_id.to_string()),
            ("broker.id", self.node_id.to_string()),
            ("log.dirs", self.data_dir.display().to_string()),
            ("listeners", listeners.join(",")),
            ("advertised.listeners", advertised),
        ] {
            out.insert(k.to_string(), v);
        }
        out
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
    fn set_takes_list_values() {
        let cfg = BrokerConfig::resolve(&args(&[
            "listeners=PLAINTEXT://127.0.0.1:7000",
            "SSL://127.0.0.1:7001",
            "num.partitions=2",
            "ssl.principal.mapping.rules=RULE:^CN=([^",
            "]*)",
            "O=x$/$1/",
            "DEFAULT",
        ]))
        .unwrap();
        assert_eq!(cfg.listeners.len(), 2);
        assert_eq!(cfg.num_partitions, 2);
        assert_eq!(
            cfg.security.ssl["ssl.principal.mapping.rules"],
            "RULE:^CN=([^,]*),O=x$/$1/,DEFAULT"
        );
        assert!(BrokerConfig::resolve(&args(&["nonsense"])).is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let cfg = BrokerConfig::resolve(&args(&[])).unwrap();
        assert_eq!(cfg.listeners.len(), 1);
        assert_eq!(cfg.listeners[0].bind, "127.0.0.1:9092".parse().unwrap());
        assert_eq!(cfg.listeners[0].name, "PLAINTEXT");
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
        assert!(validate_topic_config("cleanup.policy", "compact").is_ok());
        assert!(validate_topic_config("cleanup.policy", "delete,compact").is_ok());
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
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

    /// The settings the registry had when it replaced the type function.
    const BEFORE: &[&str] = &[
        "auto.create.topics.enable",
        "compression.type",
        "connections.max.idle.ms",
        "default.replication.factor",
        "fetch.max.bytes",
        "group.consumer.assignors",
        "group.consumer.heartbeat.interval.ms",
        "group.consumer.max.size",
        "group.consumer.session.timeout.ms",
        "group.coordinator.rebalance.protocols",
        "group.initial.rebalance.delay.ms",
        "group.max.session.timeout.ms",
        "group.max.size",
        "group.min.session.timeout.ms",
        "log.cleanup.policy",
        "log.index.interval.bytes",
        "log.message.timestamp.after.max.ms",
        "log.message.timestamp.before.max.ms",
        "log.message.timestamp.type",
        "log.retention.bytes",
        "log.retention.check.interval.ms",
        "log.segment.bytes",
        "message.max.bytes",
        "min.insync.replicas",
        "num.partitions",
        "offset.metadata.max.bytes",
        "offsets.retention.check.interval.ms",
        "offsets.retention.minutes",
        "offsets.topic.segment.bytes",
        "producer.id.expiration.ms",
        "remote.log.manager.copier.thread.pool.size",
        "remote.log.manager.copy.max.bytes.per.second",
        "remote.log.manager.task.interval.ms",
        "remote.log.storage.system.enable",
        "socket.request.max.bytes",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "transaction.max.timeout.ms",
        "transaction.partition.verification.enable",
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        "transaction.state.log.segment.bytes",
        "transactional.id.expiration.ms",
        "log.roll.ms",
        "log.retention.ms",
        "cleanup.policy",
        "index.interval.bytes",
        "max.message.bytes",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.type",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.ms",
        "log.page.cache.max.bytes",
        "remote.fetch.cache.size.bytes",
    ];

    #[test]
    fn described_types_are_unchanged() {
        let samples = ["true", "TRUE", "1", "-2", "4000000000", "x", " 4", "delete"];
        for s in registry::BROKER.iter().filter(|s| BEFORE.contains(&s.name)) {
            let default = s.effective_default().unwrap_or_default().to_string();
            for v in samples.iter().copied().chain([default.as_str()]) {
                assert_eq!(
                    s.answered_type(v).code(),
                    config_type(s.name, v),
                    "{} {v}",
                    s.name
                );
            }
        }
        for s in registry::TOPIC.iter().filter(|s| BEFORE.contains(&s.name)) {
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
            "unclean.leader.election.enable, log.retention.minutes, log.retention.hours, log.roll.hours"
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
        // Every codec is accepted since issue 15.
        assert!(validate_topic_config("compression.type", "gzip").is_ok());
        assert_eq!(
            topic("cleanup.policy", "compact,shred"),
            "Invalid value shred for configuration cleanup.policy: String must be one of: compact, delete"
        );
        let both = |a: &str, b: &str| {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_string(), a.to_string()),
                ("remote.storage.enable".to_string(), b.to_string()),
            ]);
            validate_topic_configs(&configs).map_err(|e| e.to_string())
        };
        assert_eq!(
            both("compact", "true"),
            Err("Remote log storage only supports topics with cleanup.policy=delete or cleanup.policy being an empty list.".to_string())
        );
        assert!(both("delete", "true").is_ok() && both("compact", "false").is_ok());
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
        let none = BTreeMap::new();
        let layers = BrokerLayers {
            node: &none,
            cluster: &none,
            static_: &cfg.explicit_settings,
        };
        let r = |name| {
            resolve_topic(
                registry::topic(name).unwrap(),
                &layers,
                &cfg.topic_defaults,
                &overrides,
            )
        };
        // log.retention.ms has no Kafka default: the DEFAULT synonym is log.retention.hours'.
        assert_eq!(
            r("retention.ms").synonyms,
            [
                ("log.retention.ms", "5000".to_string(), Source::StaticBroker),
                ("log.retention.hours", "168".to_string(), Source::Default)
            ]
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
        // No broker-level name: no synonyms (Kafka lists none either).
        assert!(r("remote.storage.enable").synonyms.is_empty());
        let lc = log_config(&cfg.topic_defaults, &overrides);
        assert_eq!((lc.retention_ms, lc.segment_ms), (5000, 100));
    }
}
