//! Hostile input on the TLS and SASL listeners, raw TCP: garbage before and in the middle of the
//! TLS handshake, a TLS record of huge declared length, SASL frames and tokens of huge declared
//! size, wrong mechanism names, 2000 failed logins, requests before authentication. Each is
//! answered or cleanly closed, a good librdkafka client keeps producing over SASL meanwhile, the
//! broker never panics (the harness checks its log) and its RSS stays within a bound.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::pki::Pki;
use common::{wire, Broker, Rng};
use kafka_protocol::messages::{
    MetadataRequest, ProduceRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;

const JAAS: &str =
    r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="secret";"#;

/// RSS may grow this much over the whole attack (buffers, allocator caches).
const RSS_BOUND_KIB: u64 = 64 << 10;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn connect(port: u16) -> TcpStream {
    wire::connect(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
    )
}

/// Reads until EOF or reset; false when the broker kept the connection open past the timeout.
fn closes(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// The first flight of a real TLS client (its ClientHello).
fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

fn handshake_frame(correlation: i32, mechanism: &str) -> Vec<u8> {
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into()));
    wire::request(1, correlation, &request)
}

/// One failed PLAIN login: the answer must be SASL_AUTHENTICATION_FAILED, then a close.
fn failed_login(port: u16, i: u32) {
    let mut s = connect(port);
    s.write_all(&handshake_frame(1, "PLAIN")).unwrap();
    let (_, r) = wire::response::<SaslHandshakeRequest>(1, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 0);
    let token = format!("\0alice\0wrong-{i}");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(token.into_bytes().into());
    s.write_all(&wire::request(2, 2, &auth)).unwrap();
    let (_, r) = wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 58, "login {i}");
    assert!(closes(&mut s), "login {i}: closed after the failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tls_and_sasl_input() {
    let pki = Pki::new();
    let sasl_port = common::free_port();
    let tls_port = common::free_port();
    let settings = [
        format!("listeners=SASL_PLAINTEXT://127.0.0.1:{sasl_port},SSL://127.0.0.1:{tls_port}"),
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256".to_string(),
        format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}"),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", pki.p("server.pem")),
        // 2000 failed logins should not take 2000 x 100 ms.
        "connection.failed.authentication.delay.ms=0".to_string(),
    ];
    let args: Vec<String> = settings
        .iter()
        .flat_map(|s| ["--set".to_string(), s.clone()])
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let broker = Broker::start(&refs);
    let pid = broker.pid();
    common::create_topic(&broker.bootstrap(), "hostile", 1, &[]).await;

    // A good client over SASL for the whole run.
    let good = common::producer(
        &format!("127.0.0.1:{sasl_port}"),
        &[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "secret"),
        ],
    );
    good.send(
        FutureRecord::<(), str>::to("hostile").payload("warm-up"),
        Duration::from_secs(30),
    )
    .await
    .expect("the good client before the attack");
    let rss_before = rss_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU32::new(0));
    let good_task = {
        let (stop, delivered) = (stop.clone(), delivered.clone());
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let payload = format!("good-{i}");
                good.send(
                    FutureRecord::<(), str>::to("hostile").payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("good record {i} during the attack: {e}"));
                delivered.fetch_add(1, Ordering::Relaxed);
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let attack = tokio::task::spawn_blocking(move || {
        let mut rng = Rng::new(368);
        let mut garbage = vec![0u8; 64 << 10];
        for round in 0..20 {
            // Garbage before the TLS handshake.
            rng.fill(&mut garbage);
            let mut s = connect(tls_port);
            wire::write_lenient(&mut s, &garbage[..1 + round * 3000]);
            assert!(closes(&mut s), "garbage before the TLS handshake");
            // A real ClientHello, then garbage mid-handshake.
            let mut s = connect(tls_port);
            s.write_all(&client_hello()).unwrap();
            wire::write_lenient(&mut s, &garbage[..1 + round * 500]);
            assert!(closes(&mut s), "garbage in the middle of the handshake");
            // A handshake record of the largest declared length, then junk.
            let mut s = connect(tls_port);
            wire::write_lenient(&mut s, &[0x16, 0x03, 0x01, 0xff, 0xff]);
            wire::write_lenient(&mut s, &garbage[..4096]);
            assert!(closes(&mut s), "a TLS record of huge declared length");
            // Plain Kafka bytes on the TLS listener.
            let mut s = connect(tls_port);
            wire::write_lenient(&mut s, &wire::request(9, 1, &MetadataRequest::default()));
            assert!(closes(&mut s), "plaintext on the TLS listener");
        }

        // SASL listener: a frame of huge declared size before authentication.
        for size in [i32::MAX, 1 << 30, 600 << 10] {
            let mut s = connect(sasl_port);
            wire::write_lenient(&mut s, &size.to_be_bytes());
            wire::write_lenient(&mut s, &garbage[..1024]);
            assert!(
                closes(&mut s),
                "a frame of {size} bytes before authentication"
            );
        }
        // A SaslAuthenticate whose token declares 2^31 bytes in a small frame.
        {
            let mut s = connect(sasl_port);
            s.write_all(&handshake_frame(1, "PLAIN")).unwrap();
            wire::read_frame(&mut s).unwrap();
            // v0 body: BYTES = int32 length + data; the length lies.
            let mut body = (i32::MAX).to_be_bytes().to_vec();
            body.extend_from_slice(b"\0alice\0secret");
            wire::write_lenient(&mut s, &wire::frame(36, 0, 2, 1, &body));
            assert!(closes(&mut s), "a token of huge declared size");
            // The compact (v2) form: an unsigned varint length of about 2^32.
            let mut s = connect(sasl_port);
            s.write_all(&handshake_frame(1, "PLAIN")).unwrap();
            wire::read_frame(&mut s).unwrap();
            let mut body = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
            body.extend_from_slice(b"\0alice\0secret\0");
            wire::write_lenient(&mut s, &wire::frame(36, 2, 2, 2, &body));
            assert!(closes(&mut s), "a compact token of huge declared size");
        }
        // Wrong mechanism names: UNSUPPORTED_SASL_MECHANISM, then a close.
        let long = "X".repeat(20_000);
        for mechanism in [
            "GSSAPI",
            "",
            "plain",
            "SCRAM-SHA-1",
            long.as_str(),
            "PLAIN\0",
        ] {
            let mut s = connect(sasl_port);
            s.write_all(&handshake_frame(1, mechanism)).unwrap();
            let (_, r) =
                wire::response::<SaslHandshakeRequest>(1, wire::read_frame(&mut s).unwrap());
            assert_eq!(r.error_code, 33, "mechanism {:.20}", mechanism);
            assert!(closes(&mut s), "after a wrong mechanism");
        }
        // Requests other than ApiVersions/SaslHandshake before authentication: closed.
        {
            let mut s = connect(sasl_port);
            wire::write_lenient(&mut s, &wire::request(9, 1, &MetadataRequest::default()));
            assert!(closes(&mut s), "Metadata before authentication");
            let mut s = connect(sasl_port);
            let produce = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000);
            wire::write_lenient(&mut s, &wire::request(9, 1, &produce));
            assert!(closes(&mut s), "Produce before authentication");
            let mut s = connect(sasl_port);
            s.write_all(&handshake_frame(1, "PLAIN")).unwrap();
            wire::read_frame(&mut s).unwrap();
            wire::write_lenient(&mut s, &wire::request(9, 2, &MetadataRequest::default()));
            assert!(
                closes(&mut s),
                "Metadata between handshake and authenticate"
            );
            // Random bytes as the body of every API key.
            for key in 0..80i16 {
                let mut body = vec![0u8; 200];
                rng.fill(&mut body);
                let mut s = connect(sasl_port);
                // ApiVersions is answered and the connection stays open: do not wait long.
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                wire::write_lenient(&mut s, &wire::frame(key, 0, 1, 1, &body));
                let _ = closes(&mut s);
            }
        }
    });
    // 2000 failed logins, from two threads, alongside the attack above.
    let logins: Vec<_> = (0..2u32)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..1000 {
                    failed_login(sasl_port, t * 1000 + i);
                }
            })
        })
        .collect();
    attack.await.expect("the attack's checks");
    for l in logins {
        l.join().expect("failed logins answered and closed");
    }
    stop.store(true, Ordering::Relaxed);
    good_task.await.expect("the good client kept producing");
    assert!(
        delivered.load(Ordering::Relaxed) > 10,
        "the good client delivered during the attack"
    );

    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + RSS_BOUND_KIB,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // A new good client after it all.
    let mut s = connect(sasl_port);
    s.write_all(&handshake_frame(1, "PLAIN")).unwrap();
    wire::read_frame(&mut s).unwrap();
    let auth =
        SaslAuthenticateRequest::default().with_auth_bytes(b"\0alice\0secret".to_vec().into());
    s.write_all(&wire::request(2, 2, &auth)).unwrap();
    let (_, r) = wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 0);
    s.write_all(&wire::request(9, 3, &MetadataRequest::default()))
        .unwrap();
    let (_, md) = wire::response::<MetadataRequest>(9, wire::read_frame(&mut s).unwrap());
    assert!(!md.brokers.is_empty());
}
