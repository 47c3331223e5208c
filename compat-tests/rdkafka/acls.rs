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
