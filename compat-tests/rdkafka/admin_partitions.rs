//! CreatePartitions and DeleteRecords through librdkafka's AdminClient, with real producers and
//! consumers: new partitions take records and survive kill -9; validate_only changes nothing;
//! Kafka's errors for a decrease, no change, unknown topics and bad assignments. DeleteRecords
//! moves the log start inside a segment: consuming from the beginning starts there, ListOffsets
//! earliest answers it, reads below it are out of range, and it survives kill -9.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Broker;
use rdkafka::admin::NewPartitions;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

fn partitions_of(bs: &str, topic: &str) -> usize {
    let md = common::consumer(bs, &[])
        .fetch_metadata(Some(topic), Duration::from_secs(15))
        .expect("fetch_metadata");
    md.topics()[0].partitions().len()
}

async fn create_partitions(
    bs: &str,
    p: NewPartitions<'_>,
    validate_only: bool,
) -> Result<(), RDKafkaErrorCode> {
    let res = common::admin(bs)
        .create_partitions(&[p], &common::admin_opts().validate_only(validate_only))
        .await
        .expect("CreatePartitions request failed");
    assert_eq!(res.len(), 1);
    res[0].clone().map(|_| ()).map_err(|(_, code)| code)
}

async fn produce(bs: &str, topic: &str, partition: i32, values: std::ops::Range<i64>) {
    let p = common::producer(bs, &[]);
    for i in values {
        let v = format!("v{i}");
        p.send(
            FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&v),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce to {topic}/{partition}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_partitions_then_produce_and_consume_the_new_ones() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "grow", 2, &[]).await;

    // validate_only: accepted, nothing changes.
    assert_eq!(
        create_partitions(&bs, NewPartitions::new("grow", 4), true).await,
        Ok(())
    );
    assert_eq!(partitions_of(&bs, "grow"), 2);

    // Kafka's refusals.
    for (count, what) in [(2, "no change"), (1, "a decrease")] {
        assert_eq!(
            create_partitions(&bs, NewPartitions::new("grow", count), false).await,
            Err(RDKafkaErrorCode::InvalidPartitions),
            "{what}"
        );
    }
    assert_eq!(
        create_partitions(&bs, NewPartitions::new("no-such-topic", 3), false).await,
        Err(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    let unknown_broker: &[&[i32]] = &[&[2], &[2]];
    assert_eq!(
        create_partitions(
            &bs,
            NewPartitions::new("grow", 4).assign(unknown_broker),
            false
        )
        .await,
        Err(RDKafkaErrorCode::InvalidReplicaAssignment)
    );
    assert_eq!(partitions_of(&bs, "grow"), 2);

    // Explicit assignment to this broker, then a plain increase.
    let here: &[&[i32]] = &[&[1]];
    assert_eq!(
        create_partitions(&bs, NewPartitions::new("grow", 3).assign(here), false).await,
        Ok(())
    );
    assert_eq!(
        create_partitions(&bs, NewPartitions::new("grow", 5), false).await,
        Ok(())
    );
    assert_eq!(partitions_of(&bs, "grow"), 5);
    let md = common::consumer(&bs, &[])
        .fetch_metadata(Some("grow"), Duration::from_secs(15))
        .unwrap();
    for p in md.topics()[0].partitions() {
        assert_eq!((p.leader(), p.replicas(), p.isr()), (1, &[1][..], &[1][..]));
    }

    produce(&bs, "grow", 4, 0..10).await;
    produce(&bs, "grow", 0, 0..3).await;
    let ranges = BTreeMap::from([(4, (Offset::Beginning, 10))]);
    let got = common::consume(&bs, "grow", &ranges, Duration::from_secs(20));
    let values: Vec<String> = got[&4]
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap()).into_owned())
        .collect();
    assert_eq!(values, (0..10).map(|i| format!("v{i}")).collect::<Vec<_>>());

    // The count and the new partitions' data survive kill -9.
    broker.kill9();
    broker.restart();
    let bs = broker.bootstrap();
    assert_eq!(partitions_of(&bs, "grow"), 5);
    assert_eq!(common::watermarks(&bs, "grow", 4), (0, 10));
    assert_eq!(common::watermarks(&bs, "grow", 0), (0, 3));
    produce(&bs, "grow", 4, 10..12).await;
    assert_eq!(common::watermarks(&bs, "grow", 4), (0, 12));
    assert_eq!(
        create_partitions(&bs, NewPartitions::new("grow", 5), false).await,
        Err(RDKafkaErrorCode::InvalidPartitions)
    );
}

async fn delete_records(
    bs: &str,
    topic: &str,
    partition: i32,
    offset: Offset,
) -> (i64, Option<KafkaError>) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, offset).unwrap();
    let res = common::admin(bs)
        .delete_records(&tpl, &common::admin_opts())
        .await;
    match res {
        Ok(tpl) => {
            let e = tpl.elements();
            assert_eq!(e.len(), 1);
            let low = match e[0].offset() {
                Offset::Offset(o) => o,
                // librdkafka's -1 with an error.
                Offset::End => -1,
                other => panic!("low watermark {other:?}"),
            };
            (low, e[0].error().err())
        }
        Err(e) => (-1, Some(e)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_moves_the_log_start_and_survives_kill9() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    // Small segments: the new log start falls inside one, whole ones below it go.
    common::create_topic(&bs, "purge", 2, &[("segment.bytes", "2000")]).await;
    produce(&bs, "purge", 0, 0..300).await;
    produce(&bs, "purge", 1, 0..5).await;
    let dir = broker.data_dir().join("topics").join("purge-0");
    let segments = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count()
    };
    let before = segments();
    assert!(before > 3, "{before} segments");

    let (low, err) = delete_records(&bs, "purge", 0, Offset::Offset(123)).await;
    assert_eq!((low, err), (123, None));
    assert!(
        segments() < before,
        "whole segments below the log start are deleted"
    );
    assert_eq!(common::watermarks(&bs, "purge", 0), (123, 300));

    // A lower offset changes nothing; above the high watermark is out of range.
    let (low, err) = delete_records(&bs, "purge", 0, Offset::Offset(50)).await;
    assert_eq!((low, err), (123, None));
    let (_, err) = delete_records(&bs, "purge", 0, Offset::Offset(301)).await;
    assert_eq!(
        err.and_then(|e| e.rdkafka_error_code()),
        Some(RDKafkaErrorCode::OffsetOutOfRange)
    );
    // Offset::End: the high watermark.
    let (low, err) = delete_records(&bs, "purge", 1, Offset::End).await;
    assert_eq!((low, err), (5, None));
    assert_eq!(common::watermarks(&bs, "purge", 1), (5, 5));

    // Consuming from the beginning starts at the new log start.
    let ranges = BTreeMap::from([(0, (Offset::Beginning, 300))]);
    let got = common::consume(&bs, "purge", &ranges, Duration::from_secs(20));
    assert_eq!(got[&0].first().map(|m| m.offset()), Some(123));
    assert_eq!(got[&0].len(), 300 - 123);
    assert_eq!(got[&0][0].payload(), Some(&b"v123"[..]));

    broker.kill9();
    broker.restart();
    let bs = broker.bootstrap();
    assert_eq!(common::watermarks(&bs, "purge", 0), (123, 300));
    assert_eq!(common::watermarks(&bs, "purge", 1), (5, 5));

    // Below the log start: OFFSET_OUT_OF_RANGE (auto.offset.reset=error surfaces it).
    let c = common::consumer(&bs, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("purge", 0, Offset::Offset(100))
        .unwrap();
    c.assign(&tpl).unwrap();
    let err = common::wait_for(Duration::from_secs(20), || {
        match c.poll(Duration::from_millis(200)) {
            Some(Err(e)) => Some(e),
            Some(Ok(m)) => panic!("read offset {} below the log start", m.offset()),
            None => None,
        }
    })
    .expect("no error for an offset below the log start");
    assert!(
        matches!(
            err.rdkafka_error_code(),
            Some(RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset)
        ),
        "{err:?}"
    );
    produce(&bs, "purge", 0, 300..302).await;
    assert_eq!(common::watermarks(&bs, "purge", 0), (123, 302));
}
