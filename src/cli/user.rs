//! `sluice user create|list|delete`: SCRAM users by AlterUserScramCredentials and
//! DescribeUserScramCredentials. The password never leaves this process: it sends the salt and
//! the salted password (Hi), as Kafka's Admin client does.

use super::client::{str, Client};
use super::output::{print_json, Format, Table};
use super::{report, CliError, Common, Result};
use crate::security::sasl_scram::{
    random_bytes, salted_password, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS,
};
use bytes::Bytes;
use clap::Subcommand;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use serde::Serialize;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a SCRAM user, or replace its credential for the mechanism.
    Create {
        name: String,
        /// The user's password.
        #[arg(long)]
        new_password: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-256", value_parser = parse_mechanism)]
        mechanism: ScramMechanism,
        /// PBKDF2 iterations (4096 to 16384).
        #[arg(long, default_value_t = MIN_ITERATIONS)]
        iterations: i32,
    },
    /// List SCRAM users and their mechanisms (all users, or the ones named).
    List { names: Vec<String> },
    /// Delete a user's SCRAM credentials (every mechanism it has, or the one given).
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: Option<ScramMechanism>,
    },
}

fn parse_mechanism(s: &str) -> std::result::Result<ScramMechanism, String> {
    ScramMechanism::from_name(&s.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown SCRAM mechanism '{s}' (SCRAM-SHA-256, SCRAM-SHA-512)"))
}

#[derive(Serialize)]
struct Credential {
    mechanism: &'static str,
    iterations: i32,
}

#[derive(Serialize)]
struct User {
    name: String,
    credentials: Vec<Credential>,
}

pub fn run(common: &Common, format: Format, command: UserCommand) -> Result<()> {
    let mut client = Client::new(common)?;
    match command {
        UserCommand::Create {
            name,
            new_password,
            mechanism,
            iterations,
        } => {
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                return Err(CliError::Usage(format!(
                    "--iterations {iterations}: between {MIN_ITERATIONS} and {MAX_ITERATIONS}"
                )));
            }
            let salt = random_bytes(32);
            let salted = salted_password(mechanism, &new_password, &salt, iterations);
            let upsertion = ScramCredentialUpsertion::default()
                .with_name(str(&name))
                .with_mechanism(mechanism.code())
                .with_iterations(iterations)
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted));
            alter(
                &mut client,
                AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]),
            )?;
            if format == Format::Json {
                print_json(
                    &serde_json::json!({"user": name, "mechanism": mechanism.name(), "created": true}),
                );
            } else {
                println!("created {} user '{name}'", mechanism.name());
            }
            Ok(())
        }
        UserCommand::List { names } => {
            let users = describe(&mut client, &names)?;
            if format == Format::Json {
                print_json(&users);
            } else {
                let mut t = Table::new(&["NAME", "MECHANISM", "ITERATIONS"]);
                for u in &users {
                    for c in &u.credentials {
                        t.row(vec![
                            u.name.clone(),
                            c.mechanism.into(),
                            c.iterations.to_string(),
                        ]);
                    }
                }
                t.print();
            }
            Ok(())
        }
        UserCommand::Delete { names, mechanism } => {
            let mut deletions = Vec::new();
            match mechanism {
                Some(m) => deletions.extend(names.iter().map(|n| (n.clone(), m))),
                None => {
                    for user in describe(&mut client, &names)? {
                        for c in &user.credentials {
                            if let Some(m) = ScramMechanism::from_name(c.mechanism) {
                                deletions.push((user.name.clone(), m));
                            }
                        }
                    }
                }
            }
            let request = AlterUserScramCredentialsRequest::default().with_deletions(
                deletions
                    .iter()
                    .map(|(n, m)| {
                        ScramCredentialDeletion::default()
                            .with_name(str(n))
                            .with_mechanism(m.code())
                    })
                    .collect(),
            );
            alter(&mut client, request)?;
            if format == Format::Json {
                let deleted: Vec<_> = deletions
                    .iter()
                    .map(|(n, m)| serde_json::json!({"user": n, "mechanism": m.name()}))
                    .collect();
                print_json(&deleted);
            } else {
                for (n, m) in &deletions {
                    println!("deleted {} credential of user '{n}'", m.name());
                }
            }
            Ok(())
        }
    }
}

fn alter(client: &mut Client, request: AlterUserScramCredentialsRequest) -> Result<()> {
    let conn = client.controller()?;
    let (_, response) = conn.send(&request, 0)?;
    let mut failed = false;
    for r in response.results {
        if let Err(e) = CliError::check(r.error_code, r.error_message.as_deref(), || {
            format!("user '{}'", r.user.as_str())
        }) {
            report(&format!("user '{}'", r.user.as_str()), &e);
            failed = true;
        }
    }
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

/// The named users (all when `names` is empty), sorted by name; an unknown name is an error.
fn describe(client: &mut Client, names: &[String]) -> Result<Vec<User>> {
    let users = if names.is_empty() {
        None
    } else {
        Some(
            names
                .iter()
                .map(|n| UserName::default().with_name(str(n)))
                .collect(),
        )
    };
    let conn = client.any()?;
    let (_, response) = conn.send(
        &DescribeUserScramCredentialsRequest::default().with_users(users),
        0,
    )?;
    CliError::check(
        response.error_code,
        response.error_message.as_deref(),
        || "describing SCRAM users".into(),
    )?;
    let mut out = Vec::new();
    for r in response.results {
        CliError::check(r.error_code, r.error_message.as_deref(), || {
            format!("user '{}'", r.user.as_str())
        })?;
        out.push(User {
            name: r.user.to_string(),
            credentials: r
                .credential_infos
                .iter()
                .map(|c| Credential {
                    mechanism: ScramMechanism::from_code(c.mechanism)
                        .map_or("UNKNOWN", |m| m.name()),
                    iterations: c.iterations,
                })
                .collect(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
