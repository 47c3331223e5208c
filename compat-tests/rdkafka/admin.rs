//! Admin and metadata APIs through librdkafka: CreateTopics (configs, validate_only, errors),
//! DeleteTopics, Metadata, ListOffsets (by timestamp, earliest/latest), auto-creation, and
//! size/time retention moving the log start offset.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{skip_allowed, Broker};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};

/// Create one topic, returning the per-topic result code.
async fn try_create(
    bs: &str,
    topic: NewTopic<'_>,
    validate_only: bool,
) -> Result<(), RDKafkaErrorCode> {
    let admin = common::admin(bs);
    let res = admin
        .create_topics(&[topic], &common::admin_opts().validate_only(validate_only))
        .await
        .expect("CreateTopics request failed");
    assert_eq!(res.len(), 1);
    res[0].clone().map(|_| ()).map_err(|(_, code)| code)
}

fn partitions_of(bs: &str, topic: &str) -> Option<usize> {
    let md = common::consumer(bs, &[])
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("fetch_metadata");
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_metadata_and_errors() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();

    // Create with partitions and topic configs.
    let t = NewTopic::new("orders", 3, TopicReplication::Fixed(1))
        .set("retention.ms", "3600000")
        .set("retention.bytes", "1073741824")
        .set("segment.bytes", "1048576")
        .set("cleanup.policy", "delete")
        .set("max.message.bytes", "2000000");
    assert_eq!(try_create(&bs, t, false).await, Ok(()));

    // Metadata: the topic, 3 partitions, all led by node 1 which is the only broker, at the
    // address we listen on.
    let md = common::consumer(&bs, &[])
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("fetch_metadata");
    assert_eq!(md.brokers().len(), 1, "one broker");
    let b = &md.brokers()[0];
    assert_eq!(b.id(), 1);
    assert_eq!(b.host(), "127.0.0.1");
    assert_eq!(b.port(), broker.addr().port() as i32);
    let topic = md
        .topics()
        .iter()
        .find(|t| t.name() == "orders")
        .expect("orders listed in metadata");
    assert_eq!(topic.error(), None);
    let mut ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    ids.sort();
    assert_eq!(ids, vec![0, 1, 2]);
    for p in topic.partitions() {
        assert_eq!(p.leader(), 1, "partition {} leader", p.id());
        assert_eq!(p.replicas(), &[1], "partition {} replicas", p.id());
        assert_eq!(p.isr(), &[1], "partition {} isr", p.id());
        assert_eq!(p.error(), None);
    }
    // Metadata for just that topic agrees.
    let md1 = common::consumer(&bs, &[])
        .fetch_metadata(Some("orders"), Duration::from_secs(15))
        .expect("fetch_metadata(orders)");
    assert_eq!(md1.topics().len(), 1);
    assert_eq!(md1.topics()[0].partitions().len(), 3);

    // validate_only succeeds but creates nothing.
    let t = NewTopic::new("phantom", 2, TopicReplication::Fixed(1)).set("retention.ms", "1000");
    assert_eq!(try_create(&bs, t, true).await, Ok(()), "validate_only");
    assert!(
        !common::topic_names(&bs).contains(&"phantom".to_string()),
        "validate_only must not create the topic"
    );
    // ...and validate_only still reports errors.
    let t = NewTopic::new("orders", 2, TopicReplication::Fixed(1));
    assert_eq!(
        try_create(&bs, t, true).await,
        Err(RDKafkaErrorCode::TopicAlreadyExists),
        "validate_only on an existing topic"
    );

    // Errors.
    let t = NewTopic::new("orders", 3, TopicReplication::Fixed(1));
    assert_eq!(
        try_create(&bs, t, false).await,
        Err(RDKafkaErrorCode::TopicAlreadyExists)
    );
    let t = NewTopic::new("zero-partitions", 0, TopicReplication::Fixed(1));
    assert_eq!(
        try_create(&bs, t, false).await,
        Err(RDKafkaErrorCode::InvalidPartitions)
    );
    let t = NewTopic::new("three-replicas", 1, TopicReplication::Fixed(3));
    assert_eq!(
        try_create(&bs, t, false).await,
        Err(RDKafkaErrorCode::InvalidReplicationFactor)
    );
    let t =
        NewTopic::new("bad-config-name", 1, TopicReplication::Fixed(1)).set("no.such.config", "1");
    assert_eq!(
        try_create(&bs, t, false).await,
        Err(RDKafkaErrorCode::InvalidConfig)
    );
    let t = NewTopic::new("bad-config-value", 1, TopicReplication::Fixed(1))
        .set("retention.ms", "not-a-number");
    assert_eq!(
        try_create(&bs, t, false).await,
        Err(RDKafkaErrorCode::InvalidConfig)
    );
    // Topic names Kafka rejects (the last one would be a path outside the data dir).
    for name in ["bad/name", "..", "../escape", "has space"] {
        let t = NewTopic::new(name, 1, TopicReplication::Fixed(1));
        assert_eq!(
            try_create(&bs, t, false).await,
            Err(RDKafkaErrorCode::InvalidTopic),
            "topic name {name:?}"
        );
    }
    let names = common::topic_names(&bs);
    for bad in [
        "phantom",
        "zero-partitions",
        "three-replicas",
        "bad-config-name",
        "bad-config-value",
        "bad/name",
        "..",
        "../escape",
        "has space",
    ] {
        assert!(
            !names.contains(&bad.to_string()),
            "failed create left topic {bad:?} behind"
        );
    }

    // -1 partitions / replication factor = broker defaults (CreateTopics v4+).
    let t = NewTopic::new("defaults", -1, TopicReplication::Fixed(-1));
    assert_eq!(try_create(&bs, t, false).await, Ok(()));
    assert_eq!(partitions_of(&bs, "defaults"), Some(1), "num.partitions");

    // One request, one good and one bad topic: per-topic results.
    let admin = common::admin(&bs);
    let good = NewTopic::new("multi-good", 2, TopicReplication::Fixed(1));
    let bad = NewTopic::new("multi-bad", 0, TopicReplication::Fixed(1));
    let res = admin
        .create_topics(&[good, bad], &common::admin_opts())
        .await
        .expect("CreateTopics");
    let res: BTreeMap<String, Result<(), RDKafkaErrorCode>> = res
        .into_iter()
        .map(|r| match r {
            Ok(n) => (n, Ok(())),
            Err((n, c)) => (n, Err(c)),
        })
        .collect();
    assert_eq!(res["multi-good"], Ok(()));
    assert_eq!(res["multi-bad"], Err(RDKafkaErrorCode::InvalidPartitions));
    assert_eq!(partitions_of(&bs, "multi-good"), Some(2));
    assert_eq!(partitions_of(&bs, "multi-bad"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_topics() {
    let broker = Broker::start(&["--set", "auto.create.topics.enable=false"]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "doomed", 2, &[]).await;
    common::create_topic(&bs, "survivor", 1, &[]).await;

    let p = common::producer(&bs, &[]);
    for i in 0..50 {
        p.send(
            FutureRecord::<(), _>::to("doomed")
                .partition(i % 2)
                .payload(b"old data"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    }
    p.send(
        FutureRecord::<(), _>::to("survivor").payload(b"keep me"),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    drop(p);
    assert_eq!(common::watermarks(&bs, "doomed", 0), (0, 25));

    let admin = common::admin(&bs);
    let res = admin
        .delete_topics(&["doomed"], &common::admin_opts())
        .await
        .expect("DeleteTopics");
    assert_eq!(res, vec![Ok("doomed".to_string())]);

    let names = common::topic_names(&bs);
    assert!(
        !names.contains(&"doomed".to_string()),
        "deleted topic still listed: {names:?}"
    );
    assert!(
        names.contains(&"survivor".to_string()),
        "other topic kept: {names:?}"
    );

    // Metadata for the deleted topic by name: UNKNOWN_TOPIC_OR_PARTITION.
    let md = common::consumer(&bs, &[])
        .fetch_metadata(Some("doomed"), Duration::from_secs(15))
        .expect("fetch_metadata(doomed)");
    assert_eq!(md.topics().len(), 1);
    assert_eq!(
        md.topics()[0].error(),
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    );

    // Deleting again: UNKNOWN_TOPIC_OR_PARTITION.
    let res = admin
        .delete_topics(&["doomed"], &common::admin_opts())
        .await
        .expect("DeleteTopics");
    assert_eq!(
        res,
        vec![Err((
            "doomed".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );

    // Producing to it with auto-create off fails with UNKNOWN_TOPIC_OR_PARTITION.
    let p = common::producer(
        &bs,
        &[
            ("topic.metadata.propagation.max.ms", "1000"),
            ("message.timeout.ms", "15000"),
        ],
    );
    let err = p
        .send(
            FutureRecord::<(), _>::to("doomed").payload(b"new data"),
            Duration::from_secs(5),
        )
        .await
        .expect_err("producing to a deleted topic must fail");
    assert_eq!(
        err.0,
        KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    assert!(
        !common::topic_names(&bs).contains(&"doomed".to_string()),
        "producing must not re-create the topic when auto-create is off"
    );

    // The survivor is intact.
    let got = common::consume_all(&bs, "survivor", 1, Duration::from_secs(30));
    assert_eq!(got[&0].len(), 1);
    assert_eq!(got[&0][0].payload(), Some(&b"keep me"[..]));

    // Re-creating the name gives a fresh, empty log.
    common::create_topic(&bs, "doomed", 1, &[]).await;
    assert_eq!(common::watermarks(&bs, "doomed", 0), (0, 0));
}

fn offset_for_time(bs: &str, topic: &str, ts: i64) -> Offset {
    let c = common::consumer(bs, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(ts))
        .unwrap();
    let res = c
        .offsets_for_times(tpl, Duration::from_secs(15))
        .expect("offsets_for_times");
    let e = res.find_partition(topic, 0).expect("partition in result");
    e.error()
        .unwrap_or_else(|err| panic!("offsets_for_times({ts}) partition error: {err}"));
    e.offset()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_by_timestamp_and_watermarks() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "times", 1, &[]).await;
    assert_eq!(common::watermarks(&bs, "times", 0), (0, 0), "empty topic");

    // Ten single-record batches, timestamps T0, T0+1s, ... (sequential: one batch each).
    let p = common::producer(&bs, &[]);
    let t0 = common::now_ms() - 600_000;
    for i in 0..10i64 {
        let d = p
            .send(
                FutureRecord::<(), _>::to("times")
                    .payload(format!("r{i}").as_bytes())
                    .timestamp(t0 + i * 1000),
                Duration::from_secs(5),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
        assert_eq!(d.offset, i);
    }
    // Ten more in as few batches as possible, timestamps T1 + j*1000 (order within the batch
    // is whatever librdkafka enqueued; the delivery reports tell us offset -> timestamp).
    let t1 = t0 + 100_000;
    let p_batch = common::producer(&bs, &[("linger.ms", "200")]);
    let sends: Vec<_> = (0..10i64)
        .map(|j| {
            let p = &p_batch;
            async move {
                let payload = format!("b{j}");
                let d = p
                    .send(
                        FutureRecord::<(), _>::to("times")
                            .payload(payload.as_bytes())
                            .timestamp(t1 + j * 1000),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
                (d.offset, t1 + j * 1000)
            }
        })
        .collect();
    let batch: Vec<(i64, i64)> = futures::future::join_all(sends).await;

    assert_eq!(common::watermarks(&bs, "times", 0), (0, 20));

    // Earliest offset whose timestamp >= target.
    let all: Vec<(i64, i64)> = (0..10i64)
        .map(|i| (i, t0 + i * 1000))
        .chain(batch.iter().copied())
        .collect();
    let expect = |target: i64| -> Offset {
        all.iter()
            .filter(|(_, ts)| *ts >= target)
            .map(|(o, _)| *o)
            .min()
            .map(Offset::Offset)
            .unwrap_or(Offset::End)
    };
    let targets = [
        t0 - 50_000,
        t0,
        t0 + 1,
        t0 + 3_500,
        t0 + 9_000,
        t0 + 9_001,
        t1,
        t1 + 4_500,
        t1 + 9_000,
        t1 + 9_001,
        t1 + 1_000_000,
    ];
    for target in targets {
        let want = expect(target);
        assert_eq!(
            offset_for_time(&bs, "times", target),
            want,
            "ListOffsets timestamp {} (T0{:+})",
            target,
            target - t0
        );
    }
    assert_eq!(offset_for_time(&bs, "times", t0 + 3_500), Offset::Offset(4));
    assert_eq!(
        offset_for_time(&bs, "times", t1 + 1_000_000),
        Offset::End,
        "no record that late: offset -1"
    );

    // A consumer positioned by offsets_for_times reads from there.
    let ranges = BTreeMap::from([(0, (Offset::Offset(4), 10))]);
    let got = common::consume(&bs, "times", &ranges, Duration::from_secs(30));
    let payloads: Vec<&[u8]> = got[&0].iter().map(|m| m.payload().unwrap()).collect();
    assert_eq!(
        payloads,
        vec![&b"r4"[..], b"r5", b"r6", b"r7", b"r8", b"r9"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_create_uses_num_partitions() {
    let broker = Broker::start(&["--set", "num.partitions=4"]);
    let bs = broker.bootstrap();

    // A consumer's metadata request (allow_auto_topic_creation=false) must not create a topic.
    let md = common::consumer(&bs, &[])
        .fetch_metadata(Some("not-created"), Duration::from_secs(15))
        .expect("fetch_metadata");
    assert_eq!(
        md.topics()[0].error(),
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    );
    assert!(!common::topic_names(&bs).contains(&"not-created".to_string()));

    // A producer's does (allow.auto.create.topics defaults to true for producers).
    let p = common::producer(&bs, &[]);
    let d = p
        .send(
            FutureRecord::<(), _>::to("auto-created").payload(b"hello"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce to auto-created topic: {e}"));
    assert_eq!(d.offset, 0);
    assert_eq!(partitions_of(&bs, "auto-created"), Some(4));

    // Every one of the 4 partitions accepts writes.
    for part in 0..4 {
        let d = p
            .send(
                FutureRecord::<(), _>::to("auto-created")
                    .partition(part)
                    .payload(b"x"),
                Duration::from_secs(5),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce to partition {part}: {e}"));
        assert_eq!(d.partition, part);
    }
    let total: i64 = (0..4)
        .map(|part| common::watermarks(&bs, "auto-created", part).1)
        .sum();
    assert_eq!(total, 5);
}

/// Produce `n` records of ~1 KB (payload = offset-independent id `i`) to partition 0.
/// Produces `n` ~1 KiB records to partition 0, which must hold exactly `first` records before.
/// Returns every payload of the partition indexed by offset (earlier offsets empty).
async fn produce_kb_records(
    bs: &str,
    topic: &str,
    first: usize,
    n: usize,
    ts: Option<i64>,
) -> Vec<Vec<u8>> {
    let p = common::producer(bs, &[("batch.size", "16384"), ("linger.ms", "2")]);
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut v = format!("{i:08}|").into_bytes();
            let mut rng = common::Rng::new(i as u64);
            let mut fill = vec![0u8; 1000];
            rng.fill(&mut fill);
            v.extend_from_slice(&fill);
            v
        })
        .collect();
    use futures::stream::{self, StreamExt};
    let offsets: Vec<(usize, i64)> = stream::iter(payloads.iter().enumerate())
        .map(|(i, v)| {
            let p = &p;
            async move {
                let mut r = FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&v[..]);
                if let Some(ts) = ts {
                    r = r.timestamp(ts + i as i64);
                }
                let d = p
                    .send(r, Duration::from_secs(5))
                    .await
                    .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
                (i, d.offset)
            }
        })
        .buffer_unordered(500)
        .collect()
        .await;
    // Return payloads indexed by offset.
    let mut by_offset = vec![Vec::new(); first + n];
    for (i, o) in offsets {
        assert!(
            (first as i64..(first + n) as i64).contains(&o),
            "offset {o} out of range"
        );
        assert!(
            by_offset[o as usize].is_empty(),
            "offset {o} acknowledged twice"
        );
        by_offset[o as usize] = payloads[i].clone();
    }
    by_offset
}

/// Consume from Beginning and check that reading starts exactly at the log start offset and
/// returns the retained records unchanged.
fn check_read_from_log_start(bs: &str, topic: &str, by_offset: &[Vec<u8>]) {
    let (low, high) = common::watermarks(bs, topic, 0);
    let ranges = BTreeMap::from([(0, (Offset::Beginning, high))]);
    let got = common::consume(bs, topic, &ranges, Duration::from_secs(60));
    let msgs = &got[&0];
    assert!(!msgs.is_empty());
    assert!(
        msgs[0].offset() >= low,
        "consumer from Beginning got offset {} below log start {low}",
        msgs[0].offset()
    );
    // Retention may have advanced again between the two calls; the start must be a low
    // watermark the broker reports.
    let (low2, _) = common::watermarks(bs, topic, 0);
    assert!(
        msgs[0].offset() <= low2,
        "consumer from Beginning started at {} but log start is {low}..{low2}: records skipped",
        msgs[0].offset()
    );
    for (k, m) in msgs.iter().enumerate() {
        let want_off = msgs[0].offset() + k as i64;
        assert_eq!(m.offset(), want_off, "contiguous offsets after log start");
        assert_eq!(
            m.payload(),
            Some(&by_offset[want_off as usize][..]),
            "record at offset {want_off}"
        );
    }
    assert_eq!(msgs.last().unwrap().offset(), high - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn size_retention_advances_log_start() {
    let broker = Broker::start(&[
        "--set",
        "log.segment.bytes=65536",
        "--set",
        "log.retention.check.interval.ms=200",
    ]);
    let bs = broker.bootstrap();
    const RETENTION: i64 = 262_144;
    // Local retention alone (tiered retention is covered in tiered_storage.rs).
    common::create_topic(
        &bs,
        "sized",
        1,
        &[
            ("retention.bytes", "262144"),
            ("remote.storage.enable", "false"),
        ],
    )
    .await;

    const N: usize = 2000; // ~2 MB: ~30 segments of 64 KiB
    let by_offset = produce_kb_records(&bs, "sized", 0, N, None).await;

    // Wait until retention has brought the partition near retention.bytes.
    let record = 1_000 + 80; // payload + record/batch overhead, roughly
    let max_kept = (RETENTION + 3 * 65_536) / record;
    // Settled = near retention.bytes and unchanged across several retention passes (200 ms
    // apart), so no pass is still deleting while we read from the log start.
    let mut last = (-1, -1);
    let mut stable_for = 0;
    let settled = common::wait_for(Duration::from_secs(20), || {
        let now = common::watermarks(&bs, "sized", 0);
        stable_for = if now == last { stable_for + 1 } else { 0 };
        last = now;
        let (low, high) = now;
        std::thread::sleep(Duration::from_millis(250));
        (low > 0 && high - low <= max_kept && stable_for >= 3).then_some((low, high))
    });
    let (low, high) = settled.unwrap_or_else(|| {
        panic!(
            "retention did not advance the log start within 20 s: watermarks {:?}",
            common::watermarks(&bs, "sized", 0)
        )
    });
    assert_eq!(high, N as i64);
    // Size retention deletes whole segments and keeps at least retention.bytes.
    let min_kept = (RETENTION - 65_536) / 1_100;
    assert!(
        high - low >= min_kept,
        "retention deleted too much: kept {} records (~{} bytes) with retention.bytes={RETENTION}",
        high - low,
        (high - low) * record
    );
    check_read_from_log_start(&bs, "sized", &by_offset);
}

#[tokio::test(flavor = "multi_thread")]
async fn time_retention_advances_log_start() {
    let broker = Broker::start(&[
        "--set",
        "log.segment.bytes=65536",
        "--set",
        "log.retention.check.interval.ms=200",
    ]);
    let bs = broker.bootstrap();
    common::create_topic(
        &bs,
        "timed",
        1,
        &[
            ("retention.ms", "60000"),
            ("remote.storage.enable", "false"),
        ],
    )
    .await;

    // Records stamped a day ago: every segment, the active one included (Kafka rolls it), is
    // past retention.ms, so the whole log goes and the log start meets the high watermark.
    produce_kb_records(&bs, "timed", 0, 500, Some(common::now_ms() - 86_400_000)).await;
    common::wait_for(Duration::from_secs(20), || {
        let (low, high) = common::watermarks(&bs, "timed", 0);
        (low == 500 && high == 500).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "time retention did not empty the expired log within 20 s: watermarks {:?}",
            common::watermarks(&bs, "timed", 0)
        )
    });
    // Fresh records after the purge get the next offsets and are readable from the new start.
    let by_offset = produce_kb_records(&bs, "timed", 500, 50, None).await;
    assert_eq!(common::watermarks(&bs, "timed", 0), (500, 550));
    check_read_from_log_start(&bs, "timed", &by_offset);
}

/// A second listener on IPv6 loopback advertises itself (not the IPv4 one) to clients that
/// come in through it, and both listeners serve the same log.
#[tokio::test(flavor = "multi_thread")]
async fn ipv6_listener_serves_and_advertises_itself() {
    if std::net::TcpListener::bind("[::1]:0").is_err()
        && skip_allowed(
            "ipv6_listener_serves_and_advertises_itself",
            "this machine has no IPv6 loopback",
        )
    {
        return;
    }
    let port6 = common::free_port();
    let listen6 = format!("[::1]:{port6}");
    let broker = Broker::start(&["--listen", &listen6]);
    let bs6 = listen6.clone();
    let md = common::consumer(&bs6, &[])
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("metadata over IPv6");
    assert_eq!(md.brokers().len(), 1);
    assert_eq!(md.brokers()[0].host(), "::1");
    assert_eq!(md.brokers()[0].port(), port6 as i32);

    common::create_topic(&bs6, "six", 1, &[]).await;
    let p = common::producer(&bs6, &[]);
    let d = p
        .send(
            FutureRecord::<(), _>::to("six").payload(b"over v6"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce over IPv6: {e}"));
    assert_eq!(d.offset, 0);
    // Read it back through the IPv4 listener.
    let ranges = BTreeMap::from([(0, (Offset::Beginning, 1))]);
    let got = common::consume(&broker.bootstrap(), "six", &ranges, Duration::from_secs(30));
    assert_eq!(got[&0][0].payload(), Some(&b"over v6"[..]));
}

/// Unknown or invalid settings stop start-up with a message naming them; SLUICE_* environment
/// variables configure the broker like flags do.
#[tokio::test(flavor = "multi_thread")]
async fn startup_settings_from_flags_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--set", "no.such.setting=1"], "no.such.setting"),
        (vec!["--set", "num.partitions=many"], "num.partitions"),
        (
            vec!["--advertised-listener", ":9092"],
            "host must not be empty",
        ),
        (
            vec!["--set", "log.message.timestamp.type=Sometimes"],
            "message.timestamp.type",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("serve")
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(&args)
            .output()
            .expect("run sluice");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail start-up");
        assert!(
            stderr.contains(needle),
            "{args:?}: message should name {needle:?}, got: {stderr}"
        );
    }

    // SLUICE_SET works like --set: auto-created topics get 3 partitions.
    let port = common::free_port();
    let data = dir.path().join("env");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_LISTEN", format!("127.0.0.1:{port}"))
        .env("SLUICE_DATA_DIR", &data)
        .env("SLUICE_SET", "num.partitions=3")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn sluice");
    let bs = format!("127.0.0.1:{port}");
    let up = common::wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&bs).ok().map(|_| ())
    });
    assert!(
        up.is_some(),
        "broker configured from the environment did not start"
    );
    let p = common::producer(&bs, &[]);
    p.send(
        FutureRecord::<(), _>::to("from-env").payload(b"x"),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    assert_eq!(partitions_of(&bs, "from-env"), Some(3));
    assert!(
        data.join("meta").join("cluster.json").exists(),
        "SLUICE_DATA_DIR used"
    );
    let _ = child.kill();
    let _ = child.wait();
}
