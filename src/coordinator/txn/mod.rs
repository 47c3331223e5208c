//! The transaction coordinator: every transactional.id of this broker, its producer id and
//! epoch, and the state of its current transaction, kept durable in the transaction log (a
//! `StateLog<TxnRecord>`, our `__transaction_state`). Kafka's semantics, from its
//! TransactionCoordinator / TransactionMetadata (4.x, with KIP-360 and KIP-890).
//!
//! Nothing counts before it is durable: an operation prepares the next metadata under the
//! id's lock, appends it and marks the transition pending, then waits for the fsync without
//! the lock, and only then makes it current. While a transition is pending every other
//! operation on the id answers CONCURRENT_TRANSACTIONS, as in Kafka.
//!
//! Ending a transaction is two steps, as in Kafka: `end_txn` makes PrepareCommit/PrepareAbort
//! durable and returns a [`MarkerJob`]; the caller writes the COMMIT/ABORT control batches
//! into every partition of the job, then calls [`TxnCoordinator::complete`] (-> Complete*).
//! Until then the transaction stays pending (Kafka sets the pending Complete* state right after
//! the Prepare* write). After a restart, [`TxnCoordinator::unfinished_markers`] lists the
//! transactions left in Prepare* so their markers get written (DESIGN invariant 9).

pub mod markers;
pub mod metadata;
pub mod store;

use crate::log::flush::Flusher;
use dashmap::DashMap;
use kafka_protocol::ResponseError as E;
pub use markers::{offsets_partition, MarkerDurable, MarkerSink, OFFSETS_TOPIC};
pub use metadata::{
    is_epoch_exhausted, TopicPartition, TransactionVersion, TxnMetadata, TxnState,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
pub use store::{TxnRecord, TxnStore};

/// Hands out producer ids never used before (ClusterMetadata::allocate_producer_id).
pub type ProducerIdSource = Arc<dyn Fn() -> anyhow::Result<i64> + Send + Sync>;
/// Wall-clock milliseconds; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Transaction settings under Kafka's names; defaults come from the config registry.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// transaction.max.timeout.ms
    pub max_timeout_ms: i32,
    /// transactional.id.expiration.ms
    pub transactional_id_expiration_ms: i64,
    /// transaction.abort.timed.out.transaction.cleanup.interval.ms
    pub abort_timed_out_interval_ms: u64,
    /// transaction.remove.expired.transaction.cleanup.interval.ms
    pub remove_expired_interval_ms: u64,
    /// transaction.state.log.segment.bytes
    pub log_segment_bytes: u64,
    /// transaction.partition.verification.enable: partition leaders ask the coordinator
    /// whether a transactional batch's partition is in the producer's transaction.
    pub partition_verification: bool,
    /// The finalized transaction.version feature: the protocol of aborts the coordinator
    /// starts itself (timeouts, fencing), and whether Produce v12+ adds partitions implicitly.
    pub server_version: TransactionVersion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnResult {
    Commit,
    Abort,
}

impl TxnResult {
    fn prepare_state(self) -> TxnState {
        match self {
            TxnResult::Commit => TxnState::PrepareCommit,
            TxnResult::Abort => TxnState::PrepareAbort,
        }
    }

    fn complete_state(self) -> TxnState {
        match self {
            TxnResult::Commit => TxnState::CompleteCommit,
            TxnResult::Abort => TxnState::CompleteAbort,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub epoch: i16,
}

/// Control batches the caller must write (one per partition, with this producer id and epoch),
/// then report with [`TxnCoordinator::complete`].
#[derive(Debug, Clone, PartialEq)]
pub struct MarkerJob {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub result: TxnResult,
    pub partitions: Vec<TopicPartition>,
}

impl MarkerJob {
    fn of(meta: &TxnMetadata) -> MarkerJob {
        MarkerJob {
            transactional_id: meta.transactional_id.clone(),
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            result: if meta.state == TxnState::PrepareCommit {
                TxnResult::Commit
            } else {
                TxnResult::Abort
            },
            partitions: meta.partitions.iter().cloned().collect(),
        }
    }
}

#[derive(Debug)]
pub struct InitProducerIdOutcome {
    pub result: Result<ProducerIdAndEpoch, E>,
    /// Set when the call fenced an Ongoing transaction: it was aborted (the client gets
    /// CONCURRENT_TRANSACTIONS and retries) and these markers must be written.
    pub markers: Option<MarkerJob>,
}

#[derive(Debug)]
pub struct EndTxnOutcome {
    /// What EndTxn v5+ (TV2) answers: the producer id and epoch for the next transaction.
    /// -1/-1 for TV0/TV1, as Kafka.
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// None when the request was a retry of an end that already completed.
    pub markers: Option<MarkerJob>,
}

/// An Ongoing transaction past its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOutTxn {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// DescribeTransactions for one id.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub state: &'static str,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: BTreeMap<String, Vec<i32>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: &'static str,
}

/// ListTransactions: the matches and the state filters Kafka does not know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnList {
    pub transactions: Vec<TxnListing>,
    pub unknown_state_filters: Vec<String>,
}

struct TxnEntry {
    meta: TxnMetadata,
    /// The state a written but not yet durable (or, for Complete*, not yet written) transition
    /// leads to: Kafka's pendingState.
    pending: Option<TxnState>,
    /// Expired while someone held a handle to it.
    removed: bool,
}

/// A transition appended to the log, waiting to become durable.
struct Staged {
    next: TxnMetadata,
    end: i64,
}

pub struct TxnCoordinator {
    cfg: TxnConfig,
    txns: DashMap<String, Arc<Mutex<TxnEntry>>>,
    store: TxnStore,
    producer_ids: ProducerIdSource,
    clock: Clock,
    /// Transactions completed (markers written) since start, for /metrics.
    committed: AtomicU64,
    aborted: AtomicU64,
}

fn lock(e: &Mutex<TxnEntry>) -> MutexGuard<'_, TxnEntry> {
    e.lock().unwrap_or_else(|p| p.into_inner())
}

/// Pending state of a transaction whose markers still have to be written.
fn markers_pending(state: TxnState) -> Option<TxnState> {
    match state {
        TxnState::PrepareCommit => Some(TxnState::CompleteCommit),
        TxnState::PrepareAbort => Some(TxnState::CompleteAbort),
        _ => None,
    }
}

enum InitStep {
    /// Empty/Complete*: the new epoch (or producer id) to answer once durable.
    Bump(Staged),
    /// Ongoing: the abort that fences the current producer.
    Fence(Staged),
}

impl TxnCoordinator {
    /// Opens the transaction log in `dir` and rebuilds every transactional.id from it.
    pub fn open(
        cfg: TxnConfig,
        dir: PathBuf,
        flusher: Flusher,
        producer_ids: ProducerIdSource,
    ) -> std::io::Result<Self> {
        let store = TxnStore::open("__transaction_state", dir, cfg.log_segment_bytes, flusher)?;
        let records = store.replay()?;
        let count = records.len();
        let mut latest: BTreeMap<String, TxnMetadata> = BTreeMap::new();
        for r in records {
            match r {
                TxnRecord::Txn(meta) => {
                    latest.insert(meta.transactional_id.clone(), meta);
                }
                TxnRecord::Removed { transactional_id } => {
                    latest.remove(&transactional_id);
                }
            }
        }
        let txns = DashMap::new();
        let mut unfinished = 0;
        for (id, meta) in latest {
            let pending = markers_pending(meta.state);
            unfinished += pending.is_some() as usize;
            txns.insert(
                id,
                Arc::new(Mutex::new(TxnEntry {
                    meta,
                    pending,
                    removed: false,
                })),
            );
        }
        tracing::info!(
            transactional_ids = txns.len(),
            unfinished,
            records = count,
            "loaded transactions"
        );
        Ok(TxnCoordinator {
            cfg,
            txns,
            store,
            producer_ids,
            clock: Arc::new(crate::log::now_ms),
            committed: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
        })
    }

    /// Replaces the wall clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &TxnConfig {
        &self.cfg
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    fn allocate_producer_id(&self) -> Result<i64, E> {
        (self.producer_ids)().map_err(|e| {
            tracing::error!(error = %e, "allocating a producer id failed");
            E::CoordinatorNotAvailable
        })
    }

    fn handle(&self, transactional_id: &str) -> Option<Arc<Mutex<TxnEntry>>> {
        self.txns.get(transactional_id).map(|h| h.clone())
    }

    /// Every entry, collected first so no map shard is held while an entry lock is awaited
    /// (expiration removes from the map after taking entry locks).
    fn handles(&self) -> Vec<Arc<Mutex<TxnEntry>>> {
        self.txns.iter().map(|e| e.value().clone()).collect()
    }

    /// The current (durable) metadata of an id.
    pub fn metadata(&self, transactional_id: &str) -> Option<TxnMetadata> {
        let handle = self.handle(transactional_id)?;
        let e = lock(&handle);
        (!e.removed).then(|| e.meta.clone())
    }

    /// Appends `next` and marks it pending. Called with the entry locked, so the log holds
    /// each id's transitions in the order they were decided.
    fn stage(&self, e: &mut TxnEntry, next: TxnMetadata) -> Result<Staged, E> {
        let end = self
            .store
            .append(&[TxnRecord::Txn(next.clone())])
            .map_err(|err| {
                tracing::error!(transactional_id = %next.transactional_id, error = %err.0,
                    "transaction state not stored");
                E::CoordinatorNotAvailable
            })?;
        e.pending = Some(next.state);
        Ok(Staged { next, end })
    }

    /// Waits (without the lock) until the staged record is durable, then makes it current and
    /// leaves `then_pending` pending. On failure the entry keeps its old state with
    /// `failed_pending` pending.
    async fn settle(
        &self,
        handle: &Arc<Mutex<TxnEntry>>,
        staged: Staged,
        then_pending: Option<TxnState>,
        failed_pending: Option<TxnState>,
    ) -> Result<TxnMetadata, E> {
        let durable = self.store.wait_durable(staged.end).await;
        let mut e = lock(handle);
        match durable {
            Ok(()) if e.pending == Some(staged.next.state) => {
                e.meta = staged.next.clone();
                e.pending = then_pending;
                Ok(staged.next)
            }
            Ok(()) => {
                tracing::error!(transactional_id = %staged.next.transactional_id,
                    "a pending transaction transition was lost");
                Err(E::UnknownServerError)
            }
            Err(err) => {
                tracing::error!(transactional_id = %staged.next.transactional_id, error = %err.0,
                    "transaction state not made durable");
                e.pending = failed_pending;
                Err(E::CoordinatorNotAvailable)
            }
        }
    }

    /// InitProducerId for a transactional producer (the handler serves a null id itself).
    /// `expected` is KIP-360's current producer id and epoch (None: -1/-1 in the request).
    pub async fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> InitProducerIdOutcome {
        let fail = |e: E| InitProducerIdOutcome {
            result: Err(e),
            markers: None,
        };
        if transactional_id.is_empty() {
            return fail(E::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.cfg.max_timeout_ms {
            return fail(E::InvalidTransactionTimeout);
        }
        let now = self.now();
        let (handle, step) = loop {
            let handle = match self.handle(transactional_id) {
                Some(h) => h,
                None => {
                    // Like Kafka, the new id's metadata (epoch -1) enters the cache before its
                    // first record is written; a racing creator's wins and this id is unused.
                    let producer_id = match self.allocate_producer_id() {
                        Ok(id) => id,
                        Err(e) => return fail(e),
                    };
                    let created = TxnMetadata::new(transactional_id, producer_id, timeout_ms, now);
                    self.txns
                        .entry(transactional_id.to_string())
                        .or_insert_with(|| {
                            Arc::new(Mutex::new(TxnEntry {
                                meta: created,
                                pending: None,
                                removed: false,
                            }))
                        })
                        .clone()
                }
            };
            let step = {
                let mut e = lock(&handle);
                if e.removed {
                    continue;
                }
                self.prepare_init(&mut e, timeout_ms, expected, now)
            };
            break (handle, step);
        };
        match step {
            Err(e) => fail(e),
            Ok(InitStep::Bump(staged)) => match self.settle(&handle, staged, None, None).await {
                Ok(meta) => InitProducerIdOutcome {
                    result: Ok(ProducerIdAndEpoch {
                        producer_id: meta.producer_id,
                        epoch: meta.producer_epoch,
                    }),
                    markers: None,
                },
                Err(e) => fail(e),
            },
            Ok(InitStep::Fence(staged)) => {
                match self
                    .settle(&handle, staged, Some(TxnState::CompleteAbort), None)
                    .await
                {
                    Ok(meta) => InitProducerIdOutcome {
                        result: Err(E::ConcurrentTransactions),
                        markers: Some(MarkerJob::of(&meta)),
                    },
                    Err(e) => fail(e),
                }
            }
        }
    }

    /// Kafka's prepareInitProducerIdTransit.
    fn prepare_init(
        &self,
        e: &mut TxnEntry,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        now: i64,
    ) -> Result<InitStep, E> {
        if e.pending.is_some() {
            return Err(E::ConcurrentTransactions);
        }
        let m = &e.meta;
        // A KIP-360 producer keeps its id unless: the metadata was just created (epoch -1), the
        // id is the current one (its epoch is checked by the bump), or it is the previous one
        // with an exhausted epoch (a retry of the bump that rotated the producer id).
        if let Some(exp) = expected {
            let known = m.producer_epoch == NO_PRODUCER_EPOCH
                || exp.producer_id == m.producer_id
                || (exp.producer_id == m.prev_producer_id && is_epoch_exhausted(exp.epoch));
            if !known {
                return Err(E::ProducerFenced);
            }
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(E::ConcurrentTransactions),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let next = if m.is_epoch_exhausted()
                    && expected.is_none_or(|x| x.epoch == m.producer_epoch)
                {
                    let producer_id = self.allocate_producer_id()?;
                    m.prepare_producer_id_rotation(
                        producer_id,
                        timeout_ms,
                        now,
                        expected.is_some(),
                    )?
                } else {
                    m.prepare_increment_epoch(timeout_ms, expected.map(|x| x.epoch), now)?
                };
                Ok(InitStep::Bump(self.stage(e, next)?))
            }
            TxnState::Ongoing => {
                // The fenced epoch is never answered: the client gets CONCURRENT_TRANSACTIONS and
                // retries, which bumps again (rotating the producer id if that exhausts it).
                let next = self.prepare_fence_abort(m, now)?;
                Ok(InitStep::Fence(self.stage(e, next)?))
            }
            TxnState::Dead | TxnState::PrepareEpochFence => {
                tracing::error!(transactional_id = %m.transactional_id, state = m.state.name(),
                    "a transactional id is in a state it never stays in");
                Err(E::UnknownServerError)
            }
        }
    }

    /// The abort the coordinator starts itself (fencing on InitProducerId, timeouts): Kafka's
    /// PrepareEpochFence followed by a non-client EndTxn(ABORT) at the server's TV.
    fn prepare_fence_abort(&self, m: &TxnMetadata, now: i64) -> Result<TxnMetadata, E> {
        let fenced_epoch = m.fence_epoch()?;
        let tv = self.cfg.server_version;
        if tv.supports_epoch_bump() {
            // TV2: the abort's own bump is the fence (KAFKA-19367: never bump twice); if it
            // exhausts the epoch the id rotates on completion (KAFKA-20090).
            let next_producer_id = if m.is_epoch_exhausted() {
                self.allocate_producer_id()?
            } else {
                NO_PRODUCER_ID
            };
            m.prepare_abort_or_commit(TxnState::PrepareAbort, tv, next_producer_id, now, false)
        } else {
            let fenced = TxnMetadata {
                producer_epoch: fenced_epoch,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                ..m.clone()
            };
            fenced.prepare_abort_or_commit(TxnState::PrepareAbort, tv, NO_PRODUCER_ID, now, false)
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn with the group's __consumer_offsets partition).
    /// `verify_only` (v4+ from partition leaders, KIP-890 part 1) only checks membership:
    /// NONE or TRANSACTION_ABORTABLE per partition. Returns a code per partition, in order.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        verify_only: bool,
        client_version: TransactionVersion,
    ) -> Vec<(TopicPartition, i16)> {
        let all = |code: i16| partitions.iter().map(|p| (p.clone(), code)).collect();
        if transactional_id.is_empty() {
            return all(E::InvalidRequest.code());
        }
        if verify_only {
            return match self.verify_partitions(transactional_id, producer_id, producer_epoch) {
                Ok(present) => partitions
                    .iter()
                    .map(|p| {
                        let code = if present.contains(p) {
                            0
                        } else {
                            E::TransactionAbortable.code()
                        };
                        (p.clone(), code)
                    })
                    .collect(),
                Err(e) => all(e.code()),
            };
        }
        let Some(handle) = self.handle(transactional_id) else {
            return all(E::InvalidProducerIdMapping.code());
        };
        let staged = {
            let mut e = lock(&handle);
            if e.removed {
                return all(E::InvalidProducerIdMapping.code());
            }
            let added: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
            // Pending first (KAFKA-18660): right after a TV2 end that rotated the producer id
            // the client already uses the new id while the markers are still being written.
            let decision = if e.pending.is_some() {
                Err(E::ConcurrentTransactions)
            } else if e.meta.producer_id != producer_id {
                Err(E::InvalidProducerIdMapping)
            } else if e.meta.producer_epoch != producer_epoch {
                Err(E::ProducerFenced)
            } else if e.meta.state.is_prepare() {
                Err(E::ConcurrentTransactions)
            } else if e.meta.state == TxnState::Ongoing && added.is_subset(&e.meta.partitions) {
                return all(0);
            } else {
                e.meta
                    .prepare_add_partitions(&added, self.now(), client_version)
                    .and_then(|next| self.stage(&mut e, next))
            };
            match decision {
                Ok(staged) => staged,
                Err(err) => return all(err.code()),
            }
        };
        match self.settle(&handle, staged, None, None).await {
            Ok(_) => all(0),
            Err(e) => all(e.code()),
        }
    }

    /// Whether `partition` is in the producer's ongoing transaction: a partition leader's
    /// check before appending a transactional batch (KIP-890 part 1). Err: the producer does
    /// not own the id (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED) or it is ending.
    pub fn in_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partition: &TopicPartition,
    ) -> Result<bool, E> {
        self.verify_partitions(transactional_id, producer_id, producer_epoch)
            .map(|partitions| partitions.contains(partition))
    }

    /// The partitions of the transaction, if the producer owns it (Kafka's
    /// handleVerifyPartitionsInTransaction; pending transitions are not checked).
    fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<BTreeSet<TopicPartition>, E> {
        let handle = self
            .handle(transactional_id)
            .ok_or(E::InvalidProducerIdMapping)?;
        let e = lock(&handle);
        if e.removed || e.meta.producer_id != producer_id {
            Err(E::InvalidProducerIdMapping)
        } else if e.meta.producer_epoch != producer_epoch {
            Err(E::ProducerFenced)
        } else if e.meta.state.is_prepare() {
            Err(E::ConcurrentTransactions)
        } else {
            Ok(e.meta.partitions.clone())
        }
    }

    /// EndTxn from a client: makes Prepare* durable and returns the markers to write. A retry of
    /// an end that already completed answers OK without markers; the opposite outcome answers
    /// INVALID_TXN_STATE.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
        client_version: TransactionVersion,
    ) -> Result<EndTxnOutcome, E> {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest);
        }
        let handle = self
            .handle(transactional_id)
            .ok_or(E::InvalidProducerIdMapping)?;
        let tv2 = client_version.supports_epoch_bump();
        let staged = {
            let mut e = lock(&handle);
            if e.removed {
                return Err(E::InvalidProducerIdMapping);
            }
            let decided = if tv2 {
                self.prepare_end_tv2(&e, producer_id, producer_epoch, result, client_version)?
            } else {
                self.prepare_end_tv1(&e, producer_id, producer_epoch, result)?
            };
            match decided {
                None => {
                    // A retry of a completed end.
                    let (pid, epoch) = if tv2 {
                        (e.meta.producer_id, e.meta.producer_epoch)
                    } else {
                        (NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
                    };
                    return Ok(EndTxnOutcome {
                        producer_id: pid,
                        producer_epoch: epoch,
                        markers: None,
                    });
                }
                Some(next) => self.stage(&mut e, next)?,
            }
        };
        let meta = self
            .settle(&handle, staged, Some(result.complete_state()), None)
            .await?;
        let (pid, epoch) = if !tv2 {
            (NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
        } else if meta.next_producer_id != NO_PRODUCER_ID {
            // The bump exhausted the epoch: the client continues with the next id at epoch 0
            // (KAFKA-18660), while the markers fence the old id at i16::MAX.
            (meta.next_producer_id, 0)
        } else {
            (meta.producer_id, meta.producer_epoch)
        };
        Ok(EndTxnOutcome {
            producer_id: pid,
            producer_epoch: epoch,
            markers: Some(MarkerJob::of(&meta)),
        })
    }

    /// Kafka's endTransactionWithTV1 for a client request: Some(next) to write, None for an
    /// already completed retry.
    fn prepare_end_tv1(
        &self,
        e: &TxnEntry,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
    ) -> Result<Option<TxnMetadata>, E> {
        let m = &e.meta;
        if m.producer_id != producer_id {
            return Err(E::InvalidProducerIdMapping);
        }
        if producer_epoch != m.producer_epoch {
            return Err(E::ProducerFenced);
        }
        if e.pending.is_some() {
            return Err(E::ConcurrentTransactions);
        }
        self.end_by_state(m, result, false, false, |state, _| {
            m.prepare_abort_or_commit(
                state,
                TransactionVersion::TV_0,
                NO_PRODUCER_ID,
                self.now(),
                false,
            )
        })
    }

    /// Kafka's TV2 endTransaction for a client request. The epoch was bumped by the previous
    /// end, so a retry carries the epoch just below the current one (or i16::MAX - 1 on the
    /// previous producer id when that end rotated it).
    fn prepare_end_tv2(
        &self,
        e: &TxnEntry,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
        client_version: TransactionVersion,
    ) -> Result<Option<TxnMetadata>, E> {
        let m = &e.meta;
        let retry_on_overflow = m.prev_producer_id == producer_id
            && producer_epoch == i16::MAX - 1
            && m.producer_epoch == 0;
        let retry_on_epoch_bump = m.producer_epoch as i32 == producer_epoch as i32 + 1;
        let valid_epoch = match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_epoch_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_epoch_bump || retry_on_overflow || producer_epoch == m.producer_epoch
            }
            _ => producer_epoch == m.producer_epoch,
        };
        if m.producer_id != producer_id && !retry_on_overflow {
            return Err(E::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(E::ProducerFenced);
        }
        if e.pending.is_some() {
            return Err(E::ConcurrentTransactions);
        }
        let is_retry = retry_on_epoch_bump || retry_on_overflow;
        self.end_by_state(m, result, true, is_retry, |state, no_partition_added| {
            let next_producer_id = if m.is_epoch_exhausted() {
                self.allocate_producer_id()?
            } else {
                NO_PRODUCER_ID
            };
            m.prepare_abort_or_commit(
                state,
                client_version,
                next_producer_id,
                self.now(),
                no_partition_added,
            )
        })
    }

    /// The state table of EndTxn, Kafka's for TV1 and TV2 ("retry": a TV2 request carrying
    /// the epoch the previous end bumped away from):
    ///
    /// | state          | commit                            | abort                            |
    /// |----------------|-----------------------------------|----------------------------------|
    /// | Ongoing        | PrepareCommit                     | PrepareAbort                     |
    /// | PrepareCommit  | CONCURRENT_TRANSACTIONS           | INVALID_TXN_STATE                |
    /// | PrepareAbort   | INVALID_TXN_STATE                 | CONCURRENT_TRANSACTIONS          |
    /// | CompleteCommit | TV1 or retry: OK, else INVALID    | TV2 not retry: PrepareAbort, else INVALID |
    /// | CompleteAbort  | INVALID_TXN_STATE                 | TV1 or retry: OK, TV2: PrepareAbort |
    /// | Empty          | INVALID_TXN_STATE                 | TV2: PrepareAbort, TV1: INVALID  |
    ///
    /// A TV2 client may abort when unsure whether a transaction is open: that writes an
    /// empty PrepareAbort, which bumps the epoch like any other end.
    fn end_by_state(
        &self,
        m: &TxnMetadata,
        result: TxnResult,
        tv2: bool,
        is_retry: bool,
        prepare: impl FnOnce(TxnState, bool) -> Result<TxnMetadata, E>,
    ) -> Result<Option<TxnMetadata>, E> {
        use TxnResult::{Abort, Commit};
        use TxnState::*;
        match (m.state, result) {
            (Ongoing, _) => prepare(result.prepare_state(), false).map(Some),
            (PrepareCommit, Commit) | (PrepareAbort, Abort) => Err(E::ConcurrentTransactions),
            (CompleteCommit, Commit) | (CompleteAbort, Abort) if !tv2 || is_retry => Ok(None),
            (Empty | CompleteCommit | CompleteAbort, Abort) if tv2 && !is_retry => {
                prepare(PrepareAbort, true).map(Some)
            }
            (Dead | PrepareEpochFence, _) => {
                tracing::error!(transactional_id = %m.transactional_id, state = m.state.name(),
                    "a transactional id is in a state it never stays in");
                Err(E::UnknownServerError)
            }
            _ => {
                tracing::warn!(transactional_id = %m.transactional_id, state = m.state.name(),
                    ?result, "EndTxn in a state that does not allow it");
                Err(E::InvalidTxnState)
            }
        }
    }

    /// Markers written for `job`: Prepare* -> Complete*. A failure leaves the transaction in
    /// Prepare* with its markers still pending; call again.
    pub async fn complete(&self, job: &MarkerJob) -> Result<(), E> {
        let handle = self
            .handle(&job.transactional_id)
            .ok_or(E::InvalidProducerIdMapping)?;
        let complete_state = job.result.complete_state();
        let staged = {
            let mut e = lock(&handle);
            let m = &e.meta;
            if e.removed
                || m.producer_id != job.producer_id
                || m.producer_epoch != job.producer_epoch
                || m.state != job.result.prepare_state()
                || e.pending != Some(complete_state)
            {
                tracing::error!(transactional_id = %job.transactional_id, state = m.state.name(),
                    "completing a transaction that is not waiting for its markers");
                return Err(E::InvalidTxnState);
            }
            let next = m.prepare_complete(self.now())?;
            // stage() keeps Complete* pending: nothing else may run in between.
            self.stage(&mut e, next)?
        };
        self.settle(&handle, staged, None, Some(complete_state))
            .await?;
        let completed = match job.result {
            TxnResult::Commit => &self.committed,
            TxnResult::Abort => &self.aborted,
        };
        completed.fetch_add(1, Relaxed);
        Ok(())
    }

    /// (committed, aborted): transactions completed since start.
    pub fn completed(&self) -> (u64, u64) {
        (self.committed.load(Relaxed), self.aborted.load(Relaxed))
    }

    /// Transactions open now (Ongoing, or ending: their markers not all written).
    pub fn ongoing(&self) -> usize {
        self.handles()
            .iter()
            .filter(|h| {
                let e = lock(h);
                !e.removed
                    && matches!(
                        e.meta.state,
                        TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
                    )
            })
            .count()
    }

    /// Every transaction left in Prepare* (after a restart): write their markers, then
    /// `complete` each. Call once after `open`, before serving.
    pub fn unfinished_markers(&self) -> Vec<MarkerJob> {
        let mut jobs: Vec<MarkerJob> = self
            .handles()
            .iter()
            .filter_map(|handle| {
                let e = lock(handle);
                (!e.removed && e.meta.state.is_prepare()).then(|| MarkerJob::of(&e.meta))
            })
            .collect();
        jobs.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        jobs
    }

    /// Ongoing transactions open longer than their timeout at `now_ms`.
    pub fn timed_out_transactions(&self, now_ms: i64) -> Vec<TimedOutTxn> {
        let mut out: Vec<TimedOutTxn> = self
            .handles()
            .iter()
            .filter_map(|handle| {
                let e = lock(handle);
                let m = &e.meta;
                (!e.removed
                    && e.pending.is_none()
                    && m.state == TxnState::Ongoing
                    && m.start_ms + (m.timeout_ms as i64) < now_ms)
                    .then(|| TimedOutTxn {
                        transactional_id: m.transactional_id.clone(),
                        producer_id: m.producer_id,
                        producer_epoch: m.producer_epoch,
                    })
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Kafka's abortTimedOutTransactions: fences the producer of every timed-out transaction
    /// (epoch bump) and aborts it. Returns the markers to write (then `complete` each).
    pub async fn abort_timed_out(&self, now_ms: i64) -> Vec<MarkerJob> {
        let mut jobs = Vec::new();
        for txn in self.timed_out_transactions(now_ms) {
            let Some(handle) = self.handle(&txn.transactional_id) else {
                continue;
            };
            let staged = {
                let mut e = lock(&handle);
                // Re-checked under the lock: the producer may have ended or been fenced since.
                if e.removed
                    || e.pending.is_some()
                    || e.meta.producer_id != txn.producer_id
                    || e.meta.state != TxnState::Ongoing
                {
                    continue;
                }
                match self
                    .prepare_fence_abort(&e.meta, now_ms)
                    .and_then(|next| self.stage(&mut e, next))
                {
                    Ok(staged) => staged,
                    Err(err) => {
                        tracing::warn!(transactional_id = %txn.transactional_id, error = ?err,
                            "aborting a timed-out transaction failed");
                        continue;
                    }
                }
            };
            if let Ok(meta) = self
                .settle(&handle, staged, Some(TxnState::CompleteAbort), None)
                .await
            {
                tracing::info!(transactional_id = %txn.transactional_id,
                    "aborting a transaction that exceeded its timeout");
                jobs.push(MarkerJob::of(&meta));
            }
        }
        jobs
    }

    /// transactional.id.expiration.ms: removes ids idle (Empty/Complete*, no pending
    /// transition) since `now_ms - expiration`. Returns how many were removed.
    pub async fn expire_transactional_ids(&self, now_ms: i64) -> usize {
        let cutoff = now_ms - self.cfg.transactional_id_expiration_ms;
        let mut expiring = Vec::new();
        for handle in self.handles() {
            let mut e = lock(&handle);
            if e.removed
                || e.pending.is_some()
                || !e.meta.state.is_expiration_allowed()
                || e.meta.last_update_ms > cutoff
                || e.meta.prepare_dead().is_err()
            {
                continue;
            }
            e.pending = Some(TxnState::Dead);
            let id = e.meta.transactional_id.clone();
            drop(e);
            expiring.push((id, handle));
        }
        if expiring.is_empty() {
            return 0;
        }
        let records: Vec<TxnRecord> = expiring
            .iter()
            .map(|(id, _)| TxnRecord::Removed {
                transactional_id: id.clone(),
            })
            .collect();
        let durable = match self.store.append(&records) {
            Ok(end) => self.store.wait_durable(end).await,
            Err(err) => Err(err),
        };
        if let Err(err) = &durable {
            tracing::error!(error = %err.0, "transactional id expiration not stored");
        }
        let mut removed = 0;
        for (id, handle) in expiring {
            let mut e = lock(&handle);
            if e.pending != Some(TxnState::Dead) {
                continue;
            }
            e.pending = None;
            if durable.is_ok() {
                // Holders of the handle see `removed` and look the id up again.
                e.removed = true;
                drop(e);
                self.txns.remove_if(&id, |_, h| Arc::ptr_eq(h, &handle));
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "expired transactional ids");
        }
        removed
    }

    /// DescribeTransactions for one id.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, E> {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest);
        }
        let handle = self
            .handle(transactional_id)
            .ok_or(E::TransactionalIdNotFound)?;
        let e = lock(&handle);
        let m = &e.meta;
        if e.removed || m.state == TxnState::Dead {
            return Err(E::TransactionalIdNotFound);
        }
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &m.partitions {
            partitions
                .entry(topic.clone())
                .or_default()
                .push(*partition);
        }
        Ok(TxnDescription {
            transactional_id: m.transactional_id.clone(),
            state: m.state.name(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            timeout_ms: m.timeout_ms,
            start_ms: m.start_ms,
            partitions,
        })
    }

    /// ListTransactions with Kafka's filters: producer ids, state names (exact; unknown names
    /// are reported and match nothing), and (v1, KIP-994) transactions running longer than
    /// `min_duration_ms` (-1: any).
    pub fn list(&self, producer_ids: &[i64], states: &[String], min_duration_ms: i64) -> TxnList {
        let now = self.now();
        let mut unknown_state_filters = Vec::new();
        let mut wanted_states = BTreeSet::new();
        for name in states {
            match TxnState::from_name(name) {
                Some(s) => {
                    wanted_states.insert(s);
                }
                None => unknown_state_filters.push(name.clone()),
            }
        }
        let mut transactions: Vec<TxnListing> = self
            .handles()
            .iter()
            .filter_map(|handle| {
                let e = lock(handle);
                let m = &e.meta;
                let include = !e.removed
                    && m.state != TxnState::Dead
                    && (producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                    && (states.is_empty() || wanted_states.contains(&m.state))
                    && (min_duration_ms < 0 || now - m.start_ms > min_duration_ms);
                include.then(|| TxnListing {
                    transactional_id: m.transactional_id.clone(),
                    producer_id: m.producer_id,
                    state: m.state.name(),
                })
            })
            .collect();
        transactions.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        TxnList {
            transactions,
            unknown_state_filters,
        }
    }

    /// Rewrites the transaction log once superseded records outweigh the live ones. Blocking.
    pub fn compact_if_needed(&self) {
        if self.store.wants_compaction(self.cfg.log_segment_bytes / 4) {
            if let Err(e) = self.store.compact() {
                tracing::error!(error = %e.0, "transaction log compaction failed");
            }
        }
    }

    pub fn close(&self) {
        self.store.close();
    }
}

#[cfg(test)]
mod tests;
