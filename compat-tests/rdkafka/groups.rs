//! Consumer groups with the classic protocol (JoinGroup/SyncGroup/Heartbeat), driven by
//! librdkafka: exactly-once processing while members join and leave (eager and cooperative
//! assignors), committed offsets honoured by a restarted group (also across a graceful broker
//! restart and a kill -9), static membership without rebalances, group state through the
//! admin APIs after a restart, and kcat's balanced consumer.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::groups::{
    assert_committed, committed, committed_offsets_scenario, describe_group,
    exactly_once_with_churn, list_groups, produce_indexed, resume_and_commit, wait_until, Member,
    MemberSpec, CLASSIC_FAST, GROUP_BROKER_ARGS,
};
use common::Broker;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;

const N: u64 = 200_000;

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_eager_assignor_with_churn() {
    let broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "eo-eager", 12, &[]).await;
    let extra: Vec<(&str, &str)> = CLASSIC_FAST
        .iter()
        .copied()
        .chain([("partition.assignment.strategy", "range,roundrobin")])
        .collect();
    let bs2 = bs.clone();
    tokio::task::spawn_blocking(move || {
        exactly_once_with_churn(&bs2, "eo-eager", "g-eo-eager", 12, N, &extra)
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_cooperative_sticky_with_churn() {
    let broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "eo-coop", 12, &[]).await;
    let extra: Vec<(&str, &str)> = CLASSIC_FAST
        .iter()
        .copied()
        .chain([("partition.assignment.strategy", "cooperative-sticky")])
        .collect();
    let bs2 = bs.clone();
    tokio::task::spawn_blocking(move || {
        exactly_once_with_churn(&bs2, "eo-coop", "g-eo-coop", 12, N, &extra)
    })
    .await
    .unwrap();
}

/// Consume part, commit, close; a new consumer of the group starts exactly at the committed
/// offsets. Then the same across a graceful broker restart, and across a kill -9 right after
/// a synchronous commit was acknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_close_restart_and_kill9() {
    let mut broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    let (topic, group) = ("resume", "g-resume");
    common::create_topic(&bs, topic, 3, &[]).await;
    let bs2 = bs.clone();
    let ends = tokio::task::spawn_blocking(move || produce_indexed(&bs2, topic, 3, 30_000))
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        committed_offsets_scenario(&mut broker, topic, group, &ends, CLASSIC_FAST)
    });
}

/// Two static members (group.instance.id). One is closed (static members don't send
/// LeaveGroup) and restarted with the same instance id within session.timeout.ms: the group
/// must not rebalance, so the other member sees no revoke/assign and keeps its partitions,
/// and the restarted member gets its old partitions back.
#[tokio::test(flavor = "multi_thread")]
async fn static_member_restart_does_not_rebalance() {
    let broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    let (topic, group) = ("static-t", "g-static");
    common::create_topic(&bs, topic, 4, &[]).await;
    tokio::task::spawn_blocking(move || static_membership(&bs, topic, group))
        .await
        .unwrap();
}

fn static_member(bs: &str, group: &str, topic: &str, id: &'static str, name: &str) -> Member {
    let extra = [
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "500"),
        ("group.instance.id", id),
        ("partition.assignment.strategy", "range"),
    ];
    Member::start(MemberSpec {
        name,
        bootstrap: bs,
        group,
        topics: &[topic],
        extra: &extra,
        max_rate: None,
        seen: None,
    })
}

fn static_membership(bs: &str, topic: &str, group: &str) {
    let s1 = static_member(bs, group, topic, "static-1", "s1");
    let s2 = static_member(bs, group, topic, "static-2", "s2");
    let both_steady = |s1: &Member, s2: &Member| {
        let (a1, a2) = (s1.state.assignment(), s2.state.assignment());
        a1.len() == 2 && a2.len() == 2 && a1.is_disjoint(&a2)
    };
    wait_until(
        Duration::from_secs(30),
        || {
            format!(
                "two static members with 2 partitions each:\n{}\n{}",
                s1.state.describe(),
                s2.state.describe()
            )
        },
        || both_steady(&s1, &s2),
    );
    // Let the group settle (a few heartbeats), then snapshot.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        both_steady(&s1, &s2),
        "{}\n{}",
        s1.state.describe(),
        s2.state.describe()
    );
    let s1_parts = s1.state.assignment();
    let s2_parts = s2.state.assignment();
    let s2_assigns = s2.state.assign_calls.load(Ordering::SeqCst);
    let s2_revokes = s2.state.revoke_calls.load(Ordering::SeqCst);
    let s2_rebalances = s2.state.stats_rebalance_cnt.load(Ordering::SeqCst);
    assert!(
        s2_rebalances >= 1,
        "statistics report s2's rebalance count (got {s2_rebalances})"
    );
    let before = describe_group(bs, group);
    assert_eq!(before.state, "Stable", "{before:?}");
    assert_eq!(before.members.len(), 2, "{before:?}");
    let s2_member = before
        .members
        .iter()
        .find(|m| m.client_id == "s2")
        .unwrap_or_else(|| panic!("s2 in {before:?}"))
        .clone();
    assert_eq!(
        s2_member.assignment,
        s2_parts.iter().cloned().collect::<Vec<_>>(),
        "DescribeGroups shows s2's assignment"
    );

    // Close s1: a static member does not leave, so the group keeps both members.
    let t_closed = Instant::now();
    s1.stop();
    let during = describe_group(bs, group);
    assert_eq!(
        during.members.len(),
        2,
        "static member kept after close: {during:?}"
    );
    assert_eq!(during.state, "Stable", "{during:?}");

    // Restart it with the same group.instance.id, well within session.timeout.ms (10 s).
    let s1b = static_member(bs, group, topic, "static-1", "s1");
    wait_until(
        Duration::from_secs(20),
        || {
            format!(
                "restarted s1 gets its partitions back: {}",
                s1b.state.describe()
            )
        },
        || !s1b.state.assignment().is_empty(),
    );
    assert!(
        t_closed.elapsed() < Duration::from_secs(10),
        "the restart took longer than the session timeout ({:?}); the test cannot judge",
        t_closed.elapsed()
    );
    assert_eq!(
        s1b.state.assignment(),
        s1_parts,
        "restarted static member gets its old partitions"
    );
    // Several of s2's heartbeats go by: a rebalance would show up as revoke/assign callbacks.
    std::thread::sleep(Duration::from_secs(3));
    let s2d = s2.state.describe();
    assert_eq!(
        s2.state.assign_calls.load(Ordering::SeqCst),
        s2_assigns,
        "s2 assign callbacks: {s2d}"
    );
    assert_eq!(
        s2.state.revoke_calls.load(Ordering::SeqCst),
        s2_revokes,
        "s2 revoke callbacks: {s2d}"
    );
    assert_eq!(
        s2.state.assignment(),
        s2_parts,
        "s2 assignment untouched: {s2d}"
    );
    assert_eq!(
        s2.state.stats_rebalance_cnt.load(Ordering::SeqCst),
        s2_rebalances,
        "librdkafka's rebalance count for s2: {s2d}"
    );
    assert_eq!(
        s1b.state.assign_calls.load(Ordering::SeqCst),
        1,
        "{}",
        s1b.state.describe()
    );
    assert_eq!(
        s1b.state.revoke_calls.load(Ordering::SeqCst),
        0,
        "{}",
        s1b.state.describe()
    );
    let after = describe_group(bs, group);
    assert_eq!(after.state, "Stable", "{after:?}");
    assert_eq!(after.members.len(), 2, "{after:?}");
    assert!(
        after.members.contains(&s2_member),
        "s2 unchanged in {after:?} (was {s2_member:?})"
    );
    let s1_member = after
        .members
        .iter()
        .find(|m| m.client_id == "s1")
        .expect("s1 listed");
    assert_eq!(
        s1_member.assignment,
        s1_parts.iter().cloned().collect::<Vec<_>>()
    );
    for m in [&s2, &s1b] {
        assert!(m.state.errors().is_empty(), "{}", m.state.describe());
    }

    // Now s1 goes away for good (again no LeaveGroup): nothing happens until its session
    // times out (10 s), then the group rebalances and s2 takes over all four partitions.
    let t_gone = Instant::now();
    s1b.stop();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        s2.state.assignment(),
        s2_parts,
        "5 s after a static member closed (session.timeout.ms=10000) nothing moved: {}",
        s2.state.describe()
    );
    let all: BTreeSet<(String, i32)> = (0..4).map(|p| (topic.to_string(), p)).collect();
    wait_until(
        Duration::from_secs(25),
        || {
            format!(
                "s2 takes over after s1's session expires: {}",
                s2.state.describe()
            )
        },
        || s2.state.assignment() == all,
    );
    eprintln!(
        "s2 owned all partitions {:?} after s1 closed for good",
        t_gone.elapsed()
    );
    let g = describe_group(bs, group);
    assert_eq!(g.members.len(), 1, "expired static member removed: {g:?}");
    assert_eq!(g.members[0].id, s2_member.id, "{g:?}");
    let st = s2.stop();
    assert!(st.errors().is_empty(), "{}", st.describe());
}

/// After a graceful broker restart: committed offsets are intact, the group is listed and
/// described (Empty); with an active member it is Stable and DeleteGroups refuses with
/// NON_EMPTY_GROUP; once empty, DeleteGroups succeeds and the offsets are gone.
#[tokio::test(flavor = "multi_thread")]
async fn group_state_after_restart_and_delete() {
    let mut broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    let (topic, group) = ("admin-t", "g-admin");
    common::create_topic(&bs, topic, 3, &[]).await;
    let bs2 = bs.clone();
    let (ends, p1) = tokio::task::spawn_blocking(move || {
        let ends = produce_indexed(&bs2, topic, 3, 3_000);
        let (p1, c) = resume_and_commit(
            &bs2,
            group,
            topic,
            &BTreeMap::new(),
            &ends,
            1_500,
            CLASSIC_FAST,
        );
        drop(c);
        (ends, p1)
    })
    .await
    .unwrap();
    // Partitions the first consumer did not reach have no commit; the active member below
    // reads the rest.
    let rest = 3_000 - p1.values().sum::<i64>() as usize;

    let st = broker.stop_graceful();
    assert!(st.success(), "graceful stop: {st}");
    broker.restart();
    let bs = broker.bootstrap();

    let bs2 = bs.clone();
    let m = tokio::task::spawn_blocking(move || {
        // Offsets intact.
        assert_committed(&bs2, group, topic, 3, &p1, "after a graceful restart");
        // Listed, and described as an empty consumer group.
        let all = list_groups(&bs2, None).expect("list groups");
        assert!(
            all.iter().any(|g| g.name == group),
            "{group} listed after restart: {all:?}"
        );
        let g = describe_group(&bs2, group);
        assert_eq!(g.state, "Empty", "{g:?}");
        assert_eq!(g.protocol_type, "consumer", "{g:?}");
        assert!(g.members.is_empty(), "{g:?}");

        // An active member: Stable, one member owning all three partitions.
        let m = Member::start(MemberSpec {
            name: "active",
            bootstrap: &bs2,
            group,
            topics: &[topic],
            extra: CLASSIC_FAST,
            max_rate: None,
            seen: None,
        });
        wait_until(
            Duration::from_secs(30),
            || m.state.describe(),
            || m.state.assignment().len() == 3 && m.state.consumed.load(Ordering::SeqCst) == rest,
        );
        let g = describe_group(&bs2, group);
        assert_eq!(g.state, "Stable", "{g:?}");
        assert_eq!(g.protocol_type, "consumer", "{g:?}");
        assert_eq!(
            g.protocol, "range",
            "librdkafka's first default assignor: {g:?}"
        );
        assert_eq!(g.members.len(), 1, "{g:?}");
        assert_eq!(g.members[0].client_id, "active", "{g:?}");
        let want: Vec<(String, i32)> = (0..3).map(|p| (topic.to_string(), p)).collect();
        assert_eq!(g.members[0].assignment, want, "{g:?}");
        m
    })
    .await
    .unwrap();

    let admin = common::admin(&bs);
    let res = admin
        .delete_groups(&[group], &common::admin_opts())
        .await
        .expect("DeleteGroups request");
    assert_eq!(
        res,
        vec![Err((group.to_string(), RDKafkaErrorCode::NonEmptyGroup))],
        "deleting a group with an active member"
    );
    let bs2 = bs.clone();
    tokio::task::spawn_blocking(move || {
        let st = m.stop();
        assert!(st.errors().is_empty(), "{}", st.describe());
        // The member committed its processed positions (the high watermarks) on close.
        assert_committed(&bs2, group, topic, 3, &ends, "after the member closed");
    })
    .await
    .unwrap();
    let res = admin
        .delete_groups(&[group], &common::admin_opts())
        .await
        .expect("DeleteGroups request");
    assert_eq!(res, vec![Ok(group.to_string())], "deleting the empty group");
    let bs2 = bs.clone();
    tokio::task::spawn_blocking(move || {
        let c = committed(&bs2, group, topic, 3);
        for p in 0..3 {
            assert_eq!(
                c[&p],
                Offset::Invalid,
                "{topic}/{p} committed offset after delete: {c:?}"
            );
        }
        let all = list_groups(&bs2, None).expect("list groups");
        assert!(
            !all.iter().any(|g| g.name == group),
            "{group} still listed after delete: {all:?}"
        );
    })
    .await
    .unwrap();
    let res = admin
        .delete_groups(&[group], &common::admin_opts())
        .await
        .expect("DeleteGroups request");
    assert_eq!(
        res,
        vec![Err((group.to_string(), RDKafkaErrorCode::GroupIdNotFound))],
        "deleting a group that no longer exists"
    );
}

// ---------------------------------------------------------------------------------------------
// kcat -G
// ---------------------------------------------------------------------------------------------

const KCAT_TIMEOUT: Duration = Duration::from_secs(60);

/// Run kcat with `args`, killing it after KCAT_TIMEOUT; returns stdout, panics with stderr if
/// it fails or times out.
fn kcat(args: &[&str]) -> String {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kcat (is it installed? scripts/test installs it)");
    let mut sout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = sout.read_to_end(&mut v);
        v
    });
    let mut serr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = serr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + KCAT_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait kcat") {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap();
    let err = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    match status {
        None => panic!("kcat {args:?} ran over {KCAT_TIMEOUT:?} and was killed; stderr:\n{err}"),
        Some(st) if !st.success() => panic!("kcat {args:?} failed ({st}); stderr:\n{err}"),
        Some(_) => String::from_utf8(out).expect("kcat output is UTF-8"),
    }
}

/// `kcat -G group topic -e` reads everything; a second run of the same group reads only the
/// records produced since (kcat's auto-commit on close is honoured).
#[tokio::test(flavor = "multi_thread")]
async fn kcat_balanced_consumer_resumes_from_commits() {
    let broker = Broker::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    let (topic, group) = ("kcat-g", "g-kcat");
    common::create_topic(&bs, topic, 3, &[]).await;
    tokio::task::spawn_blocking(move || {
        let run = || {
            let out = kcat(&[
                "-b",
                &bs,
                "-G",
                group,
                topic,
                "-e",
                "-q",
                "-f",
                "%p %o %s\n",
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=500",
            ]);
            let mut got = BTreeSet::new();
            for line in out.lines() {
                let mut it = line.splitn(3, ' ');
                let p: i32 = it.next().unwrap().parse().expect("partition");
                let o: i64 = it.next().unwrap().parse().expect("offset");
                let v = it.next().unwrap_or("");
                assert_eq!(
                    v.as_bytes(),
                    &common::groups::payload_for(p, o)[..],
                    "value of {p}@{o}"
                );
                assert!(got.insert((p, o)), "kcat delivered {p}@{o} twice");
            }
            got
        };
        let ends1 = produce_indexed(&bs, topic, 3, 3_000);
        let first = run();
        let want1: BTreeSet<(i32, i64)> = ends1
            .iter()
            .flat_map(|(p, e)| (0..*e).map(move |o| (*p, o)))
            .collect();
        assert_eq!(first.len(), 3_000, "first kcat -G run reads everything");
        assert_eq!(first, want1);
        assert_committed(&bs, group, topic, 3, &ends1, "after the first kcat run");

        let ends2 = produce_indexed(&bs, topic, 3, 600);
        let second = run();
        let want2: BTreeSet<(i32, i64)> = ends2
            .iter()
            .flat_map(|(p, e)| (ends1[p]..*e).map(move |o| (*p, o)))
            .collect();
        assert_eq!(
            second, want2,
            "second kcat -G run reads only the new records"
        );
        assert_committed(&bs, group, topic, 3, &ends2, "after the second kcat run");
    })
    .await
    .unwrap();
}
