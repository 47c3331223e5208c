//! Durability across restarts: a graceful restart keeps everything (data, offsets, topic
//! metadata and configs); a kill -9 under acks=all load loses nothing that was acknowledged,
//! serves nothing torn or foreign, and never reuses an offset.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Broker;
use futures::stream::{self, FuturesUnordered, StreamExt};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Offset;

/// More than the flusher's PARALLEL_FROM, so crashes land while fsyncs run in its pool.
const PARTITIONS: i32 = 8;

/// The payload for sequence number `seq`: self-describing and checkable.
fn make_payload(tag: &str, seq: u64) -> Vec<u8> {
    let mut v = format!("{tag}|{seq:012}|").into_bytes();
    let mut rng = common::Rng::new(seq ^ 0x5EED);
    let mut fill = vec![0u8; (seq.wrapping_mul(7919) % 300) as usize];
    rng.fill(&mut fill);
    v.extend_from_slice(&fill);
    v
}

/// Parse and validate a payload made by `make_payload`; None if it is not well-formed.
fn parse_payload(tag: &str, payload: &[u8]) -> Option<u64> {
    let prefix = format!("{tag}|");
    let rest = payload.strip_prefix(prefix.as_bytes())?;
    let seq: u64 = std::str::from_utf8(rest.get(..12)?).ok()?.parse().ok()?;
    (make_payload(tag, seq) == payload).then_some(seq)
}

/// Produce seqs `range` keyed by seq with many in flight; returns seq -> (partition, offset).
async fn produce_seqs(
    producer: &FutureProducer,
    topic: &str,
    tag: &str,
    range: std::ops::Range<u64>,
) -> BTreeMap<u64, (i32, i64)> {
    stream::iter(range)
        .map(|seq| async move {
            let payload = make_payload(tag, seq);
            let key = seq.to_string();
            let d = producer
                .send(
                    FutureRecord::to(topic)
                        .key(key.as_bytes())
                        .payload(&payload[..]),
                    Timeout::Never,
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("delivery of {tag} seq {seq} failed: {e}"));
            (seq, (d.partition, d.offset))
        })
        .buffer_unordered(10_000)
        .collect()
        .await
}

/// (offset, key, payload) of one stored record.
type Stored = (i64, Option<Vec<u8>>, Vec<u8>);

/// Everything in the topic, per partition, asserting offsets are contiguous from 0.
fn read_everything(bs: &str, topic: &str) -> BTreeMap<i32, Vec<Stored>> {
    let mut out = BTreeMap::new();
    let got = common::consume_all(bs, topic, PARTITIONS, Duration::from_secs(120));
    for (p, msgs) in got {
        let (low, high) = common::watermarks(bs, topic, p);
        assert_eq!(low, 0, "partition {p}: log start");
        assert_eq!(
            msgs.len() as i64,
            high,
            "partition {p}: record count = high watermark"
        );
        let v: Vec<_> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| {
                assert_eq!(m.offset(), i as i64, "partition {p}: contiguous offsets");
                (
                    m.offset(),
                    m.key().map(|k| k.to_vec()),
                    m.payload().map(|v| v.to_vec()).unwrap_or_default(),
                )
            })
            .collect();
        out.insert(p, v);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_restart_keeps_everything() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "durable", PARTITIONS, &[]).await;
    common::create_topic(
        &bs,
        "stamped",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;

    let p = common::producer(&bs, &[]);
    let acked = produce_seqs(&p, "durable", "restart", 0..20_000).await;
    drop(p);

    let status = broker.stop_graceful();
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
    broker.restart();
    let bs = broker.bootstrap();

    // Topic metadata survived.
    let md = common::consumer(&bs, &[])
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("metadata");
    let parts = |name: &str| {
        md.topics()
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.partitions().len())
    };
    assert_eq!(parts("durable"), Some(PARTITIONS as usize));
    assert_eq!(parts("stamped"), Some(1));

    // All data survived, identical and at the acknowledged offsets.
    let all = read_everything(&bs, "durable");
    let total: usize = all.values().map(|v| v.len()).sum();
    assert_eq!(total, 20_000, "record count after restart");
    for (seq, (p, o)) in &acked {
        let (off, key, payload) = &all[p][*o as usize];
        assert_eq!(*off, *o);
        assert_eq!(
            key.as_deref(),
            Some(seq.to_string().as_bytes()),
            "{p}/{o} key"
        );
        assert_eq!(payload, &make_payload("restart", *seq), "{p}/{o} payload");
    }

    // Offsets continue where they stopped.
    let before: HashMap<i32, i64> = all.iter().map(|(p, v)| (*p, v.len() as i64)).collect();
    let p = common::producer(&bs, &[]);
    let more = produce_seqs(&p, "durable", "restart", 20_000..23_000).await;
    let mut new_offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o) in more.values() {
        new_offsets.entry(*p).or_default().push(*o);
    }
    for (p, mut offs) in new_offsets {
        offs.sort();
        let start = before[&p];
        assert_eq!(
            offs,
            (start..start + offs.len() as i64).collect::<Vec<_>>(),
            "partition {p}: offsets after restart continue from {start}"
        );
    }

    // Topic config survived: the LogAppendTime topic still stamps with broker time.
    let t = common::now_ms();
    let d = p
        .send(
            FutureRecord::<(), _>::to("stamped")
                .payload(b"after restart")
                .timestamp(1_000_000_000_000),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    let got = common::consume(
        &bs,
        "stamped",
        &BTreeMap::from([(0, (Offset::Offset(d.offset), d.offset + 1))]),
        Duration::from_secs(30),
    );
    match got[&0][0].timestamp() {
        Timestamp::LogAppendTime(ts) => assert!(
            (ts - t).abs() < 60_000,
            "LogAppendTime {ts} far from now {t}"
        ),
        other => panic!("message.timestamp.type lost across restart: got {other:?}"),
    }

    // A second graceful stop also exits 0.
    drop(p);
    let status = broker.stop_graceful();
    assert!(status.success(), "second SIGTERM must exit 0, got {status}");
}

struct LoadResult {
    /// seq -> (partition, offset) for every acknowledged record.
    acked: BTreeMap<u64, (i32, i64)>,
    failed: usize,
}

/// Produce seqs from `first_seq` upward, up to 5000 in flight, until `stop` is set; then wait
/// for every outstanding delivery report (they fail after message.timeout.ms once the broker
/// is gone).
async fn load_until_stopped(
    producer: FutureProducer,
    first_seq: u64,
    next_seq: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acked_count: Arc<AtomicUsize>,
) -> LoadResult {
    let producer = &producer;
    let mut inflight = FuturesUnordered::new();
    let mut seq = first_seq;
    let mut res = LoadResult {
        acked: BTreeMap::new(),
        failed: 0,
    };
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if !stopping && inflight.len() < 5000 {
            let s = seq;
            seq += 1;
            next_seq.store(seq as usize, Ordering::SeqCst);
            inflight.push(async move {
                let payload = make_payload("crash", s);
                let key = s.to_string();
                let r = producer
                    .send(
                        FutureRecord::to("crashy")
                            .key(key.as_bytes())
                            .payload(&payload[..]),
                        Timeout::Never,
                    )
                    .await;
                (s, r.map(|d| (d.partition, d.offset)).map_err(|(e, _)| e))
            });
            if inflight.len() < 5000 {
                continue;
            }
        }
        match inflight.next().await {
            None => {
                if stopping {
                    break;
                }
            }
            Some((s, Ok(po))) => {
                res.acked.insert(s, po);
                acked_count.fetch_add(1, Ordering::SeqCst);
            }
            Some((_, Err(_))) => res.failed += 1,
        }
    }
    res
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_loses_nothing_acknowledged() {
    kill9_rounds(&[]).await;
}

/// The same with 256 KiB segments: the crash lands among frequent segment rolls, so recovery
/// covers sealed segments, index files and producer-state snapshots, not only one tail.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_with_small_segments_loses_nothing_acknowledged() {
    kill9_rounds(&["--set", "log.segment.bytes=262144"]).await;
}

async fn kill9_rounds(broker_args: &[&str]) {
    let mut broker = Broker::start(broker_args);
    common::create_topic(&broker.bootstrap(), "crashy", PARTITIONS, &[]).await;

    let mut all_acked: BTreeMap<u64, (i32, i64)> = BTreeMap::new();
    let mut sent_upto = 0u64;
    for round in 1..=2 {
        let bs = broker.bootstrap();
        let producer = common::producer(
            &bs,
            &[
                ("message.timeout.ms", "5000"),
                ("request.timeout.ms", "4000"),
                ("reconnect.backoff.max.ms", "200"),
            ],
        );
        let stop = Arc::new(AtomicBool::new(false));
        let acked_count = Arc::new(AtomicUsize::new(0));
        let next_seq = Arc::new(AtomicUsize::new(sent_upto as usize));
        let load = tokio::spawn(load_until_stopped(
            producer,
            sent_upto,
            next_seq.clone(),
            stop.clone(),
            acked_count.clone(),
        ));

        // Let acknowledged load build up, then pull the plug mid-stream.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while acked_count.load(Ordering::SeqCst) < 1000 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: fewer than 1000 records acknowledged under load ({} acked)",
                acked_count.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let acked_before_kill = acked_count.load(Ordering::SeqCst);
        broker.kill9();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::SeqCst);
        let res = tokio::time::timeout(Duration::from_secs(60), load)
            .await
            .expect("producer did not finish within 60 s of the kill")
            .expect("load task panicked");
        let round_sent = next_seq.load(Ordering::SeqCst) as u64;
        eprintln!(
            "round {round}: {} acked ({acked_before_kill} when killed), {} failed, seqs {}..{}",
            res.acked.len(),
            res.failed,
            sent_upto,
            round_sent
        );
        assert_eq!(
            res.acked.len() + res.failed,
            (round_sent - sent_upto) as usize,
            "every send got a delivery report"
        );
        sent_upto = round_sent;
        all_acked.extend(res.acked);

        broker.restart();
        let bs = broker.bootstrap();
        verify_log(&bs, &all_acked, sent_upto);
    }

    // (c) after the crash restarts, new records get offsets above everything before.
    let bs = broker.bootstrap();
    let highs: HashMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, common::watermarks(&bs, "crashy", p).1))
        .collect();
    let max_acked: HashMap<i32, i64> = all_acked.values().fold(HashMap::new(), |mut m, (p, o)| {
        let e = m.entry(*p).or_insert(-1);
        *e = (*e).max(*o);
        m
    });
    let p = common::producer(&bs, &[]);
    let more = produce_seqs(&p, "crashy", "crash", sent_upto..sent_upto + 3000).await;
    let mut per_part: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o) in more.values() {
        per_part.entry(*p).or_default().push(*o);
    }
    for (p, mut offs) in per_part {
        offs.sort();
        let prev_max = max_acked.get(&p).copied().unwrap_or(-1);
        assert!(
            offs[0] > prev_max,
            "partition {p}: new offset {} reuses an acknowledged offset (max acked {prev_max})",
            offs[0]
        );
        assert_eq!(
            offs,
            (highs[&p]..highs[&p] + offs.len() as i64).collect::<Vec<_>>(),
            "partition {p}: new offsets continue from the recovered high watermark {}",
            highs[&p]
        );
    }
    for (seq, po) in &more {
        all_acked.insert(*seq, *po);
    }
    verify_log(&bs, &all_acked, sent_upto + 3000);
}

/// Every acknowledged record is present exactly once at its acknowledged offset with its exact
/// payload; offsets are contiguous; every record is one this test produced (well-formed payload,
/// seq < `sent`, key matching), and no seq appears twice.
fn verify_log(bs: &str, acked: &BTreeMap<u64, (i32, i64)>, sent: u64) {
    let all = read_everything(bs, "crashy");
    let mut seen: HashMap<u64, (i32, i64)> = HashMap::new();
    for (p, msgs) in &all {
        for (o, key, payload) in msgs {
            let seq = parse_payload("crash", payload).unwrap_or_else(|| {
                panic!(
                    "{p}/{o}: record not produced by this test (malformed payload {:?})",
                    String::from_utf8_lossy(&payload[..payload.len().min(40)])
                )
            });
            assert!(
                seq < sent,
                "{p}/{o}: seq {seq} was never sent (sent < {sent})"
            );
            assert_eq!(
                key.as_deref(),
                Some(seq.to_string().as_bytes()),
                "{p}/{o}: key matches payload"
            );
            if let Some(prev) = seen.insert(seq, (*p, *o)) {
                panic!("seq {seq} stored twice: at {prev:?} and {p}/{o}");
            }
        }
    }
    let mut missing = Vec::new();
    for (seq, (p, o)) in acked {
        match seen.get(seq) {
            Some(&at) if at == (*p, *o) => {}
            Some(at) => panic!("acknowledged seq {seq} at {p}/{o} found at {at:?}"),
            None => missing.push((*seq, *p, *o)),
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged records lost, e.g. (seq, partition, offset) {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let total: usize = all.values().map(|v| v.len()).sum();
    eprintln!(
        "verified: {} records stored, {} acknowledged, {} sent",
        total,
        acked.len(),
        sent
    );
}
