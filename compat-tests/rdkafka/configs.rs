//! Dynamic configs: IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT, validate_only; raw
//! requests, librdkafka's Rust binding has no incremental call) and the legacy AlterConfigs
//! (rdkafka's AdminClient) on a topic; dynamic broker configs on the cluster default and on
//! the broker, applied without a restart and kept across kill -9; read-only settings refused;
//! log levels (BROKER_LOGGER). DescribeConfigs through rdkafka shows each value's source.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::incremental_alter as incremental;
use common::wire;
use common::Broker;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AlterConfig, ConfigSource, ResourceSpecifier};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// DescribeConfigs v4 of one resource: name -> (value, source code).
fn describe_raw(
    addr: SocketAddr,
    ty: i8,
    name: &str,
) -> std::collections::BTreeMap<String, (Option<String>, i8)> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(ty)
            .with_resource_name(StrBytes::from_string(name.into()))
            .with_configuration_keys(None)]);
    let mut s = wire::connect(addr, Duration::from_secs(15));
    std::io::Write::write_all(&mut s, &wire::request(4, 8, &request)).unwrap();
    let (_, response): (i32, DescribeConfigsResponse) = wire::response::<DescribeConfigsRequest>(
        4,
        wire::read_frame(&mut s).expect("DescribeConfigs response"),
    );
    let r = &response.results[0];
    assert_eq!(
        r.error_code, 0,
        "describe {ty}/{name}: {:?}",
        r.error_message
    );
    r.configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                (c.value.as_ref().map(|v| v.to_string()), c.config_source),
            )
        })
        .collect()
}

/// (value, source) of one topic config through rdkafka's DescribeConfigs.
/// The source as rdkafka names it (its ConfigSource is neither Clone nor Copy).
fn source(s: &ConfigSource) -> String {
    format!("{s:?}")
}

async fn topic_config(bs: &str, topic: &str, name: &str) -> (Option<String>, String) {
    let res = common::admin(bs)
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &common::admin_opts())
        .await
        .expect("DescribeConfigs");
    let r = res[0].as_ref().expect("topic described");
    let e = r
        .get(name)
        .unwrap_or_else(|| panic!("{name} not described"));
    (e.value.clone(), source(&e.source))
}

fn some(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_configs_set_delete_append_subtract() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let addr = broker.addr();
    common::create_topic(&bs, "cfg", 2, &[]).await;

    // SET, and a validate_only SET that changes nothing.
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "cfg",
            &[("retention.ms", SET, Some("3600000"))],
            false
        ),
        (0, String::new())
    );
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "cfg",
            &[("retention.bytes", SET, Some("123456"))],
            true
        ),
        (0, String::new())
    );
    assert_eq!(
        topic_config(&bs, "cfg", "retention.ms").await,
        (some("3600000"), "DynamicTopic".to_string())
    );
    assert_eq!(
        topic_config(&bs, "cfg", "retention.bytes").await,
        (some("-1"), "Default".to_string()),
        "validate_only changed nothing"
    );

    // APPEND and SUBTRACT on a list config; APPEND keeps values once.
    let key = "leader.replication.throttled.replicas";
    for (op, v) in [(APPEND, "0:1"), (APPEND, "1:1,0:1"), (SUBTRACT, "0:1")] {
        assert_eq!(
            incremental(addr, TOPIC, "cfg", &[(key, op, Some(v))], false).0,
            0
        );
    }
    assert_eq!(
        topic_config(&bs, "cfg", key).await,
        (some("1:1"), "DynamicTopic".to_string())
    );
    // APPEND on a non-list config, bad values, unknown names and topics: Kafka's errors.
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "cfg",
            &[("retention.ms", APPEND, Some("1"))],
            false
        ),
        (
            40,
            "Can't APPEND to key retention.ms because its type is not LIST.".into()
        )
    );
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "cfg",
            &[("retention.ms", SET, Some("abc"))],
            false
        ),
        (
            40,
            "Invalid value abc for configuration retention.ms: Not a number of type LONG".into()
        )
    );
    assert_eq!(
        incremental(addr, TOPIC, "cfg", &[("no.such", SET, Some("1"))], false),
        (40, "Unknown topic config name: no.such".into())
    );
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "nope",
            &[("retention.ms", SET, Some("1"))],
            false
        ),
        (3, "The topic 'nope' does not exist.".into())
    );
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "cfg",
            &[("retention.ms", SET, None), ("segment.ms", SET, Some("1"))],
            false
        ),
        (42, "Null value not supported for : retention.ms".into())
    );
    // A compression codec other than producer is accepted (stored as sent).
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "cfg",
            &[("compression.type", SET, Some("zstd"))],
            false
        )
        .0,
        0
    );

    // DELETE: back to the default.
    assert_eq!(
        incremental(addr, TOPIC, "cfg", &[("retention.ms", DELETE, None)], false).0,
        0
    );
    assert_eq!(
        topic_config(&bs, "cfg", "retention.ms").await,
        (some("604800000"), "Default".to_string())
    );

    // The legacy AlterConfigs replaces every override.
    let res = common::admin(&bs)
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("cfg")).set("max.message.bytes", "2000")],
            &common::admin_opts(),
        )
        .await
        .expect("AlterConfigs");
    assert!(res[0].is_ok(), "{res:?}");
    assert_eq!(
        topic_config(&bs, "cfg", "max.message.bytes").await,
        (some("2000"), "DynamicTopic".to_string())
    );
    assert_eq!(topic_config(&bs, "cfg", key).await.1, "Default");
    assert_eq!(
        topic_config(&bs, "cfg", "compression.type").await,
        (some("producer"), "Default".to_string())
    );

    // Applied to the live partitions: a batch over the new max.message.bytes is refused.
    let p = common::producer(&bs, &[]);
    let big = vec![b'x'; 5000];
    let sent = p
        .send(
            rdkafka::producer::FutureRecord::<(), _>::to("cfg")
                .partition(0)
                .payload(&big),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(&sent, Err((rdkafka::error::KafkaError::MessageProduction(c), _)) if *c == rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_broker_configs_apply_at_once_and_survive_kill9() {
    let mut broker = Broker::start(&[
        "--set",
        "log.retention.check.interval.ms=300",
        "--set",
        "remote.log.storage.system.enable=false",
    ]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "aging", 1, &[("segment.bytes", "1024")]).await;
    let p = common::producer(&bs, &[]);
    for i in 0..200 {
        p.send(
            rdkafka::producer::FutureRecord::<(), _>::to("aging")
                .partition(0)
                .payload(&format!("record {i:04} {}", "y".repeat(100))),
            Duration::from_secs(10),
        )
        .await
        .expect("produce");
    }
    assert_eq!(common::watermarks(&bs, "aging", 0), (0, 200));

    // Kafka's storage format writes a cluster-wide min.insync.replicas; so does a new sluice.
    assert_eq!(
        topic_config(&bs, "aging", "min.insync.replicas").await,
        (some("1"), "DynamicDefaultBroker".to_string())
    );

    // A read-only setting is refused for the whole resource.
    let addr = broker.addr();
    assert_eq!(
        incremental(
            addr,
            BROKER,
            "",
            &[
                ("num.partitions", SET, Some("3")),
                ("log.retention.ms", SET, Some("1000"))
            ],
            false
        ),
        (
            42,
            "Cannot update these configs dynamically: [num.partitions]".into()
        )
    );
    assert_eq!(
        incremental(
            addr,
            BROKER,
            "7",
            &[("log.retention.ms", SET, Some("1"))],
            false
        ),
        (
            42,
            "Unexpected broker id, expected 1, but received 7".into()
        )
    );

    // The cluster default: applied to the topic at once (its old segments expire), and
    // described as DYNAMIC_DEFAULT_BROKER_CONFIG.
    assert_eq!(
        incremental(
            addr,
            BROKER,
            "",
            &[("log.retention.ms", SET, Some("1000"))],
            false
        ),
        (0, String::new())
    );
    assert_eq!(
        topic_config(&bs, "aging", "retention.ms").await,
        (some("1000"), "DynamicDefaultBroker".to_string())
    );
    let start = common::wait_for(Duration::from_secs(20), || {
        let (low, _) = common::watermarks(&bs, "aging", 0);
        (low > 0).then_some(low)
    })
    .expect("old segments deleted under the new default retention, without a restart");
    assert!(start <= 200);

    // The broker's own value wins over the cluster default; a Kafka setting sluice does not
    // implement is stored all the same.
    assert_eq!(
        incremental(
            addr,
            BROKER,
            "1",
            &[
                ("log.retention.ms", SET, Some("86400000")),
                ("log.cleaner.threads", SET, Some("2"))
            ],
            false
        ),
        (0, String::new())
    );
    let check = |bs: String| async move {
        assert_eq!(
            topic_config(&bs, "aging", "retention.ms").await,
            (some("86400000"), "DynamicBroker".to_string())
        );
        let b = common::admin(&bs)
            .describe_configs(&[ResourceSpecifier::Broker(1)], &common::admin_opts())
            .await
            .expect("DescribeConfigs broker");
        let b = b[0].as_ref().expect("broker described");
        let e = b.get("log.cleaner.threads").expect("log.cleaner.threads");
        assert_eq!(
            (e.value.as_deref(), source(&e.source).as_str()),
            (Some("2"), "DynamicBroker")
        );
        let e = b.get("log.retention.hours").expect("log.retention.hours");
        assert_eq!(
            (
                e.value.as_deref(),
                source(&e.source).as_str(),
                e.is_read_only
            ),
            (Some("168"), "Default", true)
        );
    };
    check(bs.clone()).await;
    let defaults = describe_raw(addr, BROKER, "");
    assert_eq!(defaults.get("log.retention.ms"), Some(&(some("1000"), 3)));

    // kill -9: the dynamic configs come back from the metadata store.
    broker.kill9();
    broker.restart();
    let bs = broker.bootstrap();
    check(bs.clone()).await;
    let defaults = describe_raw(broker.addr(), BROKER, "");
    assert_eq!(defaults.get("log.retention.ms"), Some(&(some("1000"), 3)));

    // DELETE on the broker: the cluster default applies again.
    assert_eq!(
        incremental(
            broker.addr(),
            BROKER,
            "1",
            &[("log.retention.ms", DELETE, None)],
            false
        )
        .0,
        0
    );
    assert_eq!(
        topic_config(&bs, "aging", "retention.ms").await,
        (some("1000"), "DynamicDefaultBroker".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn log_levels_at_runtime() {
    let broker = Broker::start(&[]);
    let addr = broker.addr();
    assert_eq!(
        incremental(
            addr,
            BROKER_LOGGER,
            "1",
            &[("kafka", SET, Some("DEBUG"))],
            false
        ),
        (0, String::new())
    );
    let loggers = describe_raw(addr, BROKER_LOGGER, "1");
    assert_eq!(loggers.get("kafka"), Some(&(some("DEBUG"), 6)));
    assert_eq!(loggers.get("sluice::api"), Some(&(some("DEBUG"), 6)));
    assert_eq!(loggers.get("root"), Some(&(some("INFO"), 6)));
    assert_eq!(
        incremental(addr, BROKER_LOGGER, "1", &[("root", DELETE, None)], false),
        (
            42,
            "Removing the log level of the root logger is not allowed".into()
        )
    );
    assert_eq!(
        incremental(
            addr,
            BROKER_LOGGER,
            "1",
            &[("kafka", APPEND, Some("x"))],
            false
        ),
        (
            42,
            "APPEND operation is not allowed for the BROKER_LOGGER resource".into()
        )
    );
    assert_eq!(
        incremental(addr, BROKER_LOGGER, "1", &[("kafka", DELETE, None)], false).0,
        0
    );
    let loggers = describe_raw(addr, BROKER_LOGGER, "1");
    assert_eq!(loggers.get("kafka"), Some(&(some("INFO"), 6)));
}

/// compression.type other than producer: the broker stores every batch in the topic's codec
/// (read back from the segment file: the codec bits of each stored batch), and consumers get
/// the records unchanged. `producer` keeps the producer's codec (lz4, or none where librdkafka
/// found lz4 no smaller).
#[tokio::test(flavor = "multi_thread")]
async fn topic_compression_type_recompresses() {
    use rdkafka::message::Message;
    use rdkafka::producer::FutureRecord;
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    for (topic_codec, want) in [
        ("gzip", 1i16),
        ("snappy", 2),
        ("lz4", 3),
        ("zstd", 4),
        ("uncompressed", 0),
        ("producer", 3),
    ] {
        let topic = format!("codec-{topic_codec}");
        common::create_topic(&bs, &topic, 1, &[("compression.type", topic_codec)]).await;
        let producer = common::producer(&bs, &[("compression.type", "lz4"), ("linger.ms", "20")]);
        for i in 0..50 {
            let value = format!("{topic_codec} value {i} {}", "x".repeat(i * 10));
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(&format!("k{i}"))
                        .payload(&value),
                    std::time::Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("{topic}: {e}"));
        }
        let got = common::consume_all(&bs, &topic, 1, Duration::from_secs(30));
        let values: Vec<String> = got[&0]
            .iter()
            .map(|m| String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
            .collect();
        let want_values: Vec<String> = (0..50)
            .map(|i| format!("{topic_codec} value {i} {}", "x".repeat(i * 10)))
            .collect();
        assert_eq!(values, want_values, "{topic}");
        let log = std::fs::read(
            broker
                .data_dir()
                .join("topics")
                .join(format!("{topic}-0"))
                .join(format!("{:020}.log", 0)),
        )
        .unwrap();
        let mut at = 0;
        while at + 61 <= log.len() {
            let len = i32::from_be_bytes(log[at + 8..at + 12].try_into().unwrap()) as usize + 12;
            let codec = i16::from_be_bytes(log[at + 21..at + 23].try_into().unwrap()) & 7;
            // librdkafka leaves a batch uncompressed when lz4 would not make it smaller.
            let as_sent = topic_codec == "producer" && codec == 0;
            assert!(
                codec == want || as_sent,
                "{topic}: batch at byte {at} has codec {codec}"
            );
            at += len;
        }
        assert!(at > 0, "{topic}: nothing stored");
    }
}
