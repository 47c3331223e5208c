//! The `sluice` command line over TLS and SASL: a SASL_SSL listener with SCRAM and the
//! authorizer on (super user admin, seeded with `sluice format --add-scram`); the admin creates
//! users (`sluice user`) and ACLs (`sluice acl`) with the CLI; an allowed user produces and
//! consumes with the CLI, a user without ACLs gets TOPIC_AUTHORIZATION_FAILED and exit code 1,
//! a wrong password SASL_AUTHENTICATION_FAILED; mTLS with a client certificate.
//!
//! `SLUICE_CLI_AGAINST=kafka cargo test --test cli_security` runs the `user`/`acl` scenario
//! (`cli_acl_and_user_commands_same_on_sluice_and_kafka`, SASL_PLAINTEXT SCRAM, same expected
//! output) against a fresh Apache Kafka 4.4 too; the TLS scenarios stay on sluice.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::pki::Pki;
use common::Broker;
use serde_json::Value;

struct Run {
    code: i32,
    out: String,
    err: String,
}

/// `sluice ARGS` with `env` (and nothing inherited of SLUICE_*), `stdin` on its input.
fn cli(env: &[(&str, String)], args: &[&str], stdin: &str) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SLUICE_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("wait for sluice");
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(run: Run, what: &str) -> String {
    assert_eq!(run.code, 0, "{what}: stdout {} stderr {}", run.out, run.err);
    run.out
}

fn format_users(data_dir: &Path, add_scram: &[&str]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("format")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--node-id")
        .arg("1");
    for spec in add_scram {
        cmd.arg("--add-scram").arg(spec);
    }
    let out = cmd.output().expect("run sluice format");
    assert!(out.status.success(), "{out:?}");
}

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const TOPIC: &str = "secure-topic";

#[test]
fn cli_over_sasl_ssl_scram_with_acls_and_users() {
    let pki = Pki::new();
    let dir = tempfile::Builder::new()
        .prefix("sluice-cli-sec-")
        .tempdir()
        .unwrap();
    let data_dir = dir.path().join("data");
    format_users(
        &data_dir,
        &["SCRAM-SHA-512=[name=admin,password=admin-secret]"],
    );
    let port = common::free_port();
    let settings = [
        format!("listeners=SASL_SSL://127.0.0.1:{port}"),
        "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256".to_string(),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", pki.p("server.pem")),
        format!("authorizer.class.name={STANDARD_AUTHORIZER}"),
        "super.users=User:admin".to_string(),
    ];
    let args: Vec<String> = settings
        .iter()
        .flat_map(|s| ["--set".to_string(), s.clone()])
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let _broker = Broker::start_in(&data_dir, &refs);

    let brokers = format!("localhost:{port}");
    let admin = [
        ("SLUICE_BROKERS", brokers.clone()),
        ("SLUICE_TLS_CA", pki.p("ca.pem")),
        ("SLUICE_SASL_MECHANISM", "SCRAM-SHA-512".to_string()),
        ("SLUICE_USER", "admin".to_string()),
        ("SLUICE_PASSWORD", "admin-secret".to_string()),
    ];
    ok(
        cli(&admin, &["topic", "create", TOPIC, "-p", "1"], ""),
        "create topic as admin",
    );

    // Users: alice (SCRAM-SHA-512), mallory (SCRAM-SHA-256).
    ok(
        cli(
            &admin,
            &[
                "user",
                "create",
                "alice",
                "--new-password",
                "alice-secret",
                "--mechanism",
                "SCRAM-SHA-512",
                "--iterations",
                "8192",
            ],
            "",
        ),
        "create alice",
    );
    ok(
        cli(
            &admin,
            &["user", "create", "mallory", "--new-password", "m-secret"],
            "",
        ),
        "create mallory",
    );
    let users: Value = serde_json::from_str(&ok(
        cli(&admin, &["user", "list", "--format", "json"], ""),
        "list",
    ))
    .unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "mallory"], "{users}");
    assert_eq!(users[1]["credentials"][0]["mechanism"], "SCRAM-SHA-512");
    assert_eq!(users[1]["credentials"][0]["iterations"], 8192);
    assert_eq!(users[2]["credentials"][0]["mechanism"], "SCRAM-SHA-256");
    let table = ok(cli(&admin, &["user", "list", "alice"], ""), "list alice");
    assert!(
        table.starts_with("NAME") && table.contains("alice  SCRAM-SHA-512  8192"),
        "{table}"
    );

    // ACLs for alice: write/read/describe the topic, read a group.
    ok(
        cli(
            &admin,
            &[
                "acl",
                "create",
                "--allow-principal",
                "User:alice",
                "--operation",
                "write",
                "--operation",
                "read",
                "--operation",
                "describe",
                "--topic",
                TOPIC,
            ],
            "",
        ),
        "acl create topic",
    );
    ok(
        cli(
            &admin,
            &[
                "acl",
                "create",
                "--allow-principal",
                "User:alice",
                "--operation",
                "read",
                "--group",
                "alice-",
                "--resource-pattern-type",
                "prefixed",
            ],
            "",
        ),
        "acl create group",
    );
    let acls: Value = serde_json::from_str(&ok(
        cli(&admin, &["acl", "list", "--format", "json"], ""),
        "acls",
    ))
    .unwrap();
    assert_eq!(acls.as_array().unwrap().len(), 4, "{acls}");
    let group_acl = acls
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["resource_type"] == "GROUP")
        .unwrap();
    assert_eq!(group_acl["pattern_type"], "PREFIXED");
    assert_eq!(group_acl["operation"], "READ");
    assert_eq!(group_acl["permission"], "ALLOW");
    assert_eq!(group_acl["principal"], "User:alice");
    let table = ok(
        cli(
            &admin,
            &["acl", "list", "--topic", TOPIC, "--operation", "write"],
            "",
        ),
        "acl list table",
    );
    assert!(table.starts_with("PRINCIPAL"), "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table.contains("User:alice") && table.contains("WRITE"),
        "{table}"
    );

    // alice with flags (after the subcommand): produce and consume.
    let ca = pki.p("ca.pem");
    let as_user = |user: &'static str, password: &'static str, mechanism: &'static str| {
        let ca = ca.clone();
        let brokers = brokers.clone();
        move |args: &[&str], stdin: &str| {
            let mut v: Vec<&str> = args.to_vec();
            v.extend([
                "-b",
                &brokers,
                "--tls-ca",
                &ca,
                "--sasl-mechanism",
                mechanism,
                "--user",
                user,
                "--password",
                password,
            ]);
            cli(&[], &v, stdin)
        }
    };
    let alice = as_user("alice", "alice-secret", "SCRAM-SHA-512");
    let out = ok(
        alice(&["produce", TOPIC, "-q"], "one\ntwo\n"),
        "alice produce",
    );
    assert_eq!(out, "");
    let out = ok(
        alice(&["consume", TOPIC, "-n", "2", "-f", "%o:%v\\n"], ""),
        "alice consume",
    );
    assert_eq!(out, "0:one\n1:two\n");

    // The super user produces idempotently.
    ok(
        cli(&admin, &["produce", TOPIC, "--idempotent", "-q"], "three\n"),
        "admin idempotent produce",
    );
    let out = ok(
        alice(
            &["consume", TOPIC, "-o", "2", "-n", "1", "-f", "%o:%v\\n"],
            "",
        ),
        "alice consume the idempotent record",
    );
    assert_eq!(out, "2:three\n");

    // mallory authenticates (SCRAM-SHA-256) but has no ACL.
    let mallory = as_user("mallory", "m-secret", "SCRAM-SHA-256");
    let denied = mallory(&["produce", TOPIC], "x\n");
    assert_eq!(denied.code, 1, "{} {}", denied.out, denied.err);
    assert!(
        denied.err.contains("TOPIC_AUTHORIZATION_FAILED"),
        "{}",
        denied.err
    );

    // A wrong password: SASL_AUTHENTICATION_FAILED, exit code 1.
    let wrong = as_user("alice", "guess", "SCRAM-SHA-512")(&["topic", "list"], "");
    assert_eq!(wrong.code, 1, "{} {}", wrong.out, wrong.err);
    assert!(
        wrong.err.contains("SASL_AUTHENTICATION_FAILED"),
        "{}",
        wrong.err
    );
    // A mechanism the listener does not serve.
    let plain = as_user("alice", "alice-secret", "PLAIN")(&["topic", "list"], "");
    assert_eq!(plain.code, 1, "{}", plain.err);
    assert!(
        plain.err.contains("UNSUPPORTED_SASL_MECHANISM") && plain.err.contains("SCRAM-SHA-512"),
        "{}",
        plain.err
    );
    // No TLS trust for the test CA: the handshake fails (a connection error, exit code 3).
    let untrusted = cli(
        &[],
        &[
            "topic",
            "list",
            "-b",
            &brokers,
            "--tls-enabled",
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--user",
            "admin",
            "--password",
            "admin-secret",
        ],
        "",
    );
    assert_eq!(untrusted.code, 3, "{}", untrusted.err);
    assert!(untrusted.err.contains("TLS handshake"), "{}", untrusted.err);
    // Options before the subcommand, from the command group.
    let out = ok(
        cli(
            &[],
            &[
                "topic",
                "-b",
                &brokers,
                "--tls-ca",
                &ca,
                "--sasl-mechanism",
                "scram-sha-512",
                "--user",
                "admin",
                "--password",
                "admin-secret",
                "list",
            ],
            "",
        ),
        "flags before the subcommand",
    );
    assert!(out.contains(TOPIC), "{out}");
    let half = cli(
        &[],
        &["topic", "list", "-b", &brokers, "--user", "admin"],
        "",
    );
    assert_eq!(half.code, 2, "{}", half.err);

    // Deleting alice's topic ACLs takes her access away.
    let deleted: Value = serde_json::from_str(&ok(
        cli(
            &admin,
            &[
                "acl",
                "delete",
                "--principal",
                "User:alice",
                "--topic",
                TOPIC,
                "--format",
                "json",
            ],
            "",
        ),
        "acl delete",
    ))
    .unwrap();
    assert_eq!(deleted.as_array().unwrap().len(), 3, "{deleted}");
    let denied = alice(&["produce", TOPIC], "x\n");
    assert_eq!(denied.code, 1, "{}", denied.err);
    assert!(
        denied.err.contains("TOPIC_AUTHORIZATION_FAILED"),
        "{}",
        denied.err
    );
    let left = ok(cli(&admin, &["acl", "list"], ""), "acl list");
    assert_eq!(left.lines().count(), 2, "{left}");

    // Deleting a user: its credentials are gone, it can no longer log in.
    ok(
        cli(&admin, &["user", "delete", "mallory"], ""),
        "user delete",
    );
    let names = ok(cli(&admin, &["user", "list"], ""), "user list");
    assert!(!names.contains("mallory"), "{names}");
    let gone = mallory(&["topic", "list"], "");
    assert!(
        gone.err.contains("SASL_AUTHENTICATION_FAILED"),
        "{}",
        gone.err
    );
    // Bad ACL arguments are usage errors.
    let bad = cli(
        &admin,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:x",
            "--operation",
            "fly",
            "--topic",
            "t",
        ],
        "",
    );
    assert_eq!(bad.code, 2, "{}", bad.err);
    let bad = cli(&admin, &["acl", "delete"], "");
    assert_eq!(bad.code, 2, "{}", bad.err);
}

#[test]
fn cli_over_mutual_tls() {
    let pki = Pki::new();
    let port = common::free_port();
    let settings = [
        format!("listeners=SSL://127.0.0.1:{port}"),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", pki.p("server.pem")),
        "ssl.client.auth=required".to_string(),
        "ssl.truststore.type=PEM".to_string(),
        format!("ssl.truststore.location={}", pki.p("ca.pem")),
    ];
    let args: Vec<String> = settings
        .iter()
        .flat_map(|s| ["--set".to_string(), s.clone()])
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let _broker = Broker::start(&refs);
    let env = [
        ("SLUICE_BROKERS", format!("127.0.0.1:{port}")),
        ("SLUICE_TLS_CA", pki.p("ca.pem")),
    ];
    let out = ok(
        cli(
            &env,
            &[
                "cluster",
                "info",
                "--tls-cert",
                &pki.p("client.crt"),
                "--tls-key",
                &pki.p("client.key"),
            ],
            "",
        ),
        "mTLS cluster info",
    );
    assert!(out.contains(&port.to_string()), "{out}");
    let mut with_env = env.to_vec();
    with_env.push(("SLUICE_TLS_CERT", pki.p("client.crt")));
    with_env.push(("SLUICE_TLS_KEY", pki.p("client.key")));
    ok(
        cli(&with_env, &["topic", "list"], ""),
        "mTLS from the environment",
    );
    let no_cert = cli(&env, &["topic", "list"], "");
    assert_ne!(no_cert.code, 0, "{}", no_cert.out);
    let missing = cli(
        &env,
        &["topic", "list", "--tls-cert", &pki.p("client.crt")],
        "",
    );
    assert_eq!(missing.code, 2, "{}", missing.err);
}

/// A SASL_PLAINTEXT SCRAM listener with the authorizer on and the super user admin: a sluice
/// broker, or, with `SLUICE_CLI_AGAINST=kafka`, a fresh Apache Kafka 4.4 (refkafka.py).
enum ScramTarget {
    /// Held for their Drop: the broker stops, the data dir goes.
    Sluice {
        _broker: Broker,
        _dir: tempfile::TempDir,
    },
    Kafka(tempfile::TempDir),
}

impl ScramTarget {
    /// (target, the SASL_PLAINTEXT bootstrap address).
    fn start() -> (ScramTarget, String) {
        let port = common::free_port();
        let listener = format!("SASL_PLAINTEXT://127.0.0.1:{port}");
        let admin = "SCRAM-SHA-512=[name=admin,password=admin-secret]";
        let jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        let dir = tempfile::Builder::new()
            .prefix("sluice-cli-sec-")
            .tempdir()
            .unwrap();
        if std::env::var("SLUICE_CLI_AGAINST").as_deref() == Ok("kafka") {
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/compat-tests/kafka/refkafka.py"
            );
            let out = Command::new(script)
                .arg("start")
                .arg(dir.path())
                .args(["--listener", &listener, "--add-scram", admin])
                .args([
                    "--set",
                    "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256",
                ])
                .args([
                    "--set",
                    &format!("listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={jaas}"),
                ])
                .args([
                    "--set",
                    &format!("listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={jaas}"),
                ])
                .args([
                    "--set",
                    &format!("authorizer.class.name={STANDARD_AUTHORIZER}"),
                ])
                // The controller and inter-broker listener is PLAINTEXT: User:ANONYMOUS.
                .args(["--set", "super.users=User:admin;User:ANONYMOUS"])
                .output()
                .expect("run refkafka.py");
            assert!(
                out.status.success(),
                "refkafka.py start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return (ScramTarget::Kafka(dir), format!("127.0.0.1:{port}"));
        }
        let data_dir = dir.path().join("data");
        format_users(&data_dir, &[admin]);
        let settings = [
            format!("listeners={listener}"),
            "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256".to_string(),
            format!("authorizer.class.name={STANDARD_AUTHORIZER}"),
            "super.users=User:admin".to_string(),
        ];
        let args: Vec<String> = settings
            .iter()
            .flat_map(|s| ["--set".to_string(), s.clone()])
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let broker = Broker::start_in(&data_dir, &refs);
        (
            ScramTarget::Sluice {
                _broker: broker,
                _dir: dir,
            },
            format!("127.0.0.1:{port}"),
        )
    }
}

impl Drop for ScramTarget {
    fn drop(&mut self) {
        if let ScramTarget::Kafka(dir) = self {
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/compat-tests/kafka/refkafka.py"
            );
            let _ = Command::new(script).arg("stop").arg(dir.path()).status();
        }
    }
}

/// Retries `f` while it fails (Kafka applies credentials and ACLs asynchronously, through its
/// metadata log); the last run.
fn eventually(mut f: impl FnMut() -> Run, done: impl Fn(&Run) -> bool) -> Run {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let run = f();
        if done(&run) || std::time::Instant::now() > deadline {
            return run;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// The same `sluice user` and `sluice acl` commands, with the same results, against sluice and
/// (SLUICE_CLI_AGAINST=kafka) Apache Kafka.
#[test]
fn cli_acl_and_user_commands_same_on_sluice_and_kafka() {
    let (_target, brokers) = ScramTarget::start();
    let env_for = |user: &str, password: &str, mechanism: &str| {
        vec![
            ("SLUICE_BROKERS", brokers.clone()),
            ("SLUICE_SASL_MECHANISM", mechanism.to_string()),
            ("SLUICE_USER", user.to_string()),
            ("SLUICE_PASSWORD", password.to_string()),
        ]
    };
    let admin = env_for("admin", "admin-secret", "SCRAM-SHA-512");
    let alice = env_for("alice", "alice-secret", "SCRAM-SHA-512");
    let mallory = env_for("mallory", "m-secret", "SCRAM-SHA-256");
    let topic = "kafka-and-sluice";
    ok(
        cli(
            &admin,
            &["topic", "create", topic, "-p", "1", "-r", "1"],
            "",
        ),
        "topic create",
    );
    ok(
        cli(
            &admin,
            &[
                "user",
                "create",
                "alice",
                "--new-password",
                "alice-secret",
                "--mechanism",
                "SCRAM-SHA-512",
            ],
            "",
        ),
        "user create alice",
    );
    ok(
        cli(
            &admin,
            &["user", "create", "mallory", "--new-password", "m-secret"],
            "",
        ),
        "user create mallory",
    );
    let users = eventually(
        || cli(&admin, &["user", "list"], ""),
        |r| r.out.lines().count() == 4,
    );
    assert_eq!(
        ok(users, "user list"),
        "NAME     MECHANISM      ITERATIONS\n\
         admin    SCRAM-SHA-512  4096\n\
         alice    SCRAM-SHA-512  4096\n\
         mallory  SCRAM-SHA-256  4096\n"
    );
    ok(
        cli(
            &admin,
            &[
                "acl",
                "create",
                "--allow-principal",
                "User:alice",
                "--operation",
                "write",
                "--operation",
                "read",
                "--operation",
                "describe",
                "--topic",
                topic,
            ],
            "",
        ),
        "acl create",
    );
    let listed = eventually(
        || cli(&admin, &["acl", "list", "--format", "json"], ""),
        |r| r.out.matches("User:alice").count() == 3,
    );
    let acls: Value = serde_json::from_str(&ok(listed, "acl list")).unwrap();
    let mut ops: Vec<&str> = acls
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["operation"].as_str().unwrap())
        .collect();
    ops.sort_unstable();
    assert_eq!(ops, ["DESCRIBE", "READ", "WRITE"], "{acls}");
    assert!(acls
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["pattern_type"] == "LITERAL"
            && a["host"] == "*"
            && a["permission"] == "ALLOW"
            && a["resource_type"] == "TOPIC"));

    let produced = eventually(
        || cli(&alice, &["produce", topic, "-q"], "hello\n"),
        |r| r.code == 0,
    );
    ok(produced, "alice produces");
    let out = ok(
        cli(&alice, &["consume", topic, "-n", "1", "-f", "%o:%v\\n"], ""),
        "alice consumes",
    );
    assert_eq!(out, "0:hello\n");
    let denied = cli(&mallory, &["produce", topic], "x\n");
    assert_eq!(denied.code, 1, "{} {}", denied.out, denied.err);
    assert!(
        denied.err.contains("TOPIC_AUTHORIZATION_FAILED"),
        "{}",
        denied.err
    );
    let wrong = cli(
        &env_for("alice", "guess", "SCRAM-SHA-512"),
        &["topic", "list"],
        "",
    );
    assert_eq!(wrong.code, 1, "{}", wrong.err);
    assert!(
        wrong.err.contains("SASL_AUTHENTICATION_FAILED"),
        "{}",
        wrong.err
    );

    let deleted = ok(
        cli(
            &admin,
            &[
                "acl",
                "delete",
                "--principal",
                "User:alice",
                "--topic",
                topic,
            ],
            "",
        ),
        "acl delete",
    );
    assert_eq!(deleted.lines().count(), 4, "{deleted}");
    let gone = eventually(
        || cli(&admin, &["acl", "list"], ""),
        |r| r.out.lines().count() == 1,
    );
    assert_eq!(
        ok(gone, "acl list after delete"),
        "PRINCIPAL  HOST  OPERATION  PERMISSION  RESOURCE-TYPE  RESOURCE-NAME  PATTERN-TYPE\n"
    );
    ok(
        cli(&admin, &["user", "delete", "mallory"], ""),
        "user delete",
    );
    let users = eventually(
        || cli(&admin, &["user", "list", "--format", "json"], ""),
        |r| !r.out.contains("mallory"),
    );
    let users: Value = serde_json::from_str(&ok(users, "user list json")).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");
}
