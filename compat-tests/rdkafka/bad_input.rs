//! Bad input on raw sockets: the broker closes the offending connection without answering
//! (Kafka's behaviour), except the KIP-511 ApiVersions fallback and per-partition
//! CORRUPT_MESSAGE for a RecordBatch with a bad CRC. After every case the broker process is
//! alive and serves a normal rdkafka client.

mod common;

use std::collections::BTreeMap;
use std::net::Shutdown;
use std::time::Duration;

// Deliberately malformed input is built with `bytes::BufMut` on a Vec; everything well-formed
// comes from kafka-protocol's encoders (`wire::request`).
use bytes::BufMut;
use common::wire::{self, Closed, RawRecord};
use common::Broker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use rdkafka::message::Message;
use rdkafka::Offset;

const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Send `bytes` on a fresh connection and assert the broker closes it without a response.
fn expect_silent_close(broker: &Broker, bytes: &[u8], what: &str) {
    let mut s = wire::connect(broker.addr(), READ_TIMEOUT);
    wire::write_lenient(&mut s, bytes);
    let closed = wire::expect_closed(&mut s, what);
    assert!(
        matches!(closed, Closed::Eof(0) | Closed::Reset(0)),
        "{what}: broker must close without responding, got {closed:?}"
    );
}

fn broker_rss_kib(broker: &Broker) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", broker.pid())).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_bytes_close_the_connection() {
    let mut broker = Broker::start(&[]);
    // An HTTP request: its first 4 bytes read as a ~1.2 GB frame size.
    expect_silent_close(
        &broker,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "HTTP request",
    );
    common::assert_broker_serves_clients(&mut broker).await;
    // A well-sized frame full of 0xff: api key -1.
    let mut f = Vec::new();
    f.put_i32(32);
    f.put_slice(&[0xff; 32]);
    expect_silent_close(&broker, &f, "frame of 0xff bytes");
    common::assert_broker_serves_clients(&mut broker).await;
    // A zero-length frame (no room for a request header).
    expect_silent_close(&broker, &0i32.to_be_bytes(), "zero-length frame");
    // A frame too short to hold a request header.
    let mut f = Vec::new();
    f.put_i32(3);
    f.put_slice(&[0, 3, 0]);
    expect_silent_close(&broker, &f, "3-byte frame");
    common::assert_broker_serves_clients(&mut broker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_and_negative_length_prefixes_close_the_connection() {
    let mut broker = Broker::start(&[]);
    let rss_before = broker_rss_kib(&broker);
    for (size, what) in [
        (0x7fff_ffffu32, "length 0x7fffffff"),
        (0x8000_0000u32, "length 2 GiB (negative as i32)"),
        (0xffff_ffffu32, "length -1"),
        (104_857_601u32, "length socket.request.max.bytes + 1"),
    ] {
        let mut f = Vec::new();
        f.put_u32(size);
        f.put_slice(&[0u8; 64]);
        expect_silent_close(&broker, &f, what);
        broker.assert_alive();
    }
    // No allocation of the advertised size.
    if let (Some(before), Some(after)) = (rss_before, broker_rss_kib(&broker)) {
        assert!(
            after < before + 256 * 1024,
            "broker RSS grew from {before} KiB to {after} KiB after huge length prefixes"
        );
    }
    common::assert_broker_serves_clients(&mut broker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_request_max_bytes_is_enforced() {
    let mut broker = Broker::start(&["--set", "socket.request.max.bytes=1048576"]);
    // One byte over the configured limit, body actually sent: closed before or while reading.
    let mut f = Vec::new();
    f.put_i32(1_048_577);
    f.put_slice(&vec![0u8; 1_048_577]);
    expect_silent_close(&broker, &f, "frame of socket.request.max.bytes + 1");
    common::assert_broker_serves_clients(&mut broker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_frames_close_the_connection() {
    let mut broker = Broker::start(&[]);
    // Length says 100, 10 bytes arrive, then the client half-closes: the broker must notice
    // EOF mid-frame and close, not wait forever or crash.
    let mut s = wire::connect(broker.addr(), READ_TIMEOUT);
    let mut f = Vec::new();
    f.put_i32(100);
    f.put_i16(3);
    f.put_i16(1);
    f.put_i32(7);
    f.put_i16(0); // empty client id
    assert_eq!(f.len(), 14);
    wire::write_lenient(&mut s, &f[..14]);
    s.shutdown(Shutdown::Write).expect("shutdown(Write)");
    let closed = wire::expect_closed(&mut s, "truncated frame + half-close");
    assert!(
        matches!(closed, Closed::Eof(0) | Closed::Reset(0)),
        "{closed:?}"
    );
    broker.assert_alive();

    // Only part of the length prefix.
    let mut s = wire::connect(broker.addr(), READ_TIMEOUT);
    wire::write_lenient(&mut s, &[0, 0]);
    s.shutdown(Shutdown::Write).unwrap();
    wire::expect_closed(&mut s, "2 bytes of length prefix + half-close");
    broker.assert_alive();

    // A complete frame whose request body is truncated: Metadata v1 claiming 5 topics but
    // holding one half-written name.
    let mut body = Vec::new();
    body.put_i32(5);
    body.put_i16(20);
    body.put_slice(b"abc");
    let frame = wire::frame(MetadataRequest::KEY, 1, 11, 1, &body);
    expect_silent_close(&broker, &frame, "Metadata v1 with truncated body");

    // A complete frame whose header is truncated (client id length past the end).
    let mut f = Vec::new();
    f.put_i32(10);
    f.put_i16(3);
    f.put_i16(1);
    f.put_i32(12);
    f.put_i16(50);
    expect_silent_close(&broker, &f, "truncated request header");
    common::assert_broker_serves_clients(&mut broker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_api_key_and_unsupported_version_close_the_connection() {
    let mut broker = Broker::start(&[]);
    let frame = wire::frame(999, 0, 1, 1, &[]);
    expect_silent_close(&broker, &frame, "api key 999");
    common::assert_broker_serves_clients(&mut broker).await;

    // Metadata v99 (flexible header, empty topic list body). The crate refuses to encode v99:
    // these are the body bytes (empty compact topic array, allow auto-creation, no tags).
    let frame = wire::frame(MetadataRequest::KEY, 99, 2, 2, &[1, 1, 0]);
    expect_silent_close(&broker, &frame, "Metadata v99");
    // Metadata v-1.
    let frame = wire::frame(MetadataRequest::KEY, -1, 3, 1, &[]);
    expect_silent_close(&broker, &frame, "Metadata v-1");
    // Produce v2 (below the supported range v3+). The crate encodes Produce v3+ only, so the
    // v2 body (acks 1, timeout 1000, no topics) is built by hand.
    let mut body = Vec::new();
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(0);
    let frame = wire::frame(ProduceRequest::KEY, 2, 4, 1, &body);
    expect_silent_close(&broker, &frame, "Produce v2");
    common::assert_broker_serves_clients(&mut broker).await;
}

/// Check an ApiVersions v0 response (already decoded and fully consumed): (error, api ranges).
fn parse_api_versions_v0(r: &ApiVersionsResponse) -> (i16, BTreeMap<i16, (i16, i16)>) {
    let n = r.api_keys.len();
    assert!(n < 1000, "implausible api count {n}");
    let mut apis = BTreeMap::new();
    for a in &r.api_keys {
        let (key, min, max) = (a.api_key, a.min_version, a.max_version);
        assert!(min <= max, "api {key}: min {min} > max {max}");
        assert!(
            apis.insert(key, (min, max)).is_none(),
            "api {key} listed twice"
        );
    }
    (r.error_code, apis)
}

#[tokio::test(flavor = "multi_thread")]
async fn api_versions_too_new_gets_kip511_fallback() {
    let mut broker = Broker::start(&[]);
    let mut s = wire::connect(broker.addr(), READ_TIMEOUT);
    // ApiVersions v99 with a flexible header and a v3-style body, as a future client sends.
    // The crate refuses to encode v99, so its v3 body (identical bytes) is framed as v99.
    let body = wire::body(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-test"))
            .with_client_software_version(StrBytes::from_static_str("9.9.9")),
    );
    let frame = wire::frame(ApiVersionsRequest::KEY, 99, 0x5151, 2, &body);
    wire::write_lenient(&mut s, &frame);
    let resp = wire::read_frame(&mut s).expect("ApiVersions v99 must get a response");
    // Decoded as v0; `wire::response` also asserts that a v0 response has nothing after the
    // api list.
    let (correlation_id, r) = wire::response::<ApiVersionsRequest>(0, resp);
    assert_eq!(correlation_id, 0x5151, "correlation id");
    let (error, apis) = parse_api_versions_v0(&r);
    assert_eq!(error, 35, "UNSUPPORTED_VERSION");
    // As Kafka: only ApiVersions' own range, which the client retries within (franz-go takes a
    // full list as the answer, and so would never see the feature flags).
    assert_eq!(apis.keys().copied().collect::<Vec<_>>(), [18], "{apis:?}");
    let (min, max) = apis[&18];
    assert!(min == 0 && max >= 3, "ApiVersions range {min}..{max}");

    // The connection stays usable: the client retries with a version it now knows (v0).
    let frame = wire::request(0, 0x5152, &ApiVersionsRequest::default());
    wire::write_lenient(&mut s, &frame);
    let resp = wire::read_frame(&mut s).expect("ApiVersions v0 after the fallback");
    let (correlation_id, r) = wire::response::<ApiVersionsRequest>(0, resp);
    assert_eq!(correlation_id, 0x5152, "correlation id");
    let (error, apis_v0) = parse_api_versions_v0(&r);
    assert_eq!(error, 0);
    assert_eq!(apis_v0[&18], apis[&18], "the range the fallback gave");
    for key in [0i16, 1, 2, 3] {
        assert!(
            apis_v0.contains_key(&key),
            "api {key} advertised: {apis_v0:?}"
        );
    }
    drop(s);
    common::assert_broker_serves_clients(&mut broker).await;
}

/// Produce v8 of one batch to `topic` partition 0 with `acks` and `timeout_ms`.
fn produce_v8_request(topic: &str, acks: i16, timeout_ms: i32, batch: &[u8]) -> ProduceRequest {
    ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::copy_from_slice(batch))),
            ])])
}

/// Produce v8 of one batch to `topic` partition 0; returns (error_code, base_offset).
fn produce_v8(s: &mut std::net::TcpStream, corr: i32, topic: &str, batch: &[u8]) -> (i16, i64) {
    // acks=all, timeout 10 s.
    let frame = wire::request(8, corr, &produce_v8_request(topic, -1, 10_000, batch));
    wire::write_lenient(s, &frame);
    let resp = wire::read_frame(s).expect("Produce v8 response");
    // `wire::response` also asserts the response was fully parsed.
    let (correlation_id, r) = wire::response::<ProduceRequest>(8, resp);
    assert_eq!(correlation_id, corr, "correlation id");
    assert_eq!(r.responses.len(), 1, "one topic in response");
    assert_eq!(r.responses[0].name.0.as_str(), topic);
    let parts = &r.responses[0].partition_responses;
    assert_eq!(parts.len(), 1, "one partition in response");
    assert_eq!(parts[0].index, 0, "partition index");
    (parts[0].error_code, parts[0].base_offset)
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_crc_gets_corrupt_message() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "crc", 1, &[]).await;
    let ts = common::now_ms();
    let batch = |values: &[&[u8]]| {
        let recs: Vec<RawRecord> = values
            .iter()
            .map(|v| RawRecord {
                key: Some(b"k"),
                value: Some(v),
                headers: vec![("h", Some(b"v"))],
            })
            .collect();
        wire::record_batch(ts, &recs)
    };

    let mut s = wire::connect(broker.addr(), READ_TIMEOUT);
    // A valid batch is accepted (proves the batch encoding is right).
    let good = batch(&[b"first", b"second"]);
    assert_eq!(produce_v8(&mut s, 1, "crc", &good), (0, 0), "valid batch");

    // The same kind of batch with one payload byte flipped after computing the CRC (the last
    // record ends with value "fourth" followed by 5 bytes of header: count, "h", "v").
    let mut bad = batch(&[b"third", b"fourth"]);
    let n = bad.len();
    assert_eq!(&bad[n - 11..n - 5], b"fourth");
    bad[n - 6] ^= 0x20;
    let (error, _) = produce_v8(&mut s, 2, "crc", &bad);
    assert_eq!(
        error, 2,
        "CORRUPT_MESSAGE for a batch whose CRC does not match"
    );

    // A batch whose CRC field itself is wrong.
    let mut bad_crc = batch(&[b"fifth"]);
    bad_crc[wire::BATCH_CRC_START - 1] ^= 0xff;
    let (error, _) = produce_v8(&mut s, 3, "crc", &bad_crc);
    assert_eq!(error, 2, "CORRUPT_MESSAGE for a wrong CRC field");

    // The connection is still usable and nothing of the corrupt batches was stored.
    let good2 = batch(&[b"seventh"]);
    assert_eq!(
        produce_v8(&mut s, 4, "crc", &good2),
        (0, 2),
        "valid batch after"
    );
    drop(s);

    assert_eq!(common::watermarks(&bs, "crc", 0), (0, 3));
    let got = common::consume(
        &bs,
        "crc",
        &BTreeMap::from([(0, (Offset::Beginning, 3))]),
        Duration::from_secs(30),
    );
    let values: Vec<&[u8]> = got[&0].iter().map(|m| m.payload().unwrap()).collect();
    assert_eq!(values, vec![&b"first"[..], b"second", b"seventh"]);
    for m in &got[&0] {
        assert_eq!(m.key(), Some(&b"k"[..]));
        assert_eq!(
            common::header_list(m),
            vec![("h".to_string(), Some(b"v".to_vec()))]
        );
    }
    common::assert_broker_serves_clients(&mut broker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_over_message_max_bytes_is_rejected() {
    let mut broker = Broker::start(&["--set", "message.max.bytes=10000"]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "big", 1, &[]).await;
    let big = vec![b'x'; 20_000];
    let batch = wire::record_batch(
        common::now_ms(),
        &[RawRecord {
            key: None,
            value: Some(&big),
            headers: vec![],
        }],
    );
    let mut s = wire::connect(broker.addr(), READ_TIMEOUT);
    let (error, _) = produce_v8(&mut s, 1, "big", &batch);
    assert_eq!(error, 10, "MESSAGE_TOO_LARGE");
    let small = wire::record_batch(
        common::now_ms(),
        &[RawRecord {
            key: None,
            value: Some(b"small"),
            headers: vec![],
        }],
    );
    assert_eq!(produce_v8(&mut s, 2, "big", &small), (0, 0));
    drop(s);
    assert_eq!(common::watermarks(&bs, "big", 0), (0, 1));
    common::assert_broker_serves_clients(&mut broker).await;
}

/// One round of a random request: a reply, a close, or (for APIs that may legitimately wait,
/// like a decodable long-poll Fetch) a timeout are all fine; the broker dying is not.
fn send_random(broker: &Broker, frame: &[u8]) {
    let mut s = wire::connect(broker.addr(), Duration::from_millis(300));
    wire::write_lenient(&mut s, frame);
    // One response frame, EOF/reset, or a timeout (a request that legitimately waits).
    let _ = wire::read_frame(&mut s);
}

/// ApiVersions on a fresh connection must be answered promptly.
fn assert_responsive(broker: &mut Broker, what: &str) {
    broker.assert_alive();
    let mut s = wire::connect(broker.addr(), READ_TIMEOUT);
    wire::write_lenient(
        &mut s,
        &wire::request(0, 77, &ApiVersionsRequest::default()),
    );
    let resp =
        wire::read_frame(&mut s).unwrap_or_else(|e| panic!("{what}: no ApiVersions answer: {e}"));
    let (correlation_id, _) = wire::response::<ApiVersionsRequest>(0, resp);
    assert_eq!(correlation_id, 77, "{what}: correlation id");
}

/// Random bodies behind valid headers for every API and version served, and valid Produce
/// requests with random bytes flipped: every decoder and handler path must answer, close, or
/// wait, but never take the broker down or wedge it.
#[tokio::test(flavor = "multi_thread")]
async fn random_requests_never_take_the_broker_down() {
    let mut broker = Broker::start(&[]);
    common::create_topic(&broker.bootstrap(), "fuzz", 1, &[]).await;
    // (api key, min version, max version, first flexible version)
    const SERVED: &[(i16, i16, i16, i16)] = &[
        (0, 3, 13, 9),
        (1, 4, 18, 12),
        (2, 1, 10, 6),
        (3, 0, 13, 9),
        (18, 0, 4, 3),
        (19, 2, 7, 5),
        (20, 1, 6, 4),
        (22, 0, 5, 2),
        (23, 2, 4, 4),
        (60, 0, 2, 0),
    ];
    let mut rng = common::Rng::new(0x5eed);
    let mut sent = 0;
    for &(key, min, max, flexible_from) in SERVED {
        for version in min..=max {
            for _ in 0..40 {
                let len = rng.below(160) as usize;
                let mut body = vec![0u8; len];
                rng.fill(&mut body);
                // Bias towards small counts and lengths so decoding gets past the first field.
                for b in body.iter_mut() {
                    if rng.below(3) == 0 {
                        *b &= 0x03;
                    }
                }
                // Random bodies: framed raw, behind a valid header.
                let header_version = if version >= flexible_from { 2 } else { 1 };
                let frame = wire::frame(key, version, sent, header_version, &body);
                send_random(&broker, &frame);
                sent += 1;
            }
        }
        assert_responsive(&mut broker, &format!("after random API {key} requests"));
    }

    // Valid Produce v8 requests with 1-3 random bytes flipped anywhere in the frame.
    let recs: Vec<RawRecord> = (0..3)
        .map(|_| RawRecord {
            key: Some(b"k"),
            value: Some(b"value"),
            headers: vec![("h", Some(b"v"))],
        })
        .collect();
    let batch = wire::record_batch(common::now_ms(), &recs);
    // acks 1, timeout 5 s.
    let valid = wire::request(8, 1, &produce_v8_request("fuzz", 1, 5_000, &batch));
    for round in 0..1000 {
        let mut frame = valid.clone();
        for _ in 0..=rng.below(3) {
            let at = 4 + rng.below((frame.len() - 4) as u64) as usize;
            frame[at] ^= 1 << rng.below(8);
        }
        send_random(&broker, &frame);
        if round % 100 == 99 {
            assert_responsive(&mut broker, "after mutated produce requests");
        }
    }
    common::assert_broker_serves_clients(&mut broker).await;
    // catch_unwind is only a safety net: no input should reach a panic at all.
    let log = broker.log_tail(usize::MAX);
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    assert!(
        panics.is_empty(),
        "broker panicked on random input:\n{}",
        panics.join("\n")
    );
}
