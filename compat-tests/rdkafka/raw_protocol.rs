//! Request versions no librdkafka build here sends, exercised with kafka-protocol's own
//! encoders: the topic-id paths (Metadata v12, Produce v13, Fetch v13+, DeleteTopics v6),
//! ListOffsets special timestamps, OffsetForLeaderEpoch, DescribeCluster, InitProducerId.

mod common;

use bytes::{Bytes, BytesMut};
use common::wire;
use common::Broker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    fn connect(broker: &Broker) -> Client {
        Client {
            stream: wire::connect(broker.addr(), Duration::from_secs(10)),
            correlation_id: 0,
        }
    }

    fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-protocol-test")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, R::header_version(version)).unwrap();
        request.encode(&mut buf, version).unwrap();
        let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&buf);
        self.stream.write_all(&frame).unwrap();
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).expect("response length");
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).expect("response body");
        let mut body = Bytes::from(body);
        let response_header =
            ResponseHeader::decode(&mut body, R::Response::header_version(version)).unwrap();
        assert_eq!(response_header.correlation_id, self.correlation_id);
        let response = R::Response::decode(&mut body, version).expect("decodable response");
        assert!(body.is_empty(), "response fully consumed");
        response
    }
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(client: &mut Client, name: &str, partitions: i32) -> uuid::Uuid {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let response = client.call(7, &request);
    let t = &response.topics[0];
    assert_eq!(t.error_code, 0, "{:?}", t.error_message);
    assert_eq!(t.num_partitions, partitions);
    assert!(t
        .configs
        .as_ref()
        .is_some_and(|c| c.iter().any(|c| c.name.as_str() == "retention.ms")));
    assert!(!t.topic_id.is_nil());
    t.topic_id
}

#[test]
fn topic_ids_through_metadata_produce_fetch_and_delete() {
    let broker = Broker::start(&[]);
    let mut c = Client::connect(&broker);
    let id = create(&mut c, "by-id", 2);

    // Metadata v12 by id returns the name; an unknown id gets UNKNOWN_TOPIC_ID.
    let md = c.call(
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(id),
            metadata_request::MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(uuid::Uuid::from_u128(42)),
        ])),
    );
    assert_eq!(
        md.topics[0].name.as_ref().map(|n| n.0.as_str()),
        Some("by-id")
    );
    assert_eq!(md.topics[0].partitions.len(), 2);
    assert_eq!(md.topics[1].error_code, 100);
    assert_eq!(md.controller_id.0, 1);
    assert!(md.cluster_id.is_some());

    // Produce v13 addresses the topic by id.
    let ts = common::now_ms();
    let batch = wire::record_batch(
        ts,
        &[wire::RawRecord {
            key: Some(b"k"),
            value: Some(b"hello by id"),
            headers: vec![],
        }],
    );
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_topic_id(id)
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(1)
                    .with_records(Some(Bytes::from(batch.clone()))),
                produce_request::PartitionProduceData::default()
                    .with_index(7)
                    .with_records(Some(Bytes::from(batch.clone()))),
            ])]);
    let pr = c.call(13, &produce);
    assert_eq!(pr.responses[0].topic_id, id);
    let parts = &pr.responses[0].partition_responses;
    assert_eq!((parts[0].error_code, parts[0].base_offset), (0, 0));
    assert_eq!(
        parts[1].error_code, 3,
        "known topic id, unknown partition: UNKNOWN_TOPIC_OR_PARTITION"
    );

    // Fetch v13 and v17 by id return the stored batch; an unknown id gets UNKNOWN_TOPIC_ID.
    for version in [13, 17] {
        let fetch = FetchRequest::default()
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                fetch_request::FetchTopic::default()
                    .with_topic_id(id)
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_partition(1)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20)]),
                fetch_request::FetchTopic::default()
                    .with_topic_id(uuid::Uuid::from_u128(7))
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)]),
            ]);
        let fr = c.call(version, &fetch);
        assert_eq!(fr.responses[0].topic_id, id);
        let p = &fr.responses[0].partitions[0];
        assert_eq!(
            (p.error_code, p.high_watermark, p.log_start_offset),
            (0, 1, 0)
        );
        let records = p.records.as_ref().expect("records");
        // Stored as sent, except the leader epoch (outside the CRC) patched to 0.
        assert_eq!(records.len(), batch.len());
        assert_eq!(&records[16..], &batch[16..]);
        assert_eq!(fr.responses[1].partitions[0].error_code, 100);
    }

    // DeleteTopics v6 by id.
    let dr = c.call(
        6,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_topic_id(id)
            ]),
    );
    assert_eq!(dr.responses[0].error_code, 0);
    assert_eq!(
        dr.responses[0].name.as_ref().map(|n| n.0.as_str()),
        Some("by-id")
    );
    let md = c.call(
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(id),
        ])),
    );
    assert_eq!(md.topics[0].error_code, 100, "deleted topic id is unknown");
    assert!(
        !broker.data_dir().join("topics").join("by-id-0").exists(),
        "files removed"
    );
}

#[test]
fn list_offsets_epochs_cluster_and_producer_ids() {
    let broker = Broker::start(&[]);
    let mut c = Client::connect(&broker);
    create(&mut c, "lo", 1);
    let ts = common::now_ms() - 10_000;
    // Three batches with increasing timestamps; the middle one holds the maximum.
    for (i, t) in [ts, ts + 5000, ts + 1000].iter().enumerate() {
        let value = format!("v{i}");
        let batch = wire::record_batch(
            *t,
            &[wire::RawRecord {
                key: None,
                value: Some(value.as_bytes()),
                headers: vec![],
            }],
        );
        let pr = c.call(
            9,
            &ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(topic_name("lo"))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(Bytes::from(batch))),
                    ])]),
        );
        assert_eq!(pr.responses[0].partition_responses[0].base_offset, i as i64);
    }
    let query = |timestamp: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic_name("lo"))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp),
                ])])
    };
    let mut lookup = |timestamp: i64, version: i16| {
        let r = c.call(version, &query(timestamp));
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        (p.offset, p.timestamp, p.leader_epoch)
    };
    assert_eq!(lookup(-2, 9), (0, -1, 0), "earliest");
    assert_eq!(lookup(-1, 9), (3, -1, 0), "latest");
    assert_eq!(lookup(-3, 9), (1, ts + 5000, 0), "max timestamp");
    assert_eq!(
        lookup(ts + 500, 9),
        (1, ts + 5000, 0),
        "first record at or after"
    );
    assert_eq!(lookup(ts + 6000, 9).0, -1, "nothing that late");
    assert_eq!(lookup(-2, 1).0, 0, "v1 works too");

    let epochs = c.call(
        4,
        &OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(topic_name("lo"))
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_leader_epoch(0)
                            .with_current_leader_epoch(-1),
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_leader_epoch(5)
                            .with_current_leader_epoch(-1),
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_partition(3)
                            .with_leader_epoch(0),
                    ]),
            ]),
    );
    let e = &epochs.topics[0].partitions;
    assert_eq!(
        (e[0].error_code, e[0].leader_epoch, e[0].end_offset),
        (0, 0, 3)
    );
    assert_eq!(
        (e[1].error_code, e[1].leader_epoch, e[1].end_offset),
        (0, -1, -1)
    );
    assert_eq!(e[2].error_code, 3);

    let cluster = c.call(1, &DescribeClusterRequest::default().with_endpoint_type(1));
    assert_eq!(cluster.error_code, 0);
    assert_eq!(cluster.controller_id.0, 1);
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].port, broker.addr().port() as i32);
    assert_eq!(cluster.cluster_id.len(), 22);
    let controllers = c.call(1, &DescribeClusterRequest::default().with_endpoint_type(2));
    assert_eq!(controllers.error_code, 115, "UNSUPPORTED_ENDPOINT_TYPE");

    let a = c.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    let b = c.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!((a.error_code, a.producer_epoch), (0, 0));
    assert!(b.producer_id.0 > a.producer_id.0, "fresh producer ids");
    let txn = c.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("txn"))))
            .with_transaction_timeout_ms(60_000),
    );
    assert_eq!(txn.error_code, 53, "transactions are refused clearly");
}
