//! Handler unit tests: a real broker over a temporary data dir, no socket. Each calls a
//! handler with a typed request, as the connection does after decoding.

use super::*;
use crate::broker::Broker;
use crate::config::{BrokerConfig, ServeArgs};
use crate::record_batch::{self, NewRecord, Producer};
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;
use std::net::SocketAddr;
use std::sync::Arc;

struct TestBroker {
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    fn open() -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let args = ServeArgs {
            data_dir: Some(dir.path().to_path_buf()),
            set: vec!["remote.log.storage.system.enable=false".to_string()],
            ..Default::default()
        };
        let broker = Broker::open(BrokerConfig::resolve(&args).unwrap()).unwrap();
        TestBroker { broker, _dir: dir }
    }

    fn ctx(&self, api_version: i16) -> RequestContext {
        let listener = Arc::new(Listener {
            name: "PLAINTEXT".to_string(),
            security_protocol: SecurityProtocol::Plaintext,
            advertised_host: "localhost".to_string(),
            advertised_port: 9092,
        });
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        RequestContext {
            broker: self.broker.clone(),
            session: Arc::new(Session::new(listener, peer)),
            api_version,
        }
    }

    /// The same data dir, after a clean close (what a restart finds).
    fn reopen(self) -> TestBroker {
        self.broker.close();
        let dir = self._dir;
        let args = ServeArgs {
            data_dir: Some(dir.path().to_path_buf()),
            set: vec!["remote.log.storage.system.enable=false".to_string()],
            ..Default::default()
        };
        drop(self.broker);
        let broker = Broker::open(BrokerConfig::resolve(&args).unwrap()).unwrap();
        TestBroker { broker, _dir: dir }
    }

    fn create(&self, name: &str, partitions: i32) {
        self.broker
            .create_topic(
                name,
                partitions,
                crate::broker::Placement::Factor(1),
                Default::default(),
            )
            .unwrap();
    }
}

async fn answer(handled: Handled) -> ResponseKind {
    match handled {
        Handled::Ready(r) => *r,
        Handled::Deferred(f) => f.await,
        Handled::NoResponse => panic!("no response"),
        Handled::Close(reason) => panic!("connection closed: {reason}"),
        Handled::Sasl { response, .. } => *response,
    }
}

/// SaslHandshake and SaslAuthenticate on a SASL_PLAINTEXT listener: the session's new state
/// and principal come back with the response; a wrong password closes after the delay.
#[test]
fn sasl_plain_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        data_dir: Some(dir.path().to_path_buf()),
        set: vec![
            "remote.log.storage.system.enable=false".to_string(),
            "sasl.enabled.mechanisms=PLAIN".to_string(),
            r#"listener.name.sasl_plaintext.plain.sasl.jaas.config=x.PlainLoginModule required user_alice="secret";"#.to_string(),
        ],
        ..Default::default()
    };
    let broker = Broker::open(BrokerConfig::resolve(&args).unwrap()).unwrap();
    let listener = Arc::new(Listener {
        name: "SASL_PLAINTEXT".to_string(),
        security_protocol: SecurityProtocol::SaslPlaintext,
        advertised_host: "localhost".to_string(),
        advertised_port: 9092,
    });
    let mut session = Session::new(listener, "127.0.0.1:50000".parse().unwrap());
    assert!(session.awaiting_sasl());
    let ctx = |session: &Session, api_version| RequestContext {
        broker: broker.clone(),
        session: Arc::new(session.clone()),
        api_version,
    };
    let handshake = SaslHandshakeRequest::default().with_mechanism(str_bytes("PLAIN"));
    match super::sasl_handshake::handle(&ctx(&session, 1), handshake) {
        Handled::Sasl {
            sasl, close: None, ..
        } => session.sasl = sasl,
        _ => panic!("handshake"),
    }
    let wrong =
        SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0alice\0no"));
    match super::sasl_authenticate::handle(&ctx(&session, 2), wrong) {
        Handled::Sasl {
            response,
            close: Some(delay),
            principal: None,
            ..
        } => {
            assert_eq!(delay, std::time::Duration::from_millis(100));
            let ResponseKind::SaslAuthenticate(r) = *response else {
                panic!()
            };
            assert_eq!(r.error_code, 58);
        }
        _ => panic!("wrong password"),
    }
    let right =
        SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0alice\0secret"));
    match super::sasl_authenticate::handle(&ctx(&session, 2), right) {
        Handled::Sasl {
            sasl,
            principal: Some(p),
            close: None,
            ..
        } => {
            assert_eq!(sasl, SaslState::Authenticated);
            assert_eq!(p.name, "alice");
        }
        _ => panic!("right password"),
    }
    broker.close();
}

fn batch(values: &[&str]) -> Bytes {
    let records = values
        .iter()
        .map(|v| NewRecord {
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            timestamp: crate::log::now_ms(),
        })
        .collect();
    record_batch::encode(records, &Producer::NONE, Compression::None).unwrap()
}

fn topic_request(name: &str) -> MetadataRequestTopic {
    MetadataRequestTopic::default().with_name(Some(TopicName(str_bytes(name))))
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_topic_lists_by_version() {
    let b = TestBroker::open();
    b.create("a", 2);
    let metadata = |version, topics| {
        let ctx = b.ctx(version);
        let request = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        match metadata::handle(&ctx, request) {
            Handled::Ready(r) => match *r {
                ResponseKind::Metadata(m) => m,
                _ => panic!("not a Metadata response"),
            },
            _ => panic!("Metadata answers at once"),
        }
    };
    // v0: an empty list means every topic; v1+: empty means none, null means all.
    assert_eq!(metadata(0, Some(vec![])).topics.len(), 1);
    assert!(metadata(1, Some(vec![])).topics.is_empty());
    let all = metadata(1, None);
    assert_eq!(all.topics[0].partitions.len(), 2);
    let p = &all.topics[0].partitions[1];
    assert_eq!((p.leader_id.0, p.leader_epoch), (1, 0));
    assert_eq!(p.replica_nodes, vec![BrokerId(1)]);
    let missing = metadata(4, Some(vec![topic_request("nope")]));
    assert_eq!(
        missing.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // By id only from v12; below, Kafka answers INVALID_REQUEST and no brokers.
    let by_id = MetadataRequestTopic::default().with_topic_id(uuid::Uuid::new_v4());
    let old = metadata(10, Some(vec![by_id.clone()]));
    assert_eq!(
        old.topics[0].error_code,
        ResponseError::InvalidRequest.code()
    );
    assert!(old.brokers.is_empty());
    let new = metadata(12, Some(vec![by_id]));
    assert_eq!(
        new.topics[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_validates_before_creating() {
    let b = TestBroker::open();
    let ctx = b.ctx(7);
    let topic = |name: &str, replication: i16| {
        CreatableTopic::default()
            .with_name(TopicName(str_bytes(name)))
            .with_num_partitions(3)
            .with_replication_factor(replication)
    };
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic("ok", 1), topic("too-many-replicas", 3)])
        .with_validate_only(true);
    let ResponseKind::CreateTopics(r) = answer(create_topics::handle(&ctx, request)).await else {
        panic!("not a CreateTopics response");
    };
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].num_partitions, 3);
    assert_eq!(
        r.topics[1].error_code,
        ResponseError::InvalidReplicationFactor.code()
    );
    assert!(
        b.broker.topic("ok").is_none(),
        "validate_only creates nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_then_fetch_list_offsets_and_leader_epochs() {
    let b = TestBroker::open();
    b.create("t", 1);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(str_bytes("t")))
            .with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&["a", "b", "c"]))),
                PartitionProduceData::default()
                    .with_index(1)
                    .with_records(Some(batch(&["x"]))),
            ])]);
    let ResponseKind::Produce(r) = answer(produce::handle(&b.ctx(9), produce)).await else {
        panic!("not a Produce response");
    };
    let parts = &r.responses[0].partition_responses;
    assert_eq!((parts[0].error_code, parts[0].base_offset), (0, 0));
    assert_eq!(
        parts[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    // acks=all answered: the high watermark covers the batch.
    let list = |epoch| {
        ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(str_bytes("t")))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(epoch)
                .with_timestamp(-1)])])
    };
    let ResponseKind::ListOffsets(r) = answer(list_offsets::handle(&b.ctx(7), list(0))).await
    else {
        panic!("not a ListOffsets response");
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset, p.leader_epoch), (0, 3, 0));
    let ResponseKind::ListOffsets(r) = answer(list_offsets::handle(&b.ctx(7), list(1))).await
    else {
        panic!("not a ListOffsets response");
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownLeaderEpoch.code()
    );

    let fetch = |epoch| {
        FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(str_bytes("t")))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(epoch)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])])
    };
    let read = |epoch| {
        let ctx = b.ctx(12);
        async move {
            let ResponseKind::Fetch(r) = answer(fetch::handle(&ctx, fetch(epoch))).await else {
                panic!("not a Fetch response");
            };
            r.responses[0].partitions[0].clone()
        }
    };
    let ok = read(-1).await;
    assert_eq!((ok.error_code, ok.high_watermark), (0, 3));
    assert_eq!(ok.records.unwrap().len(), batch(&["a", "b", "c"]).len());
    let stale = read(-2).await;
    assert_eq!(stale.error_code, ResponseError::FencedLeaderEpoch.code());
    assert_eq!(stale.high_watermark, -1);
    assert_eq!(
        read(5).await.error_code,
        ResponseError::UnknownLeaderEpoch.code()
    );

    let epochs = |current, leader_epoch| {
        OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(TopicName(str_bytes("t")))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current)
                .with_leader_epoch(leader_epoch)])])
    };
    let end = |current, leader_epoch| {
        let ctx = b.ctx(4);
        async move {
            let request = epochs(current, leader_epoch);
            let ResponseKind::OffsetForLeaderEpoch(r) =
                answer(offset_for_leader_epoch::handle(&ctx, request)).await
            else {
                panic!("not an OffsetForLeaderEpoch response");
            };
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.leader_epoch, p.end_offset)
        }
    };
    assert_eq!(end(0, 0).await, (0, 0, 3));
    // An epoch this broker never had has no end offset (UNDEFINED), as in Kafka.
    assert_eq!(end(-1, 3).await, (0, -1, -1));
    assert_eq!(end(1, 0).await.0, ResponseError::UnknownLeaderEpoch.code());
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_by_unknown_topic_id() {
    let b = TestBroker::open();
    let request = FetchRequest::default().with_topics(vec![FetchTopic::default()
        .with_topic_id(uuid::Uuid::new_v4())
        .with_partitions(vec![FetchPartition::default().with_partition(0)])]);
    let ResponseKind::Fetch(r) = answer(fetch::handle(&b.ctx(13), request)).await else {
        panic!("not a Fetch response");
    };
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, ResponseError::UnknownTopicId.code());
    assert_eq!(p.high_watermark, -1);
}

// TxnOffsetCommit. Until the AddOffsetsToTxn / EndTxn handlers exist, transactions are driven
// through the coordinator (`broker.transactions`) directly.

use crate::coordinator::txn::{offsets_partition, TransactionVersion, TxnResult};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};

/// InitProducerId for `tid`, then (`add`) AddOffsetsToTxn for `group`: (producer id, epoch).
async fn begin_txn(b: &TestBroker, tid: &str, group: Option<&str>) -> (i64, i16) {
    let pe = b
        .broker
        .transactions
        .init_producer_id(tid, 60_000, None)
        .await
        .result
        .unwrap();
    if let Some(group) = group {
        let added = b
            .broker
            .transactions
            .add_partitions(
                tid,
                pe.producer_id,
                pe.epoch,
                &[offsets_partition(group)],
                false,
                TransactionVersion::TV_0,
            )
            .await;
        assert_eq!(added[0].1, 0);
    }
    (pe.producer_id, pe.epoch)
}

/// EndTxn, then the markers (the group's among them), as the EndTxn handler will.
async fn end_txn(b: &TestBroker, tid: &str, (pid, epoch): (i64, i16), result: TxnResult, tv: i16) {
    let outcome = b
        .broker
        .transactions
        .end_txn(tid, pid, epoch, result, TransactionVersion(tv))
        .await
        .unwrap();
    b.broker
        .finish_transaction(outcome.markers.expect("a transaction to end"))
        .await
        .unwrap();
}

fn txn_offsets(
    tid: &str,
    (pid, epoch): (i64, i16),
    group: &str,
    topics: &[(&str, &[(i32, i64)])],
) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(str_bytes(tid)))
        .with_group_id(GroupId(str_bytes(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_topics(
            topics
                .iter()
                .map(|(name, parts)| {
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|(p, o)| {
                                    TxnOffsetCommitRequestPartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(*o)
                                        .with_committed_metadata(Some(str_bytes("m")))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// Every partition's error code, in request order.
async fn txn_commit(b: &TestBroker, version: i16, request: TxnOffsetCommitRequest) -> Vec<i16> {
    let ResponseKind::TxnOffsetCommit(r) =
        answer(txn_offset_commit::handle(&b.ctx(version), request)).await
    else {
        panic!("not a TxnOffsetCommit response");
    };
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// OffsetFetch of t-0 (v7: one group; v8: batched): (committed offset, partition error).
async fn fetch_t0(b: &TestBroker, version: i16, group: &str, require_stable: bool) -> (i64, i16) {
    let mut request = OffsetFetchRequest::default().with_require_stable(require_stable);
    let topics = Some(vec![OffsetFetchRequestTopic::default()
        .with_name(TopicName(str_bytes("t")))
        .with_partition_indexes(vec![0])]);
    if version < 8 {
        request.group_id = GroupId(str_bytes(group));
        request.topics = topics;
    } else {
        request.groups = vec![
            kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(str_bytes(group)))
                .with_topics(topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| {
                            kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(t.name)
                                .with_partition_indexes(t.partition_indexes)
                        })
                        .collect()
                })),
        ];
    }
    let ResponseKind::OffsetFetch(r) = answer(offset_fetch::handle(&b.ctx(version), request)).await
    else {
        panic!("not an OffsetFetch response");
    };
    if version < 8 {
        assert_eq!(r.error_code, 0, "a partition error, not the group's");
        let p = &r.topics[0].partitions[0];
        (p.committed_offset, p.error_code)
    } else {
        assert_eq!(
            r.groups[0].error_code, 0,
            "a partition error, not the group's"
        );
        let p = &r.groups[0].topics[0].partitions[0];
        (p.committed_offset, p.error_code)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn txn_offset_commit_is_pending_until_the_marker() {
    let b = TestBroker::open();
    b.create("t", 2);
    let unstable = ResponseError::UnstableOffsetCommit.code();
    let txn = begin_txn(&b, "tid", Some("g")).await;
    let request = txn_offsets(
        "tid",
        txn,
        "g",
        &[("t", &[(0, 5), (9, 1)]), ("nope", &[(0, 1)])],
    );
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(txn_commit(&b, 3, request).await, vec![0, unknown, unknown]);
    // Invisible to a plain fetch, unstable to one that wants stable offsets (v7 and v8+).
    assert_eq!(fetch_t0(&b, 7, "g", false).await, (-1, 0));
    assert_eq!(fetch_t0(&b, 7, "g", true).await, (-1, unstable));
    assert_eq!(fetch_t0(&b, 8, "g", true).await, (-1, unstable));
    end_txn(&b, "tid", txn, TxnResult::Commit, 0).await;
    assert_eq!(fetch_t0(&b, 8, "g", true).await, (5, 0));

    // The next transaction aborts: its offset is dropped.
    let added = b
        .broker
        .transactions
        .add_partitions(
            "tid",
            txn.0,
            txn.1,
            &[offsets_partition("g")],
            false,
            TransactionVersion::TV_0,
        )
        .await;
    assert_eq!(added[0].1, 0);
    let request = txn_offsets("tid", txn, "g", &[("t", &[(0, 9)])]);
    assert_eq!(txn_commit(&b, 2, request).await, vec![0]);
    end_txn(&b, "tid", txn, TxnResult::Abort, 0).await;
    assert_eq!(fetch_t0(&b, 7, "g", true).await, (5, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn txn_offset_commit_verifies_the_transaction() {
    let b = TestBroker::open();
    b.create("t", 1);
    let txn = begin_txn(&b, "tid", Some("g")).await;
    let commit =
        |tid: &str, txn: (i64, i16), group: &str| txn_offsets(tid, txn, group, &[("t", &[(0, 1)])]);
    // The group's offsets partition is not in the transaction: TRANSACTION_ABORTABLE from v4,
    // INVALID_TXN_STATE for older clients. ("other" hashes to another partition than "g".)
    assert_ne!(offsets_partition("other"), offsets_partition("g"));
    assert_eq!(
        txn_commit(&b, 4, commit("tid", txn, "other")).await,
        vec![ResponseError::TransactionAbortable.code()]
    );
    assert_eq!(
        txn_commit(&b, 3, commit("tid", txn, "other")).await,
        vec![ResponseError::InvalidTxnState.code()]
    );
    // A fenced epoch is INVALID_PRODUCER_EPOCH in every version, as Kafka answers.
    for version in [0, 5] {
        assert_eq!(
            txn_commit(&b, version, commit("tid", (txn.0, txn.1 + 1), "g")).await,
            vec![ResponseError::InvalidProducerEpoch.code()]
        );
    }
    assert_eq!(
        txn_commit(&b, 3, commit("tid", (txn.0 + 1, txn.1), "g")).await,
        vec![ResponseError::InvalidProducerIdMapping.code()]
    );
    assert_eq!(
        txn_commit(&b, 3, commit("unknown", txn, "g")).await,
        vec![ResponseError::InvalidProducerIdMapping.code()]
    );
    assert_eq!(
        txn_commit(&b, 3, commit("", txn, "g")).await,
        vec![ResponseError::InvalidRequest.code()]
    );
    assert_eq!(
        txn_commit(&b, 3, commit("tid", txn, "")).await,
        vec![ResponseError::InvalidGroupId.code()]
    );
    // Only unknown partitions: answered without asking anyone.
    assert_eq!(
        txn_commit(&b, 3, txn_offsets("", txn, "", &[("nope", &[(0, 1)])])).await,
        vec![ResponseError::UnknownTopicOrPartition.code()]
    );
    // The group's checks (v3+ carries the consumer's group metadata).
    let mut stale = commit("tid", txn, "g");
    stale.generation_id = 4;
    stale.member_id = str_bytes("m");
    assert_eq!(
        txn_commit(&b, 3, stale).await,
        vec![ResponseError::IllegalGeneration.code()]
    );
    assert_eq!(txn_commit(&b, 3, commit("tid", txn, "g")).await, vec![0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn txn_offset_commit_v5_adds_the_offsets_partition() {
    let b = TestBroker::open();
    b.create("t", 1);
    // Transaction version 2: no AddOffsetsToTxn, TxnOffsetCommit v5 enrols the partition.
    let txn = begin_txn(&b, "tid", None).await;
    assert_eq!(
        txn_commit(&b, 4, txn_offsets("tid", txn, "g", &[("t", &[(0, 3)])])).await,
        vec![ResponseError::TransactionAbortable.code()],
        "v4 only verifies"
    );
    assert_eq!(
        txn_commit(&b, 5, txn_offsets("tid", txn, "g", &[("t", &[(0, 3)])])).await,
        vec![0]
    );
    let meta = b.broker.transactions.metadata("tid").unwrap();
    assert!(meta.partitions.contains(&offsets_partition("g")));
    assert_eq!(
        fetch_t0(&b, 8, "g", true).await.1,
        ResponseError::UnstableOffsetCommit.code()
    );
    end_txn(&b, "tid", txn, TxnResult::Commit, 2).await;
    assert_eq!(fetch_t0(&b, 8, "g", true).await, (3, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_txn_offsets_survive_a_restart() {
    let b = TestBroker::open();
    b.create("t", 1);
    let txn = begin_txn(&b, "tid", Some("g")).await;
    assert_eq!(
        txn_commit(&b, 3, txn_offsets("tid", txn, "g", &[("t", &[(0, 7)])])).await,
        vec![0]
    );
    // EndTxn(COMMIT) is decided, then the broker stops before writing the markers.
    let outcome = b
        .broker
        .transactions
        .end_txn(
            "tid",
            txn.0,
            txn.1,
            TxnResult::Commit,
            TransactionVersion::TV_0,
        )
        .await
        .unwrap();
    assert!(outcome.markers.is_some());
    let b = b.reopen();
    assert_eq!(
        fetch_t0(&b, 7, "g", true).await.1,
        ResponseError::UnstableOffsetCommit.code()
    );
    // The coordinator writes the markers again after a restart.
    let jobs = b.broker.transactions.unfinished_markers();
    assert_eq!(jobs.len(), 1);
    for job in jobs {
        b.broker.finish_transaction(job).await.unwrap();
    }
    assert_eq!(fetch_t0(&b, 7, "g", true).await, (7, 0));
    let b = b.reopen();
    assert_eq!(fetch_t0(&b, 7, "g", true).await, (7, 0));
}

// ---- Cluster administration (a single-broker KRaft node) ----------------------------------

fn dtp(
    b: &TestBroker,
    limit: i32,
    cursor: Option<(&str, i32)>,
    topics: &[&str],
) -> DescribeTopicPartitionsResponse {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(TopicName(str_bytes(t))))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            Cursor::default()
                .with_topic_name(TopicName(str_bytes(t)))
                .with_partition_index(p)
        }));
    match describe_topic_partitions::handle(&b.ctx(0), request) {
        Handled::Ready(r) => match *r {
            ResponseKind::DescribeTopicPartitions(r) => r,
            _ => panic!("wrong response"),
        },
        _ => panic!("not ready"),
    }
}

/// (topic, error, partition indexes) of each topic, and the next cursor.
type Pages = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

fn pages(r: &DescribeTopicPartitionsResponse) -> Pages {
    (
        r.topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().unwrap().0.to_string(),
                    t.error_code,
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect(),
        r.next_cursor
            .as_ref()
            .map(|c| (c.topic_name.0.to_string(), c.partition_index)),
    )
}

#[test]
fn describe_topic_partitions_pages_by_name_with_a_cursor() {
    let b = TestBroker::open();
    b.create("b", 1);
    b.create("a", 3);
    let s = |x: &str| x.to_string();
    // The limit cuts inside a topic: the cursor names its next partition.
    let r = dtp(&b, 2, None, &["b", "a"]);
    assert_eq!(
        pages(&r),
        (vec![(s("a"), 0, vec![0, 1])], Some((s("a"), 2)))
    );
    assert_eq!(
        r.topics[0].topic_authorized_operations,
        authorized_ops::TOPIC
    );
    let r = dtp(&b, 2, Some(("a", 2)), &["b", "a"]);
    assert_eq!(
        pages(&r),
        (vec![(s("a"), 0, vec![2]), (s("b"), 0, vec![0])], None)
    );
    // The limit ends exactly at a topic's end: the cursor is the next topic's partition 0.
    let r = dtp(&b, 3, None, &[]);
    assert_eq!(
        pages(&r),
        (vec![(s("a"), 0, vec![0, 1, 2])], Some((s("b"), 0)))
    );
    // Unknown and invalid names are answered in name order; all-topics skips nothing known.
    let r = dtp(&b, 100, None, &["zz", "a b"]);
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let invalid = ResponseError::InvalidTopicException.code();
    assert_eq!(
        pages(&r),
        (
            vec![(s("a b"), invalid, vec![]), (s("zz"), unknown, vec![])],
            None
        )
    );
    // The cursor's topic must be among those asked for; its partition not negative.
    let bad = ResponseError::InvalidRequest.code();
    assert_eq!(
        pages(&dtp(&b, 10, Some(("b", 0)), &["a"])).0,
        vec![(s("a"), bad, vec![])]
    );
    assert_eq!(
        pages(&dtp(&b, 10, Some(("a", -1)), &["a"])).0,
        vec![(s("a"), bad, vec![])]
    );
    // A limit of 0 still answers one partition.
    assert_eq!(
        pages(&dtp(&b, 0, None, &["a"])),
        (vec![(s("a"), 0, vec![0])], Some((s("a"), 1)))
    );
}

#[test]
fn elections_and_reassignments_are_never_needed_on_one_broker() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    let b = TestBroker::open();
    b.create("t", 2);
    let elect = |v: i16, topics: Option<Vec<TopicPartitions>>| {
        let r = elect_leaders::handle(
            &b.ctx(v),
            ElectLeadersRequest::default().with_topic_partitions(topics),
        );
        let Handled::Ready(r) = r else { panic!() };
        let ResponseKind::ElectLeaders(r) = *r else {
            panic!()
        };
        r.replica_election_results
            .iter()
            .map(|t| {
                (
                    t.topic.0.to_string(),
                    t.partition_result
                        .iter()
                        .map(|p| (p.partition_id, p.error_code))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    let tp = TopicPartitions::default()
        .with_topic(TopicName(str_bytes("t")))
        .with_partitions(vec![0, 5]);
    assert_eq!(
        elect(2, Some(vec![tp])),
        vec![(
            "t".to_string(),
            vec![
                (0, ResponseError::ElectionNotNeeded.code()),
                (5, ResponseError::UnknownTopicOrPartition.code())
            ]
        )]
    );
    // Every partition: each topic listed, no partition needed an election.
    assert_eq!(elect(0, None), vec![("t".to_string(), vec![])]);

    let alter = |replicas: Option<Vec<i32>>| {
        let request = AlterPartitionReassignmentsRequest::default().with_topics(vec![
            ReassignableTopic::default()
                .with_name(TopicName(str_bytes("t")))
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(1)
                    .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))]),
        ]);
        let Handled::Ready(r) = alter_partition_reassignments::handle(&b.ctx(1), request) else {
            panic!()
        };
        let ResponseKind::AlterPartitionReassignments(r) = *r else {
            panic!()
        };
        r.responses[0].partitions[0].error_code
    };
    let node = b.broker.config.node_id;
    assert_eq!(alter(Some(vec![node])), 0);
    assert_eq!(alter(None), ResponseError::NoReassignmentInProgress.code());
    assert_eq!(
        alter(Some(vec![node, node + 1])),
        ResponseError::InvalidReplicaAssignment.code()
    );
    assert_eq!(
        alter(Some(vec![node, node])),
        ResponseError::InvalidReplicaAssignment.code()
    );
    assert_eq!(
        alter(Some(vec![])),
        ResponseError::InvalidReplicaAssignment.code()
    );
    let Handled::Ready(r) = list_partition_reassignments::handle(&b.ctx(0), Default::default())
    else {
        panic!()
    };
    let ResponseKind::ListPartitionReassignments(r) = *r else {
        panic!()
    };
    assert!(r.topics.is_empty() && r.error_code == 0);
}

#[test]
fn describe_quorum_names_this_node_the_only_voter() {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let b = TestBroker::open();
    let request = |topic: &str, partition: i32| {
        DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(str_bytes(topic)))
            .with_partitions(vec![
                PartitionData::default().with_partition_index(partition)
            ])])
    };
    let Handled::Ready(r) = describe_quorum::handle(&b.ctx(2), request("__cluster_metadata", 0))
    else {
        panic!()
    };
    let ResponseKind::DescribeQuorum(r) = *r else {
        panic!()
    };
    let node = b.broker.config.node_id;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_id.0, p.leader_epoch), (0, node, 1));
    assert_eq!(p.current_voters.len(), 1);
    assert_eq!(p.current_voters[0].replica_id.0, node);
    assert_eq!(p.current_voters[0].log_end_offset, p.high_watermark);
    assert!(p.observers.is_empty());
    assert_eq!(r.nodes[0].listeners[0].port, 9092);
    let Handled::Ready(r) = describe_quorum::handle(&b.ctx(2), request("other", 0)) else {
        panic!()
    };
    let ResponseKind::DescribeQuorum(r) = *r else {
        panic!()
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[test]
fn update_features_accepts_the_finalized_level_only() {
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    let b = TestBroker::open();
    let update = |v: i16, name: &str, level: i16, upgrade_type: i8| {
        let request =
            UpdateFeaturesRequest::default().with_feature_updates(vec![FeatureUpdateKey::default(
            )
            .with_feature(str_bytes(name))
            .with_max_version_level(level)
            .with_upgrade_type(upgrade_type)]);
        let Handled::Ready(r) = update_features::handle(&b.ctx(v), request) else {
            panic!()
        };
        let ResponseKind::UpdateFeatures(r) = *r else {
            panic!()
        };
        (r.error_code, r.results.len())
    };
    let tv = b.broker.config.transactions.server_version.0;
    let invalid = ResponseError::InvalidUpdateVersion.code();
    assert_eq!(update(1, "transaction.version", tv, 1), (0, 1));
    assert_eq!(update(2, "transaction.version", tv, 1), (0, 0));
    assert_eq!(update(2, "transaction.version", 9, 1), (invalid, 0));
    assert_eq!(update(2, "no.such.feature", 1, 1), (invalid, 0));
    assert_eq!(update(2, "transaction.version", tv - 1, 1), (invalid, 0));
    assert_eq!(update(2, "transaction.version", tv - 1, 2), (invalid, 0));
    assert_eq!(update(2, "metadata.version", 7, 3), (invalid, 0));
}

#[test]
fn telemetry_is_answered_but_not_advertised() {
    let b = TestBroker::open();
    let keys: Vec<i16> = api_versions::supported_apis(&b.broker)
        .iter()
        .map(|a| a.api_key)
        .collect();
    assert!(!keys.contains(&(ApiKey::GetTelemetrySubscriptions as i16)));
    assert!(!keys.contains(&(ApiKey::PushTelemetry as i16)));
    assert!(keys.contains(&(ApiKey::DescribeTopicPartitions as i16)));
    let Handled::Ready(r) = get_telemetry_subscriptions::handle(&b.ctx(0), Default::default())
    else {
        panic!()
    };
    let ResponseKind::GetTelemetrySubscriptions(s) = *r else {
        panic!()
    };
    assert!(!s.client_instance_id.is_nil());
    assert!(s.requested_metrics.is_empty());
    assert_eq!(s.push_interval_ms, 300_000);
    let push = |subscription: i32, compression: i8| {
        let request = PushTelemetryRequest::default()
            .with_client_instance_id(s.client_instance_id)
            .with_subscription_id(subscription)
            .with_compression_type(compression);
        let Handled::Ready(r) = push_telemetry::handle(&b.ctx(0), request) else {
            panic!()
        };
        let ResponseKind::PushTelemetry(r) = *r else {
            panic!()
        };
        r.error_code
    };
    assert_eq!(push(s.subscription_id, 0), 0);
    assert_eq!(
        push(s.subscription_id.wrapping_add(1), 0),
        ResponseError::UnknownSubscriptionId.code()
    );
    assert_eq!(
        push(s.subscription_id, 9),
        ResponseError::UnsupportedCompressionType.code()
    );
}

/// CreatePartitions: validate_only keeps the count, a real increase survives a restart and the
/// new partition is led; DescribeLogDirs then sizes every partition in the one log dir.
#[tokio::test(flavor = "multi_thread")]
async fn create_partitions_then_describe_log_dirs() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let b = TestBroker::open();
    b.create("t", 1);
    let grow = |count, validate_only| {
        CreatePartitionsRequest::default()
            .with_validate_only(validate_only)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(str_bytes("t")))
                .with_count(count)
                // The crate's default is an empty list, which Kafka checks like any other.
                .with_assignments(None)])
    };
    let codes = |r: ResponseKind| match r {
        ResponseKind::CreatePartitions(r) => r
            .results
            .iter()
            .map(|t| {
                (
                    t.error_code,
                    t.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let ok = vec![(0, None)];
    assert_eq!(
        codes(answer(create_partitions::handle(&b.ctx(3), grow(3, true))).await),
        ok
    );
    assert_eq!(b.broker.topic("t").unwrap().partitions.len(), 1);
    assert_eq!(
        codes(answer(create_partitions::handle(&b.ctx(3), grow(3, false))).await),
        ok
    );
    assert_eq!(
        codes(answer(create_partitions::handle(&b.ctx(0), grow(2, false))).await),
        vec![(
            ResponseError::InvalidPartitions.code(),
            Some("The topic t currently has 3 partition(s); 2 would not be an increase.".into())
        )]
    );
    let b = b.reopen();
    assert_eq!(b.broker.topic("t").unwrap().partitions.len(), 3);
    assert!(b.broker.led_partition_by_name("t", 2, -1).is_ok());

    let all = answer(describe_log_dirs::handle(
        &b.ctx(4),
        DescribeLogDirsRequest::default().with_topics(None),
    ))
    .await;
    let ResponseKind::DescribeLogDirs(all) = all else {
        panic!()
    };
    assert_eq!(all.results.len(), 1);
    let dir = &all.results[0];
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes);
    assert_eq!(dir.topics.len(), 1);
    assert_eq!(dir.topics[0].partitions.len(), 3);
    let one =
        DescribeLogDirsRequest::default()
            .with_topics(Some(vec![DescribableLogDirTopic::default()
                .with_topic(TopicName(str_bytes("t")))
                .with_partitions(vec![1, 7])]));
    let ResponseKind::DescribeLogDirs(one) =
        answer(describe_log_dirs::handle(&b.ctx(1), one)).await
    else {
        panic!()
    };
    let parts: Vec<i32> = one.results[0].topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(parts, vec![1]);
}

// ---- Authorization: handlers under different principals ----

mod acl {
    use super::*;
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };

    const AUTHORIZER: &str =
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

    fn open(extra: &[&str]) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_in(dir.path(), extra);
        TestBroker { broker, _dir: dir }
    }

    fn open_in(dir: &std::path::Path, extra: &[&str]) -> Arc<Broker> {
        let mut set = vec![
            "remote.log.storage.system.enable=false".to_string(),
            AUTHORIZER.to_string(),
            "super.users=User:admin".to_string(),
        ];
        set.extend(extra.iter().map(|s| s.to_string()));
        let args = ServeArgs {
            data_dir: Some(dir.to_path_buf()),
            set,
            ..Default::default()
        };
        Broker::open(BrokerConfig::resolve(&args).unwrap()).unwrap()
    }

    fn as_user(b: &TestBroker, version: i16, user: &str) -> RequestContext {
        let ctx = b.ctx(version);
        let mut session = (*ctx.session).clone();
        session.principal = Principal {
            principal_type: "User".to_string(),
            name: user.to_string(),
        };
        RequestContext {
            session: Arc::new(session),
            ..ctx
        }
    }

    fn creation(rt: i8, name: &str, pattern: i8, who: &str, op: i8, perm: i8) -> AclCreation {
        AclCreation::default()
            .with_resource_type(rt)
            .with_resource_name(str_bytes(name))
            .with_resource_pattern_type(pattern)
            .with_principal(str_bytes(who))
            .with_host(str_bytes("*"))
            .with_operation(op)
            .with_permission_type(perm)
    }

    const TOPIC: i8 = 2;
    const GROUP: i8 = 3;
    const CLUSTER: i8 = 4;
    const TXN: i8 = 5;
    const LITERAL: i8 = 3;
    const PREFIXED: i8 = 4;
    const ALLOW: i8 = 3;
    const DENY: i8 = 2;
    const READ: i8 = 3;
    const WRITE: i8 = 4;

    async fn create(b: &TestBroker, user: &str, creations: Vec<AclCreation>) -> Vec<i16> {
        let request = CreateAclsRequest::default().with_creations(creations);
        let ResponseKind::CreateAcls(r) =
            answer(create_acls::handle(&as_user(b, 3, user), request)).await
        else {
            panic!("not a CreateAcls response");
        };
        r.results.iter().map(|r| r.error_code).collect()
    }

    fn describe_all() -> DescribeAclsRequest {
        DescribeAclsRequest::default()
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1)
    }

    async fn describe(b: &TestBroker, user: &str, r: DescribeAclsRequest) -> DescribeAclsResponse {
        let ResponseKind::DescribeAcls(r) =
            answer(describe_acls::handle(&as_user(b, 3, user), r)).await
        else {
            panic!("not a DescribeAcls response");
        };
        r
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn acl_apis_create_describe_delete_and_persist() {
        let b = open(&[]);
        // Only a principal with ALTER on the cluster manages ACLs.
        assert_eq!(
            create(
                &b,
                "bob",
                vec![creation(TOPIC, "t", LITERAL, "User:bob", READ, ALLOW)]
            )
            .await,
            vec![ResponseError::ClusterAuthorizationFailed.code()]
        );
        assert_eq!(
            describe(&b, "bob", describe_all()).await.error_code,
            ResponseError::ClusterAuthorizationFailed.code()
        );
        let invalid = ResponseError::InvalidRequest.code();
        let codes = create(
            &b,
            "admin",
            vec![
                creation(TOPIC, "t", LITERAL, "User:alice", READ, ALLOW),
                creation(TOPIC, "orders-", PREFIXED, "User:*", WRITE, DENY),
                creation(GROUP, "g", LITERAL, "User:alice", READ, ALLOW),
                creation(CLUSTER, "kafka-cluster", LITERAL, "User:ops", 7, ALLOW),
                // Filter-only codes, a misnamed cluster, a principal without a type.
                creation(1, "t", LITERAL, "User:alice", READ, ALLOW),
                creation(TOPIC, "t", 2, "User:alice", READ, ALLOW),
                creation(TOPIC, "t", LITERAL, "User:alice", 1, ALLOW),
                creation(TOPIC, "t", LITERAL, "User:alice", READ, 1),
                creation(CLUSTER, "other", LITERAL, "User:alice", 7, ALLOW),
                creation(TOPIC, "t", LITERAL, "alice", READ, ALLOW),
                creation(TOPIC, "", LITERAL, "User:alice", READ, ALLOW),
            ],
        )
        .await;
        assert_eq!(codes, [vec![0; 4], vec![invalid; 7]].concat());
        let all = describe(&b, "admin", describe_all()).await;
        assert_eq!(all.error_code, 0);
        assert_eq!(all.resources.len(), 4);
        // MATCH: every pattern covering the name "orders-eu".
        let matched = describe(
            &b,
            "admin",
            describe_all()
                .with_resource_type_filter(TOPIC)
                .with_pattern_type_filter(2)
                .with_resource_name_filter(Some(str_bytes("orders-eu"))),
        )
        .await;
        assert_eq!(matched.resources.len(), 1);
        assert_eq!(&*matched.resources[0].resource_name, "orders-");
        assert_eq!(matched.resources[0].acls[0].permission_type, DENY);
        // A filter with UNKNOWN codes closes the connection, as Kafka's parser refuses it.
        let ctx = as_user(&b, 3, "admin");
        assert!(matches!(
            describe_acls::handle(&ctx, describe_all().with_operation(0)),
            Handled::Close(_)
        ));

        // Survives a restart.
        let dir = b._dir;
        b.broker.close();
        drop(b.broker);
        let b = TestBroker {
            broker: open_in(dir.path(), &[]),
            _dir: dir,
        };
        assert_eq!(
            describe(&b, "admin", describe_all()).await.resources.len(),
            4
        );

        // DeleteAcls: by principal, reporting what each filter removed.
        let request = DeleteAclsRequest::default().with_filters(vec![
            DeleteAclsFilter::default()
                .with_resource_name_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_principal_filter(Some(str_bytes("User:alice")))
                .with_operation(1)
                .with_permission_type(1),
            DeleteAclsFilter::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(TXN)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ]);
        let ResponseKind::DeleteAcls(r) =
            answer(delete_acls::handle(&as_user(&b, 3, "admin"), request)).await
        else {
            panic!("not a DeleteAcls response");
        };
        assert_eq!(r.filter_results.len(), 2);
        assert_eq!(r.filter_results[0].matching_acls.len(), 2);
        assert!(r.filter_results[1].matching_acls.is_empty());
        assert_eq!(
            describe(&b, "admin", describe_all()).await.resources.len(),
            2
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn acl_apis_without_an_authorizer_are_disabled() {
        let b = TestBroker::open();
        let request = CreateAclsRequest::default()
            .with_creations(vec![creation(TOPIC, "t", LITERAL, "User:a", READ, ALLOW)]);
        let ResponseKind::CreateAcls(r) = answer(create_acls::handle(&b.ctx(3), request)).await
        else {
            panic!();
        };
        assert_eq!(
            r.results[0].error_code,
            ResponseError::SecurityDisabled.code()
        );
        let ResponseKind::DescribeAcls(r) =
            answer(describe_acls::handle(&b.ctx(3), describe_all())).await
        else {
            panic!();
        };
        assert_eq!(r.error_code, ResponseError::SecurityDisabled.code());
    }

    fn produce_request(topic: &str, txn: Option<&str>) -> ProduceRequest {
        ProduceRequest::default()
            .with_acks(1)
            .with_transactional_id(txn.map(|t| TransactionalId(str_bytes(t))))
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&["v"])))])])
    }

    async fn produce_code(b: &TestBroker, user: &str, topic: &str, txn: Option<&str>) -> i16 {
        let ResponseKind::Produce(r) = answer(produce::handle(
            &as_user(b, 9, user),
            produce_request(topic, txn),
        ))
        .await
        else {
            panic!("not a Produce response");
        };
        r.responses[0].partition_responses[0].error_code
    }

    async fn fetch_code(b: &TestBroker, user: &str, topic: &str) -> i16 {
        let request = FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(str_bytes(topic)))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        let ResponseKind::Fetch(r) = answer(fetch::handle(&as_user(b, 12, user), request)).await
        else {
            panic!("not a Fetch response");
        };
        r.responses[0].partitions[0].error_code
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn produce_fetch_and_metadata_follow_the_acls() {
        let b = open(&[]);
        b.create("t", 1);
        b.create("secret", 1);
        b.create("orders-eu", 1);
        let codes = create(
            &b,
            "admin",
            vec![
                creation(TOPIC, "t", LITERAL, "User:alice", WRITE, ALLOW),
                creation(TOPIC, "t", LITERAL, "User:bob", READ, ALLOW),
                creation(TOPIC, "orders-", PREFIXED, "User:*", 2, ALLOW),
                creation(TOPIC, "orders-eu", LITERAL, "User:bob", WRITE, DENY),
            ],
        )
        .await;
        assert_eq!(codes, vec![0; 4]);
        let denied = ResponseError::TopicAuthorizationFailed.code();
        assert_eq!(produce_code(&b, "alice", "t", None).await, 0);
        assert_eq!(produce_code(&b, "bob", "t", None).await, denied);
        assert_eq!(produce_code(&b, "admin", "secret", None).await, 0);
        assert_eq!(produce_code(&b, "alice", "secret", None).await, denied);
        // An unknown topic is refused as unauthorized first (no existence leak).
        assert_eq!(produce_code(&b, "alice", "nope", None).await, denied);
        // PREFIXED ALLOW ALL for everyone, but bob's DENY WRITE wins.
        assert_eq!(produce_code(&b, "alice", "orders-eu", None).await, 0);
        assert_eq!(produce_code(&b, "bob", "orders-eu", None).await, denied);
        assert_eq!(fetch_code(&b, "bob", "t").await, 0);
        assert_eq!(fetch_code(&b, "alice", "t").await, denied);
        assert_eq!(fetch_code(&b, "bob", "orders-eu").await, 0);
        // A transactional batch needs WRITE on the transactional id.
        assert_eq!(
            produce_code(&b, "alice", "t", Some("tx")).await,
            ResponseError::TransactionalIdAuthorizationFailed.code()
        );

        let metadata = |user: &str, topics: Option<Vec<MetadataRequestTopic>>| {
            let ctx = as_user(&b, 12, user);
            let request = MetadataRequest::default()
                .with_topics(topics)
                .with_allow_auto_topic_creation(true)
                .with_include_topic_authorized_operations(true);
            match metadata::handle(&ctx, request) {
                Handled::Ready(r) => match *r {
                    ResponseKind::Metadata(m) => m,
                    _ => panic!("not a Metadata response"),
                },
                _ => panic!("Metadata answers at once"),
            }
        };
        let names = |m: &MetadataResponse| {
            let mut n: Vec<String> = m
                .topics
                .iter()
                .map(|t| t.name.as_ref().unwrap().to_string())
                .collect();
            n.sort();
            n
        };
        // All topics: only those the principal may DESCRIBE (WRITE and READ imply it).
        assert_eq!(names(&metadata("alice", None)), ["orders-eu", "t"]);
        assert_eq!(
            names(&metadata("admin", None)),
            ["orders-eu", "secret", "t"]
        );
        let carol = metadata("carol", None);
        assert_eq!(names(&carol), ["orders-eu"]);
        // ALL: every topic operation is authorized.
        assert_eq!(
            carol.topics[0].topic_authorized_operations,
            authorized_ops::TOPIC
        );
        // Named: TOPIC_AUTHORIZATION_FAILED; no auto-creation without CREATE.
        let named = metadata(
            "alice",
            Some(vec![topic_request("secret"), topic_request("new")]),
        );
        assert!(named.topics.iter().all(|t| t.error_code == denied));
        assert!(b.broker.topic("new").is_none());
        let alice = metadata("alice", Some(vec![topic_request("t")]));
        // alice holds WRITE: WRITE and the implied DESCRIBE.
        assert_eq!(
            alice.topics[0].topic_authorized_operations,
            (1 << 4) | (1 << 8)
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn no_acl_found_and_super_users() {
        let b = open(&["allow.everyone.if.no.acl.found=true"]);
        b.create("open", 1);
        b.create("closed", 1);
        create(
            &b,
            "admin",
            vec![creation(
                TOPIC,
                "closed",
                LITERAL,
                "User:alice",
                READ,
                ALLOW,
            )],
        )
        .await;
        let denied = ResponseError::TopicAuthorizationFailed.code();
        assert_eq!(produce_code(&b, "anyone", "open", None).await, 0);
        assert_eq!(produce_code(&b, "anyone", "closed", None).await, denied);
        assert_eq!(produce_code(&b, "admin", "closed", None).await, 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn group_and_transaction_apis_follow_the_acls() {
        let b = open(&[]);
        b.create("t", 1);
        b.create("u", 1);
        create(
            &b,
            "admin",
            vec![
                creation(GROUP, "g", LITERAL, "User:alice", READ, ALLOW),
                creation(TOPIC, "t", LITERAL, "User:alice", READ, ALLOW),
                creation(TXN, "tx", LITERAL, "User:alice", WRITE, ALLOW),
            ],
        )
        .await;
        // JoinGroup: READ on the group.
        let join = |user: &str, group: &str| {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(group)))
                .with_member_id(str_bytes(""))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(str_bytes("consumer"));
            join_group::handle(&as_user(&b, 9, user), request)
        };
        let ResponseKind::JoinGroup(r) = answer(join("bob", "g")).await else {
            panic!()
        };
        assert_eq!(r.error_code, ResponseError::GroupAuthorizationFailed.code());
        // OffsetCommit: group READ for all, then topic READ per partition.
        let commit = |user: &str| {
            let request = OffsetCommitRequest::default()
                .with_group_id(GroupId(str_bytes("g")))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(str_bytes(""))
                .with_topics(
                    ["t", "u"]
                        .iter()
                        .map(|t| {
                            OffsetCommitRequestTopic::default()
                                .with_name(TopicName(str_bytes(t)))
                                .with_partitions(vec![OffsetCommitRequestPartition::default()
                                    .with_partition_index(0)
                                    .with_committed_offset(0)])
                        })
                        .collect(),
                );
            offset_commit::handle(&as_user(&b, 8, user), request)
        };
        let codes = |r: OffsetCommitResponse| -> Vec<i16> {
            r.topics
                .iter()
                .map(|t| t.partitions[0].error_code)
                .collect()
        };
        let ResponseKind::OffsetCommit(r) = answer(commit("alice")).await else {
            panic!()
        };
        assert_eq!(
            codes(r),
            vec![0, ResponseError::TopicAuthorizationFailed.code()]
        );
        let ResponseKind::OffsetCommit(r) = answer(commit("bob")).await else {
            panic!()
        };
        assert_eq!(
            codes(r),
            vec![ResponseError::GroupAuthorizationFailed.code(); 2]
        );
        // FindCoordinator: DESCRIBE on the group (READ implies it).
        let find = |user: &str, key: &str, key_type: i8| {
            let request = FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![str_bytes(key)]);
            find_coordinator::handle(&as_user(&b, 4, user), request)
        };
        let ResponseKind::FindCoordinator(r) = answer(find("alice", "g", 0)).await else {
            panic!()
        };
        assert_eq!(r.coordinators[0].error_code, 0);
        let ResponseKind::FindCoordinator(r) = answer(find("bob", "g", 0)).await else {
            panic!()
        };
        assert_eq!(
            r.coordinators[0].error_code,
            ResponseError::GroupAuthorizationFailed.code()
        );
        let ResponseKind::FindCoordinator(r) = answer(find("bob", "tx", 1)).await else {
            panic!()
        };
        assert_eq!(
            r.coordinators[0].error_code,
            ResponseError::TransactionalIdAuthorizationFailed.code()
        );
        // ListGroups: without DESCRIBE on the cluster, only the groups it may DESCRIBE.
        b.broker.groups.commit_offsets(
            "other",
            crate::coordinator::group::CommitRequest {
                member_id: String::new(),
                instance_id: None,
                generation_or_epoch: -1,
                api_version: 8,
                offsets: vec![crate::coordinator::group::OffsetToCommit {
                    topic: "t".into(),
                    partition: 0,
                    offset: 0,
                    leader_epoch: -1,
                    metadata: None,
                }],
            },
        );
        let list = |user: &str| {
            let ctx = as_user(&b, 4, user);
            async move {
                let ResponseKind::ListGroups(r) =
                    answer(list_groups::handle(&ctx, ListGroupsRequest::default())).await
                else {
                    panic!()
                };
                let mut g: Vec<String> = r.groups.iter().map(|g| g.group_id.to_string()).collect();
                g.sort();
                g
            }
        };
        assert_eq!(list("alice").await, ["g"]);
        assert_eq!(list("admin").await, ["g", "other"]);

        // InitProducerId: WRITE on the transactional id; without one, IDEMPOTENT_WRITE on the
        // cluster or WRITE on some topic.
        let init = |user: &str, txn: Option<&str>| {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(txn.map(|t| TransactionalId(str_bytes(t))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            init_producer_id::handle(&as_user(&b, 4, user), request)
        };
        let ResponseKind::InitProducerId(r) = answer(init("bob", Some("tx"))).await else {
            panic!()
        };
        assert_eq!(
            r.error_code,
            ResponseError::TransactionalIdAuthorizationFailed.code()
        );
        let ResponseKind::InitProducerId(r) = answer(init("alice", Some("tx"))).await else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        let ResponseKind::InitProducerId(r) = answer(init("alice", None)).await else {
            panic!()
        };
        assert_eq!(
            r.error_code,
            ResponseError::ClusterAuthorizationFailed.code()
        );
        create(
            &b,
            "admin",
            vec![creation(TOPIC, "u", LITERAL, "User:alice", WRITE, ALLOW)],
        )
        .await;
        let ResponseKind::InitProducerId(r) = answer(init("alice", None)).await else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        // EndTxn: WRITE on the transactional id.
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(str_bytes("tx")))
            .with_producer_id(ProducerId(0))
            .with_producer_epoch(0)
            .with_committed(true);
        let ResponseKind::EndTxn(r) =
            answer(end_txn::handle(&as_user(&b, 4, "bob"), request)).await
        else {
            panic!()
        };
        assert_eq!(
            r.error_code,
            ResponseError::TransactionalIdAuthorizationFailed.code()
        );
    }
}

mod client_quotas {
    use super::*;
    use crate::security::quotas::Kind;
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;

    fn alter(
        b: &TestBroker,
        entity: &[(&str, Option<&str>)],
        key: &str,
        value: Option<f64>,
    ) -> i16 {
        let request = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
            .with_entity(
                entity
                    .iter()
                    .map(|(t, n)| {
                        EntityData::default()
                            .with_entity_type(str_bytes(t))
                            .with_entity_name(n.map(str_bytes))
                    })
                    .collect(),
            )
            .with_ops(vec![OpData::default()
                .with_key(str_bytes(key))
                .with_value(value.unwrap_or(0.0))
                .with_remove(value.is_none())])]);
        match alter_client_quotas::handle(&b.ctx(1), request) {
            Handled::Ready(r) => match *r {
                ResponseKind::AlterClientQuotas(r) => r.entries[0].error_code,
                _ => panic!("not an AlterClientQuotas response"),
            },
            _ => panic!("not ready"),
        }
    }

    fn describe_users(b: &TestBroker) -> usize {
        let request =
            DescribeClientQuotasRequest::default().with_components(vec![ComponentData::default()
                .with_entity_type(str_bytes("user"))
                .with_match_type(2)
                .with_match(None)]);
        match describe_client_quotas::handle(&b.ctx(1), request) {
            Handled::Ready(r) => match *r {
                ResponseKind::DescribeClientQuotas(r) => r.entries.unwrap().len(),
                _ => panic!("not a DescribeClientQuotas response"),
            },
            _ => panic!("not ready"),
        }
    }

    /// Alter stores and applies at once; the quotas are back after a reopen; removing the last
    /// key removes the entity and the quota stops applying.
    #[tokio::test(flavor = "multi_thread")]
    async fn alter_applies_and_persists() {
        let b = TestBroker::open();
        assert!(!b.broker.quotas.enabled(Kind::Produce));
        assert_eq!(
            alter(
                &b,
                &[("user", Some("ANONYMOUS"))],
                "producer_byte_rate",
                Some(100.0)
            ),
            0
        );
        assert_eq!(
            alter(
                &b,
                &[("user", Some("x"))],
                "connection_creation_rate",
                Some(1.0)
            ),
            42
        );
        assert_eq!(describe_users(&b), 1);
        // 100 B/s over a 10 s minimum window: 1000 B are fine, 2000 more are not.
        assert_eq!(
            b.broker
                .quotas
                .record(Kind::Produce, "ANONYMOUS", "c", 1000.0),
            0
        );
        assert!(
            b.broker
                .quotas
                .record(Kind::Produce, "ANONYMOUS", "c", 2000.0)
                > 0
        );
        let b = b.reopen();
        assert_eq!(describe_users(&b), 1);
        assert!(b.broker.quotas.enabled(Kind::Produce));
        assert_eq!(
            alter(
                &b,
                &[("user", Some("ANONYMOUS"))],
                "producer_byte_rate",
                None
            ),
            0
        );
        assert_eq!(describe_users(&b), 0);
        assert!(!b.broker.quotas.enabled(Kind::Produce));
    }
}
