//! ACLs end to end: a broker with the authorizer on (allow.everyone.if.no.acl.found=true, so
//! User:ANONYMOUS may manage ACLs while the cluster has none), CreateAcls/DescribeAcls/
//! DeleteAcls as raw requests (rust-rdkafka has no ACL calls), a DENY for User:ANONYMOUS that a
//! real rdkafka producer meets as TOPIC_AUTHORIZATION_FAILED, and the ACLs surviving kill -9.

mod common;

use std::time::Duration;

use common::{wire, Broker};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::{Request, StrBytes};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;

const TOPIC: &str = "acl-topic";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn call<R: Request>(broker: &Broker, version: i16, request: &R) -> R::Response {
    let mut conn = wire::connect(broker.addr(), Duration::from_secs(10));
    std::io::Write::write_all(&mut conn, &wire::request(version, 1, request)).unwrap();
    let frame = wire::read_frame(&mut conn).expect("a response");
    wire::response::<R>(version, frame).1
}

fn describe_all(broker: &Broker) -> DescribeAclsResponse {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let r = call(broker, 3, &request);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    r
}

async fn produce(bootstrap: &str) -> Result<(), KafkaError> {
    let producer = common::producer(bootstrap, &[("message.timeout.ms", "10000")]);
    producer
        .send(
            FutureRecord::<(), str>::to(TOPIC).payload("v"),
            Duration::from_secs(10),
        )
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

#[tokio::test(flavor = "multi_thread")]
async fn acls_deny_a_producer_and_survive_kill9() {
    let mut broker = Broker::start(&[
        "--set",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "--set",
        "allow.everyone.if.no.acl.found=true",
    ]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, TOPIC, 1, &[]).await;
    produce(&bs).await.expect("no ACL on the topic: allowed");

    let creations = vec![
        AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(s(TOPIC))
            .with_resource_pattern_type(3)
            .with_principal(s("User:ANONYMOUS"))
            .with_host(s("*"))
            .with_operation(4)
            .with_permission_type(2),
        AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(s("acl-"))
            .with_resource_pattern_type(4)
            .with_principal(s("User:alice"))
            .with_host(s("*"))
            .with_operation(3)
            .with_permission_type(3),
        // ANY is a filter value, not a pattern to store.
        AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(s(TOPIC))
            .with_resource_pattern_type(1)
            .with_principal(s("User:alice"))
            .with_host(s("*"))
            .with_operation(3)
            .with_permission_type(3),
    ];
    let r = call(
        &broker,
        3,
        &CreateAclsRequest::default().with_creations(creations),
    );
    let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 0, 42], "INVALID_REQUEST for the ANY pattern");
    assert_eq!(describe_all(&broker).resources.len(), 2);

    match produce(&bs).await {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)) => {}
        other => panic!("expected TOPIC_AUTHORIZATION_FAILED, got {other:?}"),
    }

    broker.kill9();
    broker.restart();
    let bs = broker.bootstrap();
    let described = describe_all(&broker);
    assert_eq!(described.resources.len(), 2, "ACLs survive kill -9");
    match produce(&bs).await {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)) => {}
        other => panic!("expected TOPIC_AUTHORIZATION_FAILED after restart, got {other:?}"),
    }

    // Delete every ACL: the topic has none again, and the producer is let through.
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let r = call(
        &broker,
        3,
        &DeleteAclsRequest::default().with_filters(vec![filter]),
    );
    assert_eq!(r.filter_results[0].error_code, 0);
    assert_eq!(r.filter_results[0].matching_acls.len(), 2);
    assert!(describe_all(&broker).resources.is_empty());
    produce(&bs).await.expect("ACLs deleted: allowed again");
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_apis_without_an_authorizer_answer_security_disabled() {
    let broker = Broker::start(&[]);
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let r = call(&broker, 3, &request);
    assert_eq!(r.error_code, 54);
}

fn acl(operation: i8, permission: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(4) // CLUSTER
        .with_resource_name(s("kafka-cluster"))
        .with_resource_pattern_type(3) // LITERAL
        .with_principal(s("User:ANONYMOUS"))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

/// The error codes the cluster-administration APIs answer User:ANONYMOUS with, one line per
/// API: (name, top-level code, per-partition codes where the API has them).
fn cluster_api_codes(broker: &Broker, topic: &str) -> Vec<(&'static str, i16, Vec<i16>)> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    use kafka_protocol::messages::*;
    let name = || TopicName(s(topic));
    let mut out = Vec::new();
    let r = call(
        broker,
        2,
        &ElectLeadersRequest::default()
            .with_election_type(0)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(name())
                .with_partitions(vec![0])]))
            .with_timeout_ms(5000),
    );
    let parts = r.replica_election_results[0]
        .partition_result
        .iter()
        .map(|p| p.error_code)
        .collect();
    out.push(("ElectLeaders", r.error_code, parts));
    let r = call(
        broker,
        0,
        &AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(name())
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(0)
                    .with_replicas(Some(vec![BrokerId(1)]))])]),
    );
    let parts = r.responses[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    out.push(("AlterPartitionReassignments", r.error_code, parts));
    let r = call(
        broker,
        0,
        &ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(Some(vec![ListPartitionReassignmentsTopics::default()
                .with_name(name())
                .with_partition_indexes(vec![0])])),
    );
    out.push(("ListPartitionReassignments", r.error_code, vec![]));
    // No update: nothing to refuse once allowed.
    let r = call(
        broker,
        1,
        &UpdateFeaturesRequest::default()
            .with_timeout_ms(5000)
            .with_validate_only(true),
    );
    out.push(("UpdateFeatures", r.error_code, vec![]));
    let r = call(
        broker,
        4,
        &DescribeLogDirsRequest::default().with_topics(None),
    );
    out.push(("DescribeLogDirs", r.error_code, vec![]));
    let r = call(
        broker,
        2,
        &DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(s("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]),
    );
    out.push(("DescribeQuorum", r.error_code, vec![]));
    let r = call(broker, 1, &ListConfigResourcesRequest::default());
    out.push(("ListConfigResources", r.error_code, vec![]));
    out
}

/// The cluster-administration APIs check what Kafka's controller checks: ALTER on the cluster
/// for ElectLeaders, AlterPartitionReassignments and UpdateFeatures; DESCRIBE for
/// ListPartitionReassignments, DescribeLogDirs and DescribeQuorum; DESCRIBE_CONFIGS for
/// ListConfigResources; refused with CLUSTER_AUTHORIZATION_FAILED in each API's error shape.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_apis_check_cluster_acls() {
    const DENIED: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED
    let broker = Broker::start(&[
        "--set",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "--set",
        "allow.everyone.if.no.acl.found=true",
    ]);
    let topic = "acl-cluster-apis";
    common::create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    // No ACL on the cluster yet: everyone may, and each API answers as it does unrestricted.
    let open = cluster_api_codes(&broker, topic);
    let expected_open: Vec<(&str, i16, Vec<i16>)> = vec![
        ("ElectLeaders", 0, vec![84]), // ELECTION_NOT_NEEDED
        ("AlterPartitionReassignments", 0, vec![0]),
        ("ListPartitionReassignments", 0, vec![]),
        ("UpdateFeatures", 0, vec![]),
        ("DescribeLogDirs", 0, vec![]),
        ("DescribeQuorum", 0, vec![]),
        ("ListConfigResources", 0, vec![]),
    ];
    assert_eq!(open, expected_open);

    // ALTER allowed (which implies DESCRIBE), DESCRIBE denied: deny wins for DESCRIBE, and
    // DESCRIBE_CONFIGS is neither allowed nor implied.
    let r = call(
        &broker,
        3,
        &CreateAclsRequest::default().with_creations(vec![acl(7, 3), acl(8, 2)]),
    );
    assert!(r.results.iter().all(|r| r.error_code == 0), "{r:?}");
    let half = cluster_api_codes(&broker, topic);
    let expected_half: Vec<(&str, i16, Vec<i16>)> = vec![
        ("ElectLeaders", 0, vec![84]),
        ("AlterPartitionReassignments", 0, vec![0]),
        ("ListPartitionReassignments", DENIED, vec![]),
        ("UpdateFeatures", 0, vec![]),
        ("DescribeLogDirs", DENIED, vec![]),
        ("DescribeQuorum", DENIED, vec![]),
        ("ListConfigResources", DENIED, vec![]),
    ];
    assert_eq!(half, expected_half);

    // ALTER denied too: every one refused, every partition asked for carries the code.
    let r = call(
        &broker,
        3,
        &CreateAclsRequest::default().with_creations(vec![acl(7, 2)]),
    );
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    let closed = cluster_api_codes(&broker, topic);
    let expected_closed: Vec<(&str, i16, Vec<i16>)> = vec![
        ("ElectLeaders", DENIED, vec![DENIED]),
        ("AlterPartitionReassignments", DENIED, vec![DENIED]),
        ("ListPartitionReassignments", DENIED, vec![]),
        ("UpdateFeatures", DENIED, vec![]),
        ("DescribeLogDirs", DENIED, vec![]),
        ("DescribeQuorum", DENIED, vec![]),
        ("ListConfigResources", DENIED, vec![]),
    ];
    assert_eq!(closed, expected_closed);
}
