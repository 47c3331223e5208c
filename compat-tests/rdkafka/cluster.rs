//! Cluster mode (`--cluster etcd://...`): several real sluice brokers sharing their metadata
//! through a real etcd. Brokers see each other, topics created on one broker are placed over
//! all and served everywhere, librdkafka routes to each partition's leader, the controller
//! moves leadership off a broker that dies and back when it returns, and data survives.

mod common;

use common::etcd::{etcd_path, Etcd};
use common::{admin, admin_opts, consume_all, producer, skip_allowed, wait_for, Broker};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Short sessions, so a killed broker is noticed within seconds.
const SESSION: &[&str] = &[
    "--set",
    "broker.session.timeout.ms=3000",
    "--set",
    "broker.heartbeat.interval.ms=500",
];

fn have_etcd(test: &str) -> bool {
    etcd_path().is_some() || !skip_allowed(test, "etcd is not installed")
}

fn start_broker(etcd: &Etcd, prefix: &str, node: i32) -> Broker {
    let url = etcd.cluster_url(prefix);
    let node = node.to_string();
    let mut args = vec!["--cluster", &url, "--node-id", &node];
    args.extend_from_slice(SESSION);
    Broker::start(&args)
}

/// (broker ids, controller id, leader of each partition of `topic`) as `bootstrap` tells it.
type View = (BTreeSet<i32>, BTreeMap<i32, i32>);

fn view(bootstrap: &str, topic: Option<&str>) -> Option<View> {
    let c: BaseConsumer = common::client_config(bootstrap).create().ok()?;
    let md = c.fetch_metadata(topic, Duration::from_secs(5)).ok()?;
    let brokers = md.brokers().iter().map(|b| b.id()).collect();
    let leaders = md
        .topics()
        .iter()
        .filter(|t| Some(t.name()) == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.leader())))
        .collect();
    Some((brokers, leaders))
}

async fn create(bootstrap: &str, topic: &str, partitions: i32) {
    let result = admin(bootstrap)
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics");
    assert!(result[0].is_ok(), "creating {topic}: {:?}", result[0]);
}

async fn produce(bootstrap: &str, topic: &str, partitions: i32, per_partition: usize) {
    let p = producer(bootstrap, &[]);
    for i in 0..per_partition {
        for partition in 0..partitions {
            let value = format!("{partition}-{i}");
            p.send(
                FutureRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(&value),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}/{partition}: {e}"));
        }
    }
}

fn values(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, Vec<String>> {
    consume_all(bootstrap, topic, partitions, Duration::from_secs(60))
        .into_iter()
        .map(|(p, msgs)| {
            let values = msgs
                .iter()
                .map(|m| {
                    String::from_utf8_lossy(rdkafka::Message::payload(m).unwrap_or_default())
                        .into_owned()
                })
                .collect();
            (p, values)
        })
        .collect()
}

fn expected(partitions: i32, per_partition: usize) -> BTreeMap<i32, Vec<String>> {
    (0..partitions)
        .map(|p| (p, (0..per_partition).map(|i| format!("{p}-{i}")).collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_share_topics_and_clients_reach_every_leader() {
    if !have_etcd("brokers_share_topics_and_clients_reach_every_leader") {
        return;
    }
    let etcd = Etcd::start();
    let brokers: Vec<Broker> = (1..=3).map(|n| start_broker(&etcd, "share", n)).collect();
    let all = BTreeSet::from([1, 2, 3]);
    for b in &brokers {
        wait_for(Duration::from_secs(20), || {
            view(&b.bootstrap(), None).filter(|(ids, _)| *ids == all)
        })
        .unwrap_or_else(|| panic!("{} does not list all three brokers", b.bootstrap()));
    }

    create(&brokers[0].bootstrap(), "spread", 6).await;
    // The other brokers learn the topic, with the same leaders, spread over all three.
    let leaders = wait_for(Duration::from_secs(20), || {
        view(&brokers[0].bootstrap(), Some("spread"))
            .map(|(_, l)| l)
            .filter(|l| l.len() == 6)
    })
    .expect("the creating broker lists the topic");
    assert_eq!(
        leaders.values().copied().collect::<BTreeSet<_>>(),
        all,
        "six partitions round-robin over three brokers: {leaders:?}"
    );
    for b in &brokers[1..] {
        wait_for(Duration::from_secs(20), || {
            view(&b.bootstrap(), Some("spread")).filter(|(_, l)| *l == leaders)
        })
        .unwrap_or_else(|| panic!("{} does not show the leaders {leaders:?}", b.bootstrap()));
    }

    // Bootstrapped on one broker, librdkafka produces to and fetches from every leader.
    produce(&brokers[1].bootstrap(), "spread", 6, 20).await;
    assert_eq!(
        values(&brokers[2].bootstrap(), "spread", 6),
        expected(6, 20)
    );

    // A topic deleted through one broker disappears from the others.
    let deleted = admin(&brokers[2].bootstrap())
        .delete_topics(&["spread"], &admin_opts())
        .await
        .expect("DeleteTopics");
    assert!(deleted[0].is_ok(), "{deleted:?}");
    wait_for(Duration::from_secs(20), || {
        view(&brokers[0].bootstrap(), Some("spread")).filter(|(_, l)| l.is_empty())
    })
    .expect("the topic is gone from broker 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_leaves_a_dead_broker_and_returns_with_its_data() {
    if !have_etcd("leadership_leaves_a_dead_broker_and_returns_with_its_data") {
        return;
    }
    let etcd = Etcd::start();
    let mut brokers: Vec<Broker> = (1..=3)
        .map(|n| start_broker(&etcd, "failover", n))
        .collect();
    let all = BTreeSet::from([1, 2, 3]);
    wait_for(Duration::from_secs(20), || {
        view(&brokers[0].bootstrap(), None).filter(|(ids, _)| *ids == all)
    })
    .expect("three brokers registered");
    create(&brokers[0].bootstrap(), "moves", 3).await;
    let leaders = wait_for(Duration::from_secs(20), || {
        view(&brokers[1].bootstrap(), Some("moves"))
            .map(|(_, l)| l)
            .filter(|l| l.len() == 3)
    })
    .expect("the topic is known");
    produce(&brokers[1].bootstrap(), "moves", 3, 30).await;

    // kill -9 the leader of partition 0: once its session ends, the partition has no leader
    // (its only replica is gone) and the broker leaves the broker list.
    let victim = leaders[&0];
    let survivor = (0..3).find(|&i| i as i32 + 1 != victim).unwrap();
    brokers[(victim - 1) as usize].kill9();
    let others: BTreeSet<i32> = all.iter().copied().filter(|&n| n != victim).collect();
    let survivor_bootstrap = brokers[survivor].bootstrap();
    wait_for(Duration::from_secs(20), || {
        view(&survivor_bootstrap, Some("moves")).filter(|(ids, l)| *ids == others && l[&0] == -1)
    })
    .unwrap_or_else(|| {
        panic!(
            "partition 0 keeps leader {victim} after it died: {:?}",
            view(&survivor_bootstrap, Some("moves"))
        )
    });

    // Back on the same data dir, it registers again (after its old session expires), leads
    // its partition again and still holds every acknowledged record.
    brokers[(victim - 1) as usize].restart();
    wait_for(Duration::from_secs(30), || {
        view(&survivor_bootstrap, Some("moves")).filter(|(ids, l)| *ids == all && l[&0] == victim)
    })
    .unwrap_or_else(|| panic!("broker {victim} did not lead partition 0 again"));
    assert_eq!(values(&survivor_bootstrap, "moves", 3), expected(3, 30));
}
