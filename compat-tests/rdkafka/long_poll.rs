//! Long-poll fetch on a raw socket (Fetch v11, hand-encoded): a fetch at the high watermark
//! waits for data and is answered as soon as a record arrives; with nothing to read it is
//! answered after about max_wait_ms, empty.

mod common;

use std::time::{Duration, Instant};

use common::wire::{self, Dec, DecodedRecord, Enc};
use common::Broker;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Debug)]
struct PartitionData {
    partition: i32,
    error: i16,
    high_watermark: i64,
    records: Vec<DecodedRecord>,
}

/// Fetch v11 of `partitions` (partition, fetch offset) of one topic.
fn fetch_v11_request(
    corr: i32,
    topic: &str,
    partitions: &[(i32, i64)],
    max_wait_ms: i32,
    min_bytes: i32,
) -> Vec<u8> {
    let mut b = Enc::new();
    b.i32(-1) // replica id: consumer
        .i32(max_wait_ms)
        .i32(min_bytes)
        .i32(1 << 20) // max bytes
        .i8(0) // read uncommitted
        .i32(0) // session id: no session
        .i32(-1) // session epoch: full fetch, no session
        .i32(1)
        .string(topic)
        .i32(partitions.len() as i32);
    for &(p, offset) in partitions {
        b.i32(p)
            .i32(-1) // current leader epoch: unknown
            .i64(offset)
            .i64(-1) // log start offset (followers only)
            .i32(1 << 20); // partition max bytes
    }
    b.i32(0) // forgotten topics
        .string(""); // rack id
    wire::request(1, 11, corr, false, &b.0)
}

fn parse_fetch_v11(corr: i32, topic: &str, resp: &[u8]) -> Vec<PartitionData> {
    let mut d = Dec::new(resp);
    assert_eq!(d.i32(), corr, "correlation id");
    let _throttle = d.i32();
    assert_eq!(d.i16(), 0, "top-level error code");
    let _session = d.i32();
    assert_eq!(d.i32(), 1, "one topic in response");
    assert_eq!(d.string(), topic);
    let n = d.i32();
    let mut out = Vec::new();
    for _ in 0..n {
        let partition = d.i32();
        let error = d.i16();
        let high_watermark = d.i64();
        let _lso = d.i64();
        let _log_start = d.i64();
        let aborted = d.i32();
        for _ in 0..aborted.max(0) {
            d.i64();
            d.i64();
        }
        let _preferred_replica = d.i32();
        let records = d
            .nullable_bytes()
            .map(wire::decode_batches)
            .unwrap_or_default();
        out.push(PartitionData {
            partition,
            error,
            high_watermark,
            records,
        });
    }
    assert_eq!(d.remaining(), 0, "Fetch v11 response fully parsed");
    out
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
        (elapsed, parse_fetch_v11(77, &topic, &resp))
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
        both.extend_from_slice(&wire::request(18, 0, 502, false, &[]));
        let mut meta = Enc::new();
        meta.i32(1).string("order"); // Metadata v1, one topic
        both.extend_from_slice(&wire::request(3, 1, 503, false, &meta.0));
        let start = Instant::now();
        wire::write_lenient(&mut s, &both);
        let first = wire::read_frame(&mut s).expect("first response");
        let elapsed = start.elapsed();
        let second = wire::read_frame(&mut s).expect("second response");
        let third = wire::read_frame(&mut s).expect("third response");
        assert_eq!(
            i32::from_be_bytes(third[..4].try_into().unwrap()),
            503,
            "third response is the Metadata"
        );
        (elapsed, first, second)
    })
    .await
    .expect("pipelining thread");
    let parts = parse_fetch_v11(501, "order", &first);
    assert!(parts[0].records.is_empty());
    assert!(
        elapsed >= Duration::from_millis(600),
        "the fetch was answered after {elapsed:?}, before its max_wait of 800 ms"
    );
    let mut d = Dec::new(&second);
    assert_eq!(d.i32(), 502, "second response is the ApiVersions");
    assert_eq!(d.i16(), 0, "ApiVersions error code");
}
