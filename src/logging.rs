//! The log subscriber (--log-format text or json) and its levels, changeable at runtime
//! (Kafka's BROKER_LOGGER resource, KIP-412).
//!
//! Kafka names log4j loggers; sluice's loggers are its tracing targets. The names a client
//! sees and sets: `root` (the default level, for every target including libraries), `kafka`
//! (Kafka's own code: here every `sluice` target) and sluice's modules (`sluice::api`,
//! `sluice::log`, ...). Levels are Kafka's names (ALL, TRACE, DEBUG, INFO, WARN, ERROR, FATAL,
//! OFF). Like Kafka's, runtime levels are not persisted: a restart starts from --log-level.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// Installs a filter directive string ("info,sluice::api=debug").
type Reload = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static RELOAD: OnceLock<Reload> = OnceLock::new();
static LEVELS: Mutex<Option<Levels>> = Mutex::new(None);

/// The loggers DescribeConfigs lists (besides any set at runtime).
pub const LOGGERS: &[&str] = &[
    "root",
    "kafka",
    "sluice::admin_http",
    "sluice::api",
    "sluice::broker",
    "sluice::coordinator",
    "sluice::log",
    "sluice::metadata",
    "sluice::server",
    "sluice::tier",
];

#[derive(Clone, Debug)]
struct Levels {
    root: String,
    /// tracing target -> level (tracing names).
    targets: BTreeMap<String, String>,
}

impl Levels {
    /// Reads a --log-level value: bare levels set root, `target=level` a target.
    fn parse(directive: &str) -> Levels {
        let mut levels = Levels {
            root: "info".to_string(),
            targets: BTreeMap::new(),
        };
        for part in directive
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match part.split_once('=') {
                Some((t, l)) => {
                    levels.targets.insert(t.to_string(), l.to_ascii_lowercase());
                }
                None => levels.root = part.to_ascii_lowercase(),
            }
        }
        levels
    }

    fn directive(&self) -> String {
        let mut d = self.root.clone();
        for (t, l) in &self.targets {
            d.push_str(&format!(",{t}={l}"));
        }
        d
    }

    /// The level in effect for a tracing target: its own, its nearest parent's, or root's.
    fn effective(&self, target: &str) -> &str {
        let mut t = target;
        loop {
            if let Some(l) = self.targets.get(t) {
                return l;
            }
            match t.rsplit_once("::") {
                Some((parent, _)) => t = parent,
                None => return &self.root,
            }
        }
    }
}

/// The tracing target of a Kafka logger name; None: no such logger.
fn target(logger: &str) -> Option<&str> {
    match logger {
        "root" => Some("root"),
        "kafka" => Some("sluice"),
        l if l == "sluice" || l.starts_with("sluice::") => Some(l),
        _ => None,
    }
}

/// Kafka's level name as tracing's.
fn tracing_level(level: &str) -> Option<&'static str> {
    Some(match level {
        "ALL" | "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

/// How log lines are written (--log-format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: time, level, message and fields on one line.
    Text,
    /// For collectors: one JSON object a line (timestamp, level, fields.message, the fields,
    /// target).
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Sets up the global subscriber with a reloadable filter (the binary calls this once).
pub fn init(directive: &str, format: LogFormat) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(directive)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // The two formats are layers of different types: both are installed as Options, one None.
    let (text, json) = match format {
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(colour),
            ),
            None,
        ),
        LogFormat::Json => (None, Some(tracing_subscriber::fmt::layer().json())),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .init();
    *LEVELS.lock().unwrap_or_else(|p| p.into_inner()) = Some(Levels::parse(directive));
    let _ = RELOAD.set(Box::new(move |d| {
        let f = tracing_subscriber::EnvFilter::try_new(d).map_err(|e| e.to_string())?;
        handle.reload(f).map_err(|e| e.to_string())
    }));
}

fn levels() -> Levels {
    LEVELS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| Levels::parse("info"))
}

/// Every logger and its level in effect (Kafka's upper-case names).
pub fn describe() -> Vec<(String, String)> {
    let levels = levels();
    let mut names: Vec<String> = LOGGERS.iter().map(|s| s.to_string()).collect();
    for t in levels.targets.keys() {
        let name = if t == "sluice" { "kafka" } else { t.as_str() };
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
        .into_iter()
        .map(|n| {
            let level = match target(&n) {
                Some("root") | None => levels.root.clone(),
                Some(t) => levels.effective(t).to_string(),
            };
            (n, level.to_ascii_uppercase())
        })
        .collect()
}

/// One change: set a logger's level (Some) or remove it (None: back to its parent's).
pub struct Change {
    pub logger: String,
    pub level: Option<String>,
}

/// Why a change was refused, as Kafka answers: INVALID_CONFIG or INVALID_REQUEST.
#[derive(Debug, PartialEq)]
pub enum Refused {
    Config(String),
    Request(String),
}

/// Checks the changes as Kafka's RuntimeLoggerManager does and, unless `validate_only`,
/// applies them.
pub fn apply(changes: &[Change], validate_only: bool) -> Result<(), Refused> {
    let mut next = levels();
    for c in changes {
        let Some(t) = target(&c.logger) else {
            return Err(Refused::Config(format!(
                "Logger {} does not exist!",
                c.logger
            )));
        };
        match &c.level {
            Some(level) => {
                let Some(l) = tracing_level(level) else {
                    return Err(Refused::Config(format!(
                        "Cannot set the log level of {} to {level} as it is not a supported log level. Valid log levels are ALL, TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF",
                        c.logger
                    )));
                };
                if t == "root" {
                    next.root = l.to_string();
                } else {
                    next.targets.insert(t.to_string(), l.to_string());
                }
            }
            None if t == "root" => {
                return Err(Refused::Request(
                    "Removing the log level of the root logger is not allowed".into(),
                ))
            }
            None => {
                next.targets.remove(t);
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    if let Some(reload) = RELOAD.get() {
        reload(&next.directive()).map_err(Refused::Config)?;
    }
    *LEVELS.lock().unwrap_or_else(|p| p.into_inner()) = Some(next);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_resolve_by_target() {
        let l = Levels::parse("warn,sluice::api=debug");
        assert_eq!(l.effective("sluice::api::fetch"), "debug");
        assert_eq!(l.effective("sluice::log"), "warn");
        assert_eq!(l.directive(), "warn,sluice::api=debug");
        assert_eq!(target("kafka"), Some("sluice"));
        assert_eq!(target("kafka.server.KafkaApis"), None);
    }

    #[test]
    fn kafka_errors() {
        let set = |logger: &str, level: Option<&str>| {
            apply(
                &[Change {
                    logger: logger.into(),
                    level: level.map(str::to_string),
                }],
                true,
            )
        };
        assert!(set("kafka", Some("DEBUG")).is_ok());
        assert!(matches!(set("root", None), Err(Refused::Request(m)) if m.contains("root logger")));
        assert!(
            matches!(set("kafka", Some("LOUD")), Err(Refused::Config(m)) if m.contains("not a supported log level"))
        );
        assert_eq!(
            set("x.y", Some("INFO")),
            Err(Refused::Config("Logger x.y does not exist!".into()))
        );
    }
}
