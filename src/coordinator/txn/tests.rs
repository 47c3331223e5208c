//! The coordinator's state machine against Kafka's behaviour, through real state-log files.

use super::*;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

const TV0: TransactionVersion = TransactionVersion::TV_0;
const TV2: TransactionVersion = TransactionVersion::TV_2;

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<AtomicI64>,
    next_producer_id: Arc<AtomicI64>,
    rt: tokio::runtime::Runtime,
    cfg: TxnConfig,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_config(TxnConfig::default())
    }

    fn with_config(cfg: TxnConfig) -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(AtomicI64::new(1_000)),
            next_producer_id: Arc::new(AtomicI64::new(1000)),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            cfg,
        }
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.path().join("__transaction_state-0")
    }

    fn open(&self) -> TxnCoordinator {
        let ids = self.next_producer_id.clone();
        let clock = self.clock.clone();
        TxnCoordinator::open(
            self.cfg.clone(),
            self.log_dir(),
            Flusher::start(),
            Arc::new(move || Ok(ids.fetch_add(1, Ordering::SeqCst))),
        )
        .unwrap()
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)))
    }

    fn set_now(&self, ms: i64) {
        self.clock.store(ms, Ordering::SeqCst);
    }

    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    fn init(&self, c: &TxnCoordinator, id: &str) -> Result<ProducerIdAndEpoch, E> {
        self.run(c.init_producer_id(id, 60_000, None)).result
    }

    fn add(
        &self,
        c: &TxnCoordinator,
        id: &str,
        pid: ProducerIdAndEpoch,
        parts: &[(&str, i32)],
        tv: TransactionVersion,
    ) -> Vec<i16> {
        let parts: Vec<TopicPartition> = parts.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        self.run(c.add_partitions(id, pid.producer_id, pid.epoch, &parts, false, tv))
            .into_iter()
            .map(|(_, code)| code)
            .collect()
    }

    fn end(
        &self,
        c: &TxnCoordinator,
        id: &str,
        pid: ProducerIdAndEpoch,
        result: TxnResult,
        tv: TransactionVersion,
    ) -> Result<EndTxnOutcome, E> {
        self.run(c.end_txn(id, pid.producer_id, pid.epoch, result, tv))
    }

    /// Writes `meta` straight into the transaction log, as a coordinator would have.
    fn seed(&self, meta: TxnMetadata) {
        let store = TxnStore::open(
            "__transaction_state",
            self.log_dir(),
            self.cfg.log_segment_bytes,
            Flusher::start(),
        )
        .unwrap();
        let end = store.append(&[TxnRecord::Txn(meta)]).unwrap();
        self.run(store.wait_durable(end)).unwrap();
        store.close();
    }
}

fn pe(producer_id: i64, epoch: i16) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch { producer_id, epoch }
}

fn seeded(id: &str, producer_id: i64, epoch: i16, state: TxnState) -> TxnMetadata {
    let mut m = TxnMetadata::new(id, producer_id, 60_000, 1_000);
    m.producer_epoch = epoch;
    m.state = state;
    if state == TxnState::Ongoing || state.is_prepare() {
        m.partitions.insert(("t".into(), 0));
        m.start_ms = 1_000;
    }
    m
}

fn close(c: TxnCoordinator) {
    c.close();
    drop(c);
}

#[test]
fn init_new_id_and_reinit_bumps_epoch() {
    let f = Fixture::new();
    let c = f.open();
    assert_eq!(f.init(&c, "tx"), Ok(pe(1000, 0)));
    assert_eq!(f.init(&c, "tx"), Ok(pe(1000, 1)));
    let d = c.describe("tx").unwrap();
    assert_eq!(
        (d.state, d.producer_epoch, d.timeout_ms),
        ("Empty", 1, 60_000)
    );
    assert_eq!(f.init(&c, "other"), Ok(pe(1001, 0)));
    assert_eq!(c.describe("missing"), Err(E::TransactionalIdNotFound));
    assert_eq!(c.describe(""), Err(E::InvalidRequest));
}

#[test]
fn invalid_timeout_and_empty_id() {
    let f = Fixture::new();
    let c = f.open();
    let init = |timeout| f.run(c.init_producer_id("tx", timeout, None)).result;
    assert_eq!(init(900_001), Err(E::InvalidTransactionTimeout));
    assert_eq!(init(0), Err(E::InvalidTransactionTimeout));
    assert_eq!(init(-5), Err(E::InvalidTransactionTimeout));
    assert_eq!(init(900_000), Ok(pe(1000, 0)));
    assert_eq!(
        f.run(c.init_producer_id("", 1000, None)).result,
        Err(E::InvalidRequest)
    );
}

#[test]
fn commit_lists_markers_then_completes() {
    let f = Fixture::new();
    let c = f.open();
    let p = f.init(&c, "tx").unwrap();
    f.set_now(5_000);
    assert_eq!(f.add(&c, "tx", p, &[("a", 0), ("b", 1)], TV0), vec![0, 0]);
    f.set_now(6_000);
    // Already in the transaction: answered without a write, the start stays.
    assert_eq!(f.add(&c, "tx", p, &[("a", 0)], TV0), vec![0]);
    let d = c.describe("tx").unwrap();
    assert_eq!((d.state, d.start_ms), ("Ongoing", 5_000));
    assert_eq!(d.partitions["a"], vec![0]);

    let out = f.end(&c, "tx", p, TxnResult::Commit, TV0).unwrap();
    assert_eq!((out.producer_id, out.producer_epoch), (-1, -1));
    let job = out.markers.unwrap();
    assert_eq!(
        job,
        MarkerJob {
            transactional_id: "tx".into(),
            producer_id: 1000,
            producer_epoch: 0,
            result: TxnResult::Commit,
            partitions: vec![("a".into(), 0), ("b".into(), 1)],
        }
    );
    assert_eq!(c.describe("tx").unwrap().state, "PrepareCommit");
    // While the markers are written everything else waits.
    assert_eq!(f.init(&c, "tx"), Err(E::ConcurrentTransactions));
    assert_eq!(
        f.add(&c, "tx", p, &[("c", 0)], TV0),
        vec![E::ConcurrentTransactions.code()]
    );
    assert_eq!(
        f.end(&c, "tx", p, TxnResult::Commit, TV0).unwrap_err(),
        E::ConcurrentTransactions
    );

    f.run(c.complete(&job)).unwrap();
    let m = c.metadata("tx").unwrap();
    assert_eq!(m.state, TxnState::CompleteCommit);
    assert!(m.partitions.is_empty());
    assert_eq!(f.run(c.complete(&job)), Err(E::InvalidTxnState));
    // The next transaction starts afresh.
    f.set_now(7_000);
    assert_eq!(f.add(&c, "tx", p, &[("c", 0)], TV0), vec![0]);
    assert_eq!(c.describe("tx").unwrap().start_ms, 7_000);
}

#[test]
fn abort_and_retried_end_txn_tv1() {
    let f = Fixture::new();
    let c = f.open();
    let p = f.init(&c, "tx").unwrap();
    // Nothing to end yet.
    assert_eq!(
        f.end(&c, "tx", p, TxnResult::Commit, TV0).unwrap_err(),
        E::InvalidTxnState
    );
    assert_eq!(
        f.end(&c, "tx", p, TxnResult::Abort, TV0).unwrap_err(),
        E::InvalidTxnState
    );
    f.add(&c, "tx", p, &[("a", 0)], TV0);
    assert_eq!(
        f.end(&c, "tx", pe(7, 0), TxnResult::Abort, TV0)
            .unwrap_err(),
        E::InvalidProducerIdMapping
    );
    assert_eq!(
        f.end(&c, "tx", pe(1000, 3), TxnResult::Abort, TV0)
            .unwrap_err(),
        E::ProducerFenced
    );
    assert_eq!(
        f.end(&c, "nope", p, TxnResult::Abort, TV0).unwrap_err(),
        E::InvalidProducerIdMapping
    );
    let job = f
        .end(&c, "tx", p, TxnResult::Abort, TV0)
        .unwrap()
        .markers
        .unwrap();
    assert_eq!((job.result, job.producer_epoch), (TxnResult::Abort, 0));
    f.run(c.complete(&job)).unwrap();
    assert_eq!(c.metadata("tx").unwrap().state, TxnState::CompleteAbort);
    // A retry of the same outcome is fine; the opposite one is not.
    let retry = f.end(&c, "tx", p, TxnResult::Abort, TV0).unwrap();
    assert!(retry.markers.is_none());
    assert_eq!(
        f.end(&c, "tx", p, TxnResult::Commit, TV0).unwrap_err(),
        E::InvalidTxnState
    );
}

#[test]
fn reinit_fences_an_ongoing_transaction() {
    let f = Fixture::new();
    let c = f.open();
    let old = f.init(&c, "tx").unwrap();
    f.add(&c, "tx", old, &[("a", 0)], TV0);
    let fenced = f.run(c.init_producer_id("tx", 60_000, None));
    assert_eq!(fenced.result, Err(E::ConcurrentTransactions));
    let job = fenced.markers.unwrap();
    // TV1: the abort is written with the bumped (fencing) epoch.
    assert_eq!((job.result, job.producer_epoch), (TxnResult::Abort, 1));
    assert_eq!(job.partitions, vec![("a".to_string(), 0)]);
    assert_eq!(c.describe("tx").unwrap().state, "PrepareAbort");
    // Until the markers are written the new producer retries.
    assert_eq!(f.init(&c, "tx"), Err(E::ConcurrentTransactions));
    f.run(c.complete(&job)).unwrap();
    // The old producer is fenced out.
    assert_eq!(
        f.add(&c, "tx", old, &[("b", 0)], TV0),
        vec![E::ProducerFenced.code()]
    );
    assert_eq!(
        f.end(&c, "tx", old, TxnResult::Commit, TV0).unwrap_err(),
        E::ProducerFenced
    );
    assert_eq!(f.init(&c, "tx"), Ok(pe(1000, 2)));
}

#[test]
fn tv2_fence_bumps_the_epoch_once() {
    let f = Fixture::with_config(TxnConfig {
        server_version: TV2,
        ..TxnConfig::default()
    });
    let c = f.open();
    let old = f.init(&c, "tx").unwrap();
    f.add(&c, "tx", old, &[("a", 0)], TV2);
    let fenced = f.run(c.init_producer_id("tx", 60_000, None));
    let job = fenced.markers.unwrap();
    assert_eq!(job.producer_epoch, 1, "KAFKA-19367: no double bump");
    f.run(c.complete(&job)).unwrap();
    assert_eq!(f.init(&c, "tx"), Ok(pe(1000, 2)));
}

#[test]
fn kip360_recovery_with_current_producer_id_and_epoch() {
    let f = Fixture::new();
    let c = f.open();
    let p = f.init(&c, "tx").unwrap();
    let init = |expected| {
        f.run(c.init_producer_id("tx", 60_000, Some(expected)))
            .result
    };
    // The producer bumps its own epoch after an abortable error.
    assert_eq!(init(p), Ok(pe(1000, 1)));
    // Retrying that request (the response was lost) gives the same epoch.
    assert_eq!(init(p), Ok(pe(1000, 1)));
    let m = c.metadata("tx").unwrap();
    assert_eq!((m.producer_epoch, m.last_producer_epoch), (1, 0));
    assert_eq!(init(pe(1000, 5)), Err(E::ProducerFenced));
    assert_eq!(init(pe(4242, 1)), Err(E::ProducerFenced));
    // A new producer (no expected epoch) fences the old one for good.
    assert_eq!(f.init(&c, "tx"), Ok(pe(1000, 2)));
    assert_eq!(init(pe(1000, 1)), Err(E::ProducerFenced));
    // On a freshly created id any producer id is accepted (UNKNOWN_PRODUCER_ID recovery).
    assert_eq!(
        f.run(c.init_producer_id("fresh", 60_000, Some(pe(77, 3))))
            .result,
        Ok(pe(1001, 0))
    );
}

#[test]
fn tv2_bumps_the_epoch_at_every_end() {
    let f = Fixture::new();
    let c = f.open();
    let p0 = f.init(&c, "tx").unwrap();
    f.add(&c, "tx", p0, &[("a", 0)], TV2);
    let out = f.end(&c, "tx", p0, TxnResult::Commit, TV2).unwrap();
    assert_eq!((out.producer_id, out.producer_epoch), (1000, 1));
    let job = out.markers.unwrap();
    // The markers carry the bumped epoch, fencing late writes of the ended transaction.
    assert_eq!(job.producer_epoch, 1);
    f.run(c.complete(&job)).unwrap();
    // A retry (old epoch) of the commit: OK with the new epoch; as an abort: invalid.
    let retry = f.end(&c, "tx", p0, TxnResult::Commit, TV2).unwrap();
    assert_eq!((retry.producer_epoch, retry.markers), (1, None));
    assert_eq!(
        f.end(&c, "tx", p0, TxnResult::Abort, TV2).unwrap_err(),
        E::InvalidTxnState
    );
    let p1 = pe(1000, 1);
    // Commit with the current epoch but no transaction: invalid.
    assert_eq!(
        f.end(&c, "tx", p1, TxnResult::Commit, TV2).unwrap_err(),
        E::InvalidTxnState
    );
    f.add(&c, "tx", p1, &[("a", 1)], TV2);
    let out = f.end(&c, "tx", p1, TxnResult::Abort, TV2).unwrap();
    assert_eq!(out.producer_epoch, 2);
    f.run(c.complete(&out.markers.unwrap())).unwrap();
    // Unsure whether a transaction is open, a TV2 client may abort anyway: an empty abort.
    let p2 = pe(1000, 2);
    let out = f.end(&c, "tx", p2, TxnResult::Abort, TV2).unwrap();
    let job = out.markers.unwrap();
    assert!(job.partitions.is_empty());
    assert_eq!((out.producer_epoch, job.producer_epoch), (3, 3));
    f.run(c.complete(&job)).unwrap();
    // An epoch from the future (or long past) is fenced.
    assert_eq!(
        f.end(&c, "tx", pe(1000, 9), TxnResult::Abort, TV2)
            .unwrap_err(),
        E::ProducerFenced
    );
}

#[test]
fn epoch_exhaustion_rotates_the_producer_id_on_init() {
    let f = Fixture::new();
    f.seed(seeded("tx", 7, i16::MAX - 2, TxnState::CompleteCommit));
    f.seed(seeded("kip360", 8, i16::MAX - 1, TxnState::CompleteAbort));
    let c = f.open();
    assert_eq!(f.init(&c, "tx"), Ok(pe(7, i16::MAX - 1)));
    // i16::MAX - 1 is exhausted: a new producer id at epoch 0.
    assert_eq!(f.init(&c, "tx"), Ok(pe(1000, 0)));
    assert_eq!(c.metadata("tx").unwrap().prev_producer_id, 7);

    // KIP-360 with the exhausted epoch rotates too, and a retry of it is recognised.
    let init = |expected| {
        f.run(c.init_producer_id("kip360", 60_000, Some(expected)))
            .result
    };
    assert_eq!(init(pe(8, i16::MAX - 1)), Ok(pe(1001, 0)));
    assert_eq!(init(pe(8, i16::MAX - 1)), Ok(pe(1001, 0)));
    let m = c.metadata("kip360").unwrap();
    assert_eq!(
        (m.last_producer_epoch, m.prev_producer_id),
        (i16::MAX - 1, 1001)
    );
    assert_eq!(init(pe(8, 3)), Err(E::ProducerFenced));
}

#[test]
fn epoch_exhaustion_rotates_the_producer_id_at_a_tv2_end() {
    let f = Fixture::new();
    let mut meta = seeded("tx", 7, i16::MAX - 1, TxnState::Ongoing);
    meta.client_version = TV2;
    f.seed(meta);
    let c = f.open();
    let old = pe(7, i16::MAX - 1);
    let out = f.end(&c, "tx", old, TxnResult::Commit, TV2).unwrap();
    // The client continues with the next producer id; the markers fence the old one at MAX.
    assert_eq!((out.producer_id, out.producer_epoch), (1000, 0));
    let job = out.markers.unwrap();
    assert_eq!((job.producer_id, job.producer_epoch), (7, i16::MAX));
    // The new id is already in use while the markers are written: retriable (KAFKA-18660).
    assert_eq!(
        f.add(&c, "tx", pe(1000, 0), &[("a", 0)], TV2),
        vec![E::ConcurrentTransactions.code()]
    );
    f.run(c.complete(&job)).unwrap();
    let m = c.metadata("tx").unwrap();
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.prev_producer_id),
        (1000, 0, 7)
    );
    // A retry on the old id after the overflow is recognised.
    let retry = f.end(&c, "tx", old, TxnResult::Commit, TV2).unwrap();
    assert_eq!((retry.producer_id, retry.producer_epoch), (1000, 0));
    assert!(retry.markers.is_none());
    assert_eq!(f.add(&c, "tx", pe(1000, 0), &[("a", 0)], TV2), vec![0]);
}

#[test]
fn timed_out_transactions_are_aborted_with_an_epoch_bump() {
    let f = Fixture::new();
    let c = f.open();
    let p = f.run(c.init_producer_id("slow", 100, None)).result.unwrap();
    let other = f.init(&c, "fast").unwrap();
    f.set_now(1_000);
    f.add(&c, "slow", p, &[("a", 0)], TV0);
    f.add(&c, "fast", other, &[("a", 1)], TV0);
    assert!(c.timed_out_transactions(1_100).is_empty());
    assert_eq!(
        c.timed_out_transactions(1_101),
        vec![TimedOutTxn {
            transactional_id: "slow".into(),
            producer_id: 1000,
            producer_epoch: 0,
        }]
    );
    let jobs = f.run(c.abort_timed_out(1_101));
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        (
            job.result,
            job.producer_epoch,
            job.transactional_id.as_str()
        ),
        (TxnResult::Abort, 1, "slow")
    );
    assert_eq!(c.describe("slow").unwrap().state, "PrepareAbort");
    // Markers in flight: not listed again.
    assert!(f
        .run(c.abort_timed_out(5_000))
        .iter()
        .all(|j| j.transactional_id != "slow"));
    f.run(c.complete(job)).unwrap();
    // The timed-out producer learns it was fenced.
    assert_eq!(
        f.end(&c, "slow", p, TxnResult::Commit, TV0).unwrap_err(),
        E::ProducerFenced
    );
    assert_eq!(
        f.run(c.init_producer_id("slow", 100, None)).result,
        Ok(pe(1000, 2))
    );
}

#[test]
fn idle_transactional_ids_expire() {
    let f = Fixture::with_config(TxnConfig {
        transactional_id_expiration_ms: 10_000,
        ..TxnConfig::default()
    });
    let c = f.open();
    f.set_now(0);
    f.init(&c, "idle").unwrap();
    let busy = f.init(&c, "busy").unwrap();
    f.add(&c, "busy", busy, &[("a", 0)], TV0);
    let done = f.init(&c, "done").unwrap();
    f.add(&c, "done", done, &[("a", 1)], TV0);
    let job = f
        .end(&c, "done", done, TxnResult::Commit, TV0)
        .unwrap()
        .markers
        .unwrap();
    f.run(c.complete(&job)).unwrap();
    assert_eq!(f.run(c.expire_transactional_ids(9_999)), 0);
    assert_eq!(f.run(c.expire_transactional_ids(10_000)), 2);
    assert_eq!(c.describe("idle"), Err(E::TransactionalIdNotFound));
    assert_eq!(c.describe("done"), Err(E::TransactionalIdNotFound));
    assert_eq!(c.describe("busy").unwrap().state, "Ongoing");
    // An expired id forgets its producer: requests with it are refused, a new init starts over.
    assert_eq!(
        f.add(&c, "idle", pe(1000, 0), &[("a", 0)], TV0),
        vec![E::InvalidProducerIdMapping.code()]
    );
    close(c);
    let c = f.open();
    assert!(c.metadata("idle").is_none());
    assert!(c.metadata("busy").is_some());
    assert_eq!(f.init(&c, "idle"), Ok(pe(1003, 0)));
}

#[test]
fn reopen_recovers_state_and_unfinished_markers() {
    let f = Fixture::new();
    let (committing, job) = {
        let c = f.open();
        let done = f.init(&c, "done").unwrap();
        f.add(&c, "done", done, &[("a", 0)], TV0);
        let j = f.end(&c, "done", done, TxnResult::Abort, TV0).unwrap();
        f.run(c.complete(&j.markers.unwrap())).unwrap();
        let p = f.init(&c, "committing").unwrap();
        f.add(&c, "committing", p, &[("a", 0), ("b", 2)], TV0);
        let out = f.end(&c, "committing", p, TxnResult::Commit, TV0).unwrap();
        // Crash before the markers were written.
        close(c);
        (p, out.markers.unwrap())
    };
    let c = f.open();
    assert_eq!(c.unfinished_markers(), vec![job.clone()]);
    assert_eq!(c.describe("committing").unwrap().state, "PrepareCommit");
    assert_eq!(c.describe("done").unwrap().state, "CompleteAbort");
    assert_eq!(f.init(&c, "committing"), Err(E::ConcurrentTransactions));
    assert_eq!(
        f.end(&c, "committing", committing, TxnResult::Commit, TV0)
            .unwrap_err(),
        E::ConcurrentTransactions
    );
    f.run(c.complete(&job)).unwrap();
    assert!(c.unfinished_markers().is_empty());
    // The producer id allocator is not reused for known ids.
    assert_eq!(f.init(&c, "done"), Ok(pe(1000, 1)));
    close(c);
    let c = f.open();
    assert_eq!(c.describe("committing").unwrap().state, "CompleteCommit");
    assert!(c.unfinished_markers().is_empty());
    assert_eq!(f.init(&c, "committing"), Ok(pe(1001, 1)));
    // Compaction keeps the live state.
    c.compact_if_needed();
    close(c);
    let c = f.open();
    assert_eq!(c.metadata("committing").unwrap().producer_epoch, 1);
}

#[test]
fn verify_only_checks_membership() {
    let f = Fixture::new();
    let c = f.open();
    let p = f.init(&c, "tx").unwrap();
    f.add(&c, "tx", p, &[("a", 0)], TV0);
    let verify = |pid: ProducerIdAndEpoch| {
        let parts = vec![("a".to_string(), 0), ("a".to_string(), 9)];
        f.run(c.add_partitions("tx", pid.producer_id, pid.epoch, &parts, true, TV2))
            .into_iter()
            .map(|(_, code)| code)
            .collect::<Vec<i16>>()
    };
    assert_eq!(verify(p), vec![0, E::TransactionAbortable.code()]);
    assert_eq!(verify(pe(1000, 4)), vec![E::ProducerFenced.code(); 2]);
    assert_eq!(
        verify(pe(5, 0)),
        vec![E::InvalidProducerIdMapping.code(); 2]
    );
    // Verification writes nothing.
    assert_eq!(c.metadata("tx").unwrap().partitions.len(), 1);
}

#[test]
fn list_and_describe_filters() {
    let f = Fixture::new();
    let c = f.open();
    f.set_now(0);
    let a = f.init(&c, "a").unwrap();
    f.add(&c, "a", a, &[("t", 0)], TV0);
    f.set_now(1_000);
    let b = f.init(&c, "b").unwrap();
    f.add(&c, "b", b, &[("t", 1)], TV0);
    f.init(&c, "c").unwrap();
    f.set_now(3_000);
    let names = |l: TxnList| -> Vec<String> {
        l.transactions
            .into_iter()
            .map(|t| t.transactional_id)
            .collect()
    };
    assert_eq!(names(c.list(&[], &[], -1)), vec!["a", "b", "c"]);
    assert_eq!(names(c.list(&[], &["Ongoing".into()], -1)), vec!["a", "b"]);
    assert_eq!(names(c.list(&[b.producer_id], &[], -1)), vec!["b"]);
    // Running strictly longer than the duration (b has run exactly 2000 ms).
    assert_eq!(names(c.list(&[], &["Ongoing".into()], 2_000)), vec!["a"]);
    let unknown = c.list(&[], &["Nope".into()], -1);
    assert!(unknown.transactions.is_empty());
    assert_eq!(unknown.unknown_state_filters, vec!["Nope".to_string()]);
    let d = c.describe("a").unwrap();
    assert_eq!(
        (d.state, d.producer_id, d.producer_epoch, d.start_ms),
        ("Ongoing", 1000, 0, 0)
    );
    assert_eq!(c.describe("c").unwrap().start_ms, -1);
}

#[test]
fn empty_ids_are_invalid_requests() {
    let f = Fixture::new();
    let c = f.open();
    assert_eq!(
        f.add(&c, "", pe(1, 0), &[("a", 0)], TV0),
        vec![E::InvalidRequest.code()]
    );
    assert_eq!(
        f.end(&c, "", pe(1, 0), TxnResult::Commit, TV0).unwrap_err(),
        E::InvalidRequest
    );
    assert!(Path::new(&f.log_dir()).exists());
}

#[test]
fn tv2_late_commit_after_a_timeout_abort_is_invalid_txn_state() {
    // Kafka 4.4 (server TV2): the timeout abort bumps the epoch once; the producer's late
    // EndTxn v5 carries the epoch just below, a "retry" of an end that was an abort.
    let f = Fixture::with_config(TxnConfig {
        server_version: TV2,
        ..TxnConfig::default()
    });
    let c = f.open();
    let p = f.run(c.init_producer_id("late", 100, None)).result.unwrap();
    f.set_now(1_000);
    assert_eq!(f.add(&c, "late", p, &[("a", 0)], TV2), vec![0]);
    let jobs = f.run(c.abort_timed_out(1_101));
    assert_eq!(jobs.len(), 1);
    f.run(c.complete(&jobs[0])).unwrap();
    assert_eq!(
        f.end(&c, "late", p, TxnResult::Commit, TV2).unwrap_err(),
        E::InvalidTxnState
    );
}
