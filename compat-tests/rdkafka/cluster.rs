//! Cluster mode (`--cluster etcd://...`): several real sluice brokers sharing their metadata
//! through a real etcd. Brokers see each other, topics created on one broker are placed over
//! all and served everywhere, librdkafka routes to each partition's leader, the controller
//! moves leadership off a broker that dies and back when it returns, and data survives.

mod common;

use common::etcd::{etcd_path, Etcd};
use common::{admin, admin_opts, consume_all, producer, skip_allowed, wait_for, wire, Broker};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

    // KIP-951: a broker that does not lead a partition says who does, and where.
    let (&partition, &leader) = leaders.iter().next().unwrap();
    // Broker i+1 is brokers[i].
    let other = &brokers[(leader % 3) as usize];
    let leader_port = brokers[(leader - 1) as usize].addr().port();
    let (code, hinted, endpoint) = produce_elsewhere(other, "spread", partition);
    assert_eq!(code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(hinted, leader, "the current leader in the answer");
    assert_eq!(
        endpoint,
        Some(leader_port as i32),
        "the leader's endpoint in the answer"
    );

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

/// A consumer reading partition 0 of `topic` from the start in the background (offset reset
/// to the end, so a wrongly reset position would lose records, not repeat them).
struct Reader {
    stop: Arc<AtomicBool>,
    values: Arc<Mutex<Vec<String>>>,
    thread: std::thread::JoinHandle<()>,
}

fn follow_partition(bootstrap: &str, topic: &str) -> Reader {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = common::client_config(bootstrap)
        .set("group.id", "failover-reader")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let stop = Arc::new(AtomicBool::new(false));
    let values = Arc::new(Mutex::new(Vec::new()));
    let (flag, into) = (stop.clone(), values.clone());
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let v = rdkafka::Message::payload(&m).unwrap_or_default();
                into.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(v).into_owned());
            }
        }
    });
    Reader {
        stop,
        values,
        thread,
    }
}

impl Reader {
    /// Waits (up to 60 s) until `count` records were read, then stops and returns them.
    fn finish(self, count: usize) -> Vec<String> {
        wait_for(Duration::from_secs(60), || {
            (self.values.lock().unwrap().len() >= count).then_some(())
        });
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("reader thread");
        let values = self.values.lock().unwrap().clone();
        values
    }
}

/// A raw Produce v12 to `broker`, which does not lead `partition`: (error code, the leader
/// it names, that leader's port among the node endpoints).
fn produce_elsewhere(broker: &Broker, topic: &str, partition: i32) -> (i16, i32, Option<i32>) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_string(
                topic.to_string(),
            )))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(bytes::Bytes::from_static(b"")))])]);
    let mut conn = wire::connect(broker.addr(), Duration::from_secs(10));
    std::io::Write::write_all(&mut conn, &wire::request(12, 1, &request)).unwrap();
    let frame = wire::read_frame(&mut conn).expect("a response");
    let r = wire::response::<ProduceRequest>(12, frame).1;
    let p = &r.responses[0].partition_responses[0];
    let leader = p.current_leader.leader_id.0;
    let endpoint = r
        .node_endpoints
        .iter()
        .find(|e| e.node_id.0 == leader)
        .map(|e| e.port);
    (p.error_code, leader, endpoint)
}

/// Three brokers on `etcd` (key prefix `topic`), and `topic` with one partition, RF=3 and
/// min.insync.replicas=2, once all three replicas are in sync; with the partition's state.
async fn replicated_cluster(
    etcd: &Etcd,
    topic: &str,
) -> (Vec<Broker>, BTreeMap<i32, (i32, Vec<i32>)>) {
    let url = etcd.cluster_url(topic);
    let brokers: Vec<Broker> = (1..=3)
        .map(|n| {
            let node = n.to_string();
            let mut args = vec!["--cluster", &url, "--node-id", &node];
            args.extend_from_slice(SESSION);
            args.extend_from_slice(&["--set", "replica.lag.time.max.ms=4000"]);
            Broker::start(&args)
        })
        .collect();
    let all = BTreeSet::from([1, 2, 3]);
    wait_for(Duration::from_secs(20), || {
        view(&brokers[0].bootstrap(), None).filter(|(ids, _)| *ids == all)
    })
    .expect("three brokers registered");
    let created = admin(&brokers[0].bootstrap())
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2")],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics");
    assert!(created[0].is_ok(), "{created:?}");
    let state = wait_for(Duration::from_secs(20), || {
        isr_view(&brokers[1].bootstrap(), topic)
            .filter(|s| s.get(&0).is_some_and(|(_, isr)| isr.len() == 3))
    })
    .expect("three in-sync replicas");
    (brokers, state)
}

/// (leader, ISR) of each partition of `topic`, as `bootstrap` tells it.
fn isr_view(bootstrap: &str, topic: &str) -> Option<BTreeMap<i32, (i32, Vec<i32>)>> {
    let c: BaseConsumer = common::client_config(bootstrap).create().ok()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())?;
    Some(
        t.partitions()
            .iter()
            .map(|p| (p.id(), (p.leader(), p.isr().to_vec())))
            .collect(),
    )
}

/// Produces `count` records numbered from `from` to partition 0 with an idempotent acks=all
/// producer, retrying through leader changes; returns the values acknowledged.
async fn produce_acked(bootstrap: &str, topic: &str, from: usize, count: usize) -> Vec<String> {
    let p = producer(
        bootstrap,
        &[("message.timeout.ms", "60000"), ("retry.backoff.ms", "100")],
    );
    let sends = (from..from + count).map(|i| {
        let value = format!("r-{i}");
        let p = p.clone();
        async move {
            p.send(
                FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&value),
                Duration::from_secs(60),
            )
            .await
            .ok()
            .map(|_| value)
        }
    });
    futures::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// RF=3, min.insync.replicas=2: kill -9 the leader while an acks=all producer runs. A
/// follower takes over within seconds, nothing acknowledged is lost or duplicated, the dead
/// broker comes back as a follower and rejoins the ISR, and after a second kill -9 (of the
/// new leader) the remaining in-sync replica serves the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_partition_keeps_acknowledged_records_across_leader_kill9() {
    if !have_etcd("replicated_partition_keeps_acknowledged_records_across_leader_kill9") {
        return;
    }
    let etcd = Etcd::start();
    let topic = "replicated";
    let (mut brokers, state) = replicated_cluster(&etcd, topic).await;
    let first_leader = state[&0].0;

    // Everything acknowledged with three in-sync replicas.
    let mut acked = produce_acked(&brokers[0].bootstrap(), topic, 0, 300).await;
    assert_eq!(acked.len(), 300, "all acknowledged before the kill");

    // kill -9 the leader while more records are in flight, and while a consumer reads on.
    let bootstrap = brokers[(first_leader % 3) as usize].bootstrap();
    let reading = follow_partition(&bootstrap, topic);
    let in_flight = {
        let bootstrap = bootstrap.clone();
        tokio::spawn(async move { produce_acked(&bootstrap, topic, 300, 300).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    brokers[(first_leader - 1) as usize].kill9();
    let killed = std::time::Instant::now();
    let after = wait_for(Duration::from_secs(30), || {
        isr_view(&bootstrap, topic).filter(|s| s[&0].0 >= 0 && s[&0].0 != first_leader)
    })
    .expect("a follower leads after the kill");
    eprintln!(
        "a new leader {:?} after the kill -9 (broker.session.timeout.ms=3000)",
        killed.elapsed()
    );
    acked.extend(in_flight.await.unwrap());
    let second_leader = after[&0].0;
    acked.extend(produce_acked(&bootstrap, topic, 600, 100).await);

    let read = values(&bootstrap, topic, 1).remove(&0).unwrap_or_default();
    let read_set: BTreeSet<&String> = read.iter().collect();
    assert_eq!(read_set.len(), read.len(), "no duplicates");
    eprintln!(
        "leader {first_leader} killed, {second_leader} took over; {} acknowledged, {} read",
        acked.len(),
        read.len()
    );
    let lost: Vec<&String> = acked.iter().filter(|v| !read_set.contains(v)).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
    // The consumer that read through the failover validated its position with the new leader
    // (OffsetForLeaderEpoch) and went on where it was: the same records, none twice.
    let followed = reading.finish(read.len());
    assert_eq!(followed, read, "the consumer reading through the failover");

    // The old leader returns as a follower, catches up and rejoins the ISR.
    brokers[(first_leader - 1) as usize].restart();
    wait_for(Duration::from_secs(40), || {
        isr_view(&bootstrap, topic).filter(|s| s[&0].1.contains(&first_leader))
    })
    .unwrap_or_else(|| {
        panic!(
            "broker {first_leader} did not rejoin the ISR: {:?}",
            isr_view(&bootstrap, topic)
        )
    });

    // Now kill the second leader: a remaining in-sync replica leads with everything.
    brokers[(second_leader - 1) as usize].kill9();
    let survivor = (1..=3)
        .find(|n| *n != second_leader)
        .map(|n| brokers[(n - 1) as usize].bootstrap())
        .unwrap();
    wait_for(Duration::from_secs(30), || {
        isr_view(&survivor, topic).filter(|s| s[&0].0 >= 0 && s[&0].0 != second_leader)
    })
    .expect("a third leader");
    let reread = values(&survivor, topic, 1).remove(&0).unwrap_or_default();
    assert_eq!(
        reread, read,
        "the same records, in the same order, after the second failover"
    );
}

/// A leader paused (SIGSTOP) past its session is replaced; resumed, it must not acknowledge
/// anything as leader any more: it learns the new state, follows, truncates what diverged and
/// rejoins the ISR, and every record acknowledged on either side is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_fenced_and_rejoins_as_a_follower() {
    if !have_etcd("a_paused_leader_is_fenced_and_rejoins_as_a_follower") {
        return;
    }
    let etcd = Etcd::start();
    let topic = "paused";
    let (brokers, state) = replicated_cluster(&etcd, topic).await;
    let old_leader = state[&0].0;
    let paused = &brokers[(old_leader - 1) as usize];
    let other = brokers[(old_leader % 3) as usize].bootstrap();
    let mut acked = produce_acked(&other, topic, 0, 200).await;
    assert_eq!(acked.len(), 200);

    // A producer that only knows the leader-to-be-paused keeps sending through the pause.
    let paused_bootstrap = paused.bootstrap();
    paused.signal(libc::SIGSTOP);
    let during =
        tokio::spawn(async move { produce_acked(&paused_bootstrap, topic, 200, 100).await });
    let new_state = wait_for(Duration::from_secs(30), || {
        isr_view(&other, topic).filter(|s| s[&0].0 >= 0 && s[&0].0 != old_leader)
    })
    .expect("a new leader while the old one is paused");
    acked.extend(produce_acked(&other, topic, 300, 100).await);
    paused.signal(libc::SIGCONT);
    acked.extend(during.await.unwrap());
    wait_for(Duration::from_secs(40), || {
        isr_view(&other, topic).filter(|s| s[&0].1.contains(&old_leader))
    })
    .unwrap_or_else(|| {
        panic!(
            "broker {old_leader} did not rejoin the ISR: {:?}",
            isr_view(&other, topic)
        )
    });
    let read = values(&other, topic, 1).remove(&0).unwrap_or_default();
    let read_set: BTreeSet<&String> = read.iter().collect();
    assert_eq!(read_set.len(), read.len(), "no duplicates");
    let lost: Vec<&String> = acked.iter().filter(|v| !read_set.contains(v)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged records lost (new leader {}): {lost:?}",
        new_state[&0].0
    );

    // Back in the ISR, the first replica can take the lead again on request (ElectLeaders,
    // preferred), and then there is nothing more to elect.
    let preferred = preferred_replica(&other, topic);
    let elect = |b: &Broker| {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        use kafka_protocol::messages::{ElectLeadersRequest, TopicName};
        let request = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str(topic),
                ))
                .with_partitions(vec![0])]))
            .with_timeout_ms(5000);
        let mut conn = wire::connect(b.addr(), Duration::from_secs(10));
        std::io::Write::write_all(&mut conn, &wire::request(2, 1, &request)).unwrap();
        let frame = wire::read_frame(&mut conn).expect("a response");
        let r = wire::response::<ElectLeadersRequest>(2, frame).1;
        r.replica_election_results[0].partition_result[0].error_code
    };
    let leader_now = isr_view(&other, topic).unwrap()[&0].0;
    let expected = if leader_now == preferred { 84 } else { 0 }; // ELECTION_NOT_NEEDED
    assert_eq!(elect(&brokers[0]), expected);
    wait_for(Duration::from_secs(20), || {
        isr_view(&other, topic).filter(|s| s[&0].0 == preferred)
    })
    .expect("the preferred replica leads");
    assert_eq!(elect(&brokers[1]), 84, "ELECTION_NOT_NEEDED once it leads");
}

fn preferred_replica(bootstrap: &str, topic: &str) -> i32 {
    let c: BaseConsumer = common::client_config(bootstrap).create().unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .unwrap();
    md.topics()[0].partitions()[0].replicas()[0]
}
