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
            .create_topic(name, partitions, Default::default())
            .unwrap();
    }
}

async fn answer(handled: Handled) -> ResponseKind {
    match handled {
        Handled::Ready(r) => *r,
        Handled::Deferred(f) => f.await,
        Handled::NoResponse => panic!("no response"),
        Handled::Close(reason) => panic!("connection closed: {reason}"),
    }
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
