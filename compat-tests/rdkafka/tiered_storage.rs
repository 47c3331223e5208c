//! Tiered storage end to end, against a file store and an S3 store (moto): sealed segments reach
//! the store with their manifest, local copies go only once the manifest names them, and
//! everything stays readable from offset 0 (fetch, ListOffsets earliest and by timestamp) across
//! kill -9 during uploads, an object-store outage, remote retention and topic deletion; and
//! read_committed consumers of tiered segments still skip aborted transactions.
//!
//! Records are deterministic functions of (partition, offset), so anything read back can be
//! checked byte for byte without keeping what was produced.
//!
//! Knobs: SLUICE_TIER_TEST_MB (default 200) sizes the big round trip; the moto venv is installed
//! on first use under ${XDG_CACHE_HOME:-~/.cache}/sluice-test (see common/objstore.rs).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::objstore::{self, Moto, Proxy};
use common::{skip_allowed, Broker};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, FutureProducer, FutureRecord, Producer, ThreadedProducer,
};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

const MIB: u64 = 1 << 20;
const BUCKET: &str = "sluice-tier";
const PREFIX: &str = "cluster-a";
/// log.segment.bytes for every test: many small segments.
const SEGMENT_BYTES: &str = "1048576";

fn big_test_mb() -> u64 {
    std::env::var("SLUICE_TIER_TEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

// ---------------------------------------------------------------------------------------------
// The object store under test
// ---------------------------------------------------------------------------------------------

enum Backend {
    /// A directory: `--object-store file:///DIR`, or the default DATA_DIR/tier (root set once
    /// the broker has started).
    File {
        root: Option<PathBuf>,
        explicit: bool,
        _tmp: Option<tempfile::TempDir>,
    },
    /// moto, optionally behind a proxy that can take it down.
    S3 { moto: Moto, proxy: Option<Proxy> },
}

struct TierStore {
    backend: Backend,
}

impl TierStore {
    fn file() -> TierStore {
        Self::file_in(&std::env::temp_dir())
    }

    /// A directory store in a fresh directory under `parent`.
    fn file_in(parent: &Path) -> TierStore {
        let tmp = tempfile::Builder::new()
            .prefix("sluice-tier-store-")
            .tempdir_in(parent)
            .expect("temp dir");
        TierStore {
            backend: Backend::File {
                root: Some(tmp.path().to_path_buf()),
                explicit: true,
                _tmp: Some(tmp),
            },
        }
    }

    /// No --object-store: the broker's default, DATA_DIR/tier.
    fn default_file() -> TierStore {
        TierStore {
            backend: Backend::File {
                root: None,
                explicit: false,
                _tmp: None,
            },
        }
    }

    fn s3() -> TierStore {
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        TierStore {
            backend: Backend::S3 { moto, proxy: None },
        }
    }

    fn s3_behind_proxy() -> TierStore {
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        let proxy = Proxy::start(moto.port);
        TierStore {
            backend: Backend::S3 {
                moto,
                proxy: Some(proxy),
            },
        }
    }

    fn name(&self) -> &'static str {
        match &self.backend {
            Backend::File { explicit: true, .. } => "file",
            Backend::File { .. } => "default-file",
            Backend::S3 { .. } => "s3",
        }
    }

    fn proxy(&self) -> &Proxy {
        match &self.backend {
            Backend::S3 { proxy: Some(p), .. } => p,
            _ => panic!("this store has no proxy"),
        }
    }

    fn moto(&self) -> &Moto {
        match &self.backend {
            Backend::S3 { moto, .. } => moto,
            _ => panic!("not an S3 store"),
        }
    }

    fn broker_args(&self) -> Vec<String> {
        match &self.backend {
            Backend::File {
                root: Some(root),
                explicit: true,
                ..
            } => vec![
                "--object-store".into(),
                format!("file://{}", root.display()),
            ],
            Backend::File { .. } => vec![],
            Backend::S3 { .. } => vec!["--object-store".into(), format!("s3://{BUCKET}/{PREFIX}")],
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        match &self.backend {
            Backend::File { .. } => vec![],
            Backend::S3 { moto, proxy } => {
                let port = proxy.as_ref().map_or(moto.port, |p| p.port());
                [
                    ("AWS_ENDPOINT", format!("http://127.0.0.1:{port}")),
                    ("AWS_REGION", "us-east-1".into()),
                    ("AWS_ACCESS_KEY_ID", "sluice-test".into()),
                    ("AWS_SECRET_ACCESS_KEY", "sluice-test".into()),
                    ("AWS_ALLOW_HTTP", "true".into()),
                    ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".into()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
            }
        }
    }

    /// Every object, as (path relative to the store root / prefix, size). S3 is listed from
    /// moto directly, so this works while the proxy is down.
    fn objects(&self) -> Vec<(String, u64)> {
        match &self.backend {
            Backend::File { root, .. } => {
                let root = root
                    .as_ref()
                    .expect("file store root known after broker start");
                let mut out = Vec::new();
                walk(root, root, &mut out);
                out.sort();
                out
            }
            Backend::S3 { moto, .. } => {
                let prefix = format!("{PREFIX}/");
                let mut v: Vec<(String, u64)> = objstore::s3_list(moto.port, BUCKET, &prefix)
                    .unwrap_or_else(|e| panic!("listing the bucket: {e}"))
                    .into_iter()
                    .map(|(k, s)| {
                        let rel = k
                            .strip_prefix(&prefix)
                            .unwrap_or_else(|| panic!("object {k} outside the prefix {prefix}"));
                        (rel.to_string(), s)
                    })
                    .collect();
                v.sort();
                v
            }
        }
    }

    fn get(&self, rel: &str) -> Option<Vec<u8>> {
        match &self.backend {
            Backend::File { root, .. } => std::fs::read(root.as_ref().unwrap().join(rel)).ok(),
            Backend::S3 { moto, .. } => {
                objstore::s3_get(moto.port, BUCKET, &format!("{PREFIX}/{rel}"))
                    .unwrap_or_else(|e| panic!("reading {rel}: {e}"))
            }
        }
    }
}

/// Files under `dir` (relative to `root`), skipping object_store's in-flight temp files
/// (`NAME#N`).
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            walk(root, &path, out);
        } else if !e.file_name().to_string_lossy().contains('#') {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            out.push((rel, meta.len()));
        }
    }
}

/// Start a broker on `store` with fast tier and retention tasks and 1 MiB segments.
fn start_broker(store: &mut TierStore, extra: &[&str]) -> Broker {
    let mut args: Vec<String> = store.broker_args();
    for s in [
        "remote.log.manager.task.interval.ms=200",
        "log.retention.check.interval.ms=200",
        &format!("log.segment.bytes={SEGMENT_BYTES}"),
    ] {
        args.push("--set".into());
        args.push(s.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let broker = Broker::start_with_env(&argv, &store.env());
    if let Backend::File {
        root,
        explicit: false,
        ..
    } = &mut store.backend
    {
        *root = Some(broker.data_dir().join("tier"));
    }
    broker
}

// ---------------------------------------------------------------------------------------------
// Manifests and objects
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct RemoteSegment {
    base_offset: i64,
    next_offset: i64,
    size: u64,
    max_timestamp: i64,
    /// Entries of its aborted-transaction index (`<stem>.txnindex`); absent when none.
    #[serde(default)]
    aborted_txns: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct Manifest {
    segments: Vec<RemoteSegment>,
    copied_end: Option<i64>,
}

/// Is `dir` the object directory of `topic`, i.e. `{topic}-{32 hex digits}`?
fn is_topic_dir(dir: &str, topic: &str) -> bool {
    dir.strip_prefix(topic)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The topic's objects: (path relative to the topic directory, size).
fn topic_objects(store: &TierStore, topic: &str) -> Vec<(String, u64)> {
    store
        .objects()
        .into_iter()
        .filter_map(|(k, s)| {
            let (dir, rest) = k.split_once('/')?;
            is_topic_dir(dir, topic).then(|| (rest.to_string(), s))
        })
        .collect()
}

fn topic_dirs(store: &TierStore, topic: &str) -> BTreeSet<String> {
    store
        .objects()
        .into_iter()
        .filter_map(|(k, _)| {
            let dir = k.split_once('/')?.0.to_string();
            is_topic_dir(&dir, topic).then_some(dir)
        })
        .collect()
}

fn manifest(store: &TierStore, topic: &str, partition: i32) -> Option<Manifest> {
    let dirs = topic_dirs(store, topic);
    assert!(
        dirs.len() <= 1,
        "{topic}: more than one object directory: {dirs:?}"
    );
    let dir = dirs.into_iter().next()?;
    let bytes = store.get(&format!("{dir}/{partition}/manifest.json"))?;
    Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{topic}/{partition}: manifest.json does not parse: {e}: {}",
            String::from_utf8_lossy(&bytes)
        )
    }))
}

/// Segment objects of one partition: stem -> (log size, index exists).
fn segment_objects(
    store: &TierStore,
    topic: &str,
    partition: i32,
) -> BTreeMap<String, (Option<u64>, bool)> {
    let mut out: BTreeMap<String, (Option<u64>, bool)> = BTreeMap::new();
    let pdir = format!("{partition}/");
    for (rel, size) in topic_objects(store, topic) {
        let Some(name) = rel.strip_prefix(&pdir) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".log") {
            out.entry(stem.to_string()).or_default().0 = Some(size);
        } else if let Some(stem) = name.strip_suffix(".index") {
            out.entry(stem.to_string()).or_default().1 = true;
        }
    }
    out
}

fn stem(s: &RemoteSegment) -> String {
    format!("{:020}-{:020}", s.base_offset, s.next_offset)
}

/// The manifest is contiguous from `expected_start` and every segment it names has its .log
/// (of the recorded size) and .index objects.
fn assert_manifest_consistent(
    store: &TierStore,
    topic: &str,
    partition: i32,
    m: &Manifest,
    expected_start: Option<i64>,
) {
    let what = format!("{} store, {topic}/{partition}", store.name());
    if let (Some(first), Some(start)) = (m.segments.first(), expected_start) {
        assert_eq!(
            first.base_offset, start,
            "{what}: manifest starts at {start}"
        );
    }
    for w in m.segments.windows(2) {
        assert_eq!(
            w[0].next_offset, w[1].base_offset,
            "{what}: manifest has a gap: {w:?}"
        );
    }
    if let Some(last) = m.segments.last() {
        assert_eq!(
            m.copied_end,
            Some(last.next_offset),
            "{what}: copied_end is the last segment's end"
        );
    }
    let objects = segment_objects(store, topic, partition);
    for s in &m.segments {
        let st = stem(s);
        let got = objects.get(&st);
        assert_eq!(
            got.map(|g| g.0),
            Some(Some(s.size)),
            "{what}: {st}.log exists with the manifest's size"
        );
        assert!(got.is_some_and(|g| g.1), "{what}: {st}.index exists");
        assert!(
            s.size > 0 && s.next_offset > s.base_offset,
            "{what}: non-empty segment {s:?}"
        );
    }
}

/// On a file store on the data dir's filesystem, a segment still held locally and in the tier
/// is one file under two names (the uploader links instead of copying).
fn assert_file_objects_are_links(
    store: &TierStore,
    broker: &Broker,
    topic: &str,
    partition: i32,
    m: &Manifest,
) {
    use std::os::unix::fs::MetadataExt;
    let Backend::File {
        root: Some(root), ..
    } = &store.backend
    else {
        return;
    };
    let local_dir = broker
        .data_dir()
        .join("topics")
        .join(format!("{topic}-{partition}"));
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if dev(root) != dev(&local_dir) {
        eprintln!("[file] tier and data dir on different filesystems: segments are copied");
        return;
    }
    let topic_dir = root.join(topic_dirs(store, topic).into_iter().next().unwrap());
    let mut both = 0;
    for seg in &m.segments {
        let local = local_dir.join(format!("{:020}.log", seg.base_offset));
        let Ok(local_meta) = std::fs::metadata(&local) else {
            continue;
        };
        let object = topic_dir.join(format!("{partition}/{}.log", stem(seg)));
        let object_meta = std::fs::metadata(&object).unwrap();
        assert_eq!(
            (object_meta.dev(), object_meta.ino()),
            (local_meta.dev(), local_meta.ino()),
            "{topic}/{partition}: {} is a link to {}",
            object.display(),
            local.display()
        );
        both += 1;
    }
    assert!(
        both > 0,
        "{topic}/{partition}: local.retention.bytes keeps some tiered segments local"
    );
}

/// Base offsets of the partition's local segments (`*.log` in DATA_DIR/topics/T-P), sorted.
fn local_segments(broker: &Broker, topic: &str, partition: i32) -> Vec<i64> {
    let dir = broker
        .data_dir()
        .join("topics")
        .join(format!("{topic}-{partition}"));
    let mut v: Vec<i64> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    v.sort();
    v
}

/// Waits until every sealed segment is in the manifest (its copied_end is the active segment's
/// base) and local retention has brought the local segments down to at most `max_local`.
fn wait_tiered(
    store: &TierStore,
    broker: &Broker,
    topic: &str,
    partition: i32,
    max_local: usize,
    timeout: Duration,
) -> Manifest {
    let started = Instant::now();
    let mut last = (Vec::new(), None);
    let got = common::wait_for(timeout, || {
        let locals = local_segments(broker, topic, partition);
        let m = manifest(store, topic, partition);
        last = (
            locals.clone(),
            m.as_ref().map(|m| (m.segments.len(), m.copied_end)),
        );
        let m = m?;
        let active = *locals.last()?;
        (m.copied_end == Some(active) && locals.len() <= max_local).then_some(m)
    });
    match got {
        Some(m) => {
            eprintln!(
                "[{}] {topic}/{partition}: tiered after {:.1}s: {} remote segments, {} local",
                store.name(),
                started.elapsed().as_secs_f64(),
                m.segments.len(),
                last.0.len()
            );
            m
        }
        None => panic!(
            "{} store, {topic}/{partition}: uploads did not catch up within {timeout:?}: local segments {:?}, manifest (segments, copied_end) {:?}\n{}",
            store.name(),
            last.0,
            last.1,
            broker.log_tail(40)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic records
// ---------------------------------------------------------------------------------------------

fn key(p: i32, off: i64) -> String {
    format!("key-{p}-{off}")
}

/// 200..4200 bytes, starting with "p|off|", the rest pseudo-random from (p, off).
fn value(p: i32, off: i64) -> Vec<u8> {
    let mut rng = common::Rng::new(((p as u64) << 48) ^ (off as u64) ^ 0x7135_EED0);
    let len = 200 + rng.below(4000) as usize;
    let mut v = format!("{p}|{off}|").into_bytes();
    v.reserve(len);
    while v.len() < len {
        let x = rng.next_u64().to_le_bytes();
        let n = (len - v.len()).min(8);
        v.extend_from_slice(&x[..n]);
    }
    v
}

/// Average record size on the wire, roughly (for sizing).
const AVG_RECORD: u64 = 2_250;

fn ts(t0: i64, off: i64) -> i64 {
    t0 + off
}

/// Produces offsets `range` to each of `parts` (enqueued strictly in order, so with the
/// idempotent producer the offset of record (p, off) is `off`: the topic must hold exactly
/// `range.start` records per partition before). Panics on any delivery failure or an offset
/// that is not the expected one. Returns the payload bytes sent.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    parts: &[i32],
    range: Range<i64>,
    t0: i64,
) -> u64 {
    let mut inflight = FuturesUnordered::new();
    let mut bytes = 0u64;
    let check = |(p, off, r): (i32, i64, _)| match r {
        Ok(Ok(d)) => {
            let d: rdkafka::producer::future_producer::Delivery = d;
            assert_eq!(
                (d.partition, d.offset),
                (p, off),
                "{topic}: record acknowledged at an unexpected offset"
            );
        }
        Ok(Err((e, _))) => panic!("{topic}: delivery of {p}/{off} failed: {e}"),
        Err(_) => panic!("{topic}: delivery of {p}/{off} canceled"),
    };
    for off in range {
        for &p in parts {
            let k = key(p, off);
            let v = value(p, off);
            bytes += (k.len() + v.len()) as u64;
            let mut rec = FutureRecord::to(topic)
                .partition(p)
                .key(k.as_bytes())
                .payload(&v[..])
                .timestamp(ts(t0, off));
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        inflight.push(async move { (p, off, f.await) });
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        match inflight.next().await {
                            Some(x) => check(x),
                            None => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                    Err((e, _)) => panic!("{topic}: enqueueing {p}/{off} failed: {e}"),
                }
            }
            while inflight.len() >= 20_000 {
                check(inflight.next().await.unwrap());
            }
        }
    }
    while let Some(x) = inflight.next().await {
        check(x);
    }
    bytes
}

fn big_producer(bs: &str) -> FutureProducer {
    common::producer(bs, &[("linger.ms", "20"), ("batch.size", "1000000")])
}

/// Consumes [from, to) of every partition in `ranges` from an assigned consumer and checks
/// every record: offsets contiguous (no gap, no duplicate), key, value and CreateTime timestamp
/// as produced. Returns (records, key+value bytes, elapsed).
fn consume_verify(
    bs: &str,
    topic: &str,
    ranges: &BTreeMap<i32, Range<i64>>,
    t0: i64,
    timeout: Duration,
    what: &str,
) -> (u64, u64, Duration) {
    let c = common::consumer(bs, &[("fetch.max.bytes", "52428800")]);
    let mut tpl = TopicPartitionList::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut remaining = 0;
    for (&p, r) in ranges {
        next.insert(p, r.start);
        if r.start < r.end {
            tpl.add_partition_offset(topic, p, Offset::Offset(r.start))
                .unwrap();
            remaining += 1;
        }
    }
    let started = Instant::now();
    if remaining == 0 {
        return (0, 0, started.elapsed());
    }
    c.assign(&tpl).expect("assign");
    let deadline = started + timeout;
    let (mut records, mut bytes) = (0u64, 0u64);
    while remaining > 0 {
        if Instant::now() > deadline {
            panic!("{what}: consuming {topic} timed out after {timeout:?}; next offsets {next:?}, wanted {ranges:?}");
        }
        let m = match c.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(e)) => {
                panic!("{what}: consumer error on {topic} (next offsets {next:?}): {e}")
            }
            Some(Ok(m)) => m,
        };
        let p = m.partition();
        let end = ranges[&p].end;
        let want = next[&p];
        if want >= end {
            continue; // past the range
        }
        let off = m.offset();
        assert_eq!(
            off, want,
            "{what}: {topic}/{p}: expected offset {want}, got {off} (gap or duplicate)"
        );
        assert_eq!(
            m.key(),
            Some(key(p, off).as_bytes()),
            "{what}: {topic}/{p}@{off}: key"
        );
        let v = value(p, off);
        assert!(
            m.payload() == Some(&v[..]),
            "{what}: {topic}/{p}@{off}: value differs from what was produced ({} bytes vs {})",
            m.payload().map_or(0, |x| x.len()),
            v.len()
        );
        assert_eq!(
            m.timestamp(),
            Timestamp::CreateTime(ts(t0, off)),
            "{what}: {topic}/{p}@{off}: timestamp"
        );
        records += 1;
        bytes += (v.len() + key(p, off).len()) as u64;
        next.insert(p, off + 1);
        if off + 1 == end {
            remaining -= 1;
        }
    }
    (records, bytes, started.elapsed())
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64().max(1e-9)
}

/// Offset for `timestamp` via ListOffsets (rdkafka offsets_for_times); -1 for "none".
fn offset_for_time(bs: &str, topic: &str, p: i32, timestamp: i64) -> i64 {
    let c = common::consumer(bs, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Offset(timestamp))
        .unwrap();
    let got = c
        .offsets_for_times(tpl, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("offsets_for_times({topic}/{p}, {timestamp}): {e}"));
    let e = got.find_partition(topic, p).expect("partition in answer");
    assert!(
        e.error().is_ok(),
        "offsets_for_times({topic}/{p}, {timestamp}): {:?}",
        e.error()
    );
    match e.offset() {
        Offset::Offset(o) => o,
        Offset::End => -1,
        other => panic!("offsets_for_times({topic}/{p}, {timestamp}): unexpected {other:?}"),
    }
}

fn log_text(broker: &Broker) -> String {
    String::from_utf8_lossy(&std::fs::read(broker.log_path()).unwrap_or_default()).to_string()
}

/// No panics and no ERROR lines in the broker log, and no failed tier reads.
fn assert_log_clean(broker: &mut Broker) {
    broker.assert_alive();
    let text = log_text(broker);
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("panicked")
                || l.contains(" ERROR ")
                || l.contains("reading from the tier failed")
        })
        .take(10)
        .collect();
    assert!(bad.is_empty(), "broker log has errors:\n{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 1. Big round trip
// ---------------------------------------------------------------------------------------------

async fn big_round_trip(mut store: TierStore, broker_args: &[&str]) {
    const PARTS: i32 = 2;
    let mut broker = start_broker(&mut store, broker_args);
    let bs = broker.bootstrap();
    let topic = "tiered";
    common::create_topic(&bs, topic, PARTS, &[("local.retention.bytes", "2097152")]).await;

    let mb = big_test_mb();
    let per_partition = (mb * MIB / AVG_RECORD / PARTS as u64) as i64;
    let t0 = common::now_ms() - 3_600_000;
    let started = Instant::now();
    let producer = big_producer(&bs);
    let bytes = produce(&producer, topic, &[0, 1], 0..per_partition, t0).await;
    drop(producer);
    let produce_time = started.elapsed();
    eprintln!(
        "[{}] produced {} records, {:.1} MiB in {:.1}s ({:.1} MiB/s)",
        store.name(),
        per_partition * PARTS as i64,
        bytes as f64 / MIB as f64,
        produce_time.as_secs_f64(),
        mbps(bytes, produce_time)
    );

    // Uploads catch up; only the last few segments stay local.
    let mut manifests = BTreeMap::new();
    for p in 0..PARTS {
        let m = wait_tiered(&store, &broker, topic, p, 4, Duration::from_secs(120));
        assert_manifest_consistent(&store, topic, p, &m, Some(0));
        let locals = local_segments(&broker, topic, p);
        let segments_total = m.segments.len() + 1;
        assert!(
            m.segments.len() as u64 >= mb / PARTS as u64 * 3 / 4,
            "{topic}/{p}: ~1 MiB segments, so about {} in the tier; got {}",
            mb / PARTS as u64,
            m.segments.len()
        );
        assert!(
            locals.len() <= 4 && locals.len() * 5 < segments_total,
            "{topic}/{p}: most local segments deleted: {} local of {segments_total}",
            locals.len()
        );
        assert!(
            locals[0] > 0,
            "{topic}/{p}: the first local segment is gone"
        );
        assert_file_objects_are_links(&store, &broker, topic, p, &m);
        manifests.insert(p, m);
    }

    // Earliest is 0 (the tier), latest is everything.
    for p in 0..PARTS {
        assert_eq!(
            common::watermarks(&bs, topic, p),
            (0, per_partition),
            "{topic}/{p}: (earliest, latest)"
        );
    }

    // Timestamp lookups that land in tiered segments, and one in the local part.
    for p in 0..PARTS {
        let m = &manifests[&p];
        let local_start = local_segments(&broker, topic, p)[0];
        assert_eq!(
            offset_for_time(&bs, topic, p, t0 - 60_000),
            0,
            "{topic}/{p}: before everything -> 0"
        );
        let remote_only: Vec<&RemoteSegment> = m
            .segments
            .iter()
            .filter(|s| s.next_offset <= local_start)
            .collect();
        assert!(
            remote_only.len() >= 3,
            "{topic}/{p}: segments only in the tier: {remote_only:?}"
        );
        for seg in [
            remote_only[0],
            remote_only[remote_only.len() / 2],
            remote_only[remote_only.len() - 1],
        ] {
            for k in [
                seg.base_offset,
                (seg.base_offset + seg.next_offset) / 2,
                seg.next_offset - 1,
            ] {
                assert_eq!(
                    offset_for_time(&bs, topic, p, ts(t0, k)),
                    k,
                    "{topic}/{p}: offset for the timestamp of tiered offset {k}"
                );
            }
        }
        let k = (local_start + per_partition) / 2;
        assert_eq!(
            offset_for_time(&bs, topic, p, ts(t0, k)),
            k,
            "{topic}/{p}: offset for a local timestamp"
        );
        assert_eq!(
            offset_for_time(&bs, topic, p, ts(t0, per_partition) + 1000),
            -1,
            "{topic}/{p}: after everything -> none"
        );
    }

    // Everything from offset 0, byte-identical, cold (tier reads through the empty cache).
    let ranges: BTreeMap<i32, Range<i64>> = (0..PARTS).map(|p| (p, 0..per_partition)).collect();
    let (n, b, d) = consume_verify(
        &bs,
        topic,
        &ranges,
        t0,
        Duration::from_secs(180),
        "cold read",
    );
    assert_eq!(n, (per_partition * PARTS as i64) as u64);
    eprintln!(
        "[{}] consumed {n} records, {:.1} MiB from offset 0 in {:.1}s ({:.1} MiB/s)",
        store.name(),
        b as f64 / MIB as f64,
        d.as_secs_f64(),
        mbps(b, d)
    );

    // Reads that start inside tiered segments, not at batch boundaries.
    for p in 0..PARTS {
        let m = &manifests[&p];
        for seg in [
            &m.segments[1],
            &m.segments[m.segments.len() / 3],
            &m.segments[m.segments.len() * 2 / 3],
        ] {
            let from = seg.base_offset + (seg.next_offset - seg.base_offset) * 2 / 3;
            let r = BTreeMap::from([(p, from..seg.next_offset + 50)]);
            consume_verify(
                &bs,
                topic,
                &r,
                t0,
                Duration::from_secs(30),
                "mid-segment read",
            );
        }
    }

    // Segments larger than the multipart threshold (16 MiB) go up in parts.
    let large = "tiered-large";
    common::create_topic(
        &bs,
        large,
        1,
        &[
            ("segment.bytes", "20971520"),
            ("local.retention.bytes", "1"),
        ],
    )
    .await;
    let n_large = (45 * MIB / AVG_RECORD) as i64;
    let producer = big_producer(&bs);
    produce(&producer, large, &[0], 0..n_large, t0).await;
    drop(producer);
    let m = wait_tiered(&store, &broker, large, 0, 1, Duration::from_secs(120));
    assert_manifest_consistent(&store, large, 0, &m, Some(0));
    assert_eq!(m.segments.len(), 2, "{large}: two sealed 20 MiB segments");
    assert!(
        m.segments.iter().all(|s| s.size > 16 * MIB),
        "{large}: segments above the multipart threshold: {:?}",
        m.segments
    );
    assert_eq!(common::watermarks(&bs, large, 0), (0, n_large));

    // After a graceful restart (the chunk cache starts empty), several consumers replay the
    // same tiered data at once, so they miss on the same chunks at the same time.
    assert_log_clean(&mut broker);
    let status = broker.stop_graceful();
    assert!(status.success(), "graceful stop: {status}");
    broker.restart();
    let bs = broker.bootstrap();
    for p in 0..PARTS {
        assert_eq!(
            common::watermarks(&bs, topic, p),
            (0, per_partition),
            "{topic}/{p}: after restart"
        );
    }
    let started = Instant::now();
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let bs = bs.clone();
            let ranges = ranges.clone();
            std::thread::spawn(move || {
                consume_verify(
                    &bs,
                    topic,
                    &ranges,
                    t0,
                    Duration::from_secs(180),
                    &format!("concurrent cold reader {i}"),
                )
            })
        })
        .chain(std::iter::once({
            let bs = bs.clone();
            std::thread::spawn(move || {
                consume_verify(
                    &bs,
                    large,
                    &BTreeMap::from([(0, 0..n_large)]),
                    t0,
                    Duration::from_secs(180),
                    "large segments",
                )
            })
        }))
        .collect();
    let mut total = 0;
    for r in readers {
        match r.join() {
            Ok((_, b, _)) => total += b,
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    let d = started.elapsed();
    eprintln!(
        "[{}] 3 concurrent cold readers + large-segment reader: {:.1} MiB in {:.1}s ({:.1} MiB/s)",
        store.name(),
        total as f64 / MIB as f64,
        d.as_secs_f64(),
        mbps(total, d)
    );
    assert_log_clean(&mut broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn big_round_trip_file_store() {
    big_round_trip(TierStore::file(), &[]).await;
}

/// A file store on another filesystem (tmpfs): no hard links there, so segments are copied,
/// paced by remote.log.manager.copy.max.bytes.per.second.
#[tokio::test(flavor = "multi_thread")]
async fn big_round_trip_file_store_on_another_filesystem() {
    use std::os::unix::fs::MetadataExt;
    let other = Path::new("/dev/shm");
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if (dev(other).is_none() || dev(other) == dev(&std::env::temp_dir()))
        && skip_allowed(
            "big_round_trip_file_store_on_another_filesystem",
            "/dev/shm is missing or on the temp dir's filesystem",
        )
    {
        return;
    }
    big_round_trip(
        TierStore::file_in(other),
        &[
            "--set",
            "remote.log.manager.copy.max.bytes.per.second=104857600",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn big_round_trip_s3() {
    big_round_trip(TierStore::s3(), &[]).await;
}

// ---------------------------------------------------------------------------------------------
// 2. kill -9 during uploads
// ---------------------------------------------------------------------------------------------

/// Produces to partition 0 of `topic` from offset 0 on until `stop`; returns the acknowledged
/// offsets' end (all of 0..end were acknowledged, in order) and the number of failures.
async fn produce_until(
    producer: FutureProducer,
    topic: String,
    t0: i64,
    stop: Arc<AtomicBool>,
) -> (i64, u64) {
    let mut inflight = FuturesUnordered::new();
    let mut acked = BTreeSet::new();
    let mut failed = 0u64;
    let mut off = 0i64;
    let mut enqueueing = true;
    loop {
        if enqueueing && stop.load(Ordering::SeqCst) {
            enqueueing = false;
        }
        if enqueueing && inflight.len() < 5_000 {
            let (k, v) = (key(0, off), value(0, off));
            let rec = FutureRecord::to(&topic)
                .partition(0)
                .key(k.as_bytes())
                .payload(&v[..])
                .timestamp(ts(t0, off));
            match producer.send_result(rec) {
                Ok(f) => {
                    let o = off;
                    inflight.push(async move { (o, f.await) });
                    off += 1;
                    continue;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {}
                Err((e, _)) => panic!("enqueue failed: {e}"),
            }
        }
        match tokio::time::timeout(Duration::from_millis(50), inflight.next()).await {
            Ok(Some((o, Ok(Ok(d))))) => {
                assert_eq!(
                    (d.partition, d.offset),
                    (0, o),
                    "acknowledged at an unexpected offset"
                );
                acked.insert(o);
            }
            Ok(Some(_)) => failed += 1,
            Ok(None) if !enqueueing => break,
            _ => {}
        }
    }
    // Acknowledgements are in order for the idempotent producer: 0..end.
    let end = acked.iter().next_back().map_or(0, |o| o + 1);
    assert_eq!(
        acked.len() as i64,
        end,
        "acknowledged offsets are a prefix 0..{end}"
    );
    (end, failed)
}

async fn kill9_during_uploads(mut store: TierStore) {
    // A chunk cache of 3 MiB: reads from the tier evict constantly.
    let mut broker = start_broker(
        &mut store,
        &["--set", "remote.fetch.cache.size.bytes=3145728"],
    );
    let bs = broker.bootstrap();
    let topic = "crashy";
    common::create_topic(&bs, topic, 1, &[("local.retention.bytes", "2097152")]).await;
    let t0 = common::now_ms() - 3_600_000;

    let stop = Arc::new(AtomicBool::new(false));
    let producer = common::producer(&bs, &[("linger.ms", "10"), ("message.timeout.ms", "8000")]);
    let task = tokio::spawn(produce_until(producer, topic.to_string(), t0, stop.clone()));

    // Kill while segments are being copied: the manifest has a few, more are waiting.
    let state = common::wait_for(Duration::from_secs(90), || {
        let m = manifest(&store, topic, 0)?;
        let locals = local_segments(&broker, topic, 0);
        let waiting = locals
            .iter()
            .filter(|&&b| b >= m.copied_end.unwrap_or(0))
            .count();
        (m.segments.len() >= 4 && waiting >= 2).then_some((m.segments.len(), waiting))
    })
    .unwrap_or_else(|| {
        panic!(
            "{}: no uploads seen within 90 s\n{}",
            store.name(),
            broker.log_tail(40)
        )
    });
    broker.kill9();
    stop.store(true, Ordering::SeqCst);
    let (acked_end, failed) = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("producer task finishes after the kill")
        .expect("producer task");
    let named: BTreeSet<String> = manifest(&store, topic, 0)
        .unwrap()
        .segments
        .iter()
        .map(stem)
        .collect();
    let orphans = segment_objects(&store, topic, 0)
        .keys()
        .filter(|k| !named.contains(*k))
        .count();
    eprintln!("[{}] killed with {} segments in the manifest, {} local waiting, {orphans} uploaded but not in the manifest; {acked_end} acknowledged, {failed} failed", store.name(), state.0, state.1);
    assert!(acked_end > 0);

    broker.restart();
    let bs = broker.bootstrap();
    let (low, high) = common::watermarks(&bs, topic, 0);
    assert_eq!(low, 0, "log start after restart");
    assert!(
        high >= acked_end,
        "every acknowledged record survives: high watermark {high} < {acked_end}"
    );
    let ranges = BTreeMap::from([(0, 0..high)]);
    consume_verify(
        &bs,
        topic,
        &ranges,
        t0,
        Duration::from_secs(120),
        "after kill -9",
    );

    // Uploads resume where the manifest stopped; then everything again, now from the tier.
    let m = wait_tiered(&store, &broker, topic, 0, 4, Duration::from_secs(90));
    assert_manifest_consistent(&store, topic, 0, &m, Some(0));
    assert_eq!(common::watermarks(&bs, topic, 0), (0, high));
    consume_verify(
        &bs,
        topic,
        &ranges,
        t0,
        Duration::from_secs(120),
        "after kill -9 and catch-up",
    );
    // More records continue the log.
    let producer = common::producer(&bs, &[]);
    produce(&producer, topic, &[0], high..high + 100, t0).await;
    consume_verify(
        &bs,
        topic,
        &BTreeMap::from([(0, high - 10..high + 100)]),
        t0,
        Duration::from_secs(30),
        "after more produce",
    );
    assert_log_clean(&mut broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_during_uploads_file_store() {
    kill9_during_uploads(TierStore::file()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_during_uploads_s3() {
    kill9_during_uploads(TierStore::s3()).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Object-store outage
// ---------------------------------------------------------------------------------------------

/// The store goes away (connection refused, open connections reset) while moto keeps its
/// state, as S3 does through an outage; producing goes on; local segments stay until they are
/// uploaded after the store is back.
#[tokio::test(flavor = "multi_thread")]
async fn s3_outage_keeps_local_segments_and_recovers() {
    let mut store = TierStore::s3_behind_proxy();
    let mut broker = start_broker(&mut store, &[]);
    let bs = broker.bootstrap();
    let topic = "outage";
    common::create_topic(&bs, topic, 1, &[("local.retention.bytes", "2097152")]).await;
    let t0 = common::now_ms() - 3_600_000;
    let producer = common::producer(&bs, &[("linger.ms", "10")]);

    let n1 = (6 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], 0..n1, t0).await;
    let before = wait_tiered(&store, &broker, topic, 0, 4, Duration::from_secs(60));

    // Outage.
    store.proxy().set_up(false);
    let outage = Instant::now();
    let n2 = n1 + (12 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], n1..n2, t0).await; // acks=all, panics on any error
    eprintln!(
        "[s3] produced 12 MiB during the outage in {:.1}s",
        outage.elapsed().as_secs_f64()
    );
    common::wait_for(Duration::from_secs(60), || {
        log_text(&broker)
            .lines()
            .any(|l| l.contains("WARN") && l.contains("tier:"))
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no WARN tier: line within 60 s of the outage\n{}",
            broker.log_tail(30)
        )
    });
    eprintln!(
        "[s3] first WARN {:.1}s into the outage",
        outage.elapsed().as_secs_f64()
    );
    // Several retention passes later, nothing that is not in the tier was deleted locally.
    std::thread::sleep(Duration::from_secs(1));
    let locals = local_segments(&broker, topic, 0);
    assert!(
        locals.len() >= 12,
        "local segments are kept during the outage: {} ({locals:?})",
        locals.len()
    );
    assert!(
        locals[0] <= before.copied_end.unwrap(),
        "no un-uploaded segment was deleted: first local {} > copied_end {:?}",
        locals[0],
        before.copied_end
    );
    assert_eq!(
        manifest(&store, topic, 0).as_ref(),
        Some(&before),
        "the manifest did not change during the outage"
    );
    // Hot data is served during the outage.
    consume_verify(
        &bs,
        topic,
        &BTreeMap::from([(0, n1..n2)]),
        t0,
        Duration::from_secs(60),
        "local reads during the outage",
    );

    // A restart during the outage: the broker comes up (it cannot read the manifest yet),
    // serves and takes the local data, and deletes nothing.
    drop(producer);
    let status = broker.stop_graceful();
    assert!(status.success(), "graceful stop: {status}");
    let restart = Instant::now();
    broker.restart();
    eprintln!(
        "[s3] restarted during the outage in {:.1}s",
        restart.elapsed().as_secs_f64()
    );
    let bs = broker.bootstrap();
    let producer = common::producer(&bs, &[("linger.ms", "10")]);
    let n3 = n2 + (2 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], n2..n3, t0).await;
    consume_verify(
        &bs,
        topic,
        &BTreeMap::from([(0, n1..n3)]),
        t0,
        Duration::from_secs(60),
        "local reads after a restart during the outage",
    );
    // Wait for the restarted broker's own failed upload pass, so its recovery is logged.
    let marker = log_text(&broker)
        .rfind("test harness: starting sluice")
        .unwrap();
    common::wait_for(Duration::from_secs(60), || {
        log_text(&broker)[marker..]
            .contains("local segments are kept until uploaded")
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no failed upload pass logged after the restart\n{}",
            broker.log_tail(30)
        )
    });
    std::thread::sleep(Duration::from_secs(1));
    let locals_now = local_segments(&broker, topic, 0);
    assert!(
        locals_now[0] <= locals[0],
        "no local segment was deleted while the tier is unreachable: first local {} (was {})",
        locals_now[0],
        locals[0]
    );
    let outage_len = outage.elapsed();

    // Back on the same port.
    store.proxy().set_up(true);
    let back = Instant::now();
    let m = wait_tiered(&store, &broker, topic, 0, 4, Duration::from_secs(120));
    eprintln!(
        "[s3] outage {:.1}s; uploads caught up {:.1}s after the store came back",
        outage_len.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    assert_manifest_consistent(&store, topic, 0, &m, Some(0));
    let log = log_text(&broker);
    assert!(
        log.contains("tier: uploads recovered"),
        "INFO line on recovery\n{}",
        broker.log_tail(30)
    );
    for l in log
        .lines()
        .filter(|l| l.contains("tier:") && !l.contains("DEBUG"))
        .take(4)
    {
        eprintln!("[s3] broker: {l}");
    }
    assert_eq!(
        common::watermarks(&bs, topic, 0),
        (0, n3),
        "the log start is back at the tier's start"
    );
    consume_verify(
        &bs,
        topic,
        &BTreeMap::from([(0, 0..n3)]),
        t0,
        Duration::from_secs(120),
        "everything after the outage",
    );
    assert_log_clean(&mut broker);
}

/// The store hangs (moto SIGSTOPped: connections are accepted, requests never answered, as in
/// a brownout or a black-holed network path) and comes back with its state (SIGCONT).
/// Producing goes on and local segments stay (hard checks). An operator should learn within a
/// minute that uploads are stuck (a WARN line), and a broker restarted meanwhile must come up
/// and serve its local data; those two are collected and reported together at the end, after
/// the store is back and everything was read again.
#[tokio::test(flavor = "multi_thread")]
async fn s3_hung_store_keeps_local_segments_and_recovers() {
    let mut store = TierStore::s3();
    let mut broker = start_broker(&mut store, &[]);
    let bs = broker.bootstrap();
    let topic = "hung";
    common::create_topic(&bs, topic, 1, &[("local.retention.bytes", "2097152")]).await;
    let t0 = common::now_ms() - 3_600_000;
    let producer = common::producer(&bs, &[("linger.ms", "10")]);
    let n1 = (4 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], 0..n1, t0).await;
    let before = wait_tiered(&store, &broker, topic, 0, 4, Duration::from_secs(60));
    let mut problems = Vec::new();

    store.moto().signal(libc::SIGSTOP);
    let hang = Instant::now();
    let n2 = n1 + (8 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], n1..n2, t0).await; // acks=all, panics on any error
    consume_verify(
        &bs,
        topic,
        &BTreeMap::from([(0, n1..n2)]),
        t0,
        Duration::from_secs(30),
        "local reads while the store hangs",
    );
    let warned = common::wait_for(Duration::from_secs(60), || {
        log_text(&broker)
            .lines()
            .any(|l| l.contains("WARN") && l.contains("tier:"))
            .then_some(())
    });
    match warned {
        Some(()) => eprintln!(
            "[s3] first WARN {:.1}s into the hang",
            hang.elapsed().as_secs_f64()
        ),
        None => problems.push(format!(
            "no WARN tier: line within 60 s of the store hanging; the log has only: {:?}",
            log_text(&broker)
                .lines()
                .filter(|l| l.contains("transport error"))
                .map(|l| l.chars().take(160).collect::<String>())
                .collect::<Vec<_>>()
        )),
    }
    let locals = local_segments(&broker, topic, 0);
    assert!(
        locals.len() >= 8,
        "local segments are kept while the store hangs: {locals:?}"
    );
    assert!(
        locals[0] <= before.copied_end.unwrap(),
        "no un-uploaded segment was deleted"
    );

    // Restart while the store still hangs.
    drop(producer);
    let status = broker.stop_graceful();
    assert!(status.success(), "graceful stop: {status}");
    let restart = Instant::now();
    let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| broker.restart()));
    if restarted.is_ok() {
        eprintln!(
            "[s3] restarted while the store hangs in {:.1}s",
            restart.elapsed().as_secs_f64()
        );
        consume_verify(
            &broker.bootstrap(),
            topic,
            &BTreeMap::from([(0, n1..n2)]),
            t0,
            Duration::from_secs(30),
            "local reads after a restart while the store hangs",
        );
    } else {
        problems.push("a broker restarted while the object store hangs did not accept connections within 20 s".to_string());
    }

    store.moto().signal(libc::SIGCONT);
    let back = Instant::now();
    if restarted.is_err() {
        let addr = broker.addr();
        common::wait_for(Duration::from_secs(120), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "the broker did not come up even after the store is back\n{}",
                broker.log_tail(30)
            )
        });
        eprintln!("[s3] the restarted broker accepted connections {:.1}s after the restart, {:.1}s after SIGCONT", restart.elapsed().as_secs_f64(), back.elapsed().as_secs_f64());
    }
    let bs = broker.bootstrap();
    let m = wait_tiered(&store, &broker, topic, 0, 4, Duration::from_secs(240));
    eprintln!(
        "[s3] hang {:.1}s; uploads caught up {:.1}s after SIGCONT",
        (back - hang).as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    assert_manifest_consistent(&store, topic, 0, &m, Some(0));
    assert_eq!(common::watermarks(&bs, topic, 0), (0, n2));
    consume_verify(
        &bs,
        topic,
        &BTreeMap::from([(0, 0..n2)]),
        t0,
        Duration::from_secs(120),
        "everything after the hang",
    );
    assert_log_clean(&mut broker);
    assert!(
        problems.is_empty(),
        "while the object store hung:\n- {}",
        problems.join("\n- ")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Topic deletion
// ---------------------------------------------------------------------------------------------

async fn delete_topic_removes_objects(mut store: TierStore) {
    let mut broker = start_broker(&mut store, &[]);
    let bs = broker.bootstrap();
    let t0 = common::now_ms() - 3_600_000;
    let n = (5 * MIB / AVG_RECORD) as i64;
    let producer = common::producer(&bs, &[("linger.ms", "10")]);
    for topic in ["doomed", "kept"] {
        common::create_topic(&bs, topic, 2, &[("local.retention.bytes", "1048576")]).await;
        produce(&producer, topic, &[0, 1], 0..n, t0).await;
    }
    for topic in ["doomed", "kept"] {
        for p in 0..2 {
            let m = wait_tiered(&store, &broker, topic, p, 3, Duration::from_secs(60));
            assert!(m.segments.len() >= 3, "{topic}/{p}: in the tier");
        }
    }
    let kept_before = topic_objects(&store, "kept");
    assert!(!topic_objects(&store, "doomed").is_empty());
    // More sealed segments right before the deletion, so uploads are under way when it lands.
    produce(&producer, "doomed", &[0, 1], n..2 * n, t0).await;

    let res = common::admin(&bs)
        .delete_topics(&["doomed"], &common::admin_opts())
        .await
        .expect("DeleteTopics");
    assert!(res[0].is_ok(), "deleting doomed: {:?}", res[0]);
    let started = Instant::now();
    common::wait_for(Duration::from_secs(30), || {
        topic_objects(&store, "doomed").is_empty().then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{} store: doomed's objects still there 30 s after DeleteTopics: {:?}\n{}",
            store.name(),
            topic_objects(&store, "doomed"),
            broker.log_tail(30)
        )
    });
    eprintln!(
        "[{}] topic objects gone {:.1}s after DeleteTopics",
        store.name(),
        started.elapsed().as_secs_f64()
    );
    // And they stay gone: no upload that was under way writes them again.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        topic_objects(&store, "doomed"),
        vec![],
        "{} store: objects of the deleted topic reappeared",
        store.name()
    );
    assert_eq!(
        topic_objects(&store, "kept"),
        kept_before,
        "the other topic's objects are untouched"
    );
    consume_verify(
        &bs,
        "kept",
        &(0..2).map(|p| (p, 0..n)).collect(),
        t0,
        Duration::from_secs(60),
        "kept topic",
    );

    // A new topic of the same name starts empty (a new id, new objects).
    common::create_topic(&bs, "doomed", 1, &[]).await;
    assert_eq!(common::watermarks(&bs, "doomed", 0), (0, 0));
    assert_log_clean(&mut broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_topic_removes_objects_file_store() {
    delete_topic_removes_objects(TierStore::file()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_topic_removes_objects_s3() {
    delete_topic_removes_objects(TierStore::s3()).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Remote retention
// ---------------------------------------------------------------------------------------------

async fn remote_retention(mut store: TierStore) {
    let mut broker = start_broker(&mut store, &[]);
    let bs = broker.bootstrap();
    let producer = common::producer(&bs, &[("linger.ms", "10")]);

    // retention.bytes: 4 MiB in all, 1 MiB locally.
    let topic = "ret-bytes";
    common::create_topic(
        &bs,
        topic,
        1,
        &[
            ("retention.bytes", "4194304"),
            ("local.retention.bytes", "1048576"),
        ],
    )
    .await;
    let t0 = common::now_ms() - 60_000;
    let n = (12 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], 0..n, t0).await;

    // retention.ms: records an hour old on a topic that keeps 2 minutes.
    let old_topic = "ret-ms";
    common::create_topic(&bs, old_topic, 1, &[("retention.ms", "120000")]).await;
    let t_old = common::now_ms() - 3_600_000;
    let n_old = (5 * MIB / AVG_RECORD) as i64;
    produce(&producer, old_topic, &[0], 0..n_old, t_old).await;

    let what = store.name();
    let started = Instant::now();
    let mut last = None;
    let (low, m) = common::wait_for(Duration::from_secs(60), || {
        let (low, high) = common::watermarks(&bs, topic, 0);
        let m = manifest(&store, topic, 0)?;
        let locals = local_segments(&broker, topic, 0);
        let objects = segment_objects(&store, topic, 0);
        last = Some((low, high, m.segments.first().cloned(), locals.clone(), objects.len()));
        let remote_bytes: u64 = m.segments.iter().map(|s| s.size).sum();
        let settled = low > 0
            && m.copied_end == locals.last().copied()
            && m.segments.first().map(|s| s.base_offset) == Some(low)
            && remote_bytes <= 4 * MIB + MIB
            && objects.len() == m.segments.len();
        settled.then_some((low, m))
    })
    .unwrap_or_else(|| panic!("{what}: retention.bytes did not settle within 60 s: (low, high, first remote, locals, objects) = {last:?}\n{}", broker.log_tail(40)));
    eprintln!(
        "[{what}] retention.bytes: log start {low} after {:.1}s, {} remote segments",
        started.elapsed().as_secs_f64(),
        m.segments.len()
    );
    assert_manifest_consistent(&store, topic, 0, &m, Some(low));
    for (stem, _) in segment_objects(&store, topic, 0) {
        let base: i64 = stem[..20].parse().unwrap();
        assert!(
            base >= low,
            "{what}: object {stem} below the log start {low} was not deleted"
        );
    }
    let remote_bytes: u64 = m.segments.iter().map(|s| s.size).sum();
    assert!(
        remote_bytes >= 3 * MIB,
        "{what}: retention keeps about 4 MiB, not less: {remote_bytes}"
    );
    assert_eq!(common::watermarks(&bs, topic, 0), (low, n));
    consume_verify(
        &bs,
        topic,
        &BTreeMap::from([(0, low..n)]),
        t0,
        Duration::from_secs(60),
        "after retention.bytes",
    );
    assert_eq!(
        offset_for_time(&bs, topic, 0, t0 - 1000),
        low,
        "{what}: a timestamp before everything finds the log start"
    );
    assert_eq!(
        offset_for_time(&bs, topic, 0, ts(t0, low + 7)),
        low + 7,
        "{what}: a timestamp in the first retained segment"
    );

    // retention.ms: every segment expires, the active one is rolled, copied and expires too.
    let mut last = None;
    common::wait_for(Duration::from_secs(60), || {
        let (low, high) = common::watermarks(&bs, old_topic, 0);
        let m = manifest(&store, old_topic, 0)?;
        let objects = segment_objects(&store, old_topic, 0);
        last = Some((low, high, m.clone(), objects.len()));
        (low == n_old && high == n_old && m.segments.is_empty() && m.copied_end == Some(n_old) && objects.is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("{what}: retention.ms did not remove everything within 60 s: (low, high, manifest, objects) = {last:?}\n{}", broker.log_tail(40)));
    eprintln!(
        "[{what}] retention.ms: everything expired after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // The log goes on at the same offsets.
    let t_new = common::now_ms();
    produce(&producer, old_topic, &[0], n_old..n_old + 10, t_new).await;
    consume_verify(
        &bs,
        old_topic,
        &BTreeMap::from([(0, n_old..n_old + 10)]),
        t_new,
        Duration::from_secs(30),
        "after retention.ms",
    );
    assert_eq!(common::watermarks(&bs, old_topic, 0), (n_old, n_old + 10));
    assert_eq!(
        offset_for_time(&bs, old_topic, 0, t_old),
        n_old,
        "{what}: expired timestamps find the first record left"
    );
    assert_log_clean(&mut broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_retention_default_file_store() {
    remote_retention(TierStore::default_file()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_retention_s3() {
    remote_retention(TierStore::s3()).await;
}

/// IncrementalAlterConfigs SET of a topic's configs: (error code, message).
fn set_configs(broker: &Broker, topic: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let ops: Vec<(&str, i8, Option<&str>)> =
        configs.iter().map(|(k, v)| (*k, 0, Some(*v))).collect();
    common::incremental_alter(broker.addr(), 2, topic, &ops, false)
}

const INVALID_CONFIG: i16 = 40;
const DISABLE_REFUSED: &str = "It is invalid to disable remote storage without deleting remote data. If you want to keep the remote data and turn to read only, please set `remote.storage.enable=true,remote.log.copy.disable=true`. If you want to disable remote storage and delete all remote data, please set `remote.storage.enable=false,remote.log.delete.on.disable=true`.";

/// Turning tiering off for a topic the tier holds data of takes remote.log.delete.on.disable
/// (INVALID_CONFIG without it, as Kafka); with it the remote copies go, the log start moves up
/// to the local start, and it stays so after a restart; turned on again, uploads start over
/// from the local start. remote.log.copy.disable with a local retention other than the whole
/// retention is refused, as Kafka refuses it.
async fn disable_tiering(mut store: TierStore) {
    let mut broker = start_broker(&mut store, &[]);
    let bs = broker.bootstrap();
    let topic = "untier";
    let local = ("local.retention.bytes", "1048576");
    common::create_topic(&bs, topic, 1, &[local]).await;
    let producer = common::producer(&bs, &[("linger.ms", "10")]);
    let t0 = common::now_ms() - 60_000;
    let n = (6 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], 0..n, t0).await;
    let m = wait_tiered(&store, &broker, topic, 0, 3, Duration::from_secs(60));
    let local_start = local_segments(&broker, topic, 0)[0];
    assert!(local_start > 0 && !m.segments.is_empty());
    assert_eq!(common::watermarks(&bs, topic, 0), (0, n));

    let what = store.name();
    assert_eq!(
        set_configs(&broker, topic, &[("remote.log.copy.disable", "true")]),
        (INVALID_CONFIG, "When `remote.log.copy.disable` is set to true, the `local.retention.bytes` and `retention.bytes` must be set to the identical value because there will be no more logs copied to the remote storage.".to_string()),
        "{what}: copy disabled with local.retention.bytes != retention.bytes"
    );
    assert_eq!(
        set_configs(&broker, topic, &[("remote.storage.enable", "false")]),
        (INVALID_CONFIG, DISABLE_REFUSED.to_string()),
        "{what}: disabling without remote.log.delete.on.disable"
    );
    assert_eq!(
        set_configs(&broker, topic, &[("cleanup.policy", "compact")]),
        (INVALID_CONFIG, DISABLE_REFUSED.to_string()),
        "{what}: compacting (which stops tiering) without remote.log.delete.on.disable"
    );
    assert!(
        !segment_objects(&store, topic, 0).is_empty(),
        "{what}: refused changes keep the data"
    );
    let disabled = [
        ("remote.storage.enable", "false"),
        ("remote.log.delete.on.disable", "true"),
    ];
    assert_eq!(set_configs(&broker, topic, &disabled).0, 0);
    common::wait_for(Duration::from_secs(30), || {
        (topic_objects(&store, topic).is_empty() && common::watermarks(&bs, topic, 0).0 > 0)
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{what}: remote data still there 30 s after disabling: {:?}, watermarks {:?}\n{}",
            topic_objects(&store, topic),
            common::watermarks(&bs, topic, 0),
            broker.log_tail(30)
        )
    });
    let low = common::watermarks(&bs, topic, 0).0;
    assert_eq!(
        low,
        local_segments(&broker, topic, 0)[0],
        "{what}: log start = local start"
    );
    consume_verify(
        &bs,
        topic,
        &BTreeMap::from([(0, low..n)]),
        t0,
        Duration::from_secs(60),
        "local part",
    );
    broker.stop_graceful();
    broker.restart();
    let bs = broker.bootstrap();
    let producer = common::producer(&bs, &[("linger.ms", "10")]);
    assert_eq!(
        common::watermarks(&bs, topic, 0),
        (low, n),
        "{what}: after a restart"
    );
    assert!(topic_objects(&store, topic).is_empty());

    // On again: copies start over from the local start.
    assert_eq!(
        set_configs(&broker, topic, &[("remote.storage.enable", "true")]).0,
        0
    );
    produce(
        &producer,
        topic,
        &[0],
        n..n + (2 * MIB / AVG_RECORD) as i64,
        t0,
    )
    .await;
    let m = wait_tiered(&store, &broker, topic, 0, 3, Duration::from_secs(60));
    assert_eq!(
        m.segments[0].base_offset, low,
        "{what}: the new manifest starts at the local start"
    );
    assert_eq!(common::watermarks(&bs, topic, 0).0, low);
    assert_log_clean(&mut broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_tiering_file_store() {
    disable_tiering(TierStore::file()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_tiering_s3() {
    disable_tiering(TierStore::s3()).await;
}

// ---------------------------------------------------------------------------------------------
// 6. Transactions
// ---------------------------------------------------------------------------------------------

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

fn txn_producer(bs: &str, transactional_id: &str) -> TxnProducer {
    let mut c = common::client_config(bs);
    c.set("transactional.id", transactional_id)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    let p: TxnProducer = c.create().expect("create transactional producer");
    p.init_transactions(Timeout::After(Duration::from_secs(30)))
        .expect("init_transactions");
    p
}

/// `n` values of 300 bytes, each starting with `tag` and its index.
fn txn_values(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!("{tag}-{i:04}-{}", "x".repeat(300))
                .split_at(300)
                .0
                .to_string()
        })
        .collect()
}

/// Sends `values` to partition 0 and waits until they are all written, in order.
fn send_all(p: &TxnProducer, topic: &str, values: &[String]) {
    for v in values {
        p.send(BaseRecord::<(), str>::to(topic).payload(v).partition(0))
            .map_err(|(e, _)| e)
            .expect("enqueue");
    }
    p.flush(Timeout::After(Duration::from_secs(30)))
        .expect("flush");
}

/// (offset, value) of partition 0 from the beginning as `isolation` reads it, up to `last`.
fn read_values(
    bs: &str,
    topic: &str,
    isolation: &str,
    last: &str,
    timeout: Duration,
) -> Vec<(i64, String)> {
    let c = common::consumer(bs, &[("isolation.level", isolation)]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "{isolation}: {last:.12} did not arrive within {timeout:?}; {} values read, the last {:?}",
            out.len(),
            out.last().map(|(o, v): &(i64, String)| (*o, v[..12].to_string()))
        );
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => panic!("{isolation}: consumer error on {topic}: {e}"),
            Some(Ok(m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                let done = v == last;
                out.push((m.offset(), v));
                if done {
                    return out;
                }
            }
        }
    }
}

/// Where two value lists first differ, for a readable failure.
fn first_difference(got: &[String], want: &[String]) -> String {
    let i = got.iter().zip(want).take_while(|(g, w)| g == w).count();
    let show = |v: Option<&String>| v.map(|v| v[..12].to_string());
    format!(
        "{} values, expected {}; first difference at {i}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        show(got.get(i)),
        show(want.get(i))
    )
}

/// Two transactional producers commit and abort interleaved transactions (some aborted ones
/// spanning several segments) among plain records, on a topic of 16 kB segments that keeps
/// only its active segment locally. Once everything else is tiered and deleted locally, a
/// read_committed consumer from the beginning sees exactly the committed and plain records
/// (the aborts are known from the tiered `.txnindex` objects), and read_uncommitted sees all;
/// again after a restart, with the tier's caches empty.
async fn read_committed_from_the_tier(mut store: TierStore) {
    let mut broker = start_broker(&mut store, &[]);
    let bs = broker.bootstrap();
    let what = store.name();
    let topic = "txn-tiered";
    common::create_topic(
        &bs,
        topic,
        1,
        &[("segment.bytes", "16384"), ("local.retention.bytes", "1")],
    )
    .await;
    let a = txn_producer(&bs, "tiered-a");
    let b = txn_producer(&bs, "tiered-b");
    let plain = common::producer(&bs, &[]);
    let t = Timeout::After(Duration::from_secs(30));
    // Every value in log order, and whether read_committed shows it.
    let mut log: Vec<(String, bool)> = Vec::new();
    let mut aborts = 0;
    for round in 0..12 {
        let a_commits = round % 2 == 1;
        let b_commits = round % 3 != 0;
        // B's aborted transactions of rounds 3, 6 and 9 span about three segments.
        let b_big = if b_commits || round == 0 { 0 } else { 150 };
        a.begin_transaction().unwrap();
        b.begin_transaction().unwrap();
        // Each part is written before the next, so the log order is known.
        for (p, tag, n, commits) in [
            (&a, format!("a{round:02}-1"), 10, a_commits),
            (&b, format!("b{round:02}-1"), 8 + b_big, b_commits),
            (&a, format!("a{round:02}-2"), 6, a_commits),
        ] {
            let values = txn_values(&tag, n);
            send_all(p, topic, &values);
            log.extend(values.into_iter().map(|v| (v, commits)));
        }
        for v in txn_values(&format!("p{round:02}"), 3) {
            plain
                .send(
                    FutureRecord::<(), str>::to(topic).payload(&v).partition(0),
                    Duration::from_secs(30),
                )
                .await
                .expect("plain produce");
            log.push((v, true));
        }
        let (first, second) = if round % 2 == 0 {
            ((&a, a_commits), (&b, b_commits))
        } else {
            ((&b, b_commits), (&a, a_commits))
        };
        for (p, commits) in [first, second] {
            if commits {
                p.commit_transaction(t).unwrap();
            } else {
                p.abort_transaction(t).unwrap();
                aborts += 1;
            }
        }
    }
    // Plain records in batches of their own, so the last marker's segment is sealed (and
    // tiered, and deleted locally) behind them.
    for v in txn_values("tail", 80) {
        plain
            .send(
                FutureRecord::<(), str>::to(topic).payload(&v).partition(0),
                Duration::from_secs(30),
            )
            .await
            .expect("tail produce");
        log.push((v, true));
    }
    drop((a, b, plain));
    let last = log.last().unwrap().0.clone();
    let everything: Vec<String> = log.iter().map(|(v, _)| v.clone()).collect();
    let committed: Vec<String> = log
        .iter()
        .filter(|(_, c)| *c)
        .map(|(v, _)| v.clone())
        .collect();

    let m = wait_tiered(&store, &broker, topic, 0, 1, Duration::from_secs(90));
    assert_manifest_consistent(&store, topic, 0, &m, Some(0));
    let all = read_values(
        &bs,
        topic,
        "read_uncommitted",
        &last,
        Duration::from_secs(60),
    );
    let all_values: Vec<String> = all.iter().map(|(_, v)| v.clone()).collect();
    assert!(
        all_values == everything,
        "{what}: read_uncommitted: {}",
        first_difference(&all_values, &everything)
    );
    // Everything transactional is only in the tier now.
    let tail0 = all[all.len() - 80].0;
    let locals = local_segments(&broker, topic, 0);
    assert!(
        locals[0] >= tail0,
        "{what}: local segments {locals:?} start after the last marker (before offset {tail0})"
    );

    let read_committed = |broker: &Broker, pass: &str| {
        let got: Vec<String> = read_values(
            &broker.bootstrap(),
            topic,
            "read_committed",
            &last,
            Duration::from_secs(60),
        )
        .into_iter()
        .map(|(_, v)| v)
        .collect();
        assert!(
            got == committed,
            "{what}: read_committed{pass}: {}",
            first_difference(&got, &committed)
        );
        eprintln!(
            "[{what}] read_committed{pass}: {} of {} values from {} tiered segments",
            got.len(),
            everything.len(),
            m.segments.len(),
        );
    };
    read_committed(&broker, "");

    let with_aborts: BTreeSet<String> = m
        .segments
        .iter()
        .filter(|s| s.aborted_txns > 0)
        .map(stem)
        .collect();
    assert_eq!(
        m.segments.iter().map(|s| s.aborted_txns).sum::<u64>(),
        aborts,
        "{what}: every abort is in a tiered segment's index: {:?}",
        m.segments
    );
    let txn_objects: BTreeSet<String> = topic_objects(&store, topic)
        .into_iter()
        .filter_map(|(k, _)| Some(k.strip_prefix("0/")?.strip_suffix(".txnindex")?.to_string()))
        .collect();
    assert_eq!(
        txn_objects, with_aborts,
        "{what}: a .txnindex object for each segment with aborts"
    );
    assert!(
        with_aborts.len() >= 3 && with_aborts.len() < m.segments.len(),
        "{what}: aborts in several segments, not all: {} of {}",
        with_aborts.len(),
        m.segments.len()
    );

    assert_log_clean(&mut broker);
    let status = broker.stop_graceful();
    assert!(status.success(), "graceful stop: {status}");
    broker.restart();
    read_committed(&broker, " after a restart");
    assert_log_clean(&mut broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_committed_from_the_tier_file_store() {
    read_committed_from_the_tier(TierStore::file()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_committed_from_the_tier_s3() {
    read_committed_from_the_tier(TierStore::s3()).await;
}

// ---------------------------------------------------------------------------------------------
// DeleteRecords over a tiered log
// ---------------------------------------------------------------------------------------------

/// DeleteRecords at `offset` (-1: the high watermark) through the AdminClient: the low watermark.
async fn delete_records(bs: &str, topic: &str, offset: i64) -> i64 {
    let mut tpl = TopicPartitionList::new();
    let o = if offset < 0 {
        Offset::End
    } else {
        Offset::Offset(offset)
    };
    tpl.add_partition_offset(topic, 0, o).unwrap();
    let res = common::admin(bs)
        .delete_records(&tpl, &common::admin_opts())
        .await
        .expect("DeleteRecords failed");
    let e = &res.elements()[0];
    assert!(
        e.error().is_ok(),
        "DeleteRecords {topic}@{offset}: {:?}",
        e.error()
    );
    match e.offset() {
        Offset::Offset(low) => low,
        other => panic!("low watermark {other:?}"),
    }
}

/// The log start moves into the tier's range: the remote segments wholly below it leave the
/// manifest (and the store), reads start there, and uploads go on. Then past everything copied
/// (to the high watermark): the local segments in between are deleted without being copied and
/// the manifest continues after the gap. Both survive kill -9.
async fn delete_records_over_the_tier(mut store: TierStore) {
    let mut broker = start_broker(&mut store, &[]);
    let bs = broker.bootstrap();
    let topic = "purged-tier";
    common::create_topic(&bs, topic, 1, &[("local.retention.bytes", "1")]).await;
    let t0 = common::now_ms() - 3_600_000;
    let producer = big_producer(&bs);
    let n1 = (6 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], 0..n1, t0).await;
    let m = wait_tiered(&store, &broker, topic, 0, 2, Duration::from_secs(60));
    assert!(
        m.segments.len() >= 4,
        "{} remote segments",
        m.segments.len()
    );

    // Inside the third remote segment.
    let keep = &m.segments[2];
    let start = keep.base_offset + 5;
    assert_eq!(delete_records(&bs, topic, start).await, start);
    assert_eq!(common::watermarks(&bs, topic, 0).0, start);
    let trimmed = common::wait_for(Duration::from_secs(30), || {
        let m = manifest(&store, topic, 0)?;
        (m.segments.first()? == keep).then_some(m)
    })
    .unwrap_or_else(|| {
        panic!(
            "remote segments below {start} stayed: {:?}",
            manifest(&store, topic, 0)
        )
    });
    assert_manifest_consistent(&store, topic, 0, &trimmed, Some(keep.base_offset));
    // The manifest is written first, then the objects it dropped are deleted.
    let gone = stem(&m.segments[0]);
    common::wait_for(Duration::from_secs(15), || {
        (!topic_objects(&store, topic)
            .iter()
            .any(|(k, _)| k.contains(&gone)))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("{gone} still in the store"));
    // From the beginning: the new log start, read from the tier.
    let ranges = BTreeMap::from([(0, start..n1)]);
    consume_verify(
        &bs,
        topic,
        &ranges,
        t0,
        Duration::from_secs(60),
        "after delete in the tier",
    );

    // Past everything copied: the high watermark.
    let n2 = n1 + (3 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], n1..n2, t0).await;
    assert_eq!(delete_records(&bs, topic, -1).await, n2);
    let n3 = n2 + (3 * MIB / AVG_RECORD) as i64;
    produce(&producer, topic, &[0], n2..n3, t0).await;
    let m = wait_tiered(&store, &broker, topic, 0, 2, Duration::from_secs(60));
    assert!(
        m.segments.iter().all(|s| s.next_offset > n2),
        "remote segments below the log start {n2}: {:?}",
        m.segments
    );
    assert!(!m.segments.is_empty(), "nothing copied after the gap");
    let ranges = BTreeMap::from([(0, n2..n3)]);
    consume_verify(
        &bs,
        topic,
        &ranges,
        t0,
        Duration::from_secs(60),
        "after delete past the tier",
    );
    assert!(
        !log_text(&broker).contains("do not continue the manifest"),
        "uploads stopped at the gap"
    );

    broker.kill9();
    broker.restart();
    let bs = broker.bootstrap();
    assert_eq!(common::watermarks(&bs, topic, 0), (n2, n3));
    consume_verify(
        &bs,
        topic,
        &ranges,
        t0,
        Duration::from_secs(60),
        "after kill -9",
    );
    assert_log_clean(&mut broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_over_the_tier_file_store() {
    delete_records_over_the_tier(TierStore::file()).await;
}
