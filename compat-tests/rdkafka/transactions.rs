//! Transactions with librdkafka (the rdkafka crate): commit and abort seen exactly by
//! read_committed, zombie fencing, the timeout abort that frees the last stable offset, and the
//! kill -9 matrix: the broker dies at each step of ending a transaction (SLUICE_CRASH_AT) or in
//! the middle of one, and after the restart every transaction ends committed or aborted, whole.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;
const SENTINEL: &str = "sentinel";

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

fn txn_producer(bootstrap: &str, transactional_id: &str, extra: &[(&str, &str)]) -> TxnProducer {
    let mut c = common::client_config(bootstrap);
    c.set("transactional.id", transactional_id)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    for (k, v) in extra {
        c.set(*k, *v);
        if *k == "transaction.timeout.ms" {
            // librdkafka requires socket.timeout.ms <= transaction.timeout.ms + 100 and
            // message.timeout.ms <= transaction.timeout.ms.
            c.set("socket.timeout.ms", *v).set("message.timeout.ms", *v);
        }
    }
    let p: TxnProducer = c.create().expect("create transactional producer");
    p.init_transactions(Timeout::After(Duration::from_secs(30)))
        .expect("init_transactions");
    p
}

/// Sends `values` round-robin over the partitions and waits until they are written.
fn send(p: &TxnProducer, topic: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        let partition = i as i32 % PARTITIONS;
        p.send(
            BaseRecord::<(), str>::to(topic)
                .payload(v)
                .partition(partition),
        )
        .map_err(|(e, _)| e)
        .expect("enqueue");
    }
    p.flush(Timeout::After(Duration::from_secs(30)))
        .expect("flush");
}

fn values(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i:04}")).collect()
}

/// One non-transactional record per partition: once a read_committed consumer sees it, the
/// last stable offset has passed everything written before it.
fn send_sentinels(bootstrap: &str, topic: &str) {
    let p = common::producer(bootstrap, &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for partition in 0..PARTITIONS {
            p.send(
                rdkafka::producer::FutureRecord::<(), str>::to(topic)
                    .payload(SENTINEL)
                    .partition(partition),
                Duration::from_secs(30),
            )
            .await
            .expect("sentinel produce");
        }
    });
}

fn reader(bootstrap: &str, topic: &str, isolation: &str) -> BaseConsumer {
    let c = common::consumer(bootstrap, &[("isolation.level", isolation)]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).expect("assign");
    c
}

/// Every value before each partition's sentinel, by partition, as `isolation` reads them. Sends
/// the sentinels first; panics if they do not all arrive in `timeout` (a stuck LSO).
fn read_until_sentinels(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    timeout: Duration,
) -> BTreeMap<i32, Vec<String>> {
    send_sentinels(bootstrap, topic);
    let c = reader(bootstrap, topic, isolation);
    let mut out: BTreeMap<i32, Vec<String>> = (0..PARTITIONS).map(|p| (p, Vec::new())).collect();
    // A partition is done at its first sentinel (an earlier call may have left more).
    let mut done = std::collections::BTreeSet::new();
    let deadline = Instant::now() + timeout;
    while done.len() < PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "{isolation}: the sentinels did not all arrive in {timeout:?} (last stable offset stuck?); read so far: {out:?}"
        );
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => panic!("consumer error: {e}"),
            Some(Ok(m)) if done.contains(&m.partition()) => {}
            Some(Ok(m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                if v == SENTINEL {
                    done.insert(m.partition());
                } else {
                    out.get_mut(&m.partition()).unwrap().push(v);
                }
            }
        }
    }
    out
}

/// The values as they were sent round-robin, by partition.
fn by_partition(values: &[&[String]]) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = (0..PARTITIONS).map(|p| (p, Vec::new())).collect();
    for batch in values {
        for (i, v) in batch.iter().enumerate() {
            out.get_mut(&(i as i32 % PARTITIONS))
                .unwrap()
                .push(v.clone());
        }
    }
    out
}

fn create(bootstrap: &str, topic: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::create_topic(bootstrap, topic, PARTITIONS, &[]));
}

#[test]
fn read_committed_sees_exactly_the_committed_records() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    create(&bs, "txn-commit-abort");
    let p = txn_producer(&bs, "txn-commit-abort", &[]);
    let first = values("commit1", 30);
    let aborted = values("abort", 20);
    let flushed_then_aborted = values("abort-after-flush", 10);
    let second = values("commit2", 12);
    let t = Timeout::After(Duration::from_secs(30));

    p.begin_transaction().unwrap();
    send(&p, "txn-commit-abort", &first);
    p.commit_transaction(t).unwrap();

    p.begin_transaction().unwrap();
    for (i, v) in aborted.iter().enumerate() {
        p.send(
            BaseRecord::<(), str>::to("txn-commit-abort")
                .payload(v)
                .partition(i as i32 % PARTITIONS),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    }
    p.abort_transaction(t).unwrap();

    p.begin_transaction().unwrap();
    send(&p, "txn-commit-abort", &flushed_then_aborted);
    p.abort_transaction(t).unwrap();

    p.begin_transaction().unwrap();
    send(&p, "txn-commit-abort", &second);
    p.commit_transaction(t).unwrap();

    let committed = read_until_sentinels(
        &bs,
        "txn-commit-abort",
        "read_committed",
        Duration::from_secs(30),
    );
    assert_eq!(committed, by_partition(&[&first, &second]));
    let all = read_until_sentinels(
        &bs,
        "txn-commit-abort",
        "read_uncommitted",
        Duration::from_secs(30),
    );
    let total: usize = all.values().map(Vec::len).sum();
    // Records of the unflushed abort may never have been sent; the flushed ones were.
    assert!(
        total >= first.len() + flushed_then_aborted.len() + second.len(),
        "read_uncommitted saw {total} records: {all:?}"
    );
    for v in &flushed_then_aborted {
        assert!(
            all.values().any(|vs| vs.contains(v)),
            "read_uncommitted misses the flushed, aborted {v}"
        );
    }
}

#[test]
fn a_second_producer_fences_the_first() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    create(&bs, "txn-fence");
    let t = Timeout::After(Duration::from_secs(30));
    let zombie = txn_producer(&bs, "txn-fence", &[]);
    zombie.begin_transaction().unwrap();
    let zombie_values = values("zombie", 9);
    send(&zombie, "txn-fence", &zombie_values);

    // The same transactional.id again: the zombie's open transaction is aborted.
    let successor = txn_producer(&bs, "txn-fence", &[]);
    let fenced = zombie.commit_transaction(t);
    match fenced {
        Err(KafkaError::Transaction(e)) => assert!(
            e.is_fatal(),
            "the fenced producer's commit must fail fatally, got {e}"
        ),
        other => panic!("the fenced producer's commit did not fail: {other:?}"),
    }
    successor.begin_transaction().unwrap();
    let mine = values("successor", 6);
    send(&successor, "txn-fence", &mine);
    successor.commit_transaction(t).unwrap();

    let committed =
        read_until_sentinels(&bs, "txn-fence", "read_committed", Duration::from_secs(30));
    assert_eq!(committed, by_partition(&[&mine]));
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_frees_the_lso() {
    let broker = Broker::start(&[
        "--set",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=300",
    ]);
    let bs = broker.bootstrap();
    create(&bs, "txn-timeout");
    let p = txn_producer(&bs, "txn-timeout", &[("transaction.timeout.ms", "1500")]);
    p.begin_transaction().unwrap();
    let open = values("never-committed", 6);
    send(&p, "txn-timeout", &open);
    // Never ended: the broker aborts it once 1.5 s have passed, and the sentinels behind it
    // become readable.
    let committed = read_until_sentinels(
        &bs,
        "txn-timeout",
        "read_committed",
        Duration::from_secs(30),
    );
    assert_eq!(committed, by_partition(&[]));
    let late = p.commit_transaction(Timeout::After(Duration::from_secs(30)));
    assert!(
        late.is_err(),
        "committing a transaction the broker aborted must fail"
    );
}

/// A transaction whose EndTxn(commit) made PrepareCommit durable and then the broker died at
/// `point`: after the restart it is committed, every partition of it, and nothing is stuck.
fn crash_while_committing(point: &str) {
    let topic = format!("txn-crash-{}", point.replace(['.', '_'], "-"));
    let mut broker = Broker::start_with_env(&[], &[("SLUICE_CRASH_AT".into(), point.into())]);
    broker.allow_log_errors();
    let bs = broker.bootstrap();
    create(&bs, &topic);
    let p = txn_producer(&bs, &topic, &[("transaction.timeout.ms", "60000")]);
    let crashing = values("crashing", 15);
    p.begin_transaction().unwrap();
    send(&p, &topic, &crashing);
    // The broker aborts itself at `point` while ending this one.
    let _ = p.commit_transaction(Timeout::After(Duration::from_secs(5)));
    drop(p);
    broker.wait_exit(Duration::from_secs(20));
    broker.set_env(&[]);
    broker.restart();
    let bs = broker.bootstrap();
    let committed = read_until_sentinels(&bs, &topic, "read_committed", Duration::from_secs(60));
    assert_eq!(
        committed,
        by_partition(&[&crashing]),
        "after a crash at {point} the decided commit must be whole"
    );
}

#[test]
fn kill_before_the_markers_still_commits() {
    crash_while_committing("txn.before_markers");
}

#[test]
fn kill_between_two_partitions_markers_still_commits() {
    crash_while_committing("txn.between_markers");
}

#[test]
fn kill_before_complete_commit_still_commits() {
    crash_while_committing("txn.before_complete");
}

#[test]
fn kill9_in_an_open_transaction_aborts_it_after_the_restart() {
    let mut broker = Broker::start(&[
        "--set",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=300",
    ]);
    let bs = broker.bootstrap();
    create(&bs, "txn-kill-open");
    let p = txn_producer(&bs, "txn-kill-open", &[("transaction.timeout.ms", "2000")]);
    let committed_before = values("committed", 6);
    p.begin_transaction().unwrap();
    send(&p, "txn-kill-open", &committed_before);
    p.commit_transaction(Timeout::After(Duration::from_secs(30)))
        .unwrap();
    p.begin_transaction().unwrap();
    send(&p, "txn-kill-open", &values("open", 12));
    broker.kill9();
    drop(p);
    broker.restart();
    let bs = broker.bootstrap();
    // The coordinator kept the Ongoing transaction; its timeout aborts it after the restart.
    let committed = read_until_sentinels(
        &bs,
        "txn-kill-open",
        "read_committed",
        Duration::from_secs(60),
    );
    assert_eq!(committed, by_partition(&[&committed_before]));
}

/// Raw requests a well-behaved client never sends: a transactional batch into a partition
/// outside the transaction, and a forged COMMIT marker.
#[test]
fn transactional_batches_outside_the_transaction_and_forged_markers_are_refused() {
    use common::wire;
    use kafka_protocol::messages::{
        produce_request, InitProducerIdRequest, ProduceRequest, TopicName, TransactionalId,
    };
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    create(&bs, "txn-raw");
    let mut s = wire::connect(broker.addr(), Duration::from_secs(10));
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("raw-txn"))))
        .with_transaction_timeout_ms(60_000);
    wire::write_lenient(&mut s, &wire::request(3, 1, &init));
    let (_, init) = wire::response::<InitProducerIdRequest>(3, wire::read_frame(&mut s).unwrap());
    assert_eq!(init.error_code, 0);
    let produce = |records: bytes::Bytes| {
        ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("raw-txn"))))
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("txn-raw")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ])])
    };
    for (correlation, control, want, what) in [
        (
            2,
            false,
            48,
            "a transactional batch without AddPartitionsToTxn: INVALID_TXN_STATE",
        ),
        (3, true, 87, "a client's control batch: INVALID_RECORD"),
    ] {
        wire::write_lenient(
            &mut s,
            &wire::request(
                8,
                correlation,
                &produce(raw_batch(
                    init.producer_id.0,
                    init.producer_epoch,
                    control,
                    "raw",
                )),
            ),
        );
        let (_, r) = wire::response::<ProduceRequest>(8, wire::read_frame(&mut s).unwrap());
        let code = r.responses[0].partition_responses[0].error_code;
        assert_eq!(code, want, "{what}");
    }
    let (_, high) = common::watermarks(&bs, "txn-raw", 0);
    assert_eq!(high, 0, "nothing refused was written");
}

/// One request over a raw connection, its response decoded at the same version.
fn raw_call<R: kafka_protocol::protocol::Request>(
    s: &mut std::net::TcpStream,
    correlation_id: &mut i32,
    version: i16,
    request: &R,
) -> R::Response {
    use common::wire;
    *correlation_id += 1;
    wire::write_lenient(s, &wire::request(version, *correlation_id, request));
    let (got, response) = wire::response::<R>(version, wire::read_frame(s).expect("response"));
    assert_eq!(got, *correlation_id, "correlation id");
    response
}

/// One transactional record batch of `producer_id` (sequence 0); `control` makes it a
/// COMMIT marker as a client would forge it.
fn raw_batch(producer_id: i64, producer_epoch: i16, control: bool, value: &str) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = Record {
        transactional: true,
        control,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: common::now_ms(),
        key: control.then(|| bytes::Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(bytes::Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    };
    let mut b = Vec::new();
    RecordBatchEncoder::encode(
        &mut b,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    bytes::Bytes::from(b)
}

/// Many transactions at once: 300 producers with a transaction open in the same partition
/// (the LSO waits for the oldest), ended alternately by commit and abort; and one transaction
/// over 400 partitions (400 markers from one EndTxn). Afterwards read_committed sees exactly
/// the committed records and every last stable offset is back at the end of its partition.
#[test]
fn hundreds_of_open_transactions_and_one_over_hundreds_of_partitions() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    const PRODUCERS: usize = 300;
    const WIDE: i32 = 400;
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    create(&bs, "txn-many");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::create_topic(&bs, "txn-wide", WIDE, &[]));
    let mut s = common::wire::connect(broker.addr(), Duration::from_secs(60));
    let mut corr = 0;
    let tid = |name: &str| TransactionalId(StrBytes::from_string(name.to_string()));
    let topic = |name: &str| TopicName(StrBytes::from_string(name.to_string()));
    let begin = |s: &mut std::net::TcpStream,
                 corr: &mut i32,
                 id: &str,
                 name: &str,
                 partitions: Vec<i32>|
     -> (i64, i16) {
        let init = raw_call(
            s,
            corr,
            3,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(tid(id)))
                .with_transaction_timeout_ms(600_000),
        );
        assert_eq!(init.error_code, 0);
        let added = raw_call(
            s,
            corr,
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(tid(id))
                .with_v3_and_below_producer_id(init.producer_id)
                .with_v3_and_below_producer_epoch(init.producer_epoch)
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(topic(name))
                        .with_partitions(partitions),
                ]),
        );
        for t in &added.results_by_topic_v3_and_below {
            for p in &t.results_by_partition {
                assert_eq!(p.partition_error_code, 0, "AddPartitionsToTxn {id}");
            }
        }
        (init.producer_id.0, init.producer_epoch)
    };
    let produce = |s: &mut std::net::TcpStream,
                   corr: &mut i32,
                   id: &str,
                   name: &str,
                   batches: Vec<(i32, bytes::Bytes)>| {
        let r = raw_call(
            s,
            corr,
            8,
            &ProduceRequest::default()
                .with_transactional_id(Some(tid(id)))
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(topic(name))
                    .with_partition_data(
                        batches
                            .into_iter()
                            .map(|(index, records)| {
                                produce_request::PartitionProduceData::default()
                                    .with_index(index)
                                    .with_records(Some(records))
                            })
                            .collect(),
                    )]),
        );
        for p in &r.responses[0].partition_responses {
            assert_eq!(p.error_code, 0, "transactional produce of {id}");
        }
    };
    let end = |s: &mut std::net::TcpStream,
               corr: &mut i32,
               id: &str,
               (pid, epoch): (i64, i16),
               commit: bool| {
        let r = raw_call(
            s,
            corr,
            3,
            &EndTxnRequest::default()
                .with_transactional_id(tid(id))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit),
        );
        assert_eq!(r.error_code, 0, "EndTxn {id}");
    };

    // 300 transactions open at once in partition 0 of txn-many.
    let mut open = Vec::new();
    for i in 0..PRODUCERS {
        let id = format!("many-{i}");
        let producer = begin(&mut s, &mut corr, &id, "txn-many", vec![0]);
        produce(
            &mut s,
            &mut corr,
            &id,
            "txn-many",
            vec![(
                0,
                raw_batch(producer.0, producer.1, false, &format!("many-{i:04}")),
            )],
        );
        open.push((id, producer));
    }
    let mut committed = Vec::new();
    for (i, (id, producer)) in open.iter().enumerate() {
        let commit = i % 2 == 0;
        end(&mut s, &mut corr, id, *producer, commit);
        if commit {
            committed.push(format!("many-{i:04}"));
        }
    }
    let seen = read_until_sentinels(&bs, "txn-many", "read_committed", Duration::from_secs(60));
    assert_eq!(
        seen[&0], committed,
        "read_committed of 300 interleaved transactions"
    );

    // One transaction over 400 partitions.
    let wide = begin(&mut s, &mut corr, "wide", "txn-wide", (0..WIDE).collect());
    produce(
        &mut s,
        &mut corr,
        "wide",
        "txn-wide",
        (0..WIDE)
            .map(|p| (p, raw_batch(wide.0, wide.1, false, &format!("wide-{p}"))))
            .collect(),
    );
    end(&mut s, &mut corr, "wide", wide, true);
    let offsets = raw_call(
        &mut s,
        &mut corr,
        4,
        &ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(1)
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic("txn-wide"))
                .with_partitions(
                    (0..WIDE)
                        .map(|p| {
                            list_offsets_request::ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(-1)
                        })
                        .collect(),
                )]),
    );
    for p in &offsets.topics[0].partitions {
        // The record and its COMMIT marker: the last stable offset is past both.
        assert_eq!(
            (p.error_code, p.offset),
            (0, 2),
            "partition {} of the wide transaction",
            p.partition_index
        );
    }
}
