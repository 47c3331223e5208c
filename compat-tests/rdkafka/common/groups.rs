//! Consumer-group test helpers shared by the classic-protocol and KIP-848 group tests:
//! a fast indexed producer, an exactly-once "seen" tracker, group members that run on their
//! own threads with a rebalance-aware context (commit what was processed when partitions are
//! revoked and on close), and a verifying consumer that checks a group resumes exactly at its
//! committed offsets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{client_config, watermarks, Broker};

/// Broker flags every group test wants: no initial rebalance delay, fast KIP-848 heartbeats.
pub const GROUP_BROKER_ARGS: &[&str] = &[
    "--set",
    "group.initial.rebalance.delay.ms=0",
    "--set",
    "group.consumer.heartbeat.interval.ms=500",
];

/// Classic-protocol client settings for fast rebalances (broker minimum session is 6000 ms).
pub const CLASSIC_FAST: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "500"),
];

/// KIP-848 consumer: session and heartbeat are broker-side, not set here.
pub const KIP848: &[(&str, &str)] = &[("group.protocol", "consumer")];

/// The 100-byte value of the record at `offset` in `partition` (self-describing, checkable).
pub fn payload_for(partition: i32, offset: i64) -> Vec<u8> {
    let mut v = format!("p{partition:04}-o{offset:010}-").into_bytes();
    v.resize(100, b'.');
    v
}

// ---------------------------------------------------------------------------------------------
// Producing
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct CountingCtx {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for CountingCtx {}

impl ProducerContext for CountingCtx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut f = self.first_error.lock().unwrap();
                if f.is_none() {
                    *f = Some(e.to_string());
                }
            }
        }
    }
}

/// Append `n` records to `topic` with an idempotent acks=all producer: record i goes to
/// partition i % partitions, and each value is `payload_for(partition, offset)` where offset is
/// the partition's high watermark before producing plus its index there (idempotence keeps
/// per-partition order). Asserts every record was acknowledged and the watermarks moved by
/// exactly that much. Returns the new high watermarks.
pub fn produce_indexed(bs: &str, topic: &str, partitions: i32, n: u64) -> BTreeMap<i32, i64> {
    let before: BTreeMap<i32, i64> = (0..partitions)
        .map(|p| (p, watermarks(bs, topic, p).1))
        .collect();
    let mut cfg = client_config(bs);
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "10")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "60000");
    let producer: BaseProducer<CountingCtx> = cfg
        .create_with_context(CountingCtx::default())
        .expect("create BaseProducer");
    let mut next = before.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..n {
        let p = (i % partitions as u64) as i32;
        let off = next[&p];
        let value = payload_for(p, off);
        let mut rec = BaseRecord::<(), [u8]>::to(topic)
            .partition(p)
            .payload(&value[..]);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    assert!(
                        Instant::now() < deadline,
                        "producing {n} records took over 60 s"
                    );
                    rec = r;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("produce to {topic}/{p} failed: {e}"),
            }
        }
        *next.get_mut(&p).unwrap() += 1;
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush producer within 60 s");
    let ctx = producer.context();
    assert_eq!(
        ctx.failed.load(Ordering::Relaxed),
        0,
        "failed deliveries (first: {:?})",
        ctx.first_error.lock().unwrap()
    );
    assert_eq!(ctx.ok.load(Ordering::Relaxed), n, "acknowledged deliveries");
    for p in 0..partitions {
        assert_eq!(
            watermarks(bs, topic, p).1,
            next[&p],
            "{topic}/{p}: high watermark after producing"
        );
    }
    next
}

// ---------------------------------------------------------------------------------------------
// Exactly-once bookkeeping
// ---------------------------------------------------------------------------------------------

/// Counts deliveries of every (partition, offset) in [0, end) across all members.
pub struct Seen {
    topic: String,
    cells: Vec<Vec<AtomicU32>>,
    total: AtomicUsize,
    dups: AtomicUsize,
    problems: Mutex<Vec<String>>,
}

impl Seen {
    pub fn new(topic: &str, ends: &BTreeMap<i32, i64>) -> Arc<Seen> {
        let parts = ends.keys().max().map(|p| p + 1).unwrap_or(0);
        let cells = (0..parts)
            .map(|p| {
                (0..ends.get(&p).copied().unwrap_or(0))
                    .map(|_| AtomicU32::new(0))
                    .collect()
            })
            .collect();
        Arc::new(Seen {
            topic: topic.to_string(),
            cells,
            total: AtomicUsize::new(0),
            dups: AtomicUsize::new(0),
            problems: Mutex::new(Vec::new()),
        })
    }

    fn problem(&self, s: String) {
        let mut p = self.problems.lock().unwrap();
        if p.len() < 50 {
            p.push(s);
        }
    }

    pub fn record(&self, member: &str, topic: &str, p: i32, off: i64, payload: Option<&[u8]>) {
        if topic != self.topic {
            self.problem(format!(
                "{member}: record from unexpected topic {topic}/{p}@{off}"
            ));
            return;
        }
        let Some(cell) = self
            .cells
            .get(p as usize)
            .and_then(|v| v.get(usize::try_from(off).ok()?))
        else {
            self.problem(format!(
                "{member}: offset {p}@{off} outside the produced range"
            ));
            return;
        };
        if payload != Some(&payload_for(p, off)[..]) {
            self.problem(format!(
                "{member}: {p}@{off} has the wrong value {:?}",
                payload.map(String::from_utf8_lossy)
            ));
        }
        if cell.fetch_add(1, Ordering::SeqCst) == 0 {
            self.total.fetch_add(1, Ordering::SeqCst);
        } else {
            self.dups.fetch_add(1, Ordering::SeqCst);
            self.problem(format!("{member}: {p}@{off} delivered again (duplicate)"));
        }
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    pub fn dups(&self) -> usize {
        self.dups.load(Ordering::SeqCst)
    }

    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    /// Per partition: how many distinct offsets were seen, and the first missing one.
    pub fn summary(&self) -> String {
        self.cells
            .iter()
            .enumerate()
            .map(|(p, v)| {
                let got = v.iter().filter(|c| c.load(Ordering::SeqCst) > 0).count();
                let miss = v.iter().position(|c| c.load(Ordering::SeqCst) == 0);
                format!("p{p}: {got}/{} first missing {miss:?}", v.len())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Panic unless every (partition, offset) was seen exactly once.
    pub fn assert_exactly_once(&self, expected_total: usize) {
        let problems = self.problems();
        assert!(
            problems.is_empty() && self.dups() == 0,
            "{} duplicate deliveries; problems (first 50): {problems:#?}\n{}",
            self.dups(),
            self.summary()
        );
        assert_eq!(
            self.total(),
            expected_total,
            "distinct records seen; {}",
            self.summary()
        );
        for (p, v) in self.cells.iter().enumerate() {
            for (o, c) in v.iter().enumerate() {
                assert_eq!(c.load(Ordering::SeqCst), 1, "{p}@{o} delivery count");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Group members
// ---------------------------------------------------------------------------------------------

/// What a member's context records; shared with the test thread.
#[derive(Default)]
pub struct MemberState {
    pub name: String,
    /// Next offset to commit per (topic, partition): last processed offset + 1.
    processed: Mutex<HashMap<(String, i32), i64>>,
    /// Current assignment as seen through the rebalance callbacks.
    assigned: Mutex<BTreeSet<(String, i32)>>,
    pub assign_calls: AtomicUsize,
    pub revoke_calls: AtomicUsize,
    pub lost_calls: AtomicUsize,
    /// Sync commits that succeeded (revoke + close).
    pub commits_ok: AtomicUsize,
    /// Everything that went wrong (commit errors, rebalance errors, consumer errors).
    errors: Mutex<Vec<String>>,
    /// Set once the final positions are committed and members start closing: commits racing
    /// the rebalances that the closes themselves cause may then fail with
    /// REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION, exactly as they would against Kafka.
    teardown: AtomicBool,
    /// Set once this member's own close commit is done (see `commit_processed`).
    closing: AtomicBool,
    teardown_errors: Mutex<Vec<String>>,
    /// Asks the member thread to commit what it processed now (answered via `final_commit_done`).
    final_commit_wanted: AtomicBool,
    final_commit_done: AtomicBool,
    /// Every rebalance callback, in order (for failure messages).
    events: Mutex<Vec<String>>,
    /// librdkafka's cgrp.rebalance_cnt from the latest statistics (-1: none yet).
    pub stats_rebalance_cnt: AtomicI64,
    pub stats_state: Mutex<String>,
    pub consumed: AtomicUsize,
    started: Mutex<Option<Instant>>,
}

impl MemberState {
    pub fn assignment(&self) -> BTreeSet<(String, i32)> {
        self.assigned.lock().unwrap().clone()
    }
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
    fn error(&self, s: String) {
        if self.teardown.load(Ordering::SeqCst) {
            self.teardown_errors.lock().unwrap().push(s);
        } else {
            self.errors.lock().unwrap().push(s);
        }
    }
    fn event(&self, s: String) {
        let t = self
            .started
            .lock()
            .unwrap()
            .map(|t| t.elapsed().as_millis())
            .unwrap_or(0);
        self.events.lock().unwrap().push(format!("+{t}ms {s}"));
    }
    pub fn describe(&self) -> String {
        format!(
            "{}: consumed {}, assignment {:?}, events {:?}, errors {:?}",
            self.name,
            self.consumed.load(Ordering::SeqCst),
            self.assignment(),
            self.events(),
            self.errors()
        )
    }
}

/// Consumer context: on revoke, synchronously commit what was processed of the revoked
/// partitions (the default rebalance then does the (incremental_)unassign); on assign,
/// remember the assignment. Records statistics' rebalance count.
pub struct MemberCtx(pub Arc<MemberState>);

impl ClientContext for MemberCtx {
    fn stats(&self, s: Statistics) {
        if let Some(cg) = s.cgrp {
            self.0
                .stats_rebalance_cnt
                .store(cg.rebalance_cnt, Ordering::SeqCst);
            *self.0.stats_state.lock().unwrap() = format!("{}/{}", cg.state, cg.join_state);
        }
    }
}

fn tpl_list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// Synchronously commit the processed positions of `parts` (all processed if None).
fn commit_processed(
    c: &BaseConsumer<MemberCtx>,
    st: &MemberState,
    parts: Option<&[(String, i32)]>,
    why: &str,
) {
    let mut tpl = TopicPartitionList::new();
    {
        let processed = st.processed.lock().unwrap();
        for ((t, p), next) in processed.iter() {
            if parts.is_none_or(|ps| ps.iter().any(|(pt, pp)| pt == t && pp == p)) {
                tpl.add_partition_offset(t, *p, Offset::Offset(*next))
                    .expect("add partition offset");
            }
        }
    }
    if tpl.count() == 0 {
        return;
    }
    match c.commit(&tpl, CommitMode::Sync) {
        Ok(()) => {
            st.commits_ok.fetch_add(1, Ordering::SeqCst);
            st.event(format!("{why}: committed {:?}", commit_desc(&tpl)));
        }
        // Closing: the "close" commit already stored these positions; the revoke commit that
        // librdkafka's close runs after it can race its own LeaveGroup, and a member that has
        // left gets UNKNOWN_MEMBER_ID (from Kafka too).
        Err(e) if st.closing.load(Ordering::SeqCst) => st.event(format!(
            "{why}: sync commit of {:?} after the close commit failed: {e}",
            commit_desc(&tpl)
        )),
        Err(e) => st.error(format!(
            "{why}: sync commit of {:?} failed: {e}",
            commit_desc(&tpl)
        )),
    }
}

fn commit_desc(tpl: &TopicPartitionList) -> Vec<String> {
    tpl.elements()
        .iter()
        .map(|e| format!("{}/{}@{:?}", e.topic(), e.partition(), e.offset()))
        .collect()
}

impl ConsumerContext for MemberCtx {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        let st = &self.0;
        match r {
            Rebalance::Revoke(tpl) => {
                st.revoke_calls.fetch_add(1, Ordering::SeqCst);
                let parts = tpl_list(tpl);
                let lost = c.assignment_lost();
                st.event(format!(
                    "revoke {parts:?}{}",
                    if lost { " (LOST)" } else { "" }
                ));
                if lost {
                    st.lost_calls.fetch_add(1, Ordering::SeqCst);
                    st.error(format!("assignment lost: {parts:?}"));
                } else {
                    commit_processed(c, st, Some(&parts), "revoke");
                }
                let mut processed = st.processed.lock().unwrap();
                let mut assigned = st.assigned.lock().unwrap();
                for tp in &parts {
                    processed.remove(tp);
                    assigned.remove(tp);
                }
            }
            Rebalance::Assign(tpl) => {
                st.assign_calls.fetch_add(1, Ordering::SeqCst);
                let parts = tpl_list(tpl);
                st.event(format!("assign {parts:?}"));
                st.assigned.lock().unwrap().extend(parts);
            }
            Rebalance::Error(e) => {
                st.event(format!("rebalance error {e}"));
                st.error(format!("rebalance error: {e}"));
            }
        }
    }
}

/// A group member running on its own thread.
pub struct Member {
    pub state: Arc<MemberState>,
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

pub struct MemberSpec<'a> {
    pub name: &'a str,
    pub bootstrap: &'a str,
    pub group: &'a str,
    /// Topic names or "^regex" patterns.
    pub topics: &'a [&'a str],
    pub extra: &'a [(&'a str, &'a str)],
    /// Records to process per second at most (None: unthrottled).
    pub max_rate: Option<u32>,
    pub seen: Option<Arc<Seen>>,
}

pub fn group_consumer_config(
    bs: &str,
    group: &str,
    name: &str,
    extra: &[(&str, &str)],
) -> ClientConfig {
    let mut cfg = client_config(bs);
    cfg.set("client.id", name)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set("statistics.interval.ms", "250");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg
}

impl Member {
    pub fn start(spec: MemberSpec<'_>) -> Member {
        let state = Arc::new(MemberState {
            name: spec.name.to_string(),
            stats_rebalance_cnt: AtomicI64::new(-1),
            started: Mutex::new(Some(Instant::now())),
            ..Default::default()
        });
        let cfg = group_consumer_config(spec.bootstrap, spec.group, spec.name, spec.extra);
        let consumer: BaseConsumer<MemberCtx> = cfg
            .create_with_context(MemberCtx(state.clone()))
            .unwrap_or_else(|e| panic!("create group consumer {}: {e}", spec.name));
        consumer
            .subscribe(spec.topics)
            .unwrap_or_else(|e| panic!("{} subscribe: {e}", spec.name));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let st = state.clone();
        let stop2 = stop.clone();
        let seen = spec.seen.clone();
        let name = spec.name.to_string();
        let max_rate = spec.max_rate;
        let handle = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let started = Instant::now();
                let mut n: u64 = 0;
                while !stop2.load(Ordering::SeqCst) {
                    if st.final_commit_wanted.swap(false, Ordering::SeqCst) {
                        commit_processed(&consumer, &st, None, "final");
                        st.final_commit_done.store(true, Ordering::SeqCst);
                    }
                    match consumer.poll(Duration::from_millis(100)) {
                        None => {}
                        Some(Err(e)) => st.error(format!("consumer error: {e}")),
                        Some(Ok(m)) => {
                            let (t, p, o) = (m.topic().to_string(), m.partition(), m.offset());
                            if let Some(seen) = &seen {
                                seen.record(&name, &t, p, o, m.payload());
                            }
                            st.processed.lock().unwrap().insert((t, p), o + 1);
                            st.consumed.fetch_add(1, Ordering::SeqCst);
                            n += 1;
                            if let Some(rate) = max_rate {
                                // Stay at or under `rate` records/s since start.
                                let due = Duration::from_secs_f64(n as f64 / rate as f64);
                                let el = started.elapsed();
                                if due > el + Duration::from_millis(20) {
                                    std::thread::sleep(due - el);
                                }
                            }
                        }
                    }
                }
                // Close: commit everything processed, then close (the close's revoke commits
                // again whatever is still assigned, which is the same positions).
                commit_processed(&consumer, &st, None, "close");
                st.closing.store(true, Ordering::SeqCst);
                drop(consumer);
                st.event("closed".into());
                let _ = tx.send(());
            })
            .expect("spawn member thread");
        Member {
            state,
            stop,
            done,
            handle: Some(handle),
        }
    }

    /// Commits everything processed so far from the member's own thread, while the group is
    /// stable, and waits for it (bounded: 30 s).
    pub fn commit_now(&self) {
        self.state.final_commit_done.store(false, Ordering::SeqCst);
        self.state.final_commit_wanted.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.state.final_commit_done.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "member {} did not commit within 30 s: {}",
                self.state.name,
                self.state.describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Commit and close (bounded: panics if closing takes over 30 s).
    pub fn stop(mut self) -> Arc<MemberState> {
        self.stop.store(true, Ordering::SeqCst);
        match self.done.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => {
                self.handle.take().unwrap().join().expect("member thread");
            }
            Err(_) => panic!(
                "member {} did not close within 30 s: {}",
                self.state.name,
                self.state.describe()
            ),
        }
        self.state.clone()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // On panic paths: ask the thread to stop but don't wait for it.
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Wait until `f` holds, polling every 50 ms; panic with `what()` after `timeout`.
pub fn wait_until(timeout: Duration, what: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting: {}", what());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Committed offsets of `group` for partitions 0..partitions of `topic`, read with a
/// non-member (OffsetFetch). Missing commits come back as Offset::Invalid.
pub fn committed(bs: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, Offset> {
    let c: BaseConsumer = group_consumer_config(bs, group, "committed-reader", &[])
        .set("statistics.interval.ms", "0")
        .create()
        .expect("create reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("committed offsets of {group} failed: {e}"));
    got.elements()
        .iter()
        .map(|e| {
            if let Err(err) = e.error() {
                panic!(
                    "committed offset of {group} {topic}/{}: {err}",
                    e.partition()
                );
            }
            (e.partition(), e.offset())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: exactly once while members join and leave
// ---------------------------------------------------------------------------------------------

/// 12 partitions, `n` records, members join staggered, two leave midway and another joins;
/// every record is processed exactly once and the final committed offsets are the high
/// watermarks. `extra` selects the protocol / assignor.
pub fn exactly_once_with_churn(
    bs: &str,
    topic: &str,
    group: &str,
    partitions: i32,
    n: u64,
    extra: &[(&str, &str)],
) {
    let t0 = Instant::now();
    let ends = produce_indexed(bs, topic, partitions, n);
    eprintln!("[{group}] produced {n} records in {:?}", t0.elapsed());
    let seen = Seen::new(topic, &ends);
    let topics = [topic];
    // Per-member rate cap, so membership changes happen while there is work left.
    let rate = Some(6_000);
    let start = |name: &str| {
        Member::start(MemberSpec {
            name,
            bootstrap: bs,
            group,
            topics: &topics,
            extra,
            max_rate: rate,
            seen: Some(seen.clone()),
        })
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let members: Mutex<Vec<Arc<MemberState>>> = Mutex::new(Vec::new());
    let progress = || {
        format!(
            "seen {} of {n} distinct, {} dups; {}\nmembers:\n{}",
            seen.total(),
            seen.dups(),
            seen.summary(),
            members
                .lock()
                .unwrap()
                .iter()
                .map(|m| m.describe())
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    let wait_total = |target: usize| {
        let left = deadline.saturating_duration_since(Instant::now());
        wait_until(
            left,
            || format!("for {target} records; {}", progress()),
            || seen.total() >= target,
        );
        eprintln!("[{group}] {target} records after {:?}", t0.elapsed());
    };
    let frac = |f: f64| (n as f64 * f) as usize;

    let mut live: Vec<Member> = Vec::new();
    let add = |live: &mut Vec<Member>, name: &str| {
        let m = start(name);
        members.lock().unwrap().push(m.state.clone());
        live.push(m);
    };
    add(&mut live, "m1");
    wait_total(frac(0.05));
    add(&mut live, "m2");
    wait_total(frac(0.15));
    add(&mut live, "m3");
    wait_total(frac(0.25));
    add(&mut live, "m4");
    wait_total(frac(0.40));
    // m2 leaves.
    let m2 = live.remove(1);
    m2.stop();
    eprintln!("[{group}] m2 closed");
    wait_total(frac(0.55));
    // m3 leaves.
    let m3 = live.remove(1);
    m3.stop();
    eprintln!("[{group}] m3 closed");
    wait_total(frac(0.65));
    add(&mut live, "m5");
    wait_total(n as usize);
    // Give stray duplicates a moment to show up, commit every member's final positions while
    // the group is stable, then close everyone.
    std::thread::sleep(Duration::from_millis(500));
    for m in &live {
        m.commit_now();
    }
    for m in &live {
        m.state.teardown.store(true, Ordering::SeqCst);
    }
    for m in live.drain(..) {
        m.stop();
    }
    eprintln!("[{group}] all consumed and closed after {:?}", t0.elapsed());

    for m in members.lock().unwrap().iter() {
        eprintln!(
            "[{group}] {}: consumed {}, {} assigns, {} revokes, {} sync commits",
            m.name,
            m.consumed.load(Ordering::SeqCst),
            m.assign_calls.load(Ordering::SeqCst),
            m.revoke_calls.load(Ordering::SeqCst),
            m.commits_ok.load(Ordering::SeqCst)
        );
        if std::env::var_os("SLUICE_TEST_GROUP_EVENTS").is_some() {
            eprintln!("{}", m.describe());
        }
        assert!(m.errors().is_empty(), "member errors: {}", m.describe());
    }
    seen.assert_exactly_once(n as usize);
    // Every member that joined got partitions at some point.
    for m in members.lock().unwrap().iter() {
        assert!(
            m.assign_calls.load(Ordering::SeqCst) > 0,
            "member never got an assignment: {}",
            m.describe()
        );
    }
    // Everyone left: the group is still listed, and (classic protocol) described as Empty.
    let groups = list_groups(bs, None).expect("list groups");
    assert!(
        groups.iter().any(|g| g.name == group),
        "{group} listed: {groups:?}"
    );
    if !extra.contains(&("group.protocol", "consumer")) {
        let g = describe_group(bs, group);
        assert_eq!(g.state, "Empty", "{g:?}");
        assert!(g.members.is_empty(), "{g:?}");
    }
    // Commit-on-revoke/close left the group's committed offsets at the end of every partition.
    let c = committed(bs, group, topic, partitions);
    for (p, end) in &ends {
        assert_eq!(
            c[p],
            Offset::Offset(*end),
            "committed offset of {topic}/{p} at the end"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: a group resumes exactly at its committed offsets
// ---------------------------------------------------------------------------------------------

/// One subscribing consumer of `group` reads `topic` and checks that each partition's first
/// record is at `start[p]` (0 where absent: auto.offset.reset=earliest) and offsets are
/// contiguous. Stops after `stop_after` records (or at the high watermarks `ends`), commits
/// the processed positions synchronously and returns them merged into `start` together with
/// the still-open consumer (the caller closes it, or not).
pub fn resume_and_commit(
    bs: &str,
    group: &str,
    topic: &str,
    start: &BTreeMap<i32, i64>,
    ends: &BTreeMap<i32, i64>,
    stop_after: usize,
    extra: &[(&str, &str)],
) -> (BTreeMap<i32, i64>, BaseConsumer) {
    let c: BaseConsumer = group_consumer_config(bs, group, "resumer", extra)
        .set("statistics.interval.ms", "0")
        .create()
        .expect("create consumer");
    c.subscribe(&[topic]).expect("subscribe");
    let remaining: usize = ends
        .iter()
        .map(|(p, e)| (e - start.get(p).copied().unwrap_or(0)) as usize)
        .sum();
    let want = stop_after.min(remaining);
    let mut pos: BTreeMap<i32, i64> = BTreeMap::new();
    let mut got = 0usize;
    let deadline = Instant::now() + Duration::from_secs(40);
    while got < want {
        assert!(
            Instant::now() < deadline,
            "group {group}: consumed {got} of {want} records in 40 s; positions {pos:?}, start {start:?}"
        );
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => panic!("group {group}: consumer error: {e}"),
            Some(Ok(m)) => {
                let (p, o) = (m.partition(), m.offset());
                let expect = pos
                    .get(&p)
                    .copied()
                    .unwrap_or_else(|| start.get(&p).copied().unwrap_or(0));
                assert_eq!(
                    o,
                    expect,
                    "group {group}: partition {p} delivered offset {o}, expected {expect} \
                     (committed start {:?}; {})",
                    start.get(&p),
                    if pos.contains_key(&p) {
                        "gap or repeat"
                    } else {
                        "first record after (re)join"
                    }
                );
                assert_eq!(
                    m.payload(),
                    Some(&payload_for(p, o)[..]),
                    "value of {p}@{o}"
                );
                pos.insert(p, o + 1);
                got += 1;
            }
        }
    }
    let mut tpl = TopicPartitionList::new();
    for (p, next) in &pos {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*next))
            .unwrap();
    }
    if tpl.count() > 0 {
        c.commit(&tpl, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("group {group}: sync commit {pos:?} failed: {e}"));
    }
    let mut merged = start.clone();
    merged.extend(pos);
    (merged, c)
}

/// Consume part, commit, close; a new consumer starts exactly at the committed offsets. Then
/// across a graceful broker restart, and across a kill -9 right after an acknowledged
/// synchronous commit; finally the rest is read and the commits end at the high watermarks.
/// `topic` has 3 partitions holding `ends` records (produced with `produce_indexed`).
pub fn committed_offsets_scenario(
    broker: &mut Broker,
    topic: &str,
    group: &str,
    ends: &BTreeMap<i32, i64>,
    extra: &[(&str, &str)],
) {
    let bs = broker.bootstrap();
    // 1. Nothing committed yet: starts at the beginning; consume 4000, commit, close.
    let (p1, c) = resume_and_commit(&bs, group, topic, &BTreeMap::new(), ends, 4_000, extra);
    drop(c);
    assert_committed(&bs, group, topic, 3, &p1, "after the first consumer closed");

    // 2. A new consumer resumes exactly there; consume 9000 more, commit, close.
    let (p2, c) = resume_and_commit(&bs, group, topic, &p1, ends, 9_000, extra);
    drop(c);
    assert_committed(
        &bs,
        group,
        topic,
        3,
        &p2,
        "after the second consumer closed",
    );

    // 3. Graceful broker restart: the commits survive and a new member resumes at them.
    let st = broker.stop_graceful();
    assert!(st.success(), "graceful stop: {st}");
    broker.restart();
    let bs = broker.bootstrap();
    assert_committed(&bs, group, topic, 3, &p2, "after a graceful restart");
    let (p3, c) = resume_and_commit(&bs, group, topic, &p2, ends, 7_000, extra);
    // The sync commit was acknowledged: kill -9 now, before the consumer closes (its close
    // would commit again and leave the group, giving the broker time it must not need).
    broker.kill9();
    std::thread::spawn(move || drop(c)); // its broker is gone; don't wait for its close
    broker.restart();
    let bs = broker.bootstrap();
    assert_committed(
        &bs,
        group,
        topic,
        3,
        &p3,
        "after kill -9 following an acknowledged commit",
    );

    // 4. After the crash the group resumes at the committed offsets and reads the rest.
    let total: i64 = ends.values().sum();
    let (p4, c) = resume_and_commit(&bs, group, topic, &p3, ends, total as usize, extra);
    drop(c);
    assert_eq!(&p4, ends, "read everything up to the high watermarks");
    assert_committed(&bs, group, topic, 3, ends, "at the end");
}

/// Assert the group's committed offsets are exactly `expect` (Invalid where absent).
pub fn assert_committed(
    bs: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    expect: &BTreeMap<i32, i64>,
    when: &str,
) {
    let c = committed(bs, group, topic, partitions);
    for p in 0..partitions {
        let want = expect
            .get(&p)
            .map(|o| Offset::Offset(*o))
            .unwrap_or(Offset::Invalid);
        assert_eq!(
            c[&p], want,
            "{when}: committed offset of {group} {topic}/{p} (all: {c:?})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Group listing / description (ListGroups + DescribeGroups through librdkafka)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    pub id: String,
    pub client_id: String,
    /// Decoded ConsumerProtocolAssignment: (topic, partition) pairs.
    pub assignment: Vec<(String, i32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub name: String,
    pub state: String,
    pub protocol: String,
    pub protocol_type: String,
    pub members: Vec<MemberSummary>,
}

/// Decode a classic consumer-protocol assignment (version, [topic, [partition]], user data).
pub fn decode_assignment(b: &[u8]) -> Vec<(String, i32)> {
    if b.is_empty() {
        return Vec::new();
    }
    let mut buf = Bytes::copy_from_slice(b);
    let version = buf.get_i16();
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
        .unwrap_or_else(|e| panic!("decode ConsumerProtocolAssignment v{version}: {e}"));
    let mut out: Vec<(String, i32)> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect();
    out.sort();
    out
}

/// `fetch_group_list` (all groups, or one group described) as owned summaries.
pub fn list_groups(
    bs: &str,
    group: Option<&str>,
) -> rdkafka::error::KafkaResult<Vec<GroupSummary>> {
    let c = super::consumer(bs, &[]);
    let list = c.fetch_group_list(group, Duration::from_secs(15))?;
    Ok(list
        .groups()
        .iter()
        .map(|g| GroupSummary {
            name: g.name().to_string(),
            state: g.state().to_string(),
            protocol: g.protocol().to_string(),
            protocol_type: g.protocol_type().to_string(),
            members: g
                .members()
                .iter()
                .map(|m| MemberSummary {
                    id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    assignment: decode_assignment(m.assignment().unwrap_or(&[])),
                })
                .collect(),
        })
        .collect())
}

/// The description of one group (panics unless exactly one entry comes back).
pub fn describe_group(bs: &str, group: &str) -> GroupSummary {
    let gs = list_groups(bs, Some(group)).unwrap_or_else(|e| panic!("describe group {group}: {e}"));
    let g: Vec<&GroupSummary> = gs.iter().filter(|g| g.name == group).collect();
    assert_eq!(g.len(), 1, "one entry for {group} in {gs:?}");
    g[0].clone()
}
