//! The CLI's errors and exit codes: 1 a Kafka error (or another failed operation), 2 a usage
//! error (clap's own code), 3 no broker reachable or a connection lost mid-request.

use kafka_protocol::error::ResponseError;
use std::fmt;

pub const EXIT_KAFKA: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_CONNECTION: i32 = 3;

#[derive(Debug)]
pub enum CliError {
    /// Bad arguments that clap could not catch (a malformed key=value, say).
    Usage(String),
    /// A broker answered with a Kafka error code.
    Kafka { code: i16, message: String },
    /// Cannot connect, or the connection broke or timed out.
    Connection(String),
    /// Anything else (a file that cannot be read, an undecodable response).
    Other(String),
    /// Some items of a multi-item command failed; each was reported on stderr already.
    Reported,
}

pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    pub fn kafka(code: i16, message: impl Into<String>) -> CliError {
        CliError::Kafka {
            code,
            message: message.into(),
        }
    }

    /// A Kafka error for a non-zero `code`, with the broker's message or `fallback`.
    pub fn check(
        code: i16,
        message: Option<&str>,
        fallback: impl FnOnce() -> String,
    ) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        let message = match message {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => fallback(),
        };
        Err(CliError::kafka(code, message))
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Connection(_) => EXIT_CONNECTION,
            CliError::Kafka { .. } | CliError::Other(_) | CliError::Reported => EXIT_KAFKA,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Connection(m) | CliError::Other(m) => f.write_str(m),
            CliError::Kafka { code, message } if message.is_empty() => {
                f.write_str(&error_name(*code))
            }
            CliError::Kafka { code, message } => write!(f, "{}: {message}", error_name(*code)),
            CliError::Reported => f.write_str("some operations failed"),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::Other(e.to_string())
    }
}

/// Kafka's name of an error code (`TOPIC_ALREADY_EXISTS`), as its Errors enum spells it.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(e) => screaming_snake(&format!("{e:?}")),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_error_names() {
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        let e = CliError::kafka(36, "Topic 'x' already exists.");
        assert_eq!(
            e.to_string(),
            "TOPIC_ALREADY_EXISTS: Topic 'x' already exists."
        );
        assert_eq!(e.exit_code(), 1);
    }
}
