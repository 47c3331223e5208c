//! `sluice topic|produce|consume|group|cluster|acl|user`: an rpk-style command line that talks the
//! Kafka protocol to any broker (sluice or Apache Kafka). It is a client: nothing here uses
//! the broker's own modules, except the SCRAM arithmetic (security::sasl_scram, both sides of
//! the exchange) and Kafka's ACL code tables (security::authorizer).
//!
//! Exit codes: 0 success, 1 a Kafka error or another failed operation, 2 a usage error,
//! 3 no broker reachable (or the connection was lost).

pub mod acl;
pub mod client;
pub mod cluster;
pub mod consume;
pub mod error;
pub mod group;
pub mod output;
pub mod produce;
pub mod records;
pub mod topic;
pub mod user;

use clap::{Args, Subcommand};
pub use error::{CliError, Result};
pub use output::Format;

/// The brokers to bootstrap from and the output format (every command's options).
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Brokers to bootstrap from, comma-separated HOST:PORT.
    #[arg(
        short = 'b',
        long,
        env = "SLUICE_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub brokers: String,
    #[command(flatten)]
    pub security: client::SecurityArgs,
}

/// `--format text|json` of the admin commands.
#[derive(Args, Debug, Clone)]
pub struct Output {
    /// Output format: aligned text tables or one JSON document.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, list, describe, configure, grow, trim and delete topics.
    Topic {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        output: Output,
        #[command(subcommand)]
        command: topic::TopicCommand,
    },
    /// Produce records from stdin (one per line) or a file.
    Produce(produce::ProduceArgs),
    /// Consume records and print them with a format string or as JSON lines.
    Consume(consume::ConsumeArgs),
    /// List, describe (offsets, lag, members), seek and delete consumer groups.
    Group {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        output: Output,
        #[command(subcommand)]
        command: group::GroupCommand,
    },
    /// Brokers, controller, cluster id and API versions; health; broker configs.
    Cluster {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        output: Output,
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Create, list and delete ACLs (CreateAcls, DescribeAcls, DeleteAcls).
    Acl {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        output: Output,
        #[command(subcommand)]
        command: acl::AclCommand,
    },
    /// Create, list and delete SCRAM users (AlterUserScramCredentials,
    /// DescribeUserScramCredentials).
    User {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        output: Output,
        #[command(subcommand)]
        command: user::UserCommand,
    },
}

/// Runs a CLI command; returns the process exit code (errors are printed on stderr).
pub fn run(command: Command) -> i32 {
    // `sluice consume ... | head` ends quietly, as Unix tools do, instead of panicking in print!.
    // SAFETY: setting a signal disposition to the default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let result = match command {
        Command::Topic {
            common,
            output,
            command,
        } => topic::run(&common, output.format, command),
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::Group {
            common,
            output,
            command,
        } => group::run(&common, output.format, command),
        Command::Cluster {
            common,
            output,
            command,
        } => cluster::run(&common, output.format, command),
        Command::Acl {
            common,
            output,
            command,
        } => acl::run(&common, output.format, command),
        Command::User {
            common,
            output,
            command,
        } => user::run(&common, output.format, command),
    };
    match result {
        Ok(()) => 0,
        Err(CliError::Reported) => error::EXIT_KAFKA,
        Err(e) => {
            eprintln!("sluice: {e}");
            e.exit_code()
        }
    }
}

/// Reports one failed item of a multi-item command on stderr.
pub fn report(what: &str, e: &CliError) {
    eprintln!("sluice: {what}: {e}");
}

/// `key=value` (for -c, -H, --set).
pub fn key_value(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(CliError::Usage(format!("expected KEY=VALUE, got '{s}'"))),
    }
}

/// `0,2,5-7` as partition numbers.
pub fn partition_list(specs: &[String]) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    for spec in specs.iter().flat_map(|s| s.split(',')) {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        let bad = || CliError::Usage(format!("bad partition '{spec}' (want N, N-M or a list)"));
        match spec.split_once('-') {
            Some((a, b)) => {
                let a: i32 = a.parse().map_err(|_| bad())?;
                let b: i32 = b.parse().map_err(|_| bad())?;
                out.extend(a..=b);
            }
            None => out.push(spec.parse().map_err(|_| bad())?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_lists_and_key_values() {
        let specs = vec!["0,2".to_string(), "4-6".into(), "2".into()];
        assert_eq!(partition_list(&specs).unwrap(), [0, 2, 4, 5, 6]);
        assert!(partition_list(&["x".to_string()]).is_err());
        assert_eq!(key_value("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(key_value("=v").is_err());
        assert!(key_value("novalue").is_err());
    }
}
