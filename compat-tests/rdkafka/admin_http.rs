//! The admin HTTP listener: /v1/health, /v1/ready and /metrics of a real broker process, read
//! with plain HTTP/1.1 requests after a real rdkafka producer and consumer used it.

mod common;

use common::Broker;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// GET `path`: (status code, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin listener");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

/// The value of the series whose line starts with `series` (name and labels, as printed).
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_ready_and_metrics() {
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut broker = Broker::start(&["--admin-listen", &listen]);
    let bs = broker.bootstrap();
    assert_eq!(get(port, "/v1/health"), (200, "ok\n".to_string()));
    assert_eq!(get(port, "/v1/ready"), (200, "ready\n".to_string()));
    assert_eq!(get(port, "/nothing-here").0, 404);

    common::create_topic(&bs, "watched", 2, &[]).await;
    let producer = common::producer(&bs, &[]);
    for i in 0..10 {
        producer
            .send(
                rdkafka::producer::FutureRecord::<(), _>::to("watched")
                    .partition(i % 2)
                    .payload("x"),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    assert_eq!(common::watermarks(&bs, "watched", 0), (0, 5));

    let (status, m) = get(port, "/metrics");
    assert_eq!(status, 200);
    let produced: f64 = m
        .lines()
        .filter(|l| l.starts_with("sluice_requests_total{api=\"Produce\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(produced >= 1.0, "Produce requests counted:\n{m}");
    assert!(
        value(&m, "sluice_request_latency_seconds_count{api=\"Produce\"}").unwrap_or(0.0) >= 1.0,
        "Produce latency observed:\n{m}"
    );
    for p in 0..2 {
        let labels = format!("{{topic=\"watched\",partition=\"{p}\"}}");
        assert_eq!(
            value(&m, &format!("sluice_partition_high_watermark{labels}")),
            Some(5.0),
            "{m}"
        );
        assert_eq!(
            value(&m, &format!("sluice_partition_log_end_offset{labels}")),
            Some(5.0)
        );
        assert_eq!(
            value(&m, &format!("sluice_partition_log_start_offset{labels}")),
            Some(0.0)
        );
        assert!(value(&m, &format!("sluice_partition_size_bytes{labels}")).unwrap() > 0.0);
    }
    assert!(value(&m, "sluice_connections_open").unwrap() >= 1.0, "{m}");
    assert!(
        value(&m, "sluice_connections_opened_total").unwrap() >= 1.0,
        "{m}"
    );
    assert!(
        value(&m, "process_resident_memory_bytes").unwrap() > 1e6,
        "{m}"
    );
    assert!(value(&m, "process_open_fds").unwrap() > 0.0, "{m}");
    assert!(
        m.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    broker.assert_alive();
}

/// An explicit address that cannot be bound stops the broker with a clear message.
#[test]
fn an_explicit_admin_address_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", &addr])
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .expect("run sluice");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin listener on"), "{err}");
}
