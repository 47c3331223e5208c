//! SASL/SCRAM: users seeded with `sluice format --add-scram` before start, librdkafka and kcat
//! over SASL_SSL with SCRAM-SHA-512 and SCRAM-SHA-256, credentials managed with
//! AlterUserScramCredentials / DescribeUserScramCredentials (Kafka's validation and error
//! codes) and durable across kill -9, failed and malformed exchanges on the wire, and the
//! data-dir lock that keeps `sluice format` off a running broker's directory.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::pki::Pki;
use common::{wire, Broker};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use sluice::security::sasl_scram::{salted_password, ScramMechanism};

const SASL_AUTHENTICATION_FAILED: i16 = 58;
const RESOURCE_NOT_FOUND: i16 = 91;
const DUPLICATE_RESOURCE: i16 = 92;
const UNACCEPTABLE_CREDENTIAL: i16 = 93;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

/// `sluice format` on `data_dir` with these --add-scram values: (exit success, output).
fn format(data_dir: &Path, add_scram: &[&str]) -> (bool, String) {
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
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// --set args for a SCRAM listener `name` on `port`, TLS with the PKI's key store for SASL_SSL.
fn scram_args(name: &str, port: u16, pki: Option<&Pki>) -> Vec<String> {
    let mut v = vec![
        format!("listeners={name}://127.0.0.1:{port}"),
        "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256".to_string(),
        format!(
            "listener.name.{}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
            name.to_lowercase()
        ),
    ];
    if let Some(pki) = pki {
        v.push("ssl.keystore.type=PEM".to_string());
        v.push(format!("ssl.keystore.location={}", pki.p("server.pem")));
    }
    let mut args: Vec<String> = v
        .into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect();
    args.extend(["--log-level".to_string(), "info".to_string()]);
    args
}

fn scram_client(
    bootstrap: &str,
    pki: Option<&Pki>,
    mechanism: &str,
    user: &str,
    password: &str,
) -> ClientConfig {
    let mut c = common::client_config(bootstrap);
    c.set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password);
    match pki {
        Some(pki) => c
            .set("security.protocol", "sasl_ssl")
            .set("ssl.ca.location", pki.p("ca.pem")),
        None => c.set("security.protocol", "sasl_plaintext"),
    };
    c
}

fn can_connect(config: &ClientConfig, timeout: Duration) -> Result<(), String> {
    use rdkafka::consumer::Consumer;
    let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
    consumer
        .fetch_metadata(None, timeout)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn start_in(data_dir: &Path, args: &[String]) -> Broker {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Broker::start_in(data_dir, &refs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_users_over_sasl_ssl_with_scram_sha_512_and_256() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (ok, out) = format(
        &data,
        &[
            "SCRAM-SHA-512=[name=alice,password=alice-secret]",
            "SCRAM-SHA-256=[name=alice,password=\"alice,256\",iterations=8192]",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("added SCRAM-SHA-512 credential for user alice"),
        "{out}"
    );
    let stored = std::fs::read_to_string(data.join("meta/cluster.json")).unwrap();
    assert!(
        !stored.contains("alice-secret"),
        "the password itself is never stored"
    );
    let (bad, out) = format(
        &data,
        &["SCRAM-SHA-256=[name=bob,password=x,iterations=10]"],
    );
    assert!(!bad && out.contains("iterations=10"), "{out}");

    let pki = Pki::new();
    let port = common::free_port();
    let broker = start_in(&data, &scram_args("SASL_SSL", port, Some(&pki)));
    let bootstrap = format!("localhost:{port}");
    let alice512 = scram_client(
        &bootstrap,
        Some(&pki),
        "SCRAM-SHA-512",
        "alice",
        "alice-secret",
    );
    let producer: rdkafka::producer::FutureProducer = alice512.create().unwrap();
    for i in 0..3 {
        producer
            .send(
                FutureRecord::to("scram-topic")
                    .key("k")
                    .payload(&format!("v{i}")),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce over SASL_SSL SCRAM-SHA-512: {e}"));
    }
    let mut consumer_config = scram_client(
        &bootstrap,
        Some(&pki),
        "SCRAM-SHA-256",
        "alice",
        "alice,256",
    );
    let consumer: BaseConsumer = consumer_config
        .set("group.id", "scram-readers")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("scram-topic", 0, rdkafka::Offset::Beginning)
        .unwrap();
    rdkafka::consumer::Consumer::assign(&consumer, &tpl).unwrap();
    let mut values = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while values.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("consume over SASL_SSL SCRAM-SHA-256");
            values
                .push(String::from_utf8_lossy(rdkafka::Message::payload(&m).unwrap()).to_string());
        }
    }
    assert_eq!(values, ["v0", "v1", "v2"]);

    let wrong = scram_client(&bootstrap, Some(&pki), "SCRAM-SHA-512", "alice", "guess");
    assert!(can_connect(&wrong, Duration::from_secs(5)).is_err());
    let nobody = scram_client(&bootstrap, Some(&pki), "SCRAM-SHA-512", "mallory", "x");
    assert!(can_connect(&nobody, Duration::from_secs(5)).is_err());
    let log = std::fs::read_to_string(broker.log_path()).unwrap();
    assert!(
        log.contains("mechanism=\"SCRAM-SHA-512\"") || log.contains("mechanism=SCRAM-SHA-512"),
        "{log}"
    );
    assert!(log.contains("principal=User:alice"));
    assert!(log.contains("Invalid client credentials"));
    assert!(log.contains("Invalid user credentials"));

    // A running broker holds the data dir: format refuses it.
    let (ok, out) = format(&data, &["SCRAM-SHA-256=[name=bob,password=x]"]);
    assert!(!ok && out.contains("Failed to acquire lock"), "{out}");

    kcat_over_scram(&bootstrap, &pki);
}

/// kcat (librdkafka 2.0.2, the old-client row) produces and consumes with SCRAM-SHA-512.
fn kcat_over_scram(bootstrap: &str, pki: &Pki) {
    let Some(kcat) = common::kcat_path() else {
        if common::skip_allowed("kcat_over_scram", "kcat is not installed") {
            return;
        }
        panic!("kcat is not installed (apt-get install kcat)");
    };
    let conn: Vec<String> = [
        "-b",
        bootstrap,
        "-X",
        "security.protocol=sasl_ssl",
        "-X",
        "sasl.mechanisms=SCRAM-SHA-512",
        "-X",
        "sasl.username=alice",
        "-X",
        "sasl.password=alice-secret",
        "-X",
        &format!("ssl.ca.location={}", pki.p("ca.pem")),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    common::kcat_run(&kcat, &conn, &["-P", "-t", "kcat-scram"], b"one\ntwo\n");
    let out = common::kcat_run(
        &kcat,
        &conn,
        &["-C", "-t", "kcat-scram", "-o", "beginning", "-e", "-q"],
        b"",
    );
    assert_eq!(out, "one\ntwo\n");
}

fn upsert(name: &str, mechanism: i8, password: &str, iterations: i32) -> ScramCredentialUpsertion {
    let salt = format!("salt-of-{name}").into_bytes();
    let salted = ScramMechanism::from_code(mechanism)
        .map(|m| salted_password(m, password, &salt, iterations.max(1)))
        .unwrap_or_else(|| vec![0; 32]);
    ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(bytes::Bytes::from(salt))
        .with_salted_password(bytes::Bytes::from(salted))
}

fn delete(name: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_mechanism(mechanism)
}

/// One AlterUserScramCredentials: (user, error code, message) sorted by user.
fn alter(
    addr: SocketAddr,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16, Option<String>)> {
    let mut s = wire::connect(addr, Duration::from_secs(10));
    let request = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    s.write_all(&wire::request(0, 1, &request)).unwrap();
    let (_, r) =
        wire::response::<AlterUserScramCredentialsRequest>(0, wire::read_frame(&mut s).unwrap());
    let mut out: Vec<_> = r
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    out.sort();
    out
}

/// One DescribeUserScramCredentials row: (user, error code, [(mechanism, iterations)]).
type Described = (String, i16, Vec<(i8, i32)>);

fn describe(addr: SocketAddr, users: Option<&[&str]>) -> Vec<Described> {
    let mut s = wire::connect(addr, Duration::from_secs(10));
    let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
        u.iter()
            .map(|n| UserName::default().with_name(StrBytes::from_string(n.to_string())))
            .collect()
    }));
    s.write_all(&wire::request(0, 1, &request)).unwrap();
    let (_, r) =
        wire::response::<DescribeUserScramCredentialsRequest>(0, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 0);
    r.results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn credentials_managed_through_the_admin_api_survive_kill_9() {
    let port = common::free_port();
    let mut broker = Broker::start(
        &scram_args("SASL_PLAINTEXT", port, None)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    // Admin requests go to the harness's PLAINTEXT listener.
    let admin = broker.addr();
    assert_eq!(describe(admin, None), vec![]);
    let none = |u: &str| (u.to_string(), 0i16, None::<String>);
    assert_eq!(
        alter(
            admin,
            vec![],
            vec![
                upsert("bob", 1, "bob-pw", 4096),
                upsert("carol", 2, "carol-pw", 16384)
            ]
        ),
        vec![none("bob"), none("carol")]
    );
    // Kafka's ScramControlManager validation, user by user.
    let refused = alter(
        admin,
        vec![delete("dave", 1), delete("", 1)],
        vec![
            upsert("few", 1, "x", 100),
            upsert("many", 2, "x", 16385),
            upsert("mech", 0, "x", 4096),
            upsert("twice", 1, "x", 4096),
            upsert("twice", 2, "x", 4096),
        ],
    );
    let msg = |m: &str| Some(m.to_string());
    assert_eq!(
        refused,
        vec![
            (
                String::new(),
                UNACCEPTABLE_CREDENTIAL,
                msg("Username must not be empty")
            ),
            (
                "dave".to_string(),
                RESOURCE_NOT_FOUND,
                msg("Attempt to delete a user credential that does not exist")
            ),
            (
                "few".to_string(),
                UNACCEPTABLE_CREDENTIAL,
                msg("Too few iterations")
            ),
            (
                "many".to_string(),
                UNACCEPTABLE_CREDENTIAL,
                msg("Too many iterations")
            ),
            (
                "mech".to_string(),
                UNSUPPORTED_SASL_MECHANISM,
                msg("Unknown SCRAM mechanism")
            ),
            (
                "twice".to_string(),
                DUPLICATE_RESOURCE,
                msg("A user credential cannot be altered twice in the same request")
            ),
        ]
    );
    assert_eq!(
        describe(admin, None),
        vec![
            ("bob".to_string(), 0, vec![(1, 4096)]),
            ("carol".to_string(), 0, vec![(2, 16384)])
        ]
    );
    let named = describe(admin, Some(&["carol", "nobody", "bob", "bob"]));
    assert_eq!(named.len(), 3, "{named:?}");
    assert_eq!(named[0], ("carol".to_string(), 0, vec![(2, 16384)]));
    assert_eq!(named[1], ("nobody".to_string(), RESOURCE_NOT_FOUND, vec![]));
    assert_eq!(named[2], ("bob".to_string(), DUPLICATE_RESOURCE, vec![]));

    let bootstrap = format!("127.0.0.1:{port}");
    let bob = scram_client(&bootstrap, None, "SCRAM-SHA-256", "bob", "bob-pw");
    can_connect(&bob, Duration::from_secs(15)).expect("bob authenticates with SCRAM-SHA-256");
    let bob512 = scram_client(&bootstrap, None, "SCRAM-SHA-512", "bob", "bob-pw");
    assert!(
        can_connect(&bob512, Duration::from_secs(5)).is_err(),
        "bob has no SCRAM-SHA-512 credential"
    );

    broker.kill9();
    broker.restart();
    let admin = broker.addr();
    can_connect(&bob, Duration::from_secs(15)).expect("bob's credential survived kill -9");
    let carol = scram_client(&bootstrap, None, "SCRAM-SHA-512", "carol", "carol-pw");
    can_connect(&carol, Duration::from_secs(15)).expect("carol's too");

    assert_eq!(
        alter(admin, vec![delete("bob", 1)], vec![]),
        vec![none("bob")]
    );
    assert!(
        can_connect(&bob, Duration::from_secs(5)).is_err(),
        "a deleted credential no longer authenticates"
    );
    assert_eq!(
        describe(admin, None),
        vec![("carol".to_string(), 0, vec![(2, 16384)])]
    );
}

#[test]
fn failed_and_malformed_scram_exchanges_on_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (ok, out) = format(&data, &["SCRAM-SHA-256=[name=eve,password=pw]"]);
    assert!(ok, "{out}");
    let port = common::free_port();
    let _broker = start_in(&data, &scram_args("SASL_PLAINTEXT", port, None));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let generic = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256";
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-256"));
    let exchange = |first: &[u8]| {
        let mut s = wire::connect(addr, Duration::from_secs(10));
        s.write_all(&wire::request(1, 1, &handshake)).unwrap();
        let (_, r) = wire::response::<SaslHandshakeRequest>(1, wire::read_frame(&mut s).unwrap());
        assert_eq!(r.error_code, 0);
        let auth =
            SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(first.to_vec()));
        s.write_all(&wire::request(2, 2, &auth)).unwrap();
        let (_, r) =
            wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
        (s, r)
    };
    // Garbage, channel binding, an unknown user, delegation tokens: the one generic answer.
    for first in [
        &b"\x00\xff garbage"[..],
        b"p=tls-server-end-point,,n=eve,r=abc",
        b"n,,n=mallory,r=abc",
        b"n,,n=eve,r=abc,tokenauth=true",
        b"n,,n=eve",
    ] {
        let (mut s, r) = exchange(first);
        assert_eq!(r.error_code, SASL_AUTHENTICATION_FAILED, "{first:?}");
        assert_eq!(r.error_message.as_deref(), Some(generic), "{first:?}");
        wire::expect_closed(&mut s, "failed SCRAM first message");
    }
    // A good first message, then a forged proof: the same answer, then closed.
    let (mut s, r) = exchange(b"n,,n=eve,r=clientnonce");
    assert_eq!(r.error_code, 0);
    let server_first = String::from_utf8(r.auth_bytes.to_vec()).unwrap();
    let nonce = server_first
        .split(',')
        .next()
        .unwrap()
        .strip_prefix("r=")
        .unwrap();
    assert!(nonce.starts_with("clientnonce") && nonce.len() > "clientnonce".len());
    let forged = format!("c=biws,r={nonce},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(forged));
    s.write_all(&wire::request(2, 3, &auth)).unwrap();
    let (_, r) = wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, SASL_AUTHENTICATION_FAILED);
    assert_eq!(r.error_message.as_deref(), Some(generic));
    wire::expect_closed(&mut s, "forged SCRAM proof");
}
