//! Consumer groups with the KIP-848 protocol (group.protocol=consumer: ConsumerGroupHeartbeat,
//! broker-side assignment), driven by librdkafka: exactly-once processing while members join
//! and leave, committed offsets honoured (also across a graceful restart and a kill -9), and a
//! regex subscription that picks up a topic created after subscribing.
//!
//! Session timeout and heartbeat interval are broker-side in KIP-848, so clients set neither;
//! the broker runs with group.consumer.heartbeat.interval.ms=500.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::groups::{
    committed_offsets_scenario, exactly_once_with_churn, produce_indexed, wait_until, Member,
    MemberSpec, GROUP_BROKER_ARGS, KIP848,
};
use common::Broker;

const N: u64 = 200_000;

#[tokio::test(flavor = "multi_thread")]
async fn kip848_exactly_once_with_churn() {
    let broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "eo-848", 12, &[]).await;
    tokio::task::spawn_blocking(move || {
        exactly_once_with_churn(&bs, "eo-848", "g-eo-848", 12, N, KIP848)
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kip848_committed_offsets_survive_close_restart_and_kill9() {
    let mut broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    let (topic, group) = ("resume-848", "g-resume-848");
    common::create_topic(&bs, topic, 3, &[]).await;
    let bs2 = bs.clone();
    let ends = tokio::task::spawn_blocking(move || produce_indexed(&bs2, topic, 3, 30_000))
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        committed_offsets_scenario(&mut broker, topic, group, &ends, KIP848)
    });
}

/// Subscribe to "^rx-.*": the existing rx-a is consumed; rx-b, created after subscribing, is
/// assigned and consumed too; a topic that does not match (other-c) is never assigned.
#[tokio::test(flavor = "multi_thread")]
async fn kip848_regex_subscription_picks_up_new_topic() {
    let broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "rx-a", 2, &[]).await;
    let bs2 = bs.clone();
    tokio::task::spawn_blocking(move || produce_indexed(&bs2, "rx-a", 2, 100))
        .await
        .unwrap();
    let bs2 = bs.clone();
    let m = tokio::task::spawn_blocking(move || {
        let m = Member::start(MemberSpec {
            name: "rx",
            bootstrap: &bs2,
            group: "g-regex",
            topics: &["^rx-.*"],
            extra: KIP848,
            max_rate: None,
            seen: None,
        });
        wait_until(
            Duration::from_secs(30),
            || {
                format!(
                    "rx-a consumed through the regex subscription: {}",
                    m.state.describe()
                )
            },
            || m.state.consumed.load(Ordering::SeqCst) == 100,
        );
        m
    })
    .await
    .unwrap();

    common::create_topic(&bs, "rx-b", 2, &[]).await;
    common::create_topic(&bs, "other-c", 1, &[]).await;
    let bs2 = bs.clone();
    tokio::task::spawn_blocking(move || {
        let t = std::time::Instant::now();
        produce_indexed(&bs2, "rx-b", 2, 50);
        produce_indexed(&bs2, "other-c", 1, 10);
        wait_until(
            Duration::from_secs(40),
            || {
                format!(
                    "rx-b (created after subscribing) assigned and consumed: {}",
                    m.state.describe()
                )
            },
            || m.state.consumed.load(Ordering::SeqCst) == 150,
        );
        eprintln!(
            "rx-b picked up and consumed {:?} after it was produced to",
            t.elapsed()
        );
        let want: BTreeSet<(String, i32)> = [("rx-a", 0), ("rx-a", 1), ("rx-b", 0), ("rx-b", 1)]
            .into_iter()
            .map(|(t, p)| (t.to_string(), p))
            .collect();
        assert_eq!(m.state.assignment(), want, "{}", m.state.describe());
        // Nothing beyond the matching topics arrives.
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            m.state.consumed.load(Ordering::SeqCst),
            150,
            "{}",
            m.state.describe()
        );
        let st = m.stop();
        assert!(st.errors().is_empty(), "{}", st.describe());
    })
    .await
    .unwrap();
}
