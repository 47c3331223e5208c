//! Long-poll fetch on a raw socket (Fetch v11, kafka-protocol's encoder): a fetch at the high
//! watermark waits for data and is answered as soon as a record arrives; with nothing to read it
//! is answered after about max_wait_ms, empty.

mod common;

use std::time::{Duration, Instant};

use common::wire;
use common::Broker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Record;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Debug)]
struct PartitionData {
    partition: i32,
    error: i16,
    high_watermark: i64,
    records: Vec<Record>,
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Fetch v11 of `partitions` (partition, fetch offset) of one topic.
fn fetch_v11_request(
    corr: i32,
    topic: &str,
    partitions: &[(i32, i64)],
    max_wait_ms: i32,
    min_bytes: i32,
) -> Vec<u8> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1)) // consumer
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(1 << 20)
        .with_isolation_level(0) // read uncommitted
        .with_session_id(0) // no session
        .with_session_epoch(-1) // full fetch, no session
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&(p, offset)| {
                        fetch_request::FetchPartition::default()
                            .with_partition(p)
                            .with_current_leader_epoch(-1) // unknown
                            .with_fetch_offset(offset)
                            .with_log_start_offset(-1) // followers only
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )])
        .with_rack_id(StrBytes::from_static_str(""));
    wire::request(11, corr, &request)
}

fn parse_fetch_v11(corr: i32, topic: &str, resp: Vec<u8>) -> Vec<PartitionData> {
    // `wire::response` also checks the response is fully parsed.
    let (correlation_id, r) = wire::response::<FetchRequest>(11, resp);
    assert_eq!(correlation_id, corr, "correlation id");
    assert_eq!(r.error_code, 0, "top-level error code");
    assert_eq!(r.responses.len(), 1, "one topic in response");
    assert_eq!(r.responses[0].topic.0.as_str(), topic);
    r.responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .map(|p| PartitionData {
            partition: p.partition_index,
            error: p.error_code,
            high_watermark: p.high_watermark,
            records: p.records.map(wire::decode_batches).unwrap_or_default(),
        })
        .collect()
}

/// Send a fetch on a new connection from a blocking thread; returns (elapsed, partitions).
async fn timed_fetch(
    broker: &Broker,
    topic: &str,
    partitions: Vec<(i32, i64)>,
    max_wait_ms: i32,
    min_bytes: i32,
) -> tokio::task::JoinHandle<(Duration, Vec<PartitionData>)> {
    let addr = broker.addr();
    let topic = topic.to_string();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let h = tokio::task::spawn_blocking(move || {
        let mut s = wire::connect(addr, Duration::from_secs(20));
        let req = fetch_v11_request(77, &topic, &partitions, max_wait_ms, min_bytes);
        let start = Instant::now();
        wire::write_lenient(&mut s, &req);
        let _ = sent_tx.send(());
        let resp = wire::read_frame(&mut s)
            .unwrap_or_else(|e| panic!("no Fetch response within 20 s: {e}"));
        let elapsed = start.elapsed();
        (elapsed, parse_fetch_v11(77, &topic, resp))
    });
    // Return only once the request is on the wire, then give the broker a moment to read it.
    tokio::task::spawn_blocking(move || sent_rx.recv_timeout(Duration::from_secs(20)))
        .await
        .expect("join")
        .expect("fetch request was never sent");
    tokio::time::sleep(Duration::from_millis(50)).await;
    h
}

async fn produce_one(p: &FutureProducer, topic: &str, partition: i32, value: &str) -> i64 {
    p.send(
        FutureRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(value.as_bytes()),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|(e, _)| panic!("produce failed: {e}"))
    .offset
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_at_high_watermark_wakes_on_produce() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "lp", 2, &[]).await;
    let p = common::producer(&bs, &[("linger.ms", "0")]);
    // Warm the producer up (connection, producer id) and move partition 1's HW to 1.
    assert_eq!(produce_one(&p, "lp", 1, "before").await, 0);
    assert_eq!(common::watermarks(&bs, "lp", 1), (0, 1));

    // Long-poll both partitions at their high watermarks; data arrives on partition 1 only.
    let fetch = timed_fetch(&broker, "lp", vec![(0, 0), (1, 1)], 5000, 1).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(produce_one(&p, "lp", 1, "after").await, 1);
    let (elapsed, parts) = fetch.await.expect("fetch thread");

    // max_wait is 5 s; the produce (with its fsync) lands about 0.3 s in.
    assert!(
        elapsed < Duration::from_millis(3000),
        "fetch answered after {elapsed:?}: it must return soon after data arrives, not at max_wait"
    );
    assert!(
        elapsed >= Duration::from_millis(250),
        "fetch answered after {elapsed:?}, before the record was produced"
    );
    let p1 = parts
        .iter()
        .find(|p| p.partition == 1)
        .expect("partition 1 in response");
    assert_eq!(p1.error, 0);
    assert_eq!(p1.high_watermark, 2);
    assert_eq!(
        p1.records.len(),
        1,
        "exactly the new record: {:?}",
        p1.records
    );
    assert_eq!(p1.records[0].offset, 1);
    assert_eq!(p1.records[0].value.as_deref(), Some(&b"after"[..]));
    if let Some(p0) = parts.iter().find(|p| p.partition == 0) {
        assert_eq!(p0.error, 0);
        assert!(
            p0.records.is_empty(),
            "partition 0 has no data: {:?}",
            p0.records
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_with_nothing_to_read_returns_after_max_wait() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "idle", 1, &[]).await;
    let p = common::producer(&bs, &[]);
    assert_eq!(produce_one(&p, "idle", 0, "only").await, 0);

    let fetch = timed_fetch(&broker, "idle", vec![(0, 1)], 500, 1).await;
    let (elapsed, parts) = fetch.await.expect("fetch thread");
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed <= Duration::from_secs(3),
        "empty fetch with max_wait 500 ms answered after {elapsed:?}"
    );
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].error, 0);
    assert_eq!(parts[0].high_watermark, 1);
    assert!(
        parts[0].records.is_empty(),
        "no records: {:?}",
        parts[0].records
    );

    // Sanity: the same fetch below the high watermark answers at once with the record.
    let fetch = timed_fetch(&broker, "idle", vec![(0, 0)], 5000, 1).await;
    let (elapsed, parts) = fetch.await.expect("fetch thread");
    assert!(
        elapsed < Duration::from_millis(1500),
        "fetch with data available took {elapsed:?}"
    );
    assert_eq!(parts[0].records.len(), 1);
    assert_eq!(parts[0].records[0].value.as_deref(), Some(&b"only"[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_waits_for_min_bytes_until_max_wait() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "minb", 1, &[]).await;
    let p = common::producer(&bs, &[("linger.ms", "0")]);
    assert_eq!(produce_one(&p, "minb", 0, "warm").await, 0);

    // min_bytes far above what arrives: the broker holds the fetch for max_wait, then returns
    // what it has.
    let fetch = timed_fetch(&broker, "minb", vec![(0, 1)], 3000, 1_000_000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(produce_one(&p, "minb", 0, "small").await, 1);
    let (elapsed, parts) = fetch.await.expect("fetch thread");
    assert!(
        elapsed >= Duration::from_millis(2700) && elapsed <= Duration::from_secs(6),
        "min_bytes not reached: expected an answer after ~max_wait (3000 ms), got {elapsed:?}"
    );
    assert_eq!(parts[0].records.len(), 1);
    assert_eq!(parts[0].records[0].value.as_deref(), Some(&b"small"[..]));
}

/// Requests pipelined on one connection are answered in order, even when the first one is a
/// long poll: the ApiVersions response must not overtake the waiting Fetch.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_responses_stay_in_order_behind_a_long_poll() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "order", 1, &[]).await;
    let addr = broker.addr();
    let (elapsed, first, second) = tokio::task::spawn_blocking(move || {
        let mut s = wire::connect(addr, Duration::from_secs(20));
        let mut both = fetch_v11_request(501, "order", &[(0, 0)], 800, 1);
        both.extend_from_slice(&wire::request(0, 502, &ApiVersionsRequest::default()));
        let metadata =
            MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(topic_name("order")))]));
        both.extend_from_slice(&wire::request(1, 503, &metadata));
        let start = Instant::now();
        wire::write_lenient(&mut s, &both);
        let first = wire::read_frame(&mut s).expect("first response");
        let elapsed = start.elapsed();
        let second = wire::read_frame(&mut s).expect("second response");
        let third = wire::read_frame(&mut s).expect("third response");
        assert_eq!(
            wire::response::<MetadataRequest>(1, third).0,
            503,
            "third response is the Metadata"
        );
        (elapsed, first, second)
    })
    .await
    .expect("pipelining thread");
    let parts = parse_fetch_v11(501, "order", first);
    assert!(parts[0].records.is_empty());
    assert!(
        elapsed >= Duration::from_millis(600),
        "the fetch was answered after {elapsed:?}, before its max_wait of 800 ms"
    );
    let (correlation_id, versions) = wire::response::<ApiVersionsRequest>(0, second);
    assert_eq!(correlation_id, 502, "second response is the ApiVersions");
    assert_eq!(versions.error_code, 0, "ApiVersions error code");
}
