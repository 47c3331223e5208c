//! KIP-368 SASL re-authentication (connections.max.reauth.ms): librdkafka keeps producing and
//! consuming for 10 s over 3-second sessions, re-authenticating on its live connections; on the
//! wire, SaslAuthenticate carries the session lifetime, a request after the expiry closes the
//! connection, a re-authentication in time keeps it open, a change of principal is refused, and
//! without the setting sessions do not expire and a second handshake is refused.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{wire, Broker};
use kafka_protocol::messages::{
    MetadataRequest, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="secret" user_bob="bob-secret";"#;

/// A broker with a SASL_PLAINTEXT PLAIN listener on `port` and these extra settings.
fn start(port: u16, extra: &[String]) -> Broker {
    let mut settings = vec![
        format!("listeners=SASL_PLAINTEXT://127.0.0.1:{port}"),
        "sasl.enabled.mechanisms=PLAIN".to_string(),
        format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}"),
    ];
    settings.extend(extra.iter().cloned());
    let mut args: Vec<String> = settings
        .into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect();
    args.extend(["--log-level".to_string(), "info".to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Broker::start(&refs)
}

fn log_text(broker: &Broker) -> String {
    std::fs::read_to_string(broker.log_path()).unwrap_or_default()
}

/// SaslHandshake v1 + SaslAuthenticate v2 with PLAIN on `s`.
fn plain(s: &mut TcpStream, user: &str, password: &str) -> SaslAuthenticateResponse {
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    s.write_all(&wire::request(1, 1, &handshake)).unwrap();
    let (_, r) = wire::response::<SaslHandshakeRequest>(1, wire::read_frame(s).unwrap());
    assert_eq!(r.error_code, 0, "handshake");
    let token = format!("\0{user}\0{password}");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(token.into_bytes().into());
    s.write_all(&wire::request(2, 2, &auth)).unwrap();
    wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(s).unwrap()).1
}

fn metadata_answers(s: &mut TcpStream) -> bool {
    if s.write_all(&wire::request(9, 3, &MetadataRequest::default()))
        .is_err()
    {
        return false;
    }
    match wire::read_frame(s) {
        Ok(frame) => {
            let (_, md) = wire::response::<MetadataRequest>(9, frame);
            !md.brokers.is_empty()
        }
        Err(_) => false,
    }
}

fn connect(port: u16) -> TcpStream {
    wire::connect(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
    )
}

#[test]
fn expired_sessions_close_and_reauthentication_keeps_them() {
    let port = common::free_port();
    let broker = start(port, &["connections.max.reauth.ms=1500".to_string()]);

    // The lifetime is in the response; a request after it closes the connection.
    let mut s = connect(port);
    let r = plain(&mut s, "alice", "secret");
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(r.session_lifetime_ms, 1500);
    assert!(metadata_answers(&mut s), "within the session");
    std::thread::sleep(Duration::from_millis(1800));
    s.write_all(&wire::request(9, 4, &MetadataRequest::default()))
        .unwrap();
    wire::expect_closed(&mut s, "Metadata after the session expired");

    // Re-authenticating before the expiry (same mechanism and principal) renews the session.
    let mut s = connect(port);
    assert_eq!(plain(&mut s, "alice", "secret").error_code, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(4000) {
        std::thread::sleep(Duration::from_millis(700));
        let r = plain(&mut s, "alice", "secret");
        assert_eq!(r.error_code, 0, "re-authentication: {:?}", r.error_message);
        assert_eq!(r.session_lifetime_ms, 1500);
        assert!(metadata_answers(&mut s), "after re-authentication");
    }

    // Re-authenticating as another principal is refused and the connection closed.
    let mut s = connect(port);
    assert_eq!(plain(&mut s, "alice", "secret").error_code, 0);
    let r = plain(&mut s, "bob", "bob-secret");
    assert_eq!(r.error_code, 58, "SASL_AUTHENTICATION_FAILED");
    let message = r.error_message.map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("Cannot change principals"), "{message}");
    wire::expect_closed(&mut s, "after a change of principal");

    // The broker still serves a new client.
    let mut s = connect(port);
    assert_eq!(plain(&mut s, "bob", "bob-secret").error_code, 0);
    assert!(metadata_answers(&mut s));
    let log = log_text(&broker);
    assert!(log.contains("SASL re-authentication succeeded"), "{log}");
    assert!(log.contains("after the SASL session expired"), "{log}");
}

#[test]
fn without_reauth_ms_sessions_do_not_expire() {
    let port = common::free_port();
    let _broker = start(port, &[]);
    let mut s = connect(port);
    let r = plain(&mut s, "alice", "secret");
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 0));
    assert!(metadata_answers(&mut s));
    // A second handshake is refused (ILLEGAL_SASL_STATE) and the connection closed.
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    s.write_all(&wire::request(1, 5, &handshake)).unwrap();
    let (_, r) = wire::response::<SaslHandshakeRequest>(1, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 34);
    wire::expect_closed(&mut s, "a handshake on an authenticated connection");
}

#[test]
fn per_listener_reauth_ms() {
    let port = common::free_port();
    let _broker = start(
        port,
        &[
            "connections.max.reauth.ms=60000".to_string(),
            "listener.name.sasl_plaintext.connections.max.reauth.ms=2500".to_string(),
        ],
    );
    let mut s = connect(port);
    assert_eq!(plain(&mut s, "alice", "secret").session_lifetime_ms, 2500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_reauthenticates_while_producing_and_consuming() {
    let port = common::free_port();
    let broker = start(port, &["connections.max.reauth.ms=3000".to_string()]);
    let bootstrap = format!("127.0.0.1:{port}");
    let sasl = [
        ("security.protocol", "sasl_plaintext"),
        ("sasl.mechanisms", "PLAIN"),
        ("sasl.username", "alice"),
        ("sasl.password", "secret"),
    ];
    let producer = common::producer(&bootstrap, &sasl);
    let consumer: BaseConsumer = {
        let mut extra = sasl.to_vec();
        extra.push(("auto.offset.reset", "earliest"));
        common::consumer(&bootstrap, &extra)
    };
    let topic = "reauth-topic";
    // Created over the harness's PLAINTEXT listener.
    common::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    producer
        .send(
            FutureRecord::to(topic).key("k").payload("0"),
            Duration::from_secs(30),
        )
        .await
        .expect("first record");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();

    let started = Instant::now();
    let mut sent = 1u32;
    let mut received = 0u32;
    while started.elapsed() < Duration::from_secs(10) {
        producer
            .send(
                FutureRecord::to(topic).key("k").payload(&sent.to_string()),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("record {sent} at {:?}: {e}", started.elapsed()));
        sent += 1;
        while let Some(m) = consumer.poll(Duration::from_millis(50)) {
            let m = m.unwrap_or_else(|e| panic!("consume at {:?}: {e}", started.elapsed()));
            assert_eq!(
                m.payload_view::<str>().unwrap().unwrap(),
                received.to_string()
            );
            received += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while received < sent && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m.expect("consume the rest");
            received += 1;
        }
    }
    assert_eq!(received, sent, "every record consumed");
    let log = log_text(&broker);
    let reauths = log.matches("SASL re-authentication succeeded").count();
    assert!(
        reauths >= 4,
        "producer and consumer connections re-authenticated {reauths} times in 10 s"
    );
    assert!(
        !log.contains("after the SASL session expired"),
        "no connection outlived its session"
    );
}

/// The `sluice` command line re-authenticates too: a consume that outlives several sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reauthenticates_on_long_runs() {
    let port = common::free_port();
    let broker = start(port, &["connections.max.reauth.ms=1000".to_string()]);
    let topic = "reauth-cli";
    common::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "consume",
            topic,
            "-n",
            "3",
            "-b",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--sasl-mechanism",
            "PLAIN",
            "--user",
            "alice",
            "--password",
            "secret",
        ])
        .env_remove("SLUICE_BROKERS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sluice consume");
    // Over the harness's PLAINTEXT listener, one record every 1.2 s: the consume spans more
    // than three sessions.
    let producer = common::producer(&broker.bootstrap(), &[]);
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        producer
            .send(
                FutureRecord::<(), str>::to(topic).payload(&format!("r{i}")),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "r0\nr1\nr2\n");
    let log = log_text(&broker);
    assert!(
        log.matches("SASL re-authentication succeeded").count() >= 2,
        "the CLI re-authenticated"
    );
    assert!(!log.contains("after the SASL session expired"), "{log}");
}

/// An OAUTHBEARER session ends no later than its token (Kafka caps the lifetime at the token's
/// expiry).
#[test]
fn an_oauthbearer_session_ends_with_its_token() {
    use base64::Engine;
    let port = common::free_port();
    let args: Vec<String> = [
        format!("listeners=SASL_PLAINTEXT://127.0.0.1:{port}"),
        "sasl.enabled.mechanisms=OAUTHBEARER".to_string(),
        "connections.max.reauth.ms=600000".to_string(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let _broker = Broker::start(&refs);
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 20;
    let token = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&format!(r#"{{"sub":"carol","exp":{exp}}}"#))
    );
    let mut s = connect(port);
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("OAUTHBEARER"));
    s.write_all(&wire::request(1, 1, &handshake)).unwrap();
    let (_, r) = wire::response::<SaslHandshakeRequest>(1, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 0);
    let initial = format!("n,,\x01auth=Bearer {token}\x01\x01");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(initial.into_bytes().into());
    s.write_all(&wire::request(2, 2, &auth)).unwrap();
    let (_, r) = wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert!(
        (15_000..=20_000).contains(&r.session_lifetime_ms),
        "the token's remaining 20 s, not 600 s: {}",
        r.session_lifetime_ms
    );
}
