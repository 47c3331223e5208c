//! Request versions no librdkafka build here sends, exercised with kafka-protocol's own
//! encoders: the topic-id paths (Metadata v12, Produce v13, Fetch v13+, DeleteTopics v6),
//! ListOffsets special timestamps, OffsetForLeaderEpoch, DescribeCluster, InitProducerId,
//! every version of the group and config APIs, and the cluster administration APIs.

mod common;

use bytes::Bytes;
use common::wire;
use common::Broker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use std::io::Write;
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
        let frame = wire::request(version, self.correlation_id, request);
        self.stream.write_all(&frame).unwrap();
        let response = wire::read_frame(&mut self.stream).expect("response");
        // `wire::response` also asserts the response was fully consumed.
        let (correlation_id, response) = wire::response::<R>(version, response);
        assert_eq!(correlation_id, self.correlation_id);
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
    assert_eq!(
        controllers.error_code, 114,
        "MISMATCHED_ENDPOINT_TYPE, as Kafka"
    );
    assert_eq!(
        controllers.endpoint_type, 1,
        "the endpoint type this listener is"
    );

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
    assert_eq!(
        (txn.error_code, txn.producer_epoch),
        (0, 0),
        "a new transactional id starts at epoch 0"
    );
    let too_long = c.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("txn-2"))))
            .with_transaction_timeout_ms(900_001),
    );
    assert_eq!(
        too_long.error_code, 50,
        "INVALID_TRANSACTION_TIMEOUT above transaction.max.timeout.ms"
    );
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn group(v: &str) -> GroupId {
    GroupId(s(v))
}

/// Joins `group_id` alone at JoinGroup `version` (two steps from v4) and returns
/// (member id, generation); checks the response fields each version carries.
fn join_alone(c: &mut Client, group_id: &str, version: i16) -> (StrBytes, i32) {
    let request = |member: StrBytes| {
        JoinGroupRequest::default()
            .with_group_id(group(group_id))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(if version >= 1 { 10_000 } else { -1 })
            .with_member_id(member)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
    };
    let mut r = c.call(version, &request(s("")));
    if version >= 4 {
        assert_eq!(r.error_code, 79, "v{version}: MEMBER_ID_REQUIRED first");
        assert!(!r.member_id.is_empty());
        r = c.call(version, &request(r.member_id.clone()));
    }
    assert_eq!(r.error_code, 0, "v{version} join");
    assert_eq!(r.leader, r.member_id, "v{version}: the only member leads");
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.members[0].metadata, Bytes::from_static(b"subscription"));
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    if version >= 7 {
        assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
    }
    (r.member_id, r.generation_id)
}

#[test]
fn group_apis_at_every_version() {
    let broker = Broker::start(&["--set", "group.initial.rebalance.delay.ms=0"]);
    let mut c = Client::connect(&broker);
    create(&mut c, "gt", 2);

    for v in 0..=6i16 {
        let mut request = FindCoordinatorRequest::default();
        if v >= 4 {
            request.coordinator_keys = vec![s("g"), s("")];
        } else {
            request.key = s("g");
        }
        let r = c.call(v, &request);
        if v >= 4 {
            assert_eq!(r.coordinators.len(), 2);
            assert_eq!(
                (r.coordinators[0].error_code, r.coordinators[0].port),
                (0, broker.addr().port() as i32)
            );
            // Kafka coordinates the empty group id too (offsets may be committed under it).
            assert_eq!(
                (r.coordinators[1].error_code, r.coordinators[1].node_id.0),
                (0, 1)
            );
        } else {
            assert_eq!(
                (r.error_code, r.node_id.0, r.port),
                (0, 1, broker.addr().port() as i32)
            );
        }
    }
    let txn = c.call(
        3,
        &FindCoordinatorRequest::default()
            .with_key(s("t"))
            .with_key_type(1),
    );
    assert_eq!(
        (txn.error_code, txn.node_id.0, txn.port),
        (0, 1, broker.addr().port() as i32),
        "this broker coordinates transactional ids too"
    );

    for v in 0..=9i16 {
        let gid = format!("raw-{v}");
        let (member, generation) = join_alone(&mut c, &gid, v);
        assert_eq!(generation, 1);
        let sync_v = v.min(5);
        let mut sync = SyncGroupRequest::default()
            .with_group_id(group(&gid))
            .with_generation_id(generation)
            .with_member_id(member.clone())
            .with_assignments(vec![
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(member.clone())
                    .with_assignment(Bytes::from_static(b"assignment")),
            ]);
        if sync_v >= 5 {
            sync.protocol_type = Some(s("consumer"));
            sync.protocol_name = Some(s("range"));
        }
        let synced = c.call(sync_v, &sync);
        assert_eq!(synced.error_code, 0, "sync v{sync_v}");
        assert_eq!(synced.assignment, Bytes::from_static(b"assignment"));

        let hb_v = v.min(4);
        let beat = |generation: i32| {
            HeartbeatRequest::default()
                .with_group_id(group(&gid))
                .with_generation_id(generation)
                .with_member_id(member.clone())
        };
        assert_eq!(c.call(hb_v, &beat(generation)).error_code, 0);
        assert_eq!(
            c.call(hb_v, &beat(generation + 1)).error_code,
            22,
            "ILLEGAL_GENERATION"
        );

        let commit_v = v.clamp(2, 9);
        let commit = OffsetCommitRequest::default()
            .with_group_id(group(&gid))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(member.clone())
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic_name("gt"))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(100 + v as i64)
                            .with_committed_metadata(Some(s("meta"))),
                    ]),
            ]);
        let committed = c.call(commit_v, &commit);
        assert_eq!(
            committed.topics[0].partitions[0].error_code, 0,
            "commit v{commit_v}"
        );

        let fetch_v = v.clamp(1, 9);
        let fetched_offset = if fetch_v >= 8 {
            let r = c.call(
                fetch_v,
                &OffsetFetchRequest::default().with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(group(&gid))
                        .with_topics(Some(vec![
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(topic_name("gt"))
                                .with_partition_indexes(vec![0, 1]),
                        ])),
                ]),
            );
            let parts = &r.groups[0].topics[0].partitions;
            assert_eq!(
                parts[0].committed_offset, -1,
                "nothing committed for partition 0"
            );
            assert_eq!(parts[1].metadata.as_deref(), Some("meta"));
            parts[1].committed_offset
        } else {
            let r = c.call(
                fetch_v,
                &OffsetFetchRequest::default()
                    .with_group_id(group(&gid))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(topic_name("gt"))
                            .with_partition_indexes(vec![0, 1]),
                    ])),
            );
            assert_eq!(r.topics[0].partitions[0].committed_offset, -1);
            assert_eq!(
                r.topics[0].partitions[1].metadata.as_deref(),
                Some("meta"),
                "metadata committed at v{commit_v} read at v{fetch_v}"
            );
            r.topics[0].partitions[1].committed_offset
        };
        assert_eq!(fetched_offset, 100 + v as i64, "fetch v{fetch_v}");

        let describe_v = v.min(6);
        let described = c.call(
            describe_v,
            &DescribeGroupsRequest::default().with_groups(vec![group(&gid)]),
        );
        let d = &described.groups[0];
        assert_eq!((d.error_code, d.group_state.as_str()), (0, "Stable"));
        assert_eq!(
            (d.protocol_type.as_str(), d.protocol_data.as_str()),
            ("consumer", "range")
        );
        assert_eq!(d.members[0].member_id, member);
        assert_eq!(
            d.members[0].member_assignment,
            Bytes::from_static(b"assignment")
        );
        assert_eq!(d.members[0].client_host.as_str(), "/127.0.0.1");

        let list_v = v.min(5);
        let listed = c.call(list_v, &ListGroupsRequest::default());
        let mine = listed
            .groups
            .iter()
            .find(|g| g.group_id.as_str() == gid)
            .expect("listed");
        assert_eq!(mine.protocol_type.as_str(), "consumer");
        if list_v >= 4 {
            assert_eq!(mine.group_state.as_str(), "Stable");
        }

        let delete_v = v.min(2);
        let deleting = DeleteGroupsRequest::default().with_groups_names(vec![group(&gid)]);
        assert_eq!(
            c.call(delete_v, &deleting).results[0].error_code,
            68,
            "NON_EMPTY_GROUP"
        );

        let leave_v = v.min(5);
        let mut leave = LeaveGroupRequest::default().with_group_id(group(&gid));
        if leave_v >= 3 {
            leave.members =
                vec![leave_group_request::MemberIdentity::default().with_member_id(member.clone())];
        } else {
            leave.member_id = member.clone();
        }
        let left = c.call(leave_v, &leave);
        assert_eq!(left.error_code, 0);
        if leave_v >= 3 {
            assert_eq!(left.members[0].error_code, 0);
        }
        assert_eq!(
            c.call(delete_v, &deleting).results[0].error_code,
            0,
            "deleted once empty"
        );
        let gone = c.call(
            6,
            &DescribeGroupsRequest::default().with_groups(vec![group(&gid)]),
        );
        assert_eq!(gone.groups[0].error_code, 69, "GROUP_ID_NOT_FOUND");
    }

    // A plain commit creates a simple group; OffsetDelete removes its offset.
    let plain = OffsetCommitRequest::default()
        .with_group_id(group("plain"))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic_name("gt"))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5),
                ]),
        ]);
    assert_eq!(c.call(9, &plain).topics[0].partitions[0].error_code, 0);
    let deleted = c.call(
        0,
        &OffsetDeleteRequest::default()
            .with_group_id(group("plain"))
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(topic_name("gt"))
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(0),
                    ]),
            ]),
    );
    assert_eq!(
        (
            deleted.error_code,
            deleted.topics[0].partitions[0].error_code
        ),
        (0, 0)
    );
}

#[test]
fn consumer_group_heartbeat_and_describe_at_every_version() {
    let broker = Broker::start(&[]);
    let mut c = Client::connect(&broker);
    let topic_id = create(&mut c, "kip848", 3);
    for v in 0..=1i16 {
        let gid = format!("kip848-{v}");
        // v1 (KIP-1082): the client generates its member id.
        let member = if v >= 1 {
            s(&uuid::Uuid::new_v4().to_string())
        } else {
            s("")
        };
        let joined = c.call(
            v,
            &ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group(&gid))
                .with_member_id(member)
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(30_000)
                .with_subscribed_topic_names(Some(vec![topic_name("kip848")]))
                .with_topic_partitions(Some(vec![])),
        );
        assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
        assert_eq!(joined.member_epoch, 1);
        assert!(joined.heartbeat_interval_ms > 0);
        let assignment = joined
            .assignment
            .expect("first heartbeat carries the assignment");
        assert_eq!(assignment.topic_partitions.len(), 1);
        assert_eq!(assignment.topic_partitions[0].topic_id, topic_id);
        assert_eq!(assignment.topic_partitions[0].partitions, vec![0, 1, 2]);
        let member_id = joined.member_id.expect("member id");

        let described = c.call(
            v,
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![group(&gid)]),
        );
        let d = &described.groups[0];
        assert_eq!(
            (d.error_code, d.group_state.as_str(), d.group_epoch),
            (0, "Stable", 1)
        );
        assert_eq!(d.assignor_name.as_str(), "uniform");
        assert_eq!(d.members[0].member_id, member_id);
        assert_eq!(
            d.members[0].assignment.topic_partitions[0]
                .topic_name
                .as_str(),
            "kip848"
        );

        // Commits are checked against the member epoch.
        let commit = |epoch: i32| {
            OffsetCommitRequest::default()
                .with_group_id(group(&gid))
                .with_generation_id_or_member_epoch(epoch)
                .with_member_id(member_id.clone())
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic_name("kip848"))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ])
        };
        assert_eq!(c.call(9, &commit(1)).topics[0].partitions[0].error_code, 0);
        assert_eq!(
            c.call(9, &commit(7)).topics[0].partitions[0].error_code,
            113,
            "STALE_MEMBER_EPOCH"
        );
        // The classic describe does not show a consumer group.
        let classic = c.call(
            6,
            &DescribeGroupsRequest::default().with_groups(vec![group(&gid)]),
        );
        assert_eq!(classic.groups[0].error_code, 69);

        let left = c.call(
            v,
            &ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group(&gid))
                .with_member_id(member_id.clone())
                .with_member_epoch(-1),
        );
        assert_eq!((left.error_code, left.member_epoch), (0, -1));
    }
}

#[test]
fn describe_configs_at_every_version() {
    let broker = Broker::start(&["--set", "log.retention.ms=1000000"]);
    let mut c = Client::connect(&broker);
    create(&mut c, "dc", 1);
    for v in 1..=4i16 {
        let r = c.call(
            v,
            &DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("dc"))
                        .with_configuration_keys(Some(vec![s("retention.ms")])),
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(s("1")),
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("missing")),
                ]),
        );
        let topic = &r.results[0];
        assert_eq!(topic.error_code, 0);
        assert_eq!(topic.configs.len(), 1);
        let retention = &topic.configs[0];
        assert_eq!(retention.value.as_deref(), Some("1000000"));
        assert_eq!(retention.config_source, 4, "STATIC_BROKER_CONFIG");
        assert_eq!(retention.synonyms[0].name.as_str(), "log.retention.ms");
        let broker_cfg = &r.results[1];
        assert!(broker_cfg
            .configs
            .iter()
            .any(|c| c.name.as_str() == "num.partitions" && c.value.as_deref() == Some("1")));
        assert_eq!(r.results[2].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    }
}

/// ApiVersions v3+ carries Kafka's feature flags (the Java client and franz-go switch behaviour
/// on them): metadata.version for the 4.1 schemas, transaction.version 2 (KIP-890), group.version
/// 1 while KIP-848 is on.
#[test]
fn api_versions_features() {
    let broker = Broker::start(&[]);
    let mut c = Client::connect(&broker);
    for version in 3..=4 {
        let r = c.call(
            version,
            &ApiVersionsRequest::default()
                .with_client_software_name(s("raw-protocol-test"))
                .with_client_software_version(s("1")),
        );
        assert_eq!(r.error_code, 0);
        let supported: Vec<(String, i16, i16)> = r
            .supported_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version, f.max_version))
            .collect();
        assert_eq!(
            supported,
            [
                ("metadata.version".to_string(), 7, 27),
                ("transaction.version".to_string(), 0, 2),
                ("group.version".to_string(), 0, 1)
            ],
            "v{version}"
        );
        let finalized: Vec<(String, i16)> = r
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect();
        assert_eq!(
            finalized,
            [
                ("metadata.version".to_string(), 27),
                ("transaction.version".to_string(), 2),
                ("group.version".to_string(), 1)
            ]
        );
        assert!(r.finalized_features_epoch >= 0);
    }
    // Kafka's rule for the client software fields: INVALID_REQUEST and no API list otherwise.
    for (name, version) in [("", "1"), ("-bad", "1"), ("ok", "1.0+x"), ("a b", "1")] {
        let r = c.call(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(s(name))
                .with_client_software_version(s(version)),
        );
        assert_eq!(r.error_code, 42, "{name:?} {version:?}");
        assert!(r.api_keys.is_empty());
    }
    drop(c);
    let broker = Broker::start(&["--set", "group.coordinator.rebalance.protocols=classic"]);
    let r = Client::connect(&broker).call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(s("raw-protocol-test"))
            .with_client_software_version(s("1")),
    );
    let finalized: Vec<String> = r
        .finalized_features
        .iter()
        .map(|f| f.name.to_string())
        .collect();
    assert_eq!(
        finalized,
        ["metadata.version", "transaction.version"],
        "group.version 0 is not finalized"
    );
}

/// Without an authorizer the ACL APIs answer SECURITY_DISABLED, as Kafka does (kafka-acls and
/// UIs read that as "ACLs are off").
#[test]
fn acl_apis_answer_security_disabled() {
    use kafka_protocol::ResponseError as E;
    let broker = Broker::start(&[]);
    let mut c = Client::connect(&broker);
    for version in 1..=3 {
        // Every filter field ANY (1): UNKNOWN (0) closes the connection, as in Kafka.
        let r = c.call(
            version,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        );
        assert_eq!(
            r.error_code,
            E::SecurityDisabled.code(),
            "DescribeAcls v{version}"
        );
        assert!(r.resources.is_empty());
        let r = c.call(
            version,
            &CreateAclsRequest::default().with_creations(vec![
                create_acls_request::AclCreation::default(),
                create_acls_request::AclCreation::default(),
            ]),
        );
        assert_eq!(r.results.len(), 2);
        assert!(r
            .results
            .iter()
            .all(|x| x.error_code == E::SecurityDisabled.code()));
        let r = c.call(
            version,
            &DeleteAclsRequest::default().with_filters(vec![
                delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
            ]),
        );
        assert_eq!(r.filter_results.len(), 1);
        assert_eq!(
            r.filter_results[0].error_code,
            E::SecurityDisabled.code(),
            "DeleteAcls v{version}"
        );
    }
}

/// The cluster administration APIs over the wire, as a single-broker KRaft Kafka answers them:
/// DescribeTopicPartitions pages through two topics with its cursor, ElectLeaders finds no
/// election needed, no reassignment is ever in progress, DescribeQuorum names this node the
/// only voter, UpdateFeatures accepts only the finalized level, ListConfigResources lists
/// topics and the broker; the telemetry APIs are not advertised.
#[test]
fn cluster_admin_apis() {
    use kafka_protocol::ResponseError as E;
    let broker = Broker::start(&[]);
    let mut c = Client::connect(&broker);
    create(&mut c, "dtp-b", 2);
    create(&mut c, "dtp-a", 3);

    // Pages of 2 partitions over a (3) and b (2): a0 a1 | a2 b0 | b1.
    let mut cursor: Option<describe_topic_partitions_request::Cursor> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.call(
            0,
            &DescribeTopicPartitionsRequest::default()
                .with_topics(
                    ["dtp-b", "dtp-a"]
                        .iter()
                        .map(|t| {
                            describe_topic_partitions_request::TopicRequest::default()
                                .with_name(topic_name(t))
                        })
                        .collect(),
                )
                .with_response_partition_limit(2)
                .with_cursor(cursor.take()),
        );
        pages += 1;
        for t in &r.topics {
            assert_eq!(t.error_code, 0);
            assert!(!t.topic_id.is_nil() && !t.is_internal);
            for p in &t.partitions {
                assert_eq!((p.leader_id.0, p.replica_nodes.len()), (1, 1));
                seen.push(format!(
                    "{}-{}",
                    t.name.as_ref().unwrap().as_str(),
                    p.partition_index
                ));
            }
        }
        match r.next_cursor {
            Some(next) => {
                cursor = Some(
                    describe_topic_partitions_request::Cursor::default()
                        .with_topic_name(next.topic_name)
                        .with_partition_index(next.partition_index),
                )
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        ["dtp-a-0", "dtp-a-1", "dtp-a-2", "dtp-b-0", "dtp-b-1"]
    );

    for version in 0..=2 {
        let r = c.call(
            version,
            &ElectLeadersRequest::default().with_topic_partitions(Some(vec![
                elect_leaders_request::TopicPartitions::default()
                    .with_topic(topic_name("dtp-a"))
                    .with_partitions(vec![0, 9]),
            ])),
        );
        let codes: Vec<i16> = r.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            [
                E::ElectionNotNeeded.code(),
                E::UnknownTopicOrPartition.code()
            ]
        );
    }
    let r = c.call(
        0,
        &ListPartitionReassignmentsRequest::default().with_topics(None),
    );
    assert!(r.error_code == 0 && r.topics.is_empty());
    let r = c.call(
        1,
        &AlterPartitionReassignmentsRequest::default().with_topics(vec![
            alter_partition_reassignments_request::ReassignableTopic::default()
                .with_name(topic_name("dtp-a"))
                .with_partitions(vec![
                    alter_partition_reassignments_request::ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(vec![BrokerId(1)])),
                    alter_partition_reassignments_request::ReassignablePartition::default()
                        .with_partition_index(1)
                        .with_replicas(None),
                    alter_partition_reassignments_request::ReassignablePartition::default()
                        .with_partition_index(2)
                        .with_replicas(Some(vec![BrokerId(1), BrokerId(2)])),
                ]),
        ]),
    );
    let codes: Vec<i16> = r.responses[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(
        codes,
        [
            0,
            E::NoReassignmentInProgress.code(),
            E::InvalidReplicaAssignment.code()
        ]
    );

    let r = c.call(
        2,
        &DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(topic_name("__cluster_metadata"))
                .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
        ]),
    );
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_id.0, p.leader_epoch), (0, 1, 1));
    assert_eq!(p.current_voters.len(), 1);
    assert!(p.observers.is_empty() && p.high_watermark >= 2);
    assert_eq!(r.nodes[0].listeners[0].port, broker.addr().port());

    let update = |c: &mut Client, level: i16| {
        c.call(
            1,
            &UpdateFeaturesRequest::default()
                .with_validate_only(true)
                .with_feature_updates(vec![update_features_request::FeatureUpdateKey::default()
                    .with_feature(s("transaction.version"))
                    .with_max_version_level(level)
                    .with_upgrade_type(1)]),
        )
        .error_code
    };
    assert_eq!(update(&mut c, 2), 0);
    assert_eq!(update(&mut c, 5), E::InvalidUpdateVersion.code());

    let r = c.call(1, &ListConfigResourcesRequest::default());
    let mut names: Vec<(i8, String)> = r
        .config_resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            (2, "dtp-a".to_string()),
            (2, "dtp-b".to_string()),
            (4, "1".to_string()),
            (8, "1".to_string())
        ]
    );
    let r = c.call(0, &ListConfigResourcesRequest::default());
    assert!(r.config_resources.is_empty());

    let r = c.call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(s("raw-protocol-test"))
            .with_client_software_version(s("1")),
    );
    let keys: Vec<i16> = r.api_keys.iter().map(|k| k.api_key).collect();
    for served in [75, 43, 46, 45, 55, 57, 74] {
        assert!(keys.contains(&served), "API {served} advertised");
    }
    assert!(
        !keys.contains(&71) && !keys.contains(&72),
        "telemetry not advertised"
    );
}
