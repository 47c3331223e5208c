//! Log compaction end to end through librdkafka: many versions per key and tombstones, read
//! back from the beginning as exactly the latest value per key at the offsets the producer was
//! given; tombstones gone after delete.retention.ms; keyless records refused; and kill -9 in
//! the middle of a cleaning (at a random moment and at the swap's decision point) loses no
//! acknowledged latest value.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::Broker;
use futures::stream::{self, StreamExt};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

/// Cleaner settings that make a test's logs cleanable within seconds.
const FAST_CLEANER: &[&str] = &["--set", "log.cleaner.backoff.ms=100"];

fn compacted_configs(delete_retention_ms: &str) -> Vec<(&'static str, String)> {
    vec![
        ("cleanup.policy", "compact".to_string()),
        ("segment.bytes", "16384".to_string()),
        ("min.cleanable.dirty.ratio", "0.01".to_string()),
        ("delete.retention.ms", delete_retention_ms.to_string()),
    ]
}

async fn create(bs: &str, topic: &str, configs: &[(&'static str, String)]) {
    let configs: Vec<(&str, &str)> = configs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    common::create_topic(bs, topic, 1, &configs).await;
}

/// Sends (key, value or tombstone) in order, with up to 64 in flight; returns each record's
/// offset.
async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Option<String>)],
) -> Vec<i64> {
    // Keys are sent in order per key: librdkafka's idempotent producer keeps order.
    stream::iter(records.iter())
        .map(|(k, v)| async move {
            let mut r = FutureRecord::to(topic).key(k.as_bytes());
            if let Some(v) = v {
                r = r.payload(v.as_bytes());
            }
            producer
                .send(r, Timeout::Never)
                .await
                .unwrap_or_else(|(e, _)| panic!("delivery of {k} failed: {e}"))
                .offset
        })
        .buffered(64)
        .collect()
        .await
}

/// Everything readable from the beginning: offset -> (key, value).
fn read_all(bs: &str, topic: &str) -> BTreeMap<i64, (String, Option<String>)> {
    common::consume_all(bs, topic, 1, Duration::from_secs(60))
        .remove(&0)
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let key = String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap();
            let value = m.payload().map(|v| String::from_utf8(v.to_vec()).unwrap());
            (m.offset(), (key, value))
        })
        .collect()
}

/// The latest value of every key in `log` (None: its latest record is a tombstone).
fn latest(
    log: impl IntoIterator<Item = (i64, (String, Option<String>))>,
) -> BTreeMap<String, (i64, Option<String>)> {
    let mut out = BTreeMap::new();
    for (offset, (k, v)) in log {
        out.insert(k, (offset, v));
    }
    out
}

/// Versions of each key, shuffled in a fixed order, then tombstones for the first
/// `deleted` keys, then unique filler keys that push the rest out of the active segment.
fn workload(keys: usize, versions: usize, deleted: usize) -> Vec<(String, Option<String>)> {
    let mut rng = common::Rng::new(42);
    let mut records = Vec::new();
    let mut next = vec![0usize; keys];
    while next.iter().any(|n| *n < versions) {
        let k = rng.below(keys as u64) as usize;
        if next[k] < versions {
            let pad = "x".repeat(rng.below(200) as usize);
            records.push((
                format!("key-{k}"),
                Some(format!("key-{k} v{} {pad}", next[k])),
            ));
            next[k] += 1;
        }
    }
    for k in 0..deleted {
        records.push((format!("key-{k}"), None));
    }
    for i in 0..400 {
        records.push((format!("filler-{i}"), Some("f".repeat(100))));
    }
    records
}

fn partition_dir(broker: &Broker, topic: &str) -> PathBuf {
    broker.data_dir().join("topics").join(format!("{topic}-0"))
}

/// Waits until reading from the beginning shows the test keys only once each (the cleaner
/// has been through everything below the active segment); returns what it read.
fn wait_compacted(
    bs: &str,
    topic: &str,
    live_keys: usize,
    deleted_keys: usize,
    tombstones_expected: bool,
) -> BTreeMap<i64, (String, Option<String>)> {
    let mut last = BTreeMap::new();
    let done = common::wait_for(Duration::from_secs(90), || {
        last = read_all(bs, topic);
        let test_records: Vec<_> = last
            .values()
            .filter(|(k, _)| k.starts_with("key-"))
            .collect();
        let tombstones = test_records.iter().filter(|(_, v)| v.is_none()).count();
        let want = live_keys + if tombstones_expected { deleted_keys } else { 0 };
        (test_records.len() == want && (tombstones_expected || tombstones == 0)).then_some(())
    });
    assert!(
        done.is_some(),
        "{topic} was not compacted in time: {} test records left",
        last.values().filter(|(k, _)| k.starts_with("key-")).count()
    );
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn latest_value_per_key_at_its_offset_and_tombstones_expire() {
    let mut broker = Broker::start(FAST_CLEANER);
    let bs = broker.bootstrap();
    let producer = common::producer(&bs, &[("compression.type", "lz4"), ("linger.ms", "20")]);

    // Tombstones kept an hour: after cleaning they are still there, once per key.
    create(&bs, "kept-tombstones", &compacted_configs("3600000")).await;
    let records = workload(100, 12, 30);
    let offsets = send_all(&producer, "kept-tombstones", &records).await;
    let produced: BTreeMap<i64, (String, Option<String>)> = offsets
        .iter()
        .copied()
        .zip(records.iter().cloned())
        .collect();
    let want = latest(produced.clone());
    let after = wait_compacted(&bs, "kept-tombstones", 70, 30, true);
    // Every record read is the one produced at that offset, and it is its key's latest.
    for (offset, kv) in &after {
        assert_eq!(produced.get(offset), Some(kv), "offset {offset}");
        if kv.0.starts_with("key-") {
            assert_eq!(want[&kv.0].0, *offset, "{} is not its latest", kv.0);
        }
    }
    assert_eq!(latest(after.clone()), want, "latest values");

    // Tombstones kept 0 ms: they go too, with everything they deleted.
    create(&bs, "expired-tombstones", &compacted_configs("0")).await;
    let offsets = send_all(&producer, "expired-tombstones", &records).await;
    let produced: BTreeMap<_, _> = offsets
        .iter()
        .copied()
        .zip(records.iter().cloned())
        .collect();
    let want: BTreeMap<_, _> = latest(produced)
        .into_iter()
        .filter(|(_, (_, v))| v.is_some())
        .collect();
    let after = wait_compacted(&bs, "expired-tombstones", 70, 30, false);
    assert_eq!(latest(after), want);

    // A restart serves the same compacted log.
    let before = read_all(&bs, "kept-tombstones");
    broker.stop_graceful();
    broker.restart();
    let bs = broker.bootstrap();
    assert_eq!(read_all(&bs, "kept-tombstones"), before);
    assert!(!partition_dir(&broker, "kept-tombstones")
        .join(".cleaning")
        .exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn keyless_records_and_tiered_compaction_are_refused() {
    let broker = Broker::start(FAST_CLEANER);
    let bs = broker.bootstrap();
    create(&bs, "keys-only", &compacted_configs("1000")).await;
    let producer = common::producer(&bs, &[("compression.type", "gzip")]);
    let keyless = producer
        .send(
            FutureRecord::<(), _>::to("keys-only").payload("no key"),
            Timeout::Never,
        )
        .await;
    match keyless {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::InvalidRecord)
        }
        other => panic!("a keyless record on a compacted topic: {other:?}"),
    }
    producer
        .send(
            FutureRecord::to("keys-only").key("k").payload("v"),
            Timeout::Never,
        )
        .await
        .expect("a keyed record");

    let admin = common::admin(&bs);
    let tiered = rdkafka::admin::NewTopic::new(
        "tiered-compacted",
        1,
        rdkafka::admin::TopicReplication::Fixed(1),
    )
    .set("cleanup.policy", "compact")
    .set("remote.storage.enable", "true");
    let res = admin
        .create_topics(&[tiered], &common::admin_opts())
        .await
        .unwrap();
    assert!(
        matches!(&res[0], Err((_, RDKafkaErrorCode::InvalidConfig))),
        "{res:?}"
    );
}

/// kill -9 while the cleaner works, at a random moment (a slow cleaner, killed once its
/// scratch directory exists) and exactly after a swap is decided (SLUICE_CRASH_AT): after the
/// restart every key's latest acknowledged value is there, and cleaning completes.
/// min.compaction.lag.ms keeps the cleaner away until the producer is done.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_during_cleaning_loses_no_latest_value() {
    for crash_at in [None, Some("cleaner.before_swap")] {
        let mut env = Vec::new();
        if let Some(point) = crash_at {
            env.push(("SLUICE_CRASH_AT".to_string(), point.to_string()));
        }
        let mut broker = Broker::start_with_env(
            &[
                "--set",
                "log.cleaner.backoff.ms=100",
                "--set",
                "log.cleaner.io.max.bytes.per.second=300000",
            ],
            &env,
        );
        broker.allow_log_errors();
        let bs = broker.bootstrap();
        // min.compaction.lag.ms holds the cleaner off until every record is acknowledged.
        let mut configs = compacted_configs("3600000");
        configs.push(("min.compaction.lag.ms", "8000".to_string()));
        create(&bs, "crashy", &configs).await;
        let records = workload(300, 8, 50);
        let producer = common::producer(&bs, &[("linger.ms", "20")]);
        let offsets = send_all(&producer, "crashy", &records).await;
        drop(producer);
        let want = latest(offsets.iter().copied().zip(records.iter().cloned()));
        let dir = partition_dir(&broker, "crashy");
        match crash_at {
            None => {
                let busy = common::wait_for(Duration::from_secs(60), || {
                    dir.join(".cleaning").exists().then_some(())
                });
                assert!(busy.is_some(), "the cleaner never started");
                std::thread::sleep(Duration::from_millis(300));
                broker.kill9();
            }
            Some(_) => {
                let status = broker.wait_exit(Duration::from_secs(60));
                assert!(!status.success(), "the crash point was not reached");
            }
        }
        broker.set_env(&[]);
        broker.restart();
        let bs = broker.bootstrap();
        assert_eq!(
            latest(read_all(&bs, "crashy")),
            want,
            "after a crash at {crash_at:?}"
        );
        let after = wait_compacted(&bs, "crashy", 250, 50, true);
        assert_eq!(latest(after), want, "after cleaning resumed ({crash_at:?})");
    }
}
