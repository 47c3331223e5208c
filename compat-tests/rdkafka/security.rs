//! Listeners and TLS: librdkafka (and kcat) over SSL listeners, mTLS with
//! ssl.client.auth=required and ssl.principal.mapping.rules, a PLAINTEXT and an SSL listener
//! each advertising its own endpoint, garbage and abandoned handshakes on the SSL port, and a
//! server certificate replaced on disk while the broker runs. The CA and certificates are
//! generated with rcgen into a temp dir per test.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::pki::{Ca, Pki};
use common::Broker;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;

/// Broker args for an SSL listener on `port` with the PKI's server key store.
fn ssl_args(pki: &Pki, port: u16, extra: &[String]) -> Vec<String> {
    let mut v = vec![
        format!("listeners=SSL://127.0.0.1:{port}"),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", pki.p("server.pem")),
    ];
    v.extend(extra.iter().cloned());
    v.into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
}

/// A broker with these args, logging at info: the tests read its connection lines.
fn start(args: &[String]) -> Broker {
    let mut refs: Vec<&str> = args.iter().map(String::as_str).collect();
    refs.extend(["--log-level", "info"]);
    Broker::start(&refs)
}

fn ssl_client(bootstrap: &str, ca: &Path, client_cert: Option<(&Path, &Path)>) -> ClientConfig {
    let mut c = common::client_config(bootstrap);
    c.set("security.protocol", "ssl")
        .set("ssl.ca.location", ca.display().to_string())
        .set("ssl.endpoint.identification.algorithm", "https");
    if let Some((cert, key)) = client_cert {
        c.set("ssl.certificate.location", cert.display().to_string())
            .set("ssl.key.location", key.display().to_string());
    }
    c
}

/// (host, port) of the brokers Metadata names, or the error.
fn metadata(config: &ClientConfig, timeout: Duration) -> Result<Vec<(String, i32)>, String> {
    let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
    let md = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| e.to_string())?;
    Ok(md
        .brokers()
        .iter()
        .map(|b| (b.host().to_string(), b.port()))
        .collect())
}

fn log_text(broker: &Broker) -> String {
    std::fs::read_to_string(broker.log_path()).unwrap_or_default()
}

/// Whether the broker closes `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A TLS alert may come before the close.
            Ok(_) if Instant::now() < deadline => continue,
            Ok(_) => return false,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_over_ssl() {
    let pki = Pki::new();
    let port = common::free_port();
    let broker = start(&ssl_args(&pki, port, &[]));
    let bootstrap = format!("localhost:{port}");
    let config = ssl_client(&bootstrap, &pki.path("ca.pem"), None);

    let producer: rdkafka::producer::FutureProducer = {
        let mut c = config.clone();
        c.set("acks", "all").set("message.timeout.ms", "30000");
        c.create().unwrap()
    };
    for i in 0..10 {
        producer
            .send(
                FutureRecord::to("tls-topic")
                    .key(&format!("k{i}"))
                    .payload(&format!("v{i}")),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce over SSL: {e}"));
    }
    let consumer: BaseConsumer = {
        let mut c = config.clone();
        c.set("group.id", "tls-assign-only")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        c.create().unwrap()
    };
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("tls-topic", 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 10 && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m.expect("consume over SSL");
            got.push(String::from_utf8(rdkafka::Message::payload(&m).unwrap().to_vec()).unwrap());
        }
    }
    let want: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    assert_eq!(got, want);
    // Without client auth the principal is ANONYMOUS.
    assert!(log_text(&broker).contains("principal=User:ANONYMOUS"));
}

#[test]
fn each_listener_advertises_its_own_endpoint() {
    let pki = Pki::new();
    let port = common::free_port();
    // A custom listener name mapped to SSL, its key store set for that listener only.
    let args: Vec<String> = [
        format!("listeners=CLIENT://127.0.0.1:{port}"),
        "listener.security.protocol.map=CLIENT:SSL,PLAINTEXT:PLAINTEXT".to_string(),
        format!("advertised.listeners=CLIENT://localhost:{port}"),
        "listener.name.client.ssl.keystore.type=PEM".to_string(),
        format!(
            "listener.name.client.ssl.keystore.location={}",
            pki.p("server.pem")
        ),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect();
    let broker = start(&args);
    let plain = metadata(
        &common::client_config(&broker.bootstrap()),
        Duration::from_secs(15),
    )
    .unwrap();
    assert_eq!(
        plain,
        vec![("127.0.0.1".to_string(), broker.addr().port() as i32)]
    );
    let tls = metadata(
        &ssl_client(&format!("127.0.0.1:{port}"), &pki.path("ca.pem"), None),
        Duration::from_secs(15),
    )
    .unwrap();
    assert_eq!(tls, vec![("localhost".to_string(), port as i32)]);
    // Plaintext bytes to the SSL port do not get a Kafka answer.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let api_versions = [0u8, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0];
    s.write_all(&api_versions).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(10)));
}

#[test]
fn mutual_tls_maps_the_certificate_to_a_principal() {
    let pki = Pki::new();
    let port = common::free_port();
    let broker = start(&ssl_args(
        &pki,
        port,
        &[
            "ssl.client.auth=required".to_string(),
            "ssl.truststore.type=PEM".to_string(),
            format!("ssl.truststore.location={}", pki.p("ca.pem")),
            "ssl.principal.mapping.rules=RULE:^CN=([^,]*),O=Example.*$/$1/L,DEFAULT".to_string(),
        ],
    ));
    let bootstrap = format!("localhost:{port}");
    let anonymous = metadata(
        &ssl_client(&bootstrap, &pki.path("ca.pem"), None),
        Duration::from_secs(5),
    );
    assert!(
        anonymous.is_err(),
        "a client without a certificate is refused: {anonymous:?}"
    );
    let with_cert = metadata(
        &ssl_client(
            &bootstrap,
            &pki.path("ca.pem"),
            Some((&pki.path("client.crt"), &pki.path("client.key"))),
        ),
        Duration::from_secs(15),
    )
    .expect("a client with a certificate gets Metadata");
    assert_eq!(with_cert, vec![("127.0.0.1".to_string(), port as i32)]);
    let log = log_text(&broker);
    assert!(
        log.contains("principal=User:alice"),
        "mapped principal in the log"
    );
    assert!(
        log.contains("TLS handshake failed"),
        "the refused client in the log"
    );
}

#[test]
fn garbage_and_abandoned_handshakes_leave_other_clients_alone() {
    let pki = Pki::new();
    let port = common::free_port();
    let _broker = start(&ssl_args(
        &pki,
        port,
        &["connections.max.idle.ms=3000".to_string()],
    ));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Random bytes instead of a ClientHello.
    let mut rng = common::Rng::new(16);
    for len in [1usize, 5, 300, 70_000] {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut junk = vec![0u8; len];
        rng.fill(&mut junk);
        let _ = s.write_all(&junk);
        assert!(
            closed_within(&mut s, Duration::from_secs(10)),
            "{len} junk bytes"
        );
    }
    // A handshake record header announcing more than ever comes, left open.
    let mut abandoned = TcpStream::connect(addr).unwrap();
    abandoned
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    // Meanwhile a good client is served.
    let good = metadata(
        &ssl_client(&format!("localhost:{port}"), &pki.path("ca.pem"), None),
        Duration::from_secs(15),
    );
    assert!(good.is_ok(), "{good:?}");
    // And the abandoned one is closed by the idle timer.
    assert!(closed_within(&mut abandoned, Duration::from_secs(15)));
}

#[test]
fn a_replaced_server_certificate_is_used_by_new_connections() {
    let pki = Pki::new();
    let port = common::free_port();
    let broker = start(&ssl_args(&pki, port, &[]));
    let bootstrap = format!("localhost:{port}");
    let old_ca = pki.path("ca.pem");
    metadata(
        &ssl_client(&bootstrap, &old_ca, None),
        Duration::from_secs(15),
    )
    .expect("the first certificate");

    let new_ca = Ca::new("rotated CA");
    pki.write("new-ca.pem", &new_ca.cert.pem());
    pki.write_server("server.pem", &new_ca);
    let rotated = metadata(
        &ssl_client(&bootstrap, &pki.path("new-ca.pem"), None),
        Duration::from_secs(15),
    );
    assert!(
        rotated.is_ok(),
        "the new certificate is served: {rotated:?}"
    );
    let stale = metadata(
        &ssl_client(&bootstrap, &old_ca, None),
        Duration::from_secs(5),
    );
    assert!(stale.is_err(), "the old CA no longer verifies the broker");
    assert!(log_text(&broker).contains("reloaded"));

    // A broken replacement keeps the last good certificate.
    pki.write("server.pem", "not a PEM file");
    let still = metadata(
        &ssl_client(&bootstrap, &pki.path("new-ca.pem"), None),
        Duration::from_secs(15),
    );
    assert!(still.is_ok(), "{still:?}");
}

#[test]
fn kcat_over_ssl() {
    let Some(kcat) = common::kcat_path() else {
        if common::skip_allowed("kcat_over_ssl", "kcat is not installed") {
            return;
        }
        panic!("kcat is not installed (apt-get install kcat)");
    };
    let pki = Pki::new();
    let port = common::free_port();
    let _broker = start(&ssl_args(&pki, port, &[]));
    let bootstrap = format!("localhost:{port}");
    let conn: Vec<String> = [
        "-b".to_string(),
        bootstrap.clone(),
        "-X".to_string(),
        "security.protocol=ssl".to_string(),
        "-X".to_string(),
        format!("ssl.ca.location={}", pki.p("ca.pem")),
    ]
    .to_vec();
    let run = |args: &[&str], input: &[u8]| common::kcat_run(&kcat, &conn, args, input);
    run(&["-P", "-t", "kcat-tls"], b"one\ntwo\n");
    let out = run(
        &["-C", "-t", "kcat-tls", "-o", "beginning", "-e", "-q"],
        b"",
    );
    assert_eq!(out, "one\ntwo\n");
    let listing = run(&["-L"], b"");
    assert!(
        listing.contains(&format!("localhost:{port}"))
            || listing.contains(&format!("127.0.0.1:{port}")),
        "{listing}"
    );
}

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="secret" user_bob="bob-secret";"#;

/// Broker args for a SASL listener `name` (protocol from the default map) on `port`.
fn sasl_args(name: &str, port: u16, extra: &[String]) -> Vec<String> {
    let mut v = vec![
        format!("listeners={name}://127.0.0.1:{port}"),
        "sasl.enabled.mechanisms=PLAIN".to_string(),
        format!(
            "listener.name.{}.plain.sasl.jaas.config={JAAS}",
            name.to_lowercase()
        ),
    ];
    v.extend(extra.iter().cloned());
    v.into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
}

fn sasl_client(bootstrap: &str, protocol: &str, user: &str, password: &str) -> ClientConfig {
    let mut c = common::client_config(bootstrap);
    c.set("security.protocol", protocol)
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", password);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_good_and_bad_passwords() {
    let port = common::free_port();
    let broker = start(&sasl_args("SASL_PLAINTEXT", port, &[]));
    let bootstrap = format!("127.0.0.1:{port}");
    let good = sasl_client(&bootstrap, "sasl_plaintext", "alice", "secret");
    assert_eq!(
        metadata(&good, Duration::from_secs(15)).unwrap(),
        vec![("127.0.0.1".to_string(), port as i32)]
    );
    let producer: rdkafka::producer::FutureProducer = good.create().unwrap();
    producer
        .send(
            FutureRecord::to("sasl-topic").key("k").payload("v"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce over SASL_PLAINTEXT: {e}"));
    let bad = sasl_client(&bootstrap, "sasl_plaintext", "alice", "wrong");
    assert!(metadata(&bad, Duration::from_secs(5)).is_err());
    let log = log_text(&broker);
    assert!(log.contains("principal=User:alice"));
    assert!(log.contains("Invalid username or password"));
}

/// The SASL principal is what the authorizer judges: with StandardAuthorizer, alice as the
/// super user creates a topic and writes to it, bob (no ACL, allow.everyone.if.no.acl.found
/// false) gets TOPIC_AUTHORIZATION_FAILED for the same write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_principals_are_what_acls_see() {
    let port = common::free_port();
    let extra = [
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_string(),
        "super.users=User:alice".to_string(),
    ];
    let _broker = start(&sasl_args("SASL_PLAINTEXT", port, &extra));
    let bootstrap = format!("127.0.0.1:{port}");
    let send = |user: &str, password: &str| {
        let producer: rdkafka::producer::FutureProducer =
            sasl_client(&bootstrap, "sasl_plaintext", user, password)
                .set("message.timeout.ms", "10000")
                .create()
                .unwrap();
        async move {
            producer
                .send(
                    FutureRecord::to("guarded").key("k").payload("v"),
                    Duration::from_secs(15),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| e)
        }
    };
    let alice = sasl_client(&bootstrap, "sasl_plaintext", "alice", "secret");
    let admin: rdkafka::admin::AdminClient<_> = alice.create().unwrap();
    let created = admin
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                "guarded",
                1,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &common::admin_opts(),
        )
        .await
        .expect("CreateTopics");
    assert!(created[0].is_ok(), "{created:?}");
    send("alice", "secret")
        .await
        .expect("the super user writes");
    let denied = send("bob", "bob-secret").await.expect_err("bob has no ACL");
    assert_eq!(
        denied.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed),
        "{denied}"
    );
}

#[test]
fn sasl_exchange_on_the_wire() {
    use common::wire;
    use kafka_protocol::messages::{
        ApiVersionsRequest, MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
    };
    use kafka_protocol::protocol::StrBytes;
    let port = common::free_port();
    let _broker = start(&sasl_args(
        "SASL_PLAINTEXT",
        port,
        &["connection.failed.authentication.delay.ms=500".to_string()],
    ));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));

    // Anything but ApiVersions and the SASL requests before authentication closes.
    let mut s = wire::connect(addr, Duration::from_secs(10));
    s.write_all(&wire::request(3, 1, &ApiVersionsRequest::default()))
        .unwrap();
    wire::read_frame(&mut s).expect("ApiVersions before authentication");
    s.write_all(&wire::request(9, 2, &MetadataRequest::default()))
        .unwrap();
    wire::expect_closed(&mut s, "Metadata before authentication");

    // A mechanism not enabled: UNSUPPORTED_SASL_MECHANISM with the enabled ones, then closed.
    let mut s = wire::connect(addr, Duration::from_secs(10));
    let other =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-256"));
    s.write_all(&wire::request(1, 1, &other)).unwrap();
    let (_, r) = wire::response::<SaslHandshakeRequest>(1, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 33);
    assert_eq!(r.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
    wire::expect_closed(&mut s, "unsupported mechanism");

    // A wrong password: SASL_AUTHENTICATION_FAILED after the delay, then closed.
    let mut s = wire::connect(addr, Duration::from_secs(10));
    s.write_all(&wire::request(1, 1, &handshake)).unwrap();
    let (_, r) = wire::response::<SaslHandshakeRequest>(1, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 0);
    let wrong = SaslAuthenticateRequest::default()
        .with_auth_bytes(bytes::Bytes::from_static(b"\0alice\0nope"));
    let sent = Instant::now();
    s.write_all(&wire::request(2, 2, &wrong)).unwrap();
    let (_, r) = wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
    assert!(
        sent.elapsed() >= Duration::from_millis(450),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(r.error_code, 58);
    assert_eq!(
        r.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    wire::expect_closed(&mut s, "failed authentication");

    // A token larger than sasl.server.max.receive.size closes the connection.
    let mut s = wire::connect(addr, Duration::from_secs(10));
    s.write_all(&wire::request(1, 1, &handshake)).unwrap();
    wire::read_frame(&mut s).unwrap();
    let huge =
        SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(vec![b'a'; 600_000]));
    wire::write_lenient(&mut s, &wire::request(2, 2, &huge));
    wire::expect_closed(&mut s, "huge SASL token");

    // The right password, then any request is served.
    let mut s = wire::connect(addr, Duration::from_secs(10));
    s.write_all(&wire::request(1, 1, &handshake)).unwrap();
    wire::read_frame(&mut s).unwrap();
    let right = SaslAuthenticateRequest::default()
        .with_auth_bytes(bytes::Bytes::from_static(b"\0bob\0bob-secret"));
    s.write_all(&wire::request(2, 2, &right)).unwrap();
    let (_, r) = wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 0);
    s.write_all(&wire::request(9, 3, &MetadataRequest::default()))
        .unwrap();
    let (_, md) = wire::response::<MetadataRequest>(9, wire::read_frame(&mut s).unwrap());
    assert_eq!(md.brokers.len(), 1);
}

#[test]
fn sasl_plain_over_ssl() {
    let pki = Pki::new();
    let port = common::free_port();
    let mut args = sasl_args("SASL_SSL", port, &[]);
    args.extend(
        [
            "ssl.keystore.type=PEM".to_string(),
            format!("ssl.keystore.location={}", pki.p("server.pem")),
        ]
        .into_iter()
        .flat_map(|s| ["--set".to_string(), s]),
    );
    let broker = start(&args);
    let bootstrap = format!("localhost:{port}");
    let client = |password: &str| {
        let mut c = sasl_client(&bootstrap, "sasl_ssl", "alice", password);
        c.set("ssl.ca.location", pki.p("ca.pem"));
        c
    };
    assert_eq!(
        metadata(&client("secret"), Duration::from_secs(15)).unwrap(),
        vec![("127.0.0.1".to_string(), port as i32)]
    );
    assert!(metadata(&client("wrong"), Duration::from_secs(5)).is_err());
    assert!(log_text(&broker).contains("principal=User:alice"));
}
