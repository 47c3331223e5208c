//! Client quotas and connection limits end to end, against the real broker binary:
//! AlterClientQuotas / DescribeClientQuotas as raw requests (rust-rdkafka has no quota calls),
//! a real rdkafka producer held to its producer_byte_rate, the throttle time and the mute a raw
//! client sees, quotas surviving a restart and kill -9, Kafka's describe filters and validation
//! errors, and max.connections.per.ip closing the extra connections.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{wire, Broker};
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    fetch_request, produce_request, AlterClientQuotasRequest, AlterClientQuotasResponse,
    ApiVersionsRequest, BrokerId, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
    FetchRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use rdkafka::producer::FutureRecord;

const INVALID_REQUEST: i16 = 42;
const UNSUPPORTED_VERSION: i16 = 35;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// One request and its response on a connection of its own.
fn call<R: Request>(broker: &Broker, version: i16, request: &R) -> R::Response {
    let mut conn = wire::connect(broker.addr(), Duration::from_secs(20));
    call_on(&mut conn, version, request)
}

fn call_on<R: Request>(conn: &mut TcpStream, version: i16, request: &R) -> R::Response {
    conn.write_all(&wire::request(version, 1, request)).unwrap();
    let frame = wire::read_frame(conn).expect("a response");
    wire::response::<R>(version, frame).1
}

type Entity<'a> = &'a [(&'a str, Option<&'a str>)];

fn entry(entity: Entity, ops: &[(&str, Option<f64>)]) -> EntryData {
    EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| {
                    EntityData::default()
                        .with_entity_type(s(t))
                        .with_entity_name(n.map(s))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(k, v)| {
                    OpData::default()
                        .with_key(s(k))
                        .with_value(v.unwrap_or(0.0))
                        .with_remove(v.is_none())
                })
                .collect(),
        )
}

fn alter(
    broker: &Broker,
    entries: Vec<EntryData>,
    validate_only: bool,
) -> AlterClientQuotasResponse {
    let request = AlterClientQuotasRequest::default()
        .with_entries(entries)
        .with_validate_only(validate_only);
    call(broker, 1, &request)
}

/// Alters and asserts every entry succeeded.
fn set(broker: &Broker, entity: Entity, ops: &[(&str, Option<f64>)]) {
    let r = alter(broker, vec![entry(entity, ops)], false);
    for e in &r.entries {
        assert_eq!(e.error_code, 0, "{entity:?}: {:?}", e.error_message);
    }
}

/// Filter component: Some(Some(name)) exact, Some(None) default, None any of the type.
fn describe(
    broker: &Broker,
    components: &[(&str, Option<Option<&str>>)],
    strict: bool,
) -> DescribeClientQuotasResponse {
    let request = DescribeClientQuotasRequest::default()
        .with_components(
            components
                .iter()
                .map(|(t, m)| {
                    let (match_type, name) = match m {
                        Some(Some(n)) => (0, Some(s(n))),
                        Some(None) => (1, None),
                        None => (2, None),
                    };
                    ComponentData::default()
                        .with_entity_type(s(t))
                        .with_match_type(match_type)
                        .with_match(name)
                })
                .collect(),
        )
        .with_strict(strict);
    call(broker, 1, &request)
}

/// The described entries as entity -> values.
type Described = BTreeMap<Vec<(String, Option<String>)>, BTreeMap<String, f64>>;

fn described(r: &DescribeClientQuotasResponse) -> Described {
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    r.entries
        .as_ref()
        .expect("entries")
        .iter()
        .map(|e| {
            let mut entity: Vec<(String, Option<String>)> = e
                .entity
                .iter()
                .map(|c| {
                    (
                        c.entity_type.to_string(),
                        c.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect();
            entity.sort();
            let values = e
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            (entity, values)
        })
        .collect()
}

fn key(entity: Entity) -> Vec<(String, Option<String>)> {
    let mut k: Vec<_> = entity
        .iter()
        .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
        .collect();
    k.sort();
    k
}

fn produce_request(topic: &str, value_bytes: usize) -> ProduceRequest {
    let value = vec![b'x'; value_bytes];
    let batch = wire::record_batch(
        common::now_ms(),
        &[wire::RawRecord {
            key: None,
            value: Some(&value),
            headers: vec![],
        }],
    );
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch))),
            ])])
}

/// (a) A real rdkafka producer over its producer_byte_rate is held to it: the bytes it gets
/// acknowledged per second, after the burst the first window allows, are within a tolerance of
/// the quota. A raw producer sees throttle_time_ms > 0 and its connection muted for that long.
#[tokio::test(flavor = "multi_thread")]
async fn a_producer_is_held_to_its_byte_rate() {
    // Three 1 s samples: a new client's burst is two seconds' worth (Kafka's Rate spans at
    // least samples - 1 windows), so a short run reaches the steady state.
    let broker = Broker::start(&[
        "--set",
        "quota.window.num=3",
        "--set",
        "quota.window.size.seconds=1",
    ]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "throttled", 1, &[]).await;

    // Raw: 30 kB/s for the raw client; 40 kB at once is within 2 s x 30 kB, 120 kB is not.
    set(
        &broker,
        &[("client-id", Some(wire::CLIENT_ID))],
        &[("producer_byte_rate", Some(30_000.0))],
    );
    let mut conn = wire::connect(broker.addr(), Duration::from_secs(30));
    let first = call_on(&mut conn, 9, &produce_request("throttled", 40_000));
    assert_eq!(first.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(first.throttle_time_ms, 0, "within the quota");
    let second = call_on(&mut conn, 9, &produce_request("throttled", 80_000));
    assert_eq!(
        second.responses[0].partition_responses[0].error_code, 0,
        "appended all the same"
    );
    let throttle = second.throttle_time_ms;
    assert!(
        (1500..2500).contains(&throttle),
        "throttled by (120 kB / 2 s - 30 kB/s) / 30 kB/s x 2 s = 2000 ms: {throttle} ms"
    );
    // KIP-219: the response came at once; the next request waits out the throttle time.
    let sent = Instant::now();
    let versions: kafka_protocol::messages::ApiVersionsResponse = call_on(
        &mut conn,
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(s("t"))
            .with_client_software_version(s("1")),
    );
    assert_eq!(versions.error_code, 0);
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(throttle as u64 * 8 / 10),
        "muted for the throttle time ({throttle} ms), answered after {waited:?}"
    );
    drop(conn);

    // rdkafka: 100 kB/s for its client id, produced as fast as the broker lets it.
    let quota = 100_000.0;
    set(
        &broker,
        &[("client-id", Some("quota-producer"))],
        &[("producer_byte_rate", Some(quota))],
    );
    let producer = common::producer(
        &bs,
        &[
            ("client.id", "quota-producer"),
            ("batch.size", "32768"),
            ("linger.ms", "2"),
        ],
    );
    let payload = vec![b'p'; 1000];
    let start = Instant::now();
    let run = Duration::from_secs(9);
    let mut acked: Vec<(Duration, usize)> = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    while start.elapsed() < run {
        while in_flight.len() < 200 {
            in_flight.push(producer.send(
                FutureRecord::<(), [u8]>::to("throttled").payload(&payload[..]),
                Duration::from_secs(30),
            ));
        }
        match tokio::time::timeout(Duration::from_millis(200), in_flight.next()).await {
            Ok(Some(Ok(_))) => acked.push((start.elapsed(), payload.len())),
            Ok(Some(Err((e, _)))) => panic!("delivery failed: {e}"),
            Ok(None) | Err(_) => {}
        }
    }
    drop(in_flight);
    let burst: usize = acked
        .iter()
        .filter(|(t, _)| *t < Duration::from_secs(3))
        .map(|(_, b)| b)
        .sum();
    let from = Duration::from_secs(3);
    let steady: usize = acked
        .iter()
        .filter(|(t, _)| *t >= from)
        .map(|(_, b)| b)
        .sum();
    let rate = steady as f64 / (run - from).as_secs_f64();
    println!(
        "producer_byte_rate {quota} B/s: {burst} B acknowledged in the first 3 s, then {rate:.0} B/s over {:?}",
        run - from
    );
    assert!(
        rate > quota * 0.6 && rate < quota * 1.4,
        "steady rate {rate:.0} B/s should be within 40% of the quota {quota} B/s"
    );
}

fn fetch_request(topic: &str, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

/// A consumer over its consumer_byte_rate: one fetch returns at most quota x (samples - 1) x
/// window bytes, and once the rate is over the quota a fetch answers no data with its
/// throttle time, as Kafka's.
#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_is_held_to_its_byte_rate() {
    let broker = Broker::start(&[
        "--set",
        "quota.window.num=3",
        "--set",
        "quota.window.size.seconds=1",
    ]);
    common::create_topic(&broker.bootstrap(), "fetched", 1, &[]).await;
    let mut conn = wire::connect(broker.addr(), Duration::from_secs(30));
    for _ in 0..10 {
        let r = call_on(&mut conn, 9, &produce_request("fetched", 20_000));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    // 20 kB/s: at most 40 kB per fetch.
    set(
        &broker,
        &[("client-id", Some(wire::CLIENT_ID))],
        &[("consumer_byte_rate", Some(20_000.0))],
    );
    let first = call_on(&mut conn, 12, &fetch_request("fetched", 0));
    let p = &first.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let records = p.records.clone().expect("records");
    assert!(
        !records.is_empty() && records.len() <= 41_000,
        "bounded by the quota window: {} bytes",
        records.len()
    );
    let next = wire::decode_batches(records).len() as i64;
    let mut throttled = None;
    for _ in 0..3 {
        let r = call_on(&mut conn, 12, &fetch_request("fetched", next));
        if r.throttle_time_ms > 0 {
            throttled = Some(r);
            break;
        }
    }
    let r = throttled.expect("a fetch over the quota is throttled");
    assert!(r.responses.is_empty(), "a throttled fetch answers no data");
    assert_eq!(r.error_code, 0);
}

/// (b) Quotas survive a clean restart and kill -9, and still throttle afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn quotas_survive_restart_and_kill9() {
    let mut broker = Broker::start(&[]);
    set(
        &broker,
        &[("user", Some("alice")), ("client-id", None)],
        &[
            ("consumer_byte_rate", Some(2048.0)),
            ("request_percentage", Some(50.5)),
        ],
    );
    set(
        &broker,
        &[("client-id", Some(wire::CLIENT_ID))],
        &[("producer_byte_rate", Some(1000.0))],
    );
    let before = described(&describe(&broker, &[], false));
    assert_eq!(before.len(), 2);
    broker.stop_graceful();
    broker.restart();
    assert_eq!(
        described(&describe(&broker, &[], false)),
        before,
        "after a restart"
    );
    set(
        &broker,
        &[("ip", None)],
        &[("connection_creation_rate", Some(1000.0))],
    );
    let before = described(&describe(&broker, &[], false));
    broker.kill9();
    broker.restart();
    let after = described(&describe(&broker, &[], false));
    assert_eq!(after, before, "after kill -9");
    assert_eq!(
        after[&key(&[("ip", None)])]["connection_creation_rate"],
        1000.0
    );
    // In force again: 1 kB/s, so 30 kB is throttled at once.
    common::create_topic(&broker.bootstrap(), "t", 1, &[]).await;
    let r = call(&broker, 9, &produce_request("t", 30_000));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert!(r.throttle_time_ms > 0, "the restored quota throttles");
}

/// (c) Describe filters (exact, default, any; strict) and Kafka's validation errors.
#[tokio::test(flavor = "multi_thread")]
async fn describe_filters_and_validation() {
    let broker = Broker::start(&[]);
    set(
        &broker,
        &[("user", Some("alice"))],
        &[("producer_byte_rate", Some(1000.0))],
    );
    set(
        &broker,
        &[("user", Some("alice")), ("client-id", Some("c1"))],
        &[("consumer_byte_rate", Some(2000.0))],
    );
    set(
        &broker,
        &[("user", None)],
        &[("request_percentage", Some(25.0))],
    );
    set(
        &broker,
        &[("client-id", None)],
        &[
            ("producer_byte_rate", Some(3000.0)),
            ("controller_mutation_rate", Some(7.5)),
        ],
    );
    set(
        &broker,
        &[("ip", Some("127.0.0.1"))],
        &[("connection_creation_rate", Some(10.0))],
    );

    let all = described(&describe(&broker, &[], false));
    assert_eq!(all.len(), 5, "{all:?}");
    assert_eq!(
        all[&key(&[("client-id", None)])]["controller_mutation_rate"],
        7.5
    );
    let names = |d: Described| d.into_keys().collect::<Vec<_>>();
    // Exact user: alone with strict, with its client entity without.
    assert_eq!(
        names(described(&describe(
            &broker,
            &[("user", Some(Some("alice")))],
            true
        ))),
        vec![key(&[("user", Some("alice"))])]
    );
    assert_eq!(
        described(&describe(&broker, &[("user", Some(Some("alice")))], false)).len(),
        2
    );
    // Default user, default client-id.
    assert_eq!(
        names(described(&describe(
            &broker,
            &[("user", Some(None))],
            false
        ))),
        vec![key(&[("user", None)])]
    );
    assert_eq!(
        names(described(&describe(
            &broker,
            &[("client-id", Some(None))],
            true
        ))),
        vec![key(&[("client-id", None)])]
    );
    // Any user, strict: named and default users without a client-id.
    let any_user = names(described(&describe(&broker, &[("user", None)], true)));
    assert_eq!(
        any_user,
        vec![key(&[("user", None)]), key(&[("user", Some("alice"))])]
    );
    // Any user and any client-id.
    assert_eq!(
        names(described(&describe(
            &broker,
            &[("user", None), ("client-id", None)],
            false
        ))),
        vec![key(&[("client-id", Some("c1")), ("user", Some("alice"))])]
    );
    assert_eq!(
        described(&describe(&broker, &[("ip", None)], false)).len(),
        1
    );
    assert!(described(&describe(&broker, &[("user", Some(Some("bob")))], false)).is_empty());

    // Bad filters: the whole answer is the error, no entries.
    let bad = describe(&broker, &[("ip", None), ("user", None)], false);
    assert_eq!(bad.error_code, INVALID_REQUEST, "ip with user");
    assert!(bad.entries.is_none());
    assert_eq!(
        describe(&broker, &[("group", None)], false).error_code,
        UNSUPPORTED_VERSION
    );
    assert_eq!(
        describe(&broker, &[("user", None), ("user", Some(None))], false).error_code,
        INVALID_REQUEST
    );
    let exact_null =
        DescribeClientQuotasRequest::default().with_components(vec![ComponentData::default()
            .with_entity_type(s("user"))
            .with_match_type(0)
            .with_match(None)]);
    assert_eq!(call(&broker, 0, &exact_null).error_code, INVALID_REQUEST);

    // Alter validation: each bad entity fails alone, the good one in the same request applies.
    let r = alter(
        &broker,
        vec![
            entry(&[("user", Some("bob"))], &[("bogus_rate", Some(1.0))]),
            entry(
                &[("ip", Some("127.0.0.1")), ("user", Some("bob"))],
                &[("connection_creation_rate", Some(1.0))],
            ),
            entry(
                &[("user", Some("bob"))],
                &[("producer_byte_rate", Some(1.5))],
            ),
            entry(
                &[("client-id", Some("c2"))],
                &[("producer_byte_rate", Some(0.0))],
            ),
            entry(
                &[("ip", Some("10.0.0.1"))],
                &[("producer_byte_rate", Some(1.0))],
            ),
            entry(
                &[("group", Some("g"))],
                &[("producer_byte_rate", Some(1.0))],
            ),
            entry(&[], &[("producer_byte_rate", Some(1.0))]),
            entry(&[("user", Some(""))], &[("producer_byte_rate", Some(1.0))]),
            entry(
                &[("client-id", Some("good"))],
                &[("request_percentage", Some(12.5))],
            ),
        ],
        false,
    );
    let codes: Vec<i16> = r.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(
        codes,
        vec![42, 42, 42, 42, 42, 42, 42, 42, 0],
        "{:?}",
        r.entries
    );
    assert!(r.entries[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("bogus_rate"));
    assert_eq!(
        r.entries[8].entity[0]
            .entity_name
            .as_ref()
            .map(|n| n.to_string()),
        Some("good".to_string()),
        "the entity is echoed"
    );
    let now = described(&describe(&broker, &[], false));
    assert_eq!(now.len(), 6);
    assert!(!now.contains_key(&key(&[("user", Some("bob"))])));

    // validate_only stores nothing; a remove op deletes a key, the last key the entity.
    let r = alter(
        &broker,
        vec![entry(
            &[("user", Some("carol"))],
            &[("producer_byte_rate", Some(5.0))],
        )],
        true,
    );
    assert_eq!(r.entries[0].error_code, 0);
    assert_eq!(described(&describe(&broker, &[], false)).len(), 6);
    set(
        &broker,
        &[("client-id", None)],
        &[("producer_byte_rate", None)],
    );
    let default_client = &described(&describe(&broker, &[("client-id", Some(None))], true))
        [&key(&[("client-id", None)])];
    assert_eq!(
        default_client.keys().collect::<Vec<_>>(),
        vec!["controller_mutation_rate"]
    );
    set(
        &broker,
        &[("client-id", Some("good"))],
        &[("request_percentage", None)],
    );
    assert!(described(&describe(
        &broker,
        &[("client-id", Some(Some("good")))],
        false
    ))
    .is_empty());
}

/// Alter needs ALTER_CONFIGS and Describe DESCRIBE_CONFIGS on the cluster.
#[tokio::test(flavor = "multi_thread")]
async fn quota_apis_need_cluster_config_permissions() {
    let broker = Broker::start(&[
        "--set",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    ]);
    let r = alter(
        &broker,
        vec![entry(
            &[("user", Some("a"))],
            &[("producer_byte_rate", Some(1.0))],
        )],
        false,
    );
    assert_eq!(r.entries[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    let d = describe(&broker, &[], false);
    assert_eq!(d.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert!(d.entries.is_none());
}

fn api_versions_ok(conn: &mut TcpStream) -> bool {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(s("t"))
        .with_client_software_version(s("1"));
    if conn.write_all(&wire::request(3, 1, &request)).is_err() {
        return false;
    }
    match wire::read_frame(conn) {
        Ok(frame) => wire::response::<ApiVersionsRequest>(3, frame).1.error_code == 0,
        Err(_) => false,
    }
}

/// A connection that got an answer, retried while the broker still counts closed ones.
fn accepted(addr: std::net::SocketAddr) -> TcpStream {
    common::wait_for(Duration::from_secs(10), || {
        let mut c = wire::connect(addr, Duration::from_secs(10));
        api_versions_ok(&mut c).then_some(c)
    })
    .expect("a connection within the limit is accepted")
}

/// (d) max.connections.per.ip: connections beyond N are closed, the first N keep working, a
/// closed one frees its place; raising the limit with AlterConfigs takes effect at once.
#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_per_ip_limit_are_closed() {
    let mut broker = Broker::start(&["--set", "max.connections.per.ip=3"]);
    let addr = broker.addr();
    // The harness's readiness probe may still hold a place for a moment: retry until three.
    let mut first: Vec<TcpStream> = (0..3).map(|_| accepted(addr)).collect();
    for i in 0..2 {
        let mut extra = wire::connect(addr, Duration::from_secs(10));
        wire::write_lenient(
            &mut extra,
            &wire::request(
                3,
                1,
                &ApiVersionsRequest::default()
                    .with_client_software_name(s("t"))
                    .with_client_software_version(s("1")),
            ),
        );
        let closed = wire::expect_closed(&mut extra, &format!("extra connection {i}"));
        assert!(
            matches!(closed, wire::Closed::Eof(0) | wire::Closed::Reset(0)),
            "{closed:?}"
        );
    }
    for c in &mut first {
        assert!(api_versions_ok(c), "the first connections still work");
    }
    drop(first.pop());
    let mut again = common::wait_for(Duration::from_secs(10), || {
        let mut c = wire::connect(addr, Duration::from_secs(10));
        api_versions_ok(&mut c).then_some(c)
    })
    .expect("a connection is accepted once one closed");
    assert!(api_versions_ok(&mut again));
    let log = std::fs::read_to_string(broker.log_path()).unwrap();
    assert!(
        log.contains("address already has the configured maximum of 3 connections"),
        "Kafka's log line"
    );

    // Dynamic, as in Kafka: 5 per ip for the cluster, on the third connection of the three.
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s(""))
            .with_configs(vec![AlterableConfig::default()
                .with_name(s("max.connections.per.ip"))
                .with_config_operation(0)
                .with_value(Some(s("5")))]),
    ]);
    let altered = call_on(&mut again, 1, &request);
    assert_eq!(
        altered.responses[0].error_code, 0,
        "{:?}",
        altered.responses[0].error_message
    );
    // Three open and two more make five (retried while a closed one is still counted).
    let _more: Vec<TcpStream> = (0..2).map(|_| accepted(addr)).collect();
    let mut sixth = wire::connect(addr, Duration::from_secs(10));
    assert!(
        !api_versions_ok(&mut sixth),
        "the sixth is over the raised limit"
    );
    broker.assert_alive();
}

/// max.connections: at the limit the broker stops accepting (Kafka's acceptor blocks); the
/// waiting connection is served once another closes. Broker-wide and per listener.
#[tokio::test(flavor = "multi_thread")]
async fn max_connections_holds_new_connections_until_one_closes() {
    holds_until_one_closes(&["--set", "max.connections=2"], 2);
    holds_until_one_closes(&["--set", "listener.name.plaintext.max.connections=1"], 1);
}

fn holds_until_one_closes(args: &[&str], max: usize) {
    let broker = Broker::start(args);
    let addr = broker.addr();
    let mut open: Vec<TcpStream> = (0..max).map(|_| accepted(addr)).collect();
    let mut waiting = wire::connect(addr, Duration::from_millis(1500));
    let request = ApiVersionsRequest::default()
        .with_client_software_name(s("t"))
        .with_client_software_version(s("1"));
    waiting.write_all(&wire::request(3, 1, &request)).unwrap();
    let early = wire::read_frame(&mut waiting);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "{args:?}: not served while {max} are open: {early:?}"
    );
    for c in &mut open {
        assert!(api_versions_ok(c), "the open ones keep working");
    }
    drop(open.pop());
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let frame = wire::read_frame(&mut waiting).expect("served once one closed");
    assert_eq!(
        wire::response::<ApiVersionsRequest>(3, frame).1.error_code,
        0
    );
}

/// request_percentage: a tiny share of one thread is exhausted by the first requests; the next
/// responses of other APIs carry the throttle time too (here Metadata and DescribeClientQuotas).
#[tokio::test(flavor = "multi_thread")]
async fn request_time_is_throttled_on_any_api() {
    use kafka_protocol::messages::MetadataRequest;
    let broker = Broker::start(&[]);
    set(
        &broker,
        &[("client-id", Some(wire::CLIENT_ID))],
        &[("request_percentage", Some(0.000001))],
    );
    let mut conn = wire::connect(broker.addr(), Duration::from_secs(30));
    let mut metadata_throttle = 0;
    for _ in 0..5 {
        let r = call_on(&mut conn, 12, &MetadataRequest::default().with_topics(None));
        metadata_throttle = metadata_throttle.max(r.throttle_time_ms);
        if metadata_throttle > 0 {
            break;
        }
    }
    assert!(metadata_throttle > 0, "Metadata carries the throttle time");
    let d = describe(&broker, &[], false);
    assert_eq!(d.error_code, 0);
    assert!(d.throttle_time_ms > 0, "and DescribeClientQuotas");
}
