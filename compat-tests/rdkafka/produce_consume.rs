//! Produce/consume round trips with librdkafka (rdkafka crate): 100k records with keys, headers
//! and explicit timestamps over a 3-partition topic, once per compression codec; read back with
//! an assigned consumer and compared byte for byte per partition. Plus LogAppendTime topics.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Broker, HeaderList, Rng};
use futures::stream::{self, StreamExt};
use rdkafka::message::{Header, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Offset;

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: HeaderList,
    ts: i64,
}

/// Deterministic, varied records: mostly keyed (some null keys), 2 headers (some null header
/// values), payloads of 1..=600 bytes mixing compressible text and random bytes, explicit
/// increasing timestamps an hour in the past.
fn gen_records(n: usize, seed: u64) -> Vec<Rec> {
    let mut rng = Rng::new(seed);
    let base_ts = common::now_ms() - 3_600_000;
    (0..n)
        .map(|i| {
            let key = if i % 50 == 7 {
                None
            } else {
                Some(format!("key-{}", rng.below(5000)).into_bytes())
            };
            let len = 1 + rng.below(600) as usize;
            let mut payload = format!("record {i} of {n}; ").into_bytes();
            while payload.len() < len / 2 {
                payload.extend_from_slice(b"the quick brown fox jumps over the lazy dog ");
            }
            payload.truncate(len / 2);
            let mut noise = vec![0u8; len - payload.len()];
            rng.fill(&mut noise);
            payload.extend_from_slice(&noise);
            if payload.is_empty() {
                payload.push(b'x');
            }
            let mut h2 = vec![0u8; rng.below(32) as usize];
            rng.fill(&mut h2);
            let headers = vec![
                ("seq".to_string(), Some((i as u64).to_be_bytes().to_vec())),
                ("trace-hdr".to_string(), (i % 10 != 3).then_some(h2)),
            ];
            Rec {
                key,
                payload,
                headers,
                ts: base_ts + i as i64,
            }
        })
        .collect()
}

/// Send all records with up to 20k in flight; returns each record's (partition, offset).
async fn produce_all(producer: &FutureProducer, topic: &str, recs: &[Rec]) -> Vec<(i32, i64)> {
    let results: Vec<(usize, i32, i64)> = stream::iter(recs.iter().enumerate())
        .map(|(i, r)| async move {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k.as_str(),
                    value: v.as_deref(),
                });
            }
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                .payload(&r.payload[..])
                .timestamp(r.ts)
                .headers(headers);
            if let Some(k) = &r.key {
                fr = fr.key(&k[..]);
            }
            match producer.send(fr, Timeout::Never).await {
                Ok(d) => (i, d.partition, d.offset),
                Err((e, _)) => panic!("delivery of record {i} to {topic} failed: {e}"),
            }
        })
        .buffer_unordered(20_000)
        .collect()
        .await;
    let mut out = vec![(-1, -1); recs.len()];
    for (i, p, o) in results {
        out[i] = (p, o);
    }
    out
}

async fn roundtrip_codec(codec: &str) {
    roundtrip_codec_on(codec, &[]).await;
}

async fn roundtrip_codec_on(codec: &str, broker_args: &[&str]) {
    let broker = Broker::start(broker_args);
    let bs = broker.bootstrap();
    let topic = format!("roundtrip-{codec}");
    common::create_topic(&bs, &topic, PARTITIONS, &[]).await;

    let recs = gen_records(RECORDS, 0xC0DEC ^ codec.len() as u64);
    let producer = common::producer(&bs, &[("compression.type", codec)]);
    let t0 = std::time::Instant::now();
    let delivered = produce_all(&producer, &topic, &recs).await;
    eprintln!("{codec}: produced {RECORDS} records in {:?}", t0.elapsed());

    // Per partition: produced order from the delivery reports; offsets contiguous from 0.
    let mut by_partition: BTreeMap<i32, BTreeMap<i64, usize>> = BTreeMap::new();
    for (i, &(p, o)) in delivered.iter().enumerate() {
        assert!((0..PARTITIONS).contains(&p), "record {i}: partition {p}");
        let prev = by_partition.entry(p).or_default().insert(o, i);
        assert!(
            prev.is_none(),
            "offset {p}/{o} acknowledged for two records ({:?} and {i})",
            prev
        );
    }
    assert_eq!(
        by_partition.len(),
        PARTITIONS as usize,
        "records went to every partition"
    );
    let mut ranges = BTreeMap::new();
    for (&p, offs) in &by_partition {
        let n = offs.len() as i64;
        assert_eq!(
            offs.keys().copied().collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>(),
            "partition {p}: acknowledged offsets are contiguous from 0"
        );
        assert_eq!(
            common::watermarks(&bs, &topic, p),
            (0, n),
            "partition {p}: watermarks"
        );
        ranges.insert(p, (Offset::Beginning, n));
    }

    let t0 = std::time::Instant::now();
    let got = common::consume(&bs, &topic, &ranges, Duration::from_secs(120));
    eprintln!("{codec}: consumed back in {:?}", t0.elapsed());
    for (&p, offs) in &by_partition {
        let msgs = &got[&p];
        assert_eq!(msgs.len(), offs.len(), "partition {p}: record count");
        for (m, (&off, &idx)) in msgs.iter().zip(offs.iter()) {
            let want = &recs[idx];
            assert_eq!(m.offset(), off, "partition {p}: offsets in order");
            let have = Rec {
                key: m.key().map(|k| k.to_vec()),
                payload: m.payload().map(|v| v.to_vec()).unwrap_or_default(),
                headers: common::header_list(m),
                ts: match m.timestamp() {
                    Timestamp::CreateTime(t) => t,
                    other => panic!("{p}/{off}: expected CreateTime, got {other:?}"),
                },
            };
            assert!(m.payload().is_some(), "{p}/{off}: payload must not be null");
            assert_eq!(&have, want, "{codec}: record at {p}/{off} (record #{idx})");
        }
    }

    // Reading from an offset in the middle of a (compressed) batch starts exactly there.
    for (&p, offs) in &by_partition {
        let n = offs.len() as i64;
        let start = n / 2 + 1;
        let end = (start + 50).min(n);
        let ranges = BTreeMap::from([(p, (Offset::Offset(start), end))]);
        let got = common::consume(&bs, &topic, &ranges, Duration::from_secs(30));
        let msgs = &got[&p];
        assert_eq!(msgs.len() as i64, end - start, "{codec}: {p} from {start}");
        for (k, m) in msgs.iter().enumerate() {
            let off = start + k as i64;
            assert_eq!(m.offset(), off, "{codec}: reading {p} from offset {start}");
            assert_eq!(
                m.payload(),
                Some(&recs[offs[&off]].payload[..]),
                "{codec}: {p}/{off} read from mid-log"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn roundtrip_100k_uncompressed() {
    roundtrip_codec("none").await;
}

/// With a 256 KiB page-cache budget nearly every read is a cold one, served from disk and
/// dropped from the cache behind it.
#[tokio::test(flavor = "multi_thread")]
async fn roundtrip_100k_beyond_the_page_cache_budget() {
    roundtrip_codec_on("none", &["--set", "log.page.cache.max.bytes=262144"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roundtrip_100k_gzip() {
    roundtrip_codec("gzip").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roundtrip_100k_snappy() {
    roundtrip_codec("snappy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roundtrip_100k_lz4() {
    roundtrip_codec("lz4").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roundtrip_100k_zstd() {
    roundtrip_codec("zstd").await;
}

/// A topic with message.timestamp.type=LogAppendTime stamps records with the broker's clock:
/// both the delivery report and the consumed records carry LogAppendTime close to now, not the
/// (ancient) producer timestamp. A CreateTime topic on the same broker keeps producer timestamps.
#[tokio::test(flavor = "multi_thread")]
async fn log_append_time_topic_uses_broker_timestamps() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(
        &bs,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    common::create_topic(&bs, "ct", 1, &[("message.timestamp.type", "CreateTime")]).await;

    let producer = common::producer(&bs, &[]);
    const OLD_TS: i64 = 1_000_000_000_000; // 2001-09-09
    let before = common::now_ms();
    let mut lat_deliveries = Vec::new();
    for topic in ["lat", "ct"] {
        let sends: Vec<_> = (0..200)
            .map(|i| {
                let payload = format!("{topic}-{i}");
                let producer = &producer;
                async move {
                    producer
                        .send(
                            FutureRecord::<(), _>::to(topic)
                                .payload(payload.as_bytes())
                                .timestamp(OLD_TS + i),
                            Duration::from_secs(5),
                        )
                        .await
                        .unwrap_or_else(|(e, _)| panic!("produce to {topic} failed: {e}"))
                }
            })
            .collect();
        let ds = futures::future::join_all(sends).await;
        if topic == "lat" {
            lat_deliveries = ds;
        }
    }
    let after = common::now_ms();
    let close_to_now = |t: i64| t >= before - 2_000 && t <= after + 2_000;

    for d in &lat_deliveries {
        match d.timestamp {
            Timestamp::LogAppendTime(t) => assert!(
                close_to_now(t),
                "delivery report LogAppendTime {t} not within [{before}, {after}]"
            ),
            other => panic!(
                "delivery report for a LogAppendTime topic should carry the broker's \
                 log_append_time, got {other:?}"
            ),
        }
    }

    let got = common::consume_all(&bs, "lat", 1, Duration::from_secs(30));
    assert_eq!(got[&0].len(), 200);
    let mut payloads = Vec::new();
    for (i, m) in got[&0].iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        payloads.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        match m.timestamp() {
            Timestamp::LogAppendTime(t) => assert!(
                close_to_now(t),
                "record {i}: LogAppendTime {t} not within [{before}, {after}]"
            ),
            other => panic!("record {i}: expected LogAppendTime, got {other:?}"),
        }
    }

    payloads.sort();
    let mut want: Vec<String> = (0..200).map(|i| format!("lat-{i}")).collect();
    want.sort();
    assert_eq!(payloads, want, "every LogAppendTime record read back once");

    let got = common::consume_all(&bs, "ct", 1, Duration::from_secs(30));
    assert_eq!(got[&0].len(), 200);
    for m in &got[&0] {
        let payload = std::str::from_utf8(m.payload().unwrap()).unwrap();
        let i: i64 = payload.strip_prefix("ct-").unwrap().parse().unwrap();
        assert_eq!(
            m.timestamp(),
            Timestamp::CreateTime(OLD_TS + i),
            "CreateTime topic keeps the producer's timestamp ({payload})"
        );
    }
}

/// acks=1 and acks=0 (non-idempotent) producers: every record is stored once, in order.
/// With acks=0 the broker sends no response at all; a stray one would confuse librdkafka's
/// correlation and fail later requests on the connection.
#[tokio::test(flavor = "multi_thread")]
async fn acks_one_and_zero() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "acks", 1, &[]).await;
    for acks in ["0", "1"] {
        let p = common::producer(&bs, &[("enable.idempotence", "false"), ("acks", acks)]);
        let sends: Vec<_> = (0..1000)
            .map(|i| {
                let p = &p;
                async move {
                    let payload = format!("acks{acks}-{i:04}");
                    p.send(
                        FutureRecord::<(), _>::to("acks").payload(payload.as_bytes()),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("acks={acks} record {i}: {e}"))
                }
            })
            .collect();
        let ds = futures::future::join_all(sends).await;
        if acks == "0" {
            // An acks=0 delivery report only means "written to the socket": wait until the
            // broker has stored them all before the acks=1 phase expects offsets 1000..2000.
            let stored = common::wait_for(Duration::from_secs(20), || {
                (common::watermarks(&bs, "acks", 0).1 == 1000).then_some(())
            });
            assert!(
                stored.is_some(),
                "acks=0 records stored: {:?}",
                common::watermarks(&bs, "acks", 0)
            );
        }
        if acks == "1" {
            let mut offs: Vec<i64> = ds.iter().map(|d| d.offset).collect();
            offs.sort();
            assert_eq!(offs, (1000..2000).collect::<Vec<_>>(), "acks=1 offsets");
        }
    }
    // acks=0 records become visible once durable; wait for the high watermark.
    let hw = common::wait_for(Duration::from_secs(20), || {
        let (_, high) = common::watermarks(&bs, "acks", 0);
        (high == 2000).then_some(high)
    });
    assert_eq!(
        hw,
        Some(2000),
        "watermarks {:?}",
        common::watermarks(&bs, "acks", 0)
    );
    let got = common::consume_all(&bs, "acks", 1, Duration::from_secs(30));
    let mut payloads: Vec<String> = got[&0]
        .iter()
        .map(|m| String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
        .collect();
    payloads.sort();
    let mut want: Vec<String> = (0..1000)
        .flat_map(|i| [format!("acks0-{i:04}"), format!("acks1-{i:04}")])
        .collect();
    want.sort();
    assert_eq!(payloads, want, "each record stored exactly once");
}

/// Records near and over the size limits: a ~1 MB record round-trips; one over the broker's
/// message.max.bytes is rejected with MESSAGE_TOO_LARGE; a topic with a larger
/// max.message.bytes accepts a 1.5 MB record, and a consumer with the default
/// max.partition.fetch.bytes (1 MiB) still receives it (the first batch is always returned).
#[tokio::test(flavor = "multi_thread")]
async fn large_records_and_size_limits() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "big", 1, &[]).await;
    common::create_topic(&bs, "bigger", 1, &[("max.message.bytes", "2000000")]).await;
    // The client-side limit is raised so the broker is the one enforcing.
    let p = common::producer(&bs, &[("message.max.bytes", "3000000"), ("linger.ms", "0")]);
    let mut rng = Rng::new(42);
    let mut blob = |n: usize| {
        let mut v = vec![0u8; n];
        rng.fill(&mut v);
        v
    };
    let one_mb = blob(1_000_000);
    let too_big = blob(1_200_000);
    let one_and_half = blob(1_500_000);

    let d = p
        .send(
            FutureRecord::<(), _>::to("big").payload(&one_mb[..]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("1 MB record: {e}"));
    assert_eq!(d.offset, 0);
    let err = p
        .send(
            FutureRecord::<(), _>::to("big").payload(&too_big[..]),
            Duration::from_secs(5),
        )
        .await
        .expect_err("a 1.2 MB record is over message.max.bytes (1048588)");
    assert_eq!(
        err.0,
        rdkafka::error::KafkaError::MessageProduction(
            rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge
        )
    );
    let d = p
        .send(
            FutureRecord::<(), _>::to("bigger").payload(&one_and_half[..]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("1.5 MB record to a topic allowing 2 MB: {e}"));
    assert_eq!(d.offset, 0);

    assert_eq!(common::watermarks(&bs, "big", 0), (0, 1));
    let got = common::consume_all(&bs, "big", 1, Duration::from_secs(30));
    assert_eq!(got[&0].len(), 1);
    assert!(
        got[&0][0].payload() == Some(&one_mb[..]),
        "1 MB record intact"
    );
    let got = common::consume_all(&bs, "bigger", 1, Duration::from_secs(30));
    assert_eq!(got[&0].len(), 1);
    assert!(
        got[&0][0].payload() == Some(&one_and_half[..]),
        "1.5 MB record intact"
    );
}
