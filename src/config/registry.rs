//! The config registry: every broker setting and topic config sluice accepts, declared once
//! with its Kafka name, type, default, valid values, documentation, mutability and (for broker
//! settings) the topic config it is the default for.
//!
//! Everything else derives from these two tables: parsing and validation of `--set`, env and
//! TOML settings (config/mod.rs), CreateTopics validation, the per-partition LogConfig,
//! DescribeConfigs and CreateTopics' described configs (type, source, synonyms, read-only), and
//! the README's settings tables (checked by a test below).

use super::{parse_bool, parse_i64, parse_range, validate_topic_config, BrokerConfig, TierConfig};
use crate::coordinator::group::{assignor::ASSIGNORS, GroupConfig};
use crate::coordinator::txn::TxnConfig;
use crate::log::LogConfig;
use anyhow::{bail, Result};

/// Kafka's ConfigEntry types (the DescribeConfigs `config_type` codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl Type {
    pub const fn code(self) -> i8 {
        match self {
            Type::Boolean => 1,
            Type::String => 2,
            Type::Int => 3,
            Type::Short => 4,
            Type::Long => 5,
            Type::Double => 6,
            Type::List => 7,
            Type::Class => 8,
            Type::Password => 9,
        }
    }
}

/// Kafka's ConfigSource values, most specific first (the order of precedence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    DynamicTopic,
    /// AlterConfigs on this broker (resource name = its node id).
    DynamicBroker,
    /// AlterConfigs on the cluster default (resource name "").
    DynamicDefaultBroker,
    /// The file, the environment or --set.
    StaticBroker,
    Default,
    /// A log level set at runtime (BROKER_LOGGER).
    DynamicBrokerLogger,
}

impl Source {
    pub const fn code(self) -> i8 {
        match self {
            Source::DynamicTopic => 1,
            Source::DynamicBroker => 2,
            Source::DynamicDefaultBroker => 3,
            Source::StaticBroker => 4,
            Source::Default => 5,
            Source::DynamicBrokerLogger => 6,
        }
    }
}

/// A setting's default.
#[derive(Clone, Copy, Debug)]
pub enum KafkaDefault {
    /// Kafka's default (sluice's own for sluice settings).
    Is(&'static str),
    /// The default of the topic config this broker setting supplies (log.segment.bytes has
    /// segment.bytes' default): the value is written once, at the topic config.
    OfTopic,
    /// Kafka declares none: a coarser setting decides (log.retention.ms falls back to
    /// log.retention.hours). The topic config's default applies, but Kafka does not list
    /// this name as a DEFAULT synonym of the topic config.
    Unset,
}

/// Valid values; the errors are what `--set` and CreateTopics' INVALID_CONFIG report.
#[derive(Clone, Copy)]
pub enum Valid {
    /// An integer in `min..=max` ("must be between").
    Between(i64, i64),
    /// An integer of at least `min` ("is below the minimum").
    AtLeast(i64),
    /// true or false, any case.
    Bool,
    /// One of these (trimmed, exact case).
    OneOf(&'static [&'static str]),
    /// Values sluice accepts (`allowed`), checked by `parse` with its own messages: some
    /// names Kafka knows are refused as not supported.
    Check {
        allowed: &'static [&'static str],
        parse: fn(&str, &str) -> Result<Value>,
    },
    /// A broker setting that is a topic config's default: that config's valid values, checked
    /// (and reported) under the topic config's name.
    OfTopic,
}

/// A validated broker setting value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    Str(String),
    List(Vec<String>),
}

impl Value {
    fn int(&self) -> i64 {
        match self {
            Value::Int(v) => *v,
            _ => 0,
        }
    }
    fn bool(&self) -> bool {
        matches!(self, Value::Bool(true))
    }
    pub(super) fn str(&self) -> String {
        match self {
            Value::Str(v) => v.clone(),
            Value::Int(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
            Value::List(v) => v.join(","),
        }
    }
    fn list(&self) -> Vec<String> {
        match self {
            Value::List(v) => v.clone(),
            _ => Vec::new(),
        }
    }
}

/// Where a setting's value goes.
#[derive(Clone, Copy)]
pub enum Target {
    Broker(fn(&mut BrokerConfig, &Value)),
    Group(fn(&mut GroupConfig, &Value)),
    Txn(fn(&mut TxnConfig, &Value)),
    Tier(fn(&mut TierConfig, &Value)),
    /// A broker setting that is the default for this topic config.
    TopicDefault(&'static str),
    /// The same in a coarser unit (log.retention.hours): the value times `ms_per_unit`, -1 and
    /// below meaning -1. Applied in name order, so the finer setting wins, as in Kafka.
    TopicDefaultIn {
        topic: &'static str,
        ms_per_unit: i64,
    },
    /// A topic config: how its effective value lands in the partition's LogConfig.
    Log(fn(&mut LogConfig, &str)),
}

/// How DescribeConfigs reports the type. Until issue 13, sluice guesses it from the value for
/// every setting it has not typed there; a well-formed boolean or int gets its declared type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Declared,
    FromValue,
    As(Type),
}

/// One setting.
#[derive(Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    /// Kafka's type.
    pub ty: Type,
    pub default: KafkaDefault,
    pub valid: Valid,
    /// One line, in Kafka's words where it is a Kafka setting.
    pub doc: &'static str,
    /// Broker settings: false when AlterConfigs may change it without a restart (Kafka's
    /// dynamic update mode, where sluice applies it live). Topic configs: always false.
    pub read_only: bool,
    pub target: Target,
    pub answer: Answer,
}

const fn setting(name: &'static str, ty: Type, default: KafkaDefault, valid: Valid) -> Setting {
    Setting {
        name,
        ty,
        default,
        valid,
        doc: "",
        read_only: true,
        target: Target::Log(not_in_log),
        answer: match ty {
            Type::Boolean | Type::Int => Answer::FromValue,
            _ => Answer::Declared,
        },
    }
}

const fn int(name: &'static str, default: &'static str, min: i64, max: i64) -> Setting {
    setting(
        name,
        Type::Int,
        KafkaDefault::Is(default),
        Valid::Between(min, max),
    )
}
const fn long(name: &'static str, default: &'static str, min: i64, max: i64) -> Setting {
    setting(
        name,
        Type::Long,
        KafkaDefault::Is(default),
        Valid::Between(min, max),
    )
}
const fn boolean(name: &'static str, default: &'static str) -> Setting {
    setting(name, Type::Boolean, KafkaDefault::Is(default), Valid::Bool)
}

impl Setting {
    const fn doc(self, doc: &'static str) -> Setting {
        Setting { doc, ..self }
    }
    const fn broker(self, f: fn(&mut BrokerConfig, &Value)) -> Setting {
        Setting {
            target: Target::Broker(f),
            ..self
        }
    }
    const fn group(self, f: fn(&mut GroupConfig, &Value)) -> Setting {
        Setting {
            target: Target::Group(f),
            ..self
        }
    }
    const fn txn(self, f: fn(&mut TxnConfig, &Value)) -> Setting {
        Setting {
            target: Target::Txn(f),
            ..self
        }
    }
    const fn tier(self, f: fn(&mut TierConfig, &Value)) -> Setting {
        Setting {
            target: Target::Tier(f),
            ..self
        }
    }
    /// A topic config (not read-only: it is set per topic).
    const fn log(self, f: fn(&mut LogConfig, &str)) -> Setting {
        Setting {
            target: Target::Log(f),
            read_only: false,
            ..self
        }
    }
    const fn answer(self, answer: Answer) -> Setting {
        Setting { answer, ..self }
    }
    /// A broker setting AlterConfigs changes at runtime.
    const fn dynamic(self) -> Setting {
        Setting {
            read_only: false,
            ..self
        }
    }

    /// Checks a value; the error names the setting.
    pub fn parse(&self, value: &str) -> Result<Value> {
        let name = self.name;
        Ok(match self.valid {
            Valid::Between(min, max) => Value::Int(parse_range(name, value, min, max)?),
            Valid::AtLeast(min) => {
                let v = parse_i64(name, value)?;
                if v < min {
                    bail!("{name}: {v} is below the minimum {min}");
                }
                Value::Int(v)
            }
            Valid::Bool => Value::Bool(parse_bool(name, value)?),
            Valid::OneOf(allowed) => {
                let v = value.trim();
                if !allowed.contains(&v) {
                    bail!("{name}: '{v}' is not {}", or_list(allowed));
                }
                Value::Str(v.to_string())
            }
            Valid::Check { parse, .. } => parse(name, value)?,
            // What the topic default becomes: the value as given, or in milliseconds.
            Valid::OfTopic => match self.target {
                Target::TopicDefault(topic) => {
                    validate_topic_config(topic, value)?;
                    Value::Str(value.to_string())
                }
                Target::TopicDefaultIn { topic, ms_per_unit } => {
                    let v = parse_i64(name, value)?;
                    let ms = if v < 0 {
                        -1
                    } else {
                        v.saturating_mul(ms_per_unit)
                    };
                    validate_topic_config(topic, &ms.to_string())?;
                    Value::Str(ms.to_string())
                }
                _ => bail!("{name}: not the default of a topic config"),
            },
        })
    }

    /// Checks a value as Kafka's ConfigDef does, with its message ("Invalid value x for
    /// configuration y: why"): what AlterConfigs answers. A broker setting that is a topic
    /// config's default is checked by that config's rules under its own name.
    pub fn kafka_check(&self, value: &str) -> Result<(), String> {
        let valid = match self.target {
            Target::TopicDefault(t) => topic(t).map(|t| t.valid),
            Target::TopicDefaultIn { .. } => None,
            _ => Some(self.valid),
        };
        let bad = |why: String| {
            format!(
                "Invalid value {value} for configuration {}: {why}",
                self.name
            )
        };
        check_type(self.name, self.ty, value)?;
        let v = value.trim();
        let n = v.parse::<i64>().unwrap_or_default();
        match valid {
            Some(Valid::Between(min, _) | Valid::AtLeast(min)) if n < min => {
                Err(bad(format!("Value must be at least {min}")))
            }
            Some(Valid::Between(_, max)) if n > max => {
                Err(bad(format!("Value must be no more than {max}")))
            }
            Some(Valid::OneOf(allowed)) if !allowed.contains(&v) => Err(bad(format!(
                "String must be one of: {}",
                allowed.join(", ")
            ))),
            Some(Valid::Check { parse, .. }) => parse(self.name, value)
                .map(|_| ())
                .map_err(|e| bad(e.to_string())),
            _ => Ok(()),
        }
    }

    /// The type DescribeConfigs answers for this value.
    pub fn answered_type(&self, value: &str) -> Type {
        match self.answer {
            Answer::Declared => self.ty,
            Answer::As(t) => t,
            Answer::FromValue if value == "true" || value == "false" => Type::Boolean,
            Answer::FromValue if value.parse::<i32>().is_ok() => Type::Int,
            Answer::FromValue if value.parse::<i64>().is_ok() => Type::Long,
            Answer::FromValue => Type::String,
        }
    }

    /// The topic config a broker setting is the default for.
    pub fn topic_config(&self) -> Option<&'static str> {
        match self.target {
            Target::TopicDefault(t) | Target::TopicDefaultIn { topic: t, .. } => Some(t),
            _ => None,
        }
    }

    /// The default in effect when nothing is set, as DescribeConfigs shows it; None when
    /// Kafka has none and it is not shown (log.retention.minutes).
    pub fn effective_default(&self) -> Option<&'static str> {
        match (self.default, self.target) {
            (KafkaDefault::Is(v), _) => Some(v),
            (_, Target::TopicDefault(t)) => topic(t).and_then(|t| t.effective_default()),
            _ => None,
        }
    }

    /// Whether Kafka has a default of its own for this name (and lists it as a synonym).
    pub fn has_kafka_default(&self) -> bool {
        !matches!(self.default, KafkaDefault::Unset)
    }
}

/// Kafka's type check of a value (ConfigDef.parseType), in its words.
pub fn check_type(name: &str, ty: Type, value: &str) -> Result<(), String> {
    let v = value.trim();
    let bad = |why: &str| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    match ty {
        Type::Int if v.parse::<i32>().is_err() => bad("Not a number of type INT"),
        Type::Short if v.parse::<i16>().is_err() => bad("Not a number of type SHORT"),
        Type::Long if v.parse::<i64>().is_err() => bad("Not a number of type LONG"),
        Type::Double if v.parse::<f64>().is_err() => bad("Not a number of type DOUBLE"),
        Type::Boolean if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") => {
            bad("Expected value to be either true or false")
        }
        _ => Ok(()),
    }
}

/// "A or B", "A, B or C".
fn or_list(items: &[&str]) -> String {
    match items.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

// Sources and conversions for the targets, one line each; `num` keeps the clamps LogConfig had
// when read from stored topic configs.
fn num(v: &str) -> i64 {
    v.trim().parse::<i64>().unwrap_or(-1)
}
/// Topic configs accepted for compatibility that the log engine does not read.
fn not_in_log(_: &mut LogConfig, _: &str) {}

fn replication_factor(name: &str, value: &str) -> Result<Value> {
    if parse_i64(name, value)? != 1 {
        bail!("sluice is a single broker: only 1 is possible");
    }
    Ok(Value::Int(1))
}

fn assignors(_: &str, value: &str) -> Result<Value> {
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
    if let Some(bad) = names.iter().find(|n| !ASSIGNORS.contains(&n.as_str())) {
        bail!(
            "unknown assignor '{bad}'; available: {}",
            ASSIGNORS.join(", ")
        );
    }
    Ok(Value::List(names))
}

const PROTOCOLS: &[&str] = &["classic", "consumer"];

fn protocols(_: &str, value: &str) -> Result<Value> {
    let protocols: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if !protocols.iter().any(|p| p == "classic") {
        bail!("the classic protocol cannot be disabled");
    }
    if let Some(bad) = protocols.iter().find(|p| !PROTOCOLS.contains(&p.as_str())) {
        bail!("unknown or unsupported rebalance protocol '{bad}'");
    }
    Ok(Value::List(protocols))
}

/// Kafka's list: "delete", "compact", both (any order), or empty (neither: keep everything).
fn cleanup_policy(name: &str, value: &str) -> Result<Value> {
    let mut policies: Vec<String> = Vec::new();
    for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if p != "delete" && p != "compact" {
            bail!("Invalid value {p} for configuration {name}: String must be one of: compact, delete");
        }
        if !policies.iter().any(|q| q == p) {
            policies.push(p.to_string());
        }
    }
    Ok(Value::List(policies))
}

/// A double in `0..=1` (min.cleanable.dirty.ratio).
fn ratio(name: &str, value: &str) -> Result<Value> {
    match value.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(Value::Str(value.trim().to_string())),
        Ok(v) => bail!("Invalid value {v} for configuration {name}: Value must be between 0 and 1"),
        Err(_) => {
            bail!("Invalid value {value} for configuration {name}: Not a number of type DOUBLE")
        }
    }
}

/// A non-negative double (log.cleaner.io.max.bytes.per.second).
fn non_negative_double(name: &str, value: &str) -> Result<Value> {
    match value.trim().parse::<f64>() {
        Ok(v) if v >= 0.0 => Ok(Value::Str(value.trim().to_string())),
        _ => bail!("Invalid value {value} for configuration {name}: a number of type DOUBLE of at least 0 is required"),
    }
}

/// A double setting's value (the parse functions above keep it as text).
fn double(v: &Value) -> f64 {
    v.str().parse().unwrap_or(0.0)
}

const CODECS: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Kafka's gzip levels: -1 (the codec's default) or 1 to 9.
fn gzip_level(name: &str, value: &str) -> Result<Value> {
    let v = parse_i64(name, value)?;
    if v != -1 && !(1..=9).contains(&v) {
        bail!("{name}: {v} must be -1 or between 1 and 9");
    }
    Ok(Value::Int(v))
}

/// Kafka's throttled-replica lists: "*" or partition:broker pairs.
fn throttled_replicas(name: &str, value: &str) -> Result<Value> {
    let v = value.trim();
    let items: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let pair = |s: &str| {
        s.split_once(':')
            .is_some_and(|(p, b)| p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
    };
    if !(v == "*" || items.iter().all(|s| pair(s))) {
        bail!("{name} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...");
    }
    Ok(Value::List(items.iter().map(|s| s.to_string()).collect()))
}

const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;

const fn topic_default(name: &'static str, ty: Type, topic: &'static str) -> Setting {
    Setting {
        target: Target::TopicDefault(topic),
        ..setting(name, ty, KafkaDefault::OfTopic, Valid::OfTopic)
    }
}
const fn topic_default_in(
    name: &'static str,
    default: KafkaDefault,
    topic: &'static str,
    ms_per_unit: i64,
) -> Setting {
    Setting {
        target: Target::TopicDefaultIn { topic, ms_per_unit },
        ..setting(name, Type::Int, default, Valid::OfTopic)
    }
}

/// Broker settings, in the order DescribeConfigs lists them (and the unknown-setting error).
pub static BROKER: &[Setting] = &[
    int("num.partitions", "1", 1, I32)
        .doc("The default number of log partitions per topic")
        .broker(|c, v| c.num_partitions = v.int() as i32),
    boolean("auto.create.topics.enable", "true")
        .doc("Enable auto creation of topic on the server.")
        .broker(|c, v| c.auto_create_topics = v.bool()),
    setting(
        "default.replication.factor",
        Type::Int,
        KafkaDefault::Is("1"),
        Valid::Check {
            allowed: &["1"],
            parse: replication_factor,
        },
    )
    .doc("The replication factors for automatically created topics, and for topics created with -1 as the replication factor")
    .broker(|c, v| c.default_replication_factor = v.int() as i16),
    int("socket.request.max.bytes", "104857600", 1, I32)
        .doc("The maximum number of bytes in a socket request")
        .broker(|c, v| c.socket_request_max_bytes = v.int() as usize),
    long("log.retention.check.interval.ms", "300000", 1, I64)
        .doc("The frequency in milliseconds that the log cleaner checks whether any log is eligible for deletion")
        .broker(|c, v| c.retention_check_interval_ms = v.int() as u64),
    int("fetch.max.bytes", "57671680", 1024, I32)
        .doc("The maximum number of bytes we will return for a fetch request. Must be at least 1024.")
        .broker(|c, v| c.fetch_max_bytes = v.int() as usize),
    // Kafka declares an int; sluice has always answered long.
    int("producer.id.expiration.ms", "86400000", 1, I64)
        .doc("The time in ms that a topic partition leader will wait before expiring producer IDs.")
        .answer(Answer::As(Type::Long))
        .broker(|c, v| c.producer_id_expiration_ms = v.int()),
    long("log.page.cache.max.bytes", "1073741824", -1, I64)
        .doc("sluice: recently written log bytes left in the OS page cache over all partitions; older ones are dropped once fsynced. -1 leaves the cache to the kernel.")
        .broker(|c, v| c.page_cache_max_bytes = v.int()),
    // Cluster mode (metadata/etcd): the registration lease and how often it is renewed.
    int("broker.session.timeout.ms", "9000", 1000, I32)
        .doc("The length of time in milliseconds that a broker lease lasts if no heartbeats are made.")
        .broker(|c, v| c.broker_session_timeout_ms = v.int() as u64),
    int("broker.heartbeat.interval.ms", "2000", 100, I32)
        .doc("The length of time in milliseconds between broker heartbeats.")
        .broker(|c, v| c.broker_heartbeat_interval_ms = v.int() as u64),
    // Cluster mode (replica): when a follower leaves the ISR, how long a follower's fetch waits.
    long("replica.lag.time.max.ms", "30000", 1, I64)
        .doc("If a follower hasn't sent any fetch requests or hasn't consumed up to the leader's log end offset for at least this time, the leader will remove the follower from ISR")
        .broker(|c, v| c.replica_lag_time_max_ms = v.int() as u64),
    int("replica.fetch.wait.max.ms", "500", 0, I32)
        .doc("The maximum wait time for each fetcher request issued by follower replicas. This value should always be less than the replica.lag.time.max.ms at all times to prevent frequent shrinking of ISR for low throughput topics")
        .broker(|c, v| c.replica_fetch_wait_max_ms = v.int() as u64),
    long("connections.max.idle.ms", "600000", 1, I64)
        .doc("Idle connections timeout: the server socket processor threads close the connections that idle more than this")
        .broker(|c, v| c.connections_max_idle_ms = v.int() as u64),
    // Connection limits (server/limits.rs), changed at runtime as in Kafka.
    int("max.connections", "2147483647", 0, I32)
        .doc("The maximum number of connections we allow in the broker at any time. This limit is applied in addition to any per-ip limits configured using max.connections.per.ip. New connections are blocked (not accepted) while the limit is reached.")
        .broker(|c, v| c.connection_limits.max_connections = v.int())
        .dynamic(),
    int("max.connections.per.ip", "2147483647", 0, I32)
        .doc("The maximum number of connections we allow from each ip address. This can be set to 0 if there are overrides configured using max.connections.per.ip.overrides property. New connections from the ip address are dropped if the limit is reached.")
        .broker(|c, v| c.connection_limits.max_connections_per_ip = v.int())
        .dynamic(),
    setting(
        "max.connections.per.ip.overrides",
        Type::String,
        KafkaDefault::Is(""),
        Valid::Check {
            allowed: &["", "127.0.0.1:200", "localhost:100,127.0.0.1:200"],
            parse: per_ip_overrides,
        },
    )
    .doc("A comma-separated list of per-ip or hostname overrides to the default maximum number of connections. An example value is \"hostName:100,127.0.0.1:200\"")
    .broker(|c, v| c.connection_limits.per_ip_overrides = v.str())
    .dynamic(),
    int("max.connection.creation.rate", "2147483647", 0, I32)
        .doc("The maximum connection creation rate (per second) we allow in the broker at any time; beyond it new connections wait (at most quota.window.size.seconds) before they are served.")
        .broker(|c, v| c.connection_limits.max_connection_creation_rate = v.int())
        .dynamic(),
    // Client quotas (security/quotas.rs): the rate window of every quota.
    int("quota.window.num", "11", 1, I32)
        .doc("The number of samples to retain in memory for client quotas")
        .broker(|c, v| c.quota_window_num = v.int() as u32),
    int("quota.window.size.seconds", "1", 1, I32)
        .doc("The time span of each sample for client quotas")
        .broker(|c, v| c.quota_window_size_seconds = v.int() as u32),
    // Listeners and TLS (config/security.rs); ssl.* can be set per listener with a
    // listener.name.<name>. prefix.
    setting(
        "listeners",
        Type::List,
        KafkaDefault::Is("PLAINTEXT://127.0.0.1:9092"),
        Valid::Check {
            allowed: &["PLAINTEXT://127.0.0.1:9092"],
            parse: endpoints,
        },
    )
    .doc("Comma-separated list of URIs we will listen on and the listener names (NAME://HOST:PORT). If the listener name is not a security protocol, listener.security.protocol.map must also be set. sluice: added to --listen's.")
    .broker(|c, v| c.security.listeners = v.str()),
    setting(
        "advertised.listeners",
        Type::List,
        KafkaDefault::Unset,
        Valid::Check {
            allowed: &["PLAINTEXT://localhost:9092"],
            parse: endpoints,
        },
    )
    .doc("Listener addresses to advertise to clients (NAME://HOST:PORT), if different from the listeners.")
    .broker(|c, v| c.security.advertised_listeners = Some(v.str())),
    setting(
        "listener.security.protocol.map",
        Type::String,
        KafkaDefault::Is("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        Valid::Check {
            allowed: &["PLAINTEXT:PLAINTEXT"],
            parse: protocol_map,
        },
    )
    .doc("Map between listener names and security protocols (NAME:PROTOCOL,...).")
    .broker(|c, v| c.security.protocol_map = v.str()),
    setting(
        "ssl.keystore.type",
        Type::String,
        KafkaDefault::Is("JKS"),
        Valid::OneOf(&["JKS", "PKCS12", "PEM"]),
    )
    .doc("The file format of the key store. sluice reads PEM only.")
    .broker(|c, v| ssl(c, "ssl.keystore.type", v)),
    setting("ssl.keystore.location", Type::String, KafkaDefault::Unset, Valid::Check { allowed: &["/path"], parse: any_string })
        .doc("A PEM file with the private key (PKCS#8, PKCS#1 or SEC1, unencrypted) and the certificate chain. Re-read when it changes.")
        .broker(|c, v| ssl(c, "ssl.keystore.location", v)),
    setting("ssl.keystore.certificate.chain", Type::Password, KafkaDefault::Unset, Valid::Check { allowed: &["-----BEGIN CERTIFICATE-----"], parse: any_string })
        .doc("Certificate chain in PEM, with ssl.keystore.key instead of ssl.keystore.location.")
        .broker(|c, v| ssl(c, "ssl.keystore.certificate.chain", v)),
    setting("ssl.keystore.key", Type::Password, KafkaDefault::Unset, Valid::Check { allowed: &["-----BEGIN PRIVATE KEY-----"], parse: any_string })
        .doc("Private key in PEM (unencrypted), with ssl.keystore.certificate.chain.")
        .broker(|c, v| ssl(c, "ssl.keystore.key", v)),
    setting(
        "ssl.truststore.type",
        Type::String,
        KafkaDefault::Is("JKS"),
        Valid::OneOf(&["JKS", "PKCS12", "PEM"]),
    )
    .doc("The file format of the trust store. sluice reads PEM only.")
    .broker(|c, v| ssl(c, "ssl.truststore.type", v)),
    setting("ssl.truststore.location", Type::String, KafkaDefault::Unset, Valid::Check { allowed: &["/path"], parse: any_string })
        .doc("A PEM file with the CA certificates client certificates are checked against. Re-read when it changes.")
        .broker(|c, v| ssl(c, "ssl.truststore.location", v)),
    setting("ssl.truststore.certificates", Type::Password, KafkaDefault::Unset, Valid::Check { allowed: &["-----BEGIN CERTIFICATE-----"], parse: any_string })
        .doc("Trusted certificates in PEM, instead of ssl.truststore.location.")
        .broker(|c, v| ssl(c, "ssl.truststore.certificates", v)),
    setting(
        "ssl.client.auth",
        Type::String,
        KafkaDefault::Is("none"),
        Valid::OneOf(&["required", "requested", "none"]),
    )
    .doc("Client authentication: required (a client without a trusted certificate is refused), requested (optional), none.")
    .broker(|c, v| ssl(c, "ssl.client.auth", v)),
    setting(
        "ssl.enabled.protocols",
        Type::List,
        KafkaDefault::Is("TLSv1.2,TLSv1.3"),
        Valid::Check {
            allowed: &["TLSv1.2", "TLSv1.3"],
            parse: tls_protocols,
        },
    )
    .doc("The list of protocols enabled for SSL connections (TLSv1.2, TLSv1.3).")
    .broker(|c, v| ssl(c, "ssl.enabled.protocols", v)),
    setting(
        "ssl.principal.mapping.rules",
        Type::String,
        KafkaDefault::Is("DEFAULT"),
        Valid::Check {
            allowed: &["DEFAULT"],
            parse: principal_rules,
        },
    )
    .doc("Rules mapping the client certificate's distinguished name to a short name: RULE:pattern/replacement/[LU], DEFAULT (the whole DN).")
    .broker(|c, v| ssl(c, "ssl.principal.mapping.rules", v)),
    setting(
        "sasl.enabled.mechanisms",
        Type::List,
        KafkaDefault::Is("GSSAPI"),
        Valid::Check {
            allowed: &["GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"],
            parse: mechanisms,
        },
    )
    .doc("The SASL mechanisms enabled on SASL listeners. sluice serves PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER; a SASL listener needs it set (Kafka's default is GSSAPI).")
    .broker(|c, v| ssl(c, "sasl.enabled.mechanisms", v)),
    setting("sasl.oauthbearer.jwks.endpoint.url", Type::String, KafkaDefault::Unset, Valid::Check { allowed: &["file:///path"], parse: any_string })
        .doc("The JWKS (JSON Web Key Set) that signed OAUTHBEARER tokens are verified against, with Kafka's OAuthBearerValidatorCallbackHandler. sluice reads a file:// URL, re-read on every authentication.")
        .broker(|c, v| ssl(c, "sasl.oauthbearer.jwks.endpoint.url", v)),
    setting("sasl.oauthbearer.expected.audience", Type::List, KafkaDefault::Unset, Valid::Check { allowed: &["aud"], parse: any_string })
        .doc("Audiences one of which a signed token's aud claim must name; unset, aud is not checked.")
        .broker(|c, v| ssl(c, "sasl.oauthbearer.expected.audience", v)),
    setting("sasl.oauthbearer.expected.issuer", Type::String, KafkaDefault::Unset, Valid::Check { allowed: &["iss"], parse: any_string })
        .doc("The iss claim a signed token must carry; unset, iss is not checked.")
        .broker(|c, v| ssl(c, "sasl.oauthbearer.expected.issuer", v)),
    setting("sasl.oauthbearer.sub.claim.name", Type::String, KafkaDefault::Is("sub"), Valid::Check { allowed: &["sub"], parse: any_string })
        .doc("The claim of a signed token that names the principal.")
        .broker(|c, v| ssl(c, "sasl.oauthbearer.sub.claim.name", v)),
    setting("sasl.oauthbearer.scope.claim.name", Type::String, KafkaDefault::Is("scope"), Valid::Check { allowed: &["scope"], parse: any_string })
        .doc("The claim of a signed token that holds its scopes (accepted; no scope is required of signed tokens).")
        .broker(|c, v| ssl(c, "sasl.oauthbearer.scope.claim.name", v)),
    int("sasl.oauthbearer.clock.skew.seconds", "30", 0, I32)
        .doc("The clock difference allowed when checking a signed token's exp and nbf.")
        .broker(|c, v| ssl(c, "sasl.oauthbearer.clock.skew.seconds", v)),
    int("connection.failed.authentication.delay.ms", "100", 0, I32)
        .doc("Connection close delay on failed authentication: the time by which the answer and the close are delayed.")
        .broker(|c, v| c.failed_authentication_delay_ms = v.int() as u64),
    long("connections.max.reauth.ms", "0", 0, I64)
        .doc("When positive, a SASL session lasts at most this long (KIP-368): SaslAuthenticate tells the client (session_lifetime_ms), the client re-authenticates on the live connection before then (same mechanism and principal), and a request after the expiry closes the connection. 0: sessions do not expire. Settable per listener (listener.name.NAME.connections.max.reauth.ms).")
        .broker(|c, v| ssl(c, "connections.max.reauth.ms", v)),
    int("sasl.server.max.receive.size", "524288", 1, I32)
        .doc("The maximum receive size allowed before and during initial SASL authentication.")
        .broker(|c, v| c.sasl_server_max_receive_size = v.int() as usize),
    int("transaction.max.timeout.ms", "900000", 1, I32)
        .doc("The maximum allowed timeout for transactions. A client asking for more gets INVALID_TRANSACTION_TIMEOUT.")
        .txn(|t, v| t.max_timeout_ms = v.int() as i32),
    int("transactional.id.expiration.ms", "604800000", 1, I32)
        .doc("The time in ms that the transaction coordinator will wait without receiving any transaction status updates for the current transaction before expiring its transactional id.")
        .txn(|t, v| t.transactional_id_expiration_ms = v.int()),
    int("transaction.abort.timed.out.transaction.cleanup.interval.ms", "10000", 1, I32)
        .doc("The interval at which to rollback transactions that have timed out.")
        .txn(|t, v| t.abort_timed_out_interval_ms = v.int() as u64),
    int("transaction.remove.expired.transaction.cleanup.interval.ms", "3600000", 1, I32)
        .doc("The interval at which to remove transactions that have expired due to transactional.id.expiration.ms passing.")
        .txn(|t, v| t.remove_expired_interval_ms = v.int() as u64),
    int("transaction.state.log.segment.bytes", "104857600", 1, I32)
        .doc("The transaction log segment bytes should be kept relatively small in order to facilitate faster log compaction and cache loads.")
        .txn(|t, v| t.log_segment_bytes = v.int() as u64),
    boolean("transaction.partition.verification.enable", "true")
        .doc("Enable verification that checks that the partition has been added to the transaction before writing transactional records to the partition.")
        .txn(|t, v| t.partition_verification = v.bool()),
    int("group.initial.rebalance.delay.ms", "3000", 0, I32)
        .doc("The amount of time the group coordinator will wait for more consumers to join a new group before performing the first rebalance.")
        .group(|g, v| g.initial_rebalance_delay_ms = v.int() as u64),
    int("group.min.session.timeout.ms", "6000", 0, I32)
        .doc("The minimum allowed session timeout for registered consumers.")
        .group(|g, v| g.min_session_timeout_ms = v.int() as i32),
    int("group.max.session.timeout.ms", "1800000", 0, I32)
        .doc("The maximum allowed session timeout for registered consumers.")
        .group(|g, v| g.max_session_timeout_ms = v.int() as i32),
    int("group.max.size", "2147483647", 1, I32)
        .doc("The maximum number of consumers that a single consumer group can accommodate.")
        .group(|g, v| g.max_size = v.int() as usize),
    int("group.consumer.session.timeout.ms", "45000", 1, I32)
        .doc("The timeout to detect client failures when using the consumer group protocol.")
        .group(|g, v| g.consumer_session_timeout_ms = v.int() as i32),
    int("group.consumer.heartbeat.interval.ms", "5000", 1, I32)
        .doc("The heartbeat interval given to the members of a consumer group.")
        .group(|g, v| g.consumer_heartbeat_interval_ms = v.int() as i32),
    int("group.consumer.max.size", "2147483647", 1, I32)
        .doc("The maximum number of consumers that a single consumer group can accommodate.")
        .group(|g, v| g.consumer_max_size = v.int() as usize),
    setting(
        "group.consumer.assignors",
        Type::List,
        KafkaDefault::Is("uniform,range"),
        Valid::Check {
            allowed: ASSIGNORS,
            parse: assignors,
        },
    )
    .doc("The server side assignors as a list of names for builtin assignors; the first one in the list is the default assignor.")
    .group(|g, v| g.consumer_assignors = v.list()),
    setting(
        "group.coordinator.rebalance.protocols",
        Type::List,
        KafkaDefault::Is("classic,consumer"),
        Valid::Check {
            allowed: PROTOCOLS,
            parse: protocols,
        },
    )
    .doc("The list of enabled rebalance protocols.")
    .group(|g, v| g.consumer_protocol_enabled = v.list().iter().any(|p| p == "consumer")),
    int("offsets.retention.minutes", "10080", 1, I32)
        .doc("After a consumer group loses all its consumers (i.e. becomes empty) its offsets will be kept for this retention period before getting discarded.")
        .group(|g, v| g.offsets_retention_ms = v.int() * 60_000),
    long("offsets.retention.check.interval.ms", "600000", 1, I64)
        .doc("Frequency at which to check for stale offsets")
        .group(|g, v| g.offsets_retention_check_interval_ms = v.int() as u64),
    int("offset.metadata.max.bytes", "4096", 0, I32)
        .doc("The maximum size for a metadata entry associated with an offset commit.")
        .group(|g, v| g.offset_metadata_max_bytes = v.int() as usize),
    int("offsets.topic.segment.bytes", "104857600", 1024, I32)
        .doc("The offsets topic segment bytes should be kept relatively small in order to facilitate faster log compaction and cache loads.")
        .group(|g, v| g.offsets_segment_bytes = v.int() as u64),
    boolean("remote.log.storage.system.enable", "true")
        .doc("Whether to enable tiered storage functionality in a broker or not.")
        .tier(|t, v| t.enabled = v.bool()),
    long("remote.log.manager.task.interval.ms", "30000", 10, I64)
        .doc("Interval at which remote log manager runs the scheduled tasks like copy segments, and clean up remote log segments.")
        .answer(Answer::FromValue)
        .tier(|t, v| t.task_interval_ms = v.int() as u64),
    int("remote.log.manager.copier.thread.pool.size", "10", 1, 1024)
        .doc("Size of the thread pool used in scheduling tasks to copy segments.")
        .tier(|t, v| t.copy_concurrency = v.int() as usize),
    long(
        "remote.log.manager.copy.max.bytes.per.second",
        "9223372036854775807",
        1,
        I64,
    )
    .doc("The maximum number of bytes that can be copied from local storage to remote storage per second.")
    .answer(Answer::FromValue)
    .tier(|t, v| t.copy_max_bytes_per_second = v.int() as u64),
    long("remote.fetch.cache.size.bytes", "1073741824", 0, I64)
        .doc("sluice: size of the on-disk cache of chunks read from the tier (DATA_DIR/tier-cache).")
        .answer(Answer::FromValue)
        .tier(|t, v| t.cache_bytes = v.int() as u64),
    // The log cleaner (log/cleaner/).
    boolean("log.cleaner.enable", "true")
        .doc("Enable the log cleaner process to run on the server. Should be enabled if using any topics with a cleanup.policy=compact including the internal offsets topic.")
        .broker(|c, v| c.cleaner.enabled = v.bool()),
    int("log.cleaner.threads", "1", 0, I32)
        .doc("The number of background threads to use for log cleaning")
        .broker(|c, v| c.cleaner.threads = v.int() as usize)
        .dynamic(),
    long("log.cleaner.dedupe.buffer.size", "134217728", 0, I64)
        .doc("The total memory used for log deduplication across all cleaner threads")
        .broker(|c, v| c.cleaner.dedupe_buffer_bytes = v.int() as u64)
        .dynamic(),
    setting(
        "log.cleaner.io.max.bytes.per.second",
        Type::Double,
        KafkaDefault::Is("1.7976931348623157E308"),
        Valid::Check {
            allowed: &["1.7976931348623157E308"],
            parse: non_negative_double,
        },
    )
    .doc("The log cleaner will be throttled so that the sum of its read and write i/o will be less than this value on average")
    .broker(|c, v| c.cleaner.io_max_bytes_per_second = double(v))
    .dynamic(),
    long("log.cleaner.backoff.ms", "15000", 0, I64)
        .doc("The amount of time to sleep when there are no logs to clean")
        .broker(|c, v| c.cleaner.backoff_ms = v.int() as u64)
        .dynamic(),
    // Defaults of topic configs (Kafka's log.* settings).
    topic_default("log.segment.bytes", Type::Int, "segment.bytes")
        .doc("The maximum size of a single log file")
        .dynamic(),
    Setting {
        default: KafkaDefault::Unset,
        ..topic_default("log.roll.ms", Type::Long, "segment.ms")
    }
    .doc("The maximum time before a new log segment is rolled out (in milliseconds). If not set, the value in log.roll.hours is used")
    .dynamic(),
    Setting {
        default: KafkaDefault::Unset,
        ..topic_default("log.retention.ms", Type::Long, "retention.ms")
    }
    .doc("The number of milliseconds to keep a log file before deleting it (in milliseconds), If not set, the value in log.retention.minutes is used. If set to -1, no time limit is applied.")
    .dynamic(),
    topic_default("log.retention.bytes", Type::Long, "retention.bytes")
        .doc("The maximum size of the log before deleting it")
        .dynamic(),
    topic_default("message.max.bytes", Type::Int, "max.message.bytes")
        .doc("The largest record batch size allowed by Kafka (after compression if compression is enabled).")
        .dynamic(),
    topic_default("log.message.timestamp.type", Type::String, "message.timestamp.type")
        .doc("Define whether the timestamp in the message is message create time or log append time.")
        .dynamic(),
    topic_default(
        "log.message.timestamp.before.max.ms",
        Type::Long,
        "message.timestamp.before.max.ms",
    )
    .doc("The allowable timestamp difference between the broker's timestamp and an earlier message timestamp.")
        .dynamic(),
    topic_default(
        "log.message.timestamp.after.max.ms",
        Type::Long,
        "message.timestamp.after.max.ms",
    )
    .doc("The allowable timestamp difference between the broker's timestamp and a later message timestamp.")
        .dynamic(),
    topic_default("log.index.interval.bytes", Type::Int, "index.interval.bytes")
        .doc("The interval with which we add an entry to the offset index.")
        .dynamic(),
    topic_default("log.cleanup.policy", Type::List, "cleanup.policy")
        .doc("The default cleanup policy for segments beyond the retention window. A comma separated list of valid policies.")
        .dynamic(),
    topic_default("log.cleaner.min.cleanable.ratio", Type::Double, "min.cleanable.dirty.ratio")
        .doc("The minimum ratio of dirty log to total log for a log to eligible for cleaning.")
        .dynamic(),
    topic_default("log.cleaner.delete.retention.ms", Type::Long, "delete.retention.ms")
        .doc("The amount of time to retain tombstone message markers for log compacted topics.")
        .dynamic(),
    topic_default("log.cleaner.min.compaction.lag.ms", Type::Long, "min.compaction.lag.ms")
        .doc("The minimum time a message will remain uncompacted in the log. Only applicable for logs that are being compacted.")
        .dynamic(),
    topic_default("log.cleaner.max.compaction.lag.ms", Type::Long, "max.compaction.lag.ms")
        .doc("The maximum time a message will remain ineligible for compaction in the log. Only applicable for logs that are being compacted.")
        .dynamic(),
    topic_default("min.insync.replicas", Type::Int, "min.insync.replicas")
        .doc("The minimum number of replicas that must acknowledge a write for it to be considered successful when a producer sets acks to all.")
        .dynamic(),
    topic_default("compression.type", Type::String, "compression.type")
        .doc("Specify the final compression type for a given topic.")
        .dynamic(),
    topic_default("log.local.retention.ms", Type::Long, "local.retention.ms")
        .doc("The number of milliseconds to keep the local log segments before it gets eligible for deletion. -2: log.retention.ms is used.")
        .dynamic(),
    topic_default("log.local.retention.bytes", Type::Long, "local.retention.bytes")
        .doc("The maximum size of local log segments that can grow for a partition before it gets eligible for deletion. -2: log.retention.bytes is used.")
        .dynamic(),
    topic_default("compression.gzip.level", Type::Int, "compression.gzip.level")
        .doc("The compression level to use if compression.type is set to gzip.")
        .dynamic(),
    topic_default("compression.lz4.level", Type::Int, "compression.lz4.level")
        .doc("The compression level to use if compression.type is set to lz4.")
        .dynamic(),
    topic_default("compression.zstd.level", Type::Int, "compression.zstd.level")
        .doc("The compression level to use if compression.type is set to zstd.")
        .dynamic(),
    topic_default("log.segment.delete.delay.ms", Type::Long, "file.delete.delay.ms")
        .doc("The amount of time to wait before deleting a file from the filesystem.")
        .dynamic(),
    topic_default("log.flush.interval.messages", Type::Long, "flush.messages")
        .doc("The number of messages accumulated on a log partition before messages are flushed to disk.")
        .dynamic(),
    Setting {
        default: KafkaDefault::Unset,
        ..topic_default("log.flush.interval.ms", Type::Long, "flush.ms")
    }
    .doc("The maximum time in ms that a message in any topic is kept in memory before flushed to disk. If not set, the value in log.flush.scheduler.interval.ms is used")
    .dynamic(),
    topic_default("max.decompressed.message.bytes", Type::Int, "max.decompressed.message.bytes")
        .doc("The largest size a record batch may have once decompressed, where the broker decompresses it.")
        .dynamic(),
    topic_default("log.preallocate", Type::Boolean, "preallocate")
        .doc("Should pre allocate file when create new segment?")
        .dynamic(),
    topic_default("log.remote.copy.lag.bytes", Type::Long, "remote.copy.lag.bytes")
        .doc("The default remote.copy.lag.bytes of topics.")
        .dynamic(),
    topic_default("log.remote.copy.lag.ms", Type::Long, "remote.copy.lag.ms")
        .doc("The default remote.copy.lag.ms of topics.")
        .dynamic(),
    topic_default("log.index.size.max.bytes", Type::Int, "segment.index.bytes")
        .doc("The maximum size in bytes of the offset index")
        .dynamic(),
    Setting {
        default: KafkaDefault::Unset,
        ..topic_default("log.roll.jitter.ms", Type::Long, "segment.jitter.ms")
    }
    .doc("The maximum jitter to subtract from logRollTimeMillis (in milliseconds). If not set, the value in log.roll.jitter.hours is used")
    .dynamic(),
    // Authorization (security/authorizer.rs).
    setting(
        "authorizer.class.name",
        Type::String,
        KafkaDefault::Is(""),
        Valid::Check {
            allowed: AUTHORIZERS,
            parse: authorizer_class,
        },
    )
    .doc("The authorizer: org.apache.kafka.metadata.authorizer.StandardAuthorizer or kafka.security.authorizer.AclAuthorizer (both are sluice's ACL authorizer); empty: no authorization.")
    .broker(|c, v| c.authorizer.enabled = !v.str().is_empty()),
    setting("super.users", Type::String, KafkaDefault::Is(""), Valid::Check {
        allowed: &["User:admin;User:ANONYMOUS"],
        parse: super_users,
    })
    .doc("A semicolon-separated list of principals (User:NAME) allowed every operation.")
    .broker(|c, v| c.authorizer.super_users = v.list()),
    boolean("allow.everyone.if.no.acl.found", "false")
        .doc("When no ACL matches a resource, allow every principal (true) or only super users (false).")
        .broker(|c, v| c.authorizer.allow_if_no_acl = v.bool()),
    topic_default("unclean.leader.election.enable", Type::Boolean, "unclean.leader.election.enable")
        .doc("Indicates whether to enable replicas not in the ISR set to be elected as leader as a last resort, even though doing so may result in data loss")
        .dynamic(),
    // Coarser units of the above.
    topic_default_in("log.retention.minutes", KafkaDefault::Unset, "retention.ms", 60_000)
        .doc("The number of minutes to keep a log file before deleting it (in minutes), secondary to log.retention.ms property. If not set, the value in log.retention.hours is used"),
    topic_default_in("log.retention.hours", KafkaDefault::Is("168"), "retention.ms", 3_600_000)
        .doc("The number of hours to keep a log file before deleting it (in hours), tertiary to log.retention.ms property"),
    topic_default_in("log.roll.hours", KafkaDefault::Is("168"), "segment.ms", 3_600_000)
        .doc("The maximum time before a new log segment is rolled out (in hours), secondary to log.roll.ms property"),
];

const AUTHORIZERS: &[&str] = &[
    "",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

fn authorizer_class(name: &str, value: &str) -> Result<Value> {
    let v = value.trim();
    if !AUTHORIZERS.contains(&v) {
        bail!(
            "{name}: '{v}' is not supported; use {} or leave it empty",
            AUTHORIZERS[1..].join(" or ")
        );
    }
    Ok(Value::Str(v.to_string()))
}

/// Kafka's list: principals separated by semicolons, each TYPE:NAME.
fn super_users(name: &str, value: &str) -> Result<Value> {
    let users: Vec<String> = value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = users.iter().find(|u| !u.contains(':')) {
        bail!("{name}: '{bad}' is not a principal (expected User:NAME)");
    }
    Ok(Value::List(users))
}

const fn topic_config(
    name: &'static str,
    ty: Type,
    default: &'static str,
    valid: Valid,
) -> Setting {
    setting(name, ty, KafkaDefault::Is(default), valid)
}

/// Topic configs, in the order DescribeConfigs and CreateTopics list them.
pub static TOPIC: &[Setting] = &[
    topic_config(
        "cleanup.policy",
        Type::List,
        "delete",
        Valid::Check {
            allowed: &["delete", "compact"],
            parse: cleanup_policy,
        },
    )
    .doc("This config designates the retention policy to use on log segments.")
    .log(|c, v| {
        let has = |p: &str| v.split(',').any(|q| q.trim() == p);
        c.compact = has("compact");
        c.delete = has("delete");
    }),
    topic_config(
        "compression.type",
        Type::String,
        "producer",
        Valid::OneOf(CODECS),
    )
    .doc("Specify the final compression type for a given topic. 'producer' keeps the producer's codec; any other makes the broker recompress batches of another codec.")
    .log(|c, v| {
        c.compression = match v.trim() {
            "uncompressed" => Some(0),
            "gzip" => Some(1),
            "snappy" => Some(2),
            "lz4" => Some(3),
            "zstd" => Some(4),
            _ => None,
        }
    }),
    topic_config("delete.retention.ms", Type::Long, "86400000", Valid::AtLeast(0))
        .doc("The amount of time to retain delete tombstone markers for log compacted topics.")
        .log(|c, v| c.delete_retention_ms = num(v).max(0)),
    topic_config("compression.gzip.level", Type::Int, "-1", Valid::Check { allowed: &["-1", "1", "9"], parse: gzip_level })
        .doc("The compression level to use if compression.type is set to gzip.")
        .log(|c, v| c.compression_levels.gzip = num(v) as i32),
    topic_config("compression.lz4.level", Type::Int, "9", Valid::Between(1, 17))
        .doc("The compression level to use if compression.type is set to lz4.")
        .log(|c, v| c.compression_levels.lz4 = num(v) as i32),
    topic_config("compression.zstd.level", Type::Int, "3", Valid::Between(-131072, 22))
        .doc("The compression level to use if compression.type is set to zstd.")
        .log(|c, v| c.compression_levels.zstd = num(v) as i32),
    topic_config("errors.deadletterqueue.group.enable", Type::Boolean, "false", Valid::Bool)
        .doc("This configuration controls whether to create a dead-letter queue topic for a share group (Kafka's share groups; sluice has none).")
        .log(not_in_log),
    topic_config("file.delete.delay.ms", Type::Long, "60000", Valid::AtLeast(0))
        .doc("The time to wait before deleting a file from the filesystem. sluice deletes a segment at once.")
        .log(not_in_log),
    // sluice's flusher fsyncs every group commit as soon as it is appended, so any flush
    // interval is met already.
    topic_config("flush.messages", Type::Long, "9223372036854775807", Valid::AtLeast(1))
        .doc("The number of messages written to a log partition before it is forced to disk. sluice fsyncs each group commit at once, which meets any value.")
        .log(not_in_log),
    topic_config("flush.ms", Type::Long, "9223372036854775807", Valid::AtLeast(0))
        .doc("The time a message may stay in the log before it is forced to disk. sluice fsyncs each group commit at once, which meets any value.")
        .log(not_in_log),
    topic_config("follower.replication.throttled.replicas", Type::List, "", Valid::Check { allowed: &["*"], parse: throttled_replicas })
        .doc("A list of replicas for which log replication should be throttled on the follower side (no replication on a single node).")
        .log(not_in_log),
    topic_config("leader.replication.throttled.replicas", Type::List, "", Valid::Check { allowed: &["*"], parse: throttled_replicas })
        .doc("A list of replicas for which log replication should be throttled on the leader side (no replication on a single node).")
        .log(not_in_log),
    topic_config("index.interval.bytes", Type::Int, "4096", Valid::AtLeast(0))
        .doc("This setting controls how frequently Kafka adds entries to its offset index.")
        .log(|c, v| c.index_interval_bytes = num(v).max(0) as u64),
    topic_config("local.retention.bytes", Type::Long, "-2", Valid::AtLeast(-2))
        .doc("The maximum size of local log segments that can grow for a partition before it deletes the old segments. Default value is -2, it represents `retention.bytes` value to be used.")
        .log(|c, v| c.local_retention_bytes = num(v).max(-2)),
    topic_config("local.retention.ms", Type::Long, "-2", Valid::AtLeast(-2))
        .doc("The number of milliseconds to keep the local log segment before it gets deleted. Default value is -2, it represents `retention.ms` value is to be used.")
        .log(|c, v| c.local_retention_ms = num(v).max(-2)),
    topic_config("max.message.bytes", Type::Int, "1048588", Valid::AtLeast(0))
        .doc("The largest record batch size allowed by Kafka (after compression if compression is enabled).")
        .log(|c, v| c.max_message_bytes = num(v).max(0) as usize),
    topic_config("max.compaction.lag.ms", Type::Long, "9223372036854775807", Valid::AtLeast(1))
        .doc("The maximum time a message will remain ineligible for compaction in the log. Only applicable for logs that are being compacted.")
        .log(|c, v| c.max_compaction_lag_ms = num(v).max(1)),
    topic_config("max.decompressed.message.bytes", Type::Int, "2147483639", Valid::AtLeast(0))
        .doc("The largest size a record batch may have once decompressed, where the broker decompresses it.")
        .log(not_in_log),
    topic_config("message.timestamp.after.max.ms", Type::Long, "3600000", Valid::AtLeast(0))
        .doc("The allowable timestamp difference between the broker's timestamp and a later message timestamp.")
        .log(|c, v| c.timestamp_after_max_ms = num(v).max(0)),
    topic_config(
        "message.timestamp.before.max.ms",
        Type::Long,
        "9223372036854775807",
        Valid::AtLeast(0),
    )
    .doc("The allowable timestamp difference between the broker's timestamp and an earlier message timestamp.")
    .log(|c, v| c.timestamp_before_max_ms = num(v).max(0)),
    topic_config(
        "message.timestamp.type",
        Type::String,
        "CreateTime",
        Valid::OneOf(&["CreateTime", "LogAppendTime"]),
    )
    .doc("Define whether the timestamp in the message is message create time or log append time.")
    .log(|c, v| c.log_append_time = v.trim() == "LogAppendTime"),
    topic_config(
        "min.cleanable.dirty.ratio",
        Type::Double,
        "0.5",
        Valid::Check {
            allowed: &["0.5"],
            parse: ratio,
        },
    )
    .doc("This configuration controls how frequently the log compactor will attempt to clean the log (assuming log compaction is enabled).")
    .log(|c, v| c.min_cleanable_dirty_ratio = v.trim().parse().unwrap_or(0.5)),
    topic_config("min.compaction.lag.ms", Type::Long, "0", Valid::AtLeast(0))
        .doc("The minimum time a message will remain uncompacted in the log. Only applicable for logs that are being compacted.")
        .log(|c, v| c.min_compaction_lag_ms = num(v).max(0)),
    topic_config("min.insync.replicas", Type::Int, "1", Valid::AtLeast(1))
        .doc("The minimum number of replicas that must acknowledge a write for it to be considered successful when a producer sets acks to all.")
        .log(not_in_log),
    topic_config("preallocate", Type::Boolean, "false", Valid::Bool)
        .doc("True if we should preallocate the file on disk when creating a new log segment. sluice grows segments as it writes.")
        .log(not_in_log),
    topic_config("remote.copy.lag.bytes", Type::Long, "-1", Valid::AtLeast(-1))
        .doc("The local bytes a partition may hold beyond what was copied to remote storage before copying starts; -1: copy as soon as a segment is sealed.")
        .log(not_in_log),
    topic_config("remote.copy.lag.ms", Type::Long, "0", Valid::AtLeast(-1))
        .doc("How long a sealed segment waits before it is copied to remote storage.")
        .log(not_in_log),
    topic_config("remote.log.copy.disable", Type::Boolean, "false", Valid::Bool)
        .doc("Disables copying of segments to remote storage while remote reads and remote retention go on.")
        .log(|c, v| c.remote_copy_disabled = v.trim().eq_ignore_ascii_case("true")),
    topic_config("remote.log.delete.on.disable", Type::Boolean, "false", Valid::Bool)
        .doc("Determines whether tiered data for a topic should be deleted after tiered storage is disabled on a topic.")
        .log(not_in_log),
    // sluice tiers by default (Kafka: false).
    topic_config("remote.storage.enable", Type::Boolean, "true", Valid::Bool)
        .doc("To enable tiered storage for a topic, set this configuration as true.")
        .log(|c, v| c.remote_storage = v.trim().eq_ignore_ascii_case("true")),
    topic_config("retention.bytes", Type::Long, "-1", Valid::AtLeast(-1))
        .doc("This configuration controls the maximum size a partition can grow to before old log segments are discarded to free up space.")
        .log(|c, v| c.retention_bytes = num(v)),
    topic_config("retention.ms", Type::Long, "604800000", Valid::AtLeast(-1))
        .doc("This configuration controls the maximum time we will retain a log before we will discard old log segments to free up space.")
        .log(|c, v| c.retention_ms = num(v)),
    topic_config("segment.bytes", Type::Int, "1073741824", Valid::Between(14, I32))
        .doc("This configuration controls the segment file size for the log.")
        .log(|c, v| c.segment_bytes = num(v).max(14) as u64),
    topic_config("segment.index.bytes", Type::Int, "10485760", Valid::AtLeast(4))
        .doc("This configuration controls the size of the index that maps offsets to file positions. sluice's sparse index grows as needed.")
        .log(not_in_log),
    topic_config("segment.jitter.ms", Type::Long, "0", Valid::AtLeast(0))
        .doc("The maximum random jitter subtracted from the scheduled segment roll time to avoid thundering herds of segment rolling.")
        .log(not_in_log),
    topic_config("segment.ms", Type::Long, "604800000", Valid::AtLeast(1))
        .doc("This configuration controls the period of time after which Kafka will force the log to roll even if the segment file isn't full.")
        .log(|c, v| c.segment_ms = num(v).max(1)),
    topic_config("unclean.leader.election.enable", Type::Boolean, "false", Valid::Bool)
        .doc("Indicates whether to enable replicas not in the ISR set to be elected as leader as a last resort (a single node has no other replica).")
        .log(not_in_log),
];

fn ssl(c: &mut BrokerConfig, name: &str, v: &Value) {
    c.security.ssl.insert(name.to_string(), v.str());
}

/// A setting `listener.name.<listener>.` may prefix.
pub fn listener_scoped(s: &Setting) -> bool {
    s.name.starts_with("ssl.")
        || matches!(
            s.name,
            "sasl.enabled.mechanisms"
                | "max.connections"
                | "max.connection.creation.rate"
                | "connections.max.reauth.ms"
        )
}

fn mechanisms(_: &str, value: &str) -> Result<Value> {
    Ok(Value::List(
        value
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect(),
    ))
}

fn any_string(_: &str, value: &str) -> Result<Value> {
    Ok(Value::Str(value.to_string()))
}

fn endpoints(name: &str, value: &str) -> Result<Value> {
    match super::security::parse_endpoints(value) {
        Ok(_) => Ok(Value::Str(value.trim().to_string())),
        Err(e) => bail!("{name}: {e}"),
    }
}

fn protocol_map(name: &str, value: &str) -> Result<Value> {
    match super::security::parse_protocol_map(value) {
        Ok(_) => Ok(Value::Str(value.trim().to_string())),
        Err(e) => bail!("{name}: {e}"),
    }
}

fn tls_protocols(name: &str, value: &str) -> Result<Value> {
    let list: Vec<String> = value
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    for p in &list {
        if p != "TLSv1.2" && p != "TLSv1.3" {
            bail!("{name}: {p} is not supported (TLSv1.2 and TLSv1.3 are)");
        }
    }
    if list.is_empty() {
        bail!("{name}: at least one protocol is needed");
    }
    Ok(Value::List(list))
}

/// max.connections.per.ip.overrides: "host:count,..." (Kafka's parseCsvMap, counts ints).
fn per_ip_overrides(name: &str, value: &str) -> Result<Value> {
    if let Err(e) = crate::server::limits::parse_overrides(value) {
        bail!("{name}: {e}");
    }
    Ok(Value::Str(value.trim().to_string()))
}

fn principal_rules(name: &str, value: &str) -> Result<Value> {
    match crate::security::ssl_principal::Rules::parse(value) {
        Ok(_) => Ok(Value::Str(value.trim().to_string())),
        Err(e) => bail!("{name}: {e}"),
    }
}

pub fn broker(name: &str) -> Option<&'static Setting> {
    BROKER.iter().find(|s| s.name == name)
}

pub fn topic(name: &str) -> Option<&'static Setting> {
    TOPIC.iter().find(|s| s.name == name)
}

/// The broker setting that supplies a topic config's default (retention.ms ->
/// log.retention.ms; the finest unit where there are several).
pub fn broker_synonym(topic_config: &str) -> Option<&'static Setting> {
    BROKER
        .iter()
        .find(|s| matches!(s.target, Target::TopicDefault(t) if t == topic_config))
}

/// The broker settings that supply topic config `topic`, finest unit first (log.retention.ms,
/// .minutes, .hours), with the defaults Kafka lists for them.
pub fn chain(topic: &str) -> Vec<(&'static str, Option<&'static str>)> {
    let unit = |s: &Setting| match s.target {
        Target::TopicDefaultIn { ms_per_unit, .. } => ms_per_unit,
        _ => 1,
    };
    let mut settings: Vec<&'static Setting> = BROKER
        .iter()
        .filter(|s| s.topic_config() == Some(topic))
        .collect();
    settings.sort_by_key(|s| unit(s));
    settings
        .into_iter()
        .map(|s| {
            (
                s.name,
                s.effective_default().filter(|_| s.has_kafka_default()),
            )
        })
        .collect()
}

/// A log cleaner setting (`BrokerConfig::cleaner`): applied by restarting the cleaner.
pub fn cleaner_setting(s: &Setting) -> bool {
    s.name.starts_with("log.cleaner.") && matches!(s.target, Target::Broker(_))
}

/// A connection limit (`BrokerConfig::connection_limits`): applied to the next connections.
pub fn connection_limit_setting(s: &Setting) -> bool {
    s.name.starts_with("max.connection") && matches!(s.target, Target::Broker(_))
}

/// A setting's default, parsed (for filling the typed structs).
pub(super) fn parsed_default(s: &Setting) -> Option<Value> {
    s.effective_default().and_then(|d| s.parse(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// (name, default) rows of the README table under `heading`.
    fn readme_table(readme: &str, heading: &str) -> BTreeMap<String, String> {
        let lines = readme
            .lines()
            .skip_while(|l| !l.starts_with(heading))
            .skip(1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'));
        lines
            .skip(2) // header and separator
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_string(), cells[2].to_string())
            })
            .collect()
    }

    fn expected(settings: &[Setting]) -> BTreeMap<String, String> {
        settings
            .iter()
            .map(|s| {
                let d = s.effective_default().unwrap_or_default();
                (s.name.to_string(), d.to_string())
            })
            .collect()
    }

    /// The README's settings tables name every setting with the registry's default.
    #[test]
    fn readme_tables_match_the_registry() {
        let readme = include_str!("../../README.md");
        for (heading, settings) in [
            ("### Broker settings", BROKER),
            ("### Topic configs", TOPIC),
        ] {
            let table = readme_table(readme, heading);
            let want = expected(settings);
            if table != want {
                // Rows to paste, with Kafka's documentation as a starting point for the notes.
                let rows: Vec<String> = settings
                    .iter()
                    .map(|s| {
                        let d = s.effective_default().unwrap_or_default();
                        format!("| `{}` | {d} | {} |", s.name, s.doc)
                    })
                    .collect();
                let missing: Vec<_> = want.keys().filter(|k| !table.contains_key(*k)).collect();
                let unknown: Vec<_> = table.keys().filter(|k| !want.contains_key(*k)).collect();
                let wrong: Vec<_> = want
                    .iter()
                    .filter(|(k, v)| table.get(*k).is_some_and(|t| t != *v))
                    .collect();
                panic!(
                    "README '{heading}' disagrees with the registry: missing {missing:?}, \
                     unknown {unknown:?}, wrong default (want) {wrong:?}\nexpected rows:\n{}",
                    rows.join("\n")
                );
            }
        }
    }

    #[test]
    fn every_setting_is_declared_consistently() {
        let mut names = std::collections::BTreeSet::new();
        for s in BROKER.iter().chain(TOPIC) {
            assert!(!s.doc.is_empty(), "{} has no documentation", s.name);
            if let Some(d) = s.effective_default() {
                s.parse(d)
                    .unwrap_or_else(|e| panic!("{}: default {d} is invalid: {e}", s.name));
            }
            if let Valid::Check { allowed, .. } | Valid::OneOf(allowed) = s.valid {
                // A list takes all of them together (a rebalance protocol list needs classic).
                let values = match s.ty {
                    Type::List => vec![allowed.join(",")],
                    _ => allowed.iter().map(|v| v.to_string()).collect(),
                };
                for v in values {
                    assert!(s.parse(&v).is_ok(), "{}: allowed {v} is refused", s.name);
                }
            }
        }
        for s in BROKER {
            assert!(names.insert(s.name), "{} declared twice", s.name);
            // Dynamic: the topic defaults, which every partition re-resolves when they change,
            // the cleaner's settings (a change restarts the cleaner, as in Kafka) and the
            // connection limits (the next connections see them), and only where Kafka says so too.
            let kafka = crate::config::kafka_broker::KAFKA_BROKER
                .iter()
                .find(|k| k.name == s.name);
            assert_eq!(
                !s.read_only,
                (matches!(s.target, Target::TopicDefault(_))
                    || cleaner_setting(s)
                    || connection_limit_setting(s))
                    && kafka.is_none_or(|k| k.dynamic),
                "{}: dynamic update mode",
                s.name
            );
            assert!(!matches!(s.target, Target::Log(_)), "{}", s.name);
            if let Some(t) = s.topic_config() {
                assert!(topic(t).is_some(), "{} names unknown {t}", s.name);
            }
        }
        names.clear();
        for s in TOPIC {
            assert!(names.insert(s.name), "{} declared twice", s.name);
            assert!(
                !s.read_only && matches!(s.target, Target::Log(_)),
                "{}",
                s.name
            );
            assert!(s.effective_default().is_some(), "{}", s.name);
        }
    }
}
