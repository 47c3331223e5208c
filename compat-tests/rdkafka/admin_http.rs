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

/// Sum of every series of `name` whose labels contain all of `labels` (as printed, e.g.
/// `topic="counted"`).
fn sum(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Per-topic traffic, group members and lag, error codes by API and the fsync histogram,
/// after a real rdkafka producer and group consumer, and a raw Produce to a partition that
/// does not exist.
#[tokio::test(flavor = "multi_thread")]
async fn traffic_group_lag_errors_and_fsync() {
    use rdkafka::consumer::{CommitMode, Consumer};
    use rdkafka::Message;

    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut broker = Broker::start(&["--admin-listen", &listen]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "counted", 2, &[]).await;
    const N: i32 = 20;
    let producer = common::producer(&bs, &[]);
    for i in 0..N {
        producer
            .send(
                rdkafka::producer::FutureRecord::<(), _>::to("counted")
                    .partition(i % 2)
                    .payload(&format!("record {i}")),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }

    let consumer = common::consumer(
        &bs,
        &[
            ("group.id", "counters"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.offset.store", "true"),
        ],
    );
    consumer.subscribe(&["counted"]).expect("subscribe");
    let mut consumed = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while consumed < N {
        assert!(
            std::time::Instant::now() < deadline,
            "consumed {consumed} of {N}"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m.expect("a record").payload().expect("a value");
            consumed += 1;
        }
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");

    let (_, m) = get(port, "/metrics");
    let topic = "topic=\"counted\"";
    assert_eq!(
        sum(&m, "sluice_topic_records_in_total", &[topic]),
        N as f64,
        "{m}"
    );
    assert_eq!(
        sum(&m, "sluice_topic_records_out_total", &[topic]),
        N as f64,
        "{m}"
    );
    // The broker stores the batches as produced, so the bytes in are the partitions' sizes;
    // each was fetched once.
    let stored = sum(&m, "sluice_partition_size_bytes", &[topic]);
    assert!(stored > 0.0);
    assert_eq!(
        sum(&m, "sluice_topic_bytes_in_total", &[topic]),
        stored,
        "{m}"
    );
    assert_eq!(
        sum(&m, "sluice_topic_bytes_out_total", &[topic]),
        stored,
        "{m}"
    );
    let group = "group=\"counters\"";
    assert_eq!(sum(&m, "sluice_group_members", &[group]), 1.0, "{m}");
    assert_eq!(
        sum(&m, "sluice_group_state", &[group, "state=\"Stable\""]),
        1.0,
        "{m}"
    );
    assert_eq!(sum(&m, "sluice_group_lag", &[group, topic]), 0.0, "{m}");
    assert!(
        m.contains("sluice_group_lag{group=\"counters\",topic=\"counted\",partition=\"1\"} 0"),
        "{m}"
    );
    assert!(sum(&m, "sluice_fsync_seconds_count", &[]) > 0.0, "{m}");
    assert!(sum(&m, "sluice_fsync_appends_count", &[]) > 0.0, "{m}");
    assert!(sum(&m, "sluice_fsync_appends_sum", &[]) >= 1.0, "{m}");
    assert_eq!(sum(&m, "sluice_transactions_ongoing", &[]), 0.0, "{m}");

    // Three more records on partition 0, not consumed by the group: lag = hw - committed.
    for _ in 0..3 {
        producer
            .send(
                rdkafka::producer::FutureRecord::<(), _>::to("counted")
                    .partition(0)
                    .payload("late"),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    let (_, m) = get(port, "/metrics");
    assert_eq!(
        sum(&m, "sluice_topic_records_in_total", &[topic]),
        (N + 3) as f64
    );
    let p0 = "partition=\"0\"";
    let hw = sum(&m, "sluice_partition_high_watermark", &[topic, p0]);
    assert_eq!(hw, (N / 2 + 3) as f64);
    assert_eq!(sum(&m, "sluice_group_lag", &[group, topic, p0]), 3.0, "{m}");
    drop(consumer);

    // A Produce to a partition the topic lacks: UNKNOWN_TOPIC_OR_PARTITION, counted.
    let before = sum(
        &m,
        "sluice_request_errors_total",
        &["api=\"Produce\"", "error=\"UNKNOWN_TOPIC_OR_PARTITION\""],
    );
    {
        use bytes::Bytes;
        use common::wire;
        use kafka_protocol::messages::{produce_request, ProduceRequest, TopicName};
        use kafka_protocol::protocol::StrBytes;
        let batch = wire::record_batch(
            common::now_ms(),
            &[wire::RawRecord {
                key: None,
                value: Some(b"nowhere"),
                headers: vec![],
            }],
        );
        let produce = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("counted")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(7)
                        .with_records(Some(Bytes::from(batch))),
                ])]);
        let mut s = wire::connect(broker.addr(), Duration::from_secs(10));
        s.write_all(&wire::request(9, 1, &produce)).unwrap();
        let frame = wire::read_frame(&mut s).expect("a response");
        let (_, response) = wire::response::<ProduceRequest>(9, frame);
        assert_eq!(response.responses[0].partition_responses[0].error_code, 3);
    }
    let (_, m) = get(port, "/metrics");
    let after = sum(
        &m,
        "sluice_request_errors_total",
        &["api=\"Produce\"", "error=\"UNKNOWN_TOPIC_OR_PARTITION\""],
    );
    assert_eq!(after, before + 1.0, "{m}");
    broker.assert_alive();
}

/// --log-format json: every line the broker writes is one JSON object with a level and a
/// message; a bad value is refused at startup.
#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines() {
    let mut broker = Broker::start(&["--log-format", "json"]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "logged", 1, &[]).await;
    let log = std::fs::read_to_string(broker.log_path()).expect("the broker log");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("===== test harness"))
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string(), "{l}");
        assert!(v["timestamp"].is_string(), "{l}");
        assert!(v["fields"]["message"].is_string(), "{l}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"level\":\"INFO\"")),
        "{log}"
    );
    broker.assert_alive();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "none"])
        .args(["--log-format", "xml"])
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .expect("run sluice");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--log-format xml"), "{err}");
}

/// Every metric name the PromQL expressions of a Grafana dashboard use.
fn dashboard_metrics(dashboard: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
    {
        let expr = target["expr"].as_str().expect("a PromQL expr");
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("sluice_") || word.starts_with("process_") {
                names.insert(word.to_string());
            }
        }
    }
    names
}

/// docs/grafana-dashboard.json queries only series a real broker exposes after a produce and
/// a group consume.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_uses_only_exposed_metrics() {
    use rdkafka::consumer::{CommitMode, Consumer};

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard")).expect("JSON");
    let used = dashboard_metrics(&dashboard);
    assert!(used.len() >= 20, "{used:?}");

    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut broker = Broker::start(&["--admin-listen", &listen]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "dashboard", 1, &[]).await;
    let producer = common::producer(&bs, &[]);
    for _ in 0..5 {
        producer
            .send(
                rdkafka::producer::FutureRecord::<(), _>::to("dashboard").payload("x"),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    let consumer = common::consumer(
        &bs,
        &[
            ("group.id", "dashboard"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.offset.store", "true"),
        ],
    );
    consumer.subscribe(&["dashboard"]).expect("subscribe");
    let mut consumed = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while consumed < 5 && std::time::Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            consumed += 1;
        }
    }
    assert_eq!(consumed, 5);
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");

    let (_, m) = get(port, "/metrics");
    // Series names, and the names of declared families (a counter with no series yet, such
    // as errors on a run without any).
    let mut exposed: std::collections::BTreeSet<String> = m
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    for l in m.lines() {
        let mut words = l.split(' ');
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            exposed.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        }
    }
    let missing: Vec<&String> = used.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, not on /metrics:\n{m}"
    );
    broker.assert_alive();
}

/// A committed and an aborted transaction of a real transactional producer: the transaction
/// counters, and none left ongoing once their markers are written.
#[tokio::test(flavor = "multi_thread")]
async fn transaction_counters() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use rdkafka::util::Timeout;

    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut broker = Broker::start(&["--admin-listen", &listen]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "txn-counted", 1, &[]).await;
    let mut c = common::client_config(&bs);
    c.set("transactional.id", "counted-txn");
    let p: ThreadedProducer<DefaultProducerContext> = c.create().expect("a producer");
    let t = || Timeout::After(Duration::from_secs(30));
    p.init_transactions(t()).expect("init_transactions");
    for commit in [true, false] {
        p.begin_transaction().expect("begin");
        p.send(BaseRecord::<(), str>::to("txn-counted").payload("v"))
            .map_err(|(e, _)| e)
            .expect("enqueue");
        p.flush(t()).expect("flush");
        if commit {
            p.commit_transaction(t()).expect("commit");
        } else {
            p.abort_transaction(t()).expect("abort");
        }
    }
    // Markers are written after EndTxn answers: wait for both transactions to complete.
    let m = common::wait_for(Duration::from_secs(15), || {
        let (_, m) = get(port, "/metrics");
        let done = value(&m, "sluice_transactions_committed_total") == Some(1.0)
            && value(&m, "sluice_transactions_aborted_total") == Some(1.0);
        done.then_some(m)
    })
    .unwrap_or_else(|| get(port, "/metrics").1);
    assert_eq!(
        value(&m, "sluice_transactions_committed_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "sluice_transactions_aborted_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(value(&m, "sluice_transactions_ongoing"), Some(0.0), "{m}");
    broker.assert_alive();
}
