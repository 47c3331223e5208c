//! One partition: its segments, log start offset, watermarks and producer state. Appends
//! run under the partition's own lock; fsync happens on the flusher thread (`log::flush`).
//!
//! Offsets, lowest first: log start <= last stable offset <= high watermark <= durable offset
//! <= log end. The durable offset is what this broker has fsynced; the high watermark, what
//! consumers may read, never covers more (DESIGN.md invariant 5). On a single node the two are
//! equal. The last stable offset bounds read_committed consumers: the first offset of the
//! oldest transaction not yet decided by a marker below the high watermark (never below the
//! log start, never above the high watermark), and the high watermark itself while no
//! transaction is open, which is always the case until transactional appends are wired.
//!
//! One `State` behind one mutex; each concern is an `impl Partition` block in its own file:
//!
//! - `recovery`   opening after a clean shutdown or a crash
//! - `append`     append (client and transactional batches, markers), roll, group commit
//! - `durability` fsync, publishing the durable offset, page-cache bookkeeping
//! - `read`       fetch reads, lookups by timestamp, aborted transactions for read_committed
//! - `retention`  deleting old segments
//! - `compaction` what the log cleaner may clean, and swapping cleaned segments in
//! - `log_start`  a log start set by a client (DeleteRecords), persisted
//! - `tier`       what tiered storage may copy and already holds

mod append;
mod compaction;
mod durability;
mod log_start;
mod read;
mod recovery;
mod replica;
mod retention;
mod tier;
#[cfg(test)]
mod txn_tests;

use super::batch::BatchError;
use super::flush::Flusher;
use super::producer_state::{ProducerStates, SequenceError};
use super::segment::Segment;
use super::LogConfig;
use bytes::Bytes;
pub use compaction::{CleanableSegment, CompactionPlan};
pub use durability::{APPENDS_PER_FSYNC, FSYNC_SECONDS};
pub use log_start::LogStartError;
use recovery::Recovered;
pub use replica::UNDEFINED_EPOCH;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    /// Set when the topic uses LogAppendTime.
    pub log_append_time: Option<i64>,
    pub log_start_offset: i64,
    /// The batch was a retry of one already stored; nothing was written.
    pub duplicate: bool,
}

#[derive(Debug)]
pub enum AppendError {
    Batch(BatchError),
    TooLarge,
    /// A CreateTime timestamp outside message.timestamp.before/after.max.ms.
    InvalidTimestamp,
    Sequence(SequenceError),
    /// A transactional or control batch through an entry point that does not take it
    /// (`append` takes neither; `append_transactional` takes no control batch).
    Transactional,
    /// A non-transactional batch from a producer whose transaction is open (Kafka:
    /// INVALID_TXN_STATE).
    InvalidTxnState,
    /// A marker from a coordinator epoch older than the producer's last marker (Kafka:
    /// TRANSACTION_COORDINATOR_FENCED).
    CoordinatorFenced,
    Deleted,
    /// An earlier write or fsync failed; the partition takes no more writes (Kafka: log dir offline).
    Offline,
    Io(io::Error),
}

#[derive(Debug, Clone)]
pub enum ReadOutcome {
    Records(Bytes),
    OutOfRange,
    /// The offset is below the local log start but held by the tier.
    Remote,
}

#[derive(Debug, Clone, Copy)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    /// See `Durability::last_stable_offset`.
    pub last_stable_offset: i64,
    pub log_end: i64,
}

/// What waiters watch: acks=all producers wait for `durable_offset`, long-poll fetches wake on
/// any change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    /// Offsets below this are fsynced on this broker.
    pub durable_offset: i64,
    /// Offsets below this are visible to consumers. It only ever covers fsynced data; on a
    /// single node it is the durable offset.
    pub high_watermark: i64,
    /// Offsets below this hold no undecided transaction: the limit for read_committed.
    /// Kafka's: the first offset of the oldest transaction whose marker is not yet below the
    /// high watermark, else the high watermark.
    pub last_stable_offset: i64,
    /// Writes failed; nothing more will become durable.
    pub failed: bool,
}

struct State {
    segments: BTreeMap<i64, Segment>,
    /// First offset readable anywhere: the tier's start when it holds older data, never
    /// below `log_start_floor`.
    log_start: i64,
    /// The log start a client set (DeleteRecords), persisted; i64::MIN when none was.
    log_start_floor: i64,
    /// Offsets [start, end) copied to the tier and named by its manifest.
    remote: Option<(i64, i64)>,
    /// Offsets below this are visible to consumers; single node: everything fsynced (the
    /// durable offset).
    high_watermark: i64,
    /// Where the high watermark falls: (segment base offset, byte position in it).
    hw_segment: i64,
    hw_position: u64,
    producers: ProducerStates,
    config: LogConfig,
    /// Files written since the last fsync.
    unflushed: Vec<Arc<File>>,
    /// (segment base, position) up to which durable bytes were reported to the flusher.
    flushed_mark: (i64, u64),
    /// A segment file or producer snapshot was created since the directory was last fsynced.
    dir_dirty: bool,
    /// Base of the newest segment whose file is known to survive a crash (its directory was
    /// fsynced). Until a sealed segment's successor is, a crash could make the sealed one
    /// active again, so it is not offered to the tier.
    dir_synced_segment_base: i64,
    flush_queued: bool,
    /// Appends since the last flush took the unflushed files (for APPENDS_PER_FSYNC).
    appends_unflushed: u32,
    deleted: bool,
    failed: bool,
    /// Offsets below this were compacted by the cleaner at least once.
    first_dirty_offset: i64,
    /// What this broker has fsynced: (offset, segment base, position), where a follower's
    /// read stops.
    durable: (i64, i64, u64),
    /// Cluster mode: the high watermark follows the replicas (see `replica`).
    replicated: Option<replica::Replicated>,
    /// Leader epochs and their first offsets, oldest first (Kafka's leader-epoch cache).
    epochs: Vec<(i32, i64)>,
}

impl State {
    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a partition always has a segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a partition always has a segment")
    }
    fn log_end(&self) -> i64 {
        self.active().next_offset()
    }
    fn local_start(&self) -> i64 {
        *self
            .segments
            .keys()
            .next()
            .expect("a partition always has a segment")
    }
    /// Kafka's UnifiedLog.lastStableOffset: the first unstable offset (raised to the log
    /// start: retention may delete the start of an open transaction) when below the high
    /// watermark, else the high watermark. With no transaction open, the high watermark.
    fn last_stable_offset(&self) -> i64 {
        match self.producers.first_unstable_offset() {
            Some(first) => first.max(self.log_start).min(self.high_watermark),
            None => self.high_watermark,
        }
    }
    /// The log start follows the local segments, or the tier when it reaches further back,
    /// but never below what a client set.
    fn refresh_log_start(&mut self) {
        let local = self.local_start();
        self.log_start = match self.remote {
            Some((start, end)) if start < local && end >= local => start,
            _ => local,
        }
        .max(self.log_start_floor);
    }
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    dir: PathBuf,
    state: Mutex<State>,
    durability: watch::Sender<Durability>,
    /// Serializes flushes (flusher thread vs. shutdown) so the high watermark never passes an
    /// fsync still in progress.
    flush_lock: Mutex<()>,
    /// Serializes client moves of the log start (each writes its checkpoint).
    log_start_lock: Mutex<()>,
    flusher: Flusher,
    /// Written into every appended batch (its partition leader epoch field); set by whoever
    /// knows leadership.
    leader_epoch: AtomicI32,
    /// Cluster mode: this broker follows the partition (it copies the leader's log and leaves
    /// tiering to the leader).
    follower: AtomicBool,
}

impl Partition {
    /// Opens (or creates) the partition in `dir`, recovering the tail after a crash.
    pub fn open(
        topic: &str,
        index: i32,
        dir: PathBuf,
        config: LogConfig,
        flusher: Flusher,
    ) -> io::Result<Arc<Partition>> {
        let Recovered {
            segments,
            mut producers,
        } = recovery::recover(topic, index, &dir, &config)?;
        let log_start = *segments.keys().next().unwrap();
        let (hw_segment, hw_position, high_watermark) = {
            let a = segments.values().next_back().unwrap();
            (a.base_offset(), a.size(), a.next_offset())
        };
        // Recovery fsynced everything it kept: every marker found is below the high watermark.
        producers.on_high_watermark(high_watermark);
        // Never past the log end, even if recovery found less than the checkpoint promised.
        let log_start_floor =
            log_start::read_checkpoint(&dir)?.map_or(i64::MIN, |f| f.min(high_watermark));
        let mut state = State {
            segments,
            log_start,
            log_start_floor,
            remote: None,
            high_watermark,
            hw_segment,
            hw_position,
            producers,
            config,
            unflushed: Vec::new(),
            flushed_mark: (hw_segment, hw_position),
            dir_dirty: false,
            dir_synced_segment_base: hw_segment,
            flush_queued: false,
            appends_unflushed: 0,
            deleted: false,
            failed: false,
            first_dirty_offset: compaction::load_first_dirty(&dir),
            durable: (high_watermark, hw_segment, hw_position),
            replicated: None,
            epochs: replica::read_epochs(&dir)
                .into_iter()
                .filter(|(_, start)| *start < high_watermark)
                .collect(),
        };
        state.refresh_log_start();
        let (durability, _) = watch::channel(Durability {
            durable_offset: high_watermark,
            high_watermark,
            last_stable_offset: state.last_stable_offset(),
            failed: false,
        });
        let partition = Arc::new(Partition {
            topic: topic.to_string(),
            index,
            leader_epoch: AtomicI32::new(0),
            follower: AtomicBool::new(false),
            dir,
            state: Mutex::new(state),
            durability,
            flush_lock: Mutex::new(()),
            log_start_lock: Mutex::new(()),
            flusher,
        });
        partition.drop_segments_below_log_start();
        Ok(partition)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Appends undo partial writes or take the partition offline, so a poisoned lock
        // still guards consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The leader epoch stamped on batches appended from now on.
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Relaxed);
    }

    /// The leader epoch stamped on appends now.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Relaxed)
    }

    /// Cluster mode: whether this broker follows the partition rather than leading it.
    pub fn set_follower(&self, follower: bool) {
        self.follower.store(follower, Ordering::Relaxed);
    }

    pub fn is_follower(&self) -> bool {
        self.follower.load(Ordering::Relaxed)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_config(&self, config: LogConfig) {
        self.lock().config = config;
    }

    pub fn config(&self) -> LogConfig {
        self.lock().config.clone()
    }

    pub fn offsets(&self) -> Offsets {
        let st = self.lock();
        Offsets {
            log_start: st.log_start,
            high_watermark: st.high_watermark,
            last_stable_offset: st.last_stable_offset(),
            log_end: st.log_end(),
        }
    }

    /// Bytes of the local segments (Kafka's log size: DescribeLogDirs).
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments.values().map(|s| s.size()).sum()
    }

    /// Watches the durable offset and the watermarks: wakes acks=all producers and long-poll
    /// fetches.
    pub fn subscribe(&self) -> watch::Receiver<Durability> {
        self.durability.subscribe()
    }

    /// Waits until everything below `end` is durable: true, or false once an I/O failure took
    /// the partition offline (that data will never be durable).
    pub async fn wait_durable(&self, end: i64) -> bool {
        let mut durability = self.subscribe();
        durability
            .wait_for(|d| d.durable_offset >= end || d.failed)
            .await
            .is_ok_and(|d| d.durable_offset >= end)
    }

    /// Waits until everything below `end` is under the high watermark (durable here and, in
    /// a cluster, on every in-sync replica): true, or false once the partition went offline.
    pub async fn wait_replicated(&self, end: i64) -> bool {
        let mut durability = self.subscribe();
        durability
            .wait_for(|d| d.high_watermark >= end || d.failed)
            .await
            .is_ok_and(|d| d.high_watermark >= end)
    }

    /// Open transactions as (producer id, first offset), oldest first (Kafka's
    /// DescribeTransactions/DescribeProducers view of a partition).
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.lock().producers.ongoing_transactions()
    }

    /// The producers this partition remembers (DescribeProducers).
    pub fn producers(&self) -> Vec<crate::log::producer_state::ProducerView> {
        self.lock().producers.views()
    }

    /// Whether `producer_id` has a transaction open here: its transactional batches need no
    /// new check with the coordinator.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.lock().producers.in_transaction(producer_id)
    }

    /// Publishes the last stable offset after something other than a flush moved it (the
    /// log start passing the start of an open transaction). Called without the state lock,
    /// as the flusher publishes. The LSO never moves back (the high watermark, the log start
    /// and the first unstable offset only grow), so a newer value is never undone, and it is
    /// never published ahead of the high watermark beside it (a flush may be about to publish
    /// its own). With no transaction open this changes nothing.
    fn publish_last_stable_offset(&self, last_stable_offset: i64) {
        self.durability.send_if_modified(|d| {
            let last_stable_offset = last_stable_offset.min(d.high_watermark);
            if last_stable_offset <= d.last_stable_offset {
                return false;
            }
            d.last_stable_offset = last_stable_offset;
            true
        });
    }

    /// Takes the partition offline after an I/O failure (Kafka's log-dir failure): no more
    /// appends, no further durability, waiting producers fail at once.
    fn fail(&self, st: &mut State, what: &str, e: &io::Error) {
        tracing::error!(topic = %self.topic, partition = self.index, error = %e, "{what} failed; partition is offline until restart");
        st.failed = true;
        self.durability.send_modify(|d| d.failed = true);
    }

    /// Makes everything written durable (graceful shutdown).
    pub fn close(&self) {
        let _ = self.flush_now();
    }

    /// Stops appends and removes the partition's files.
    pub fn delete(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.deleted = true;
        st.unflushed.clear();
        st.dir_dirty = false;
        drop(st);
        // Producers still waiting for durability get an answer now, not a timeout.
        self.durability.send_modify(|d| d.failed = true);
        fs::remove_dir_all(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    //! Helpers for the tests of every concern, and the whole life of a partition.

    use super::*;
    use crate::log::batch::{self, tests::make_batch, BatchHeader};
    use crate::log::now_ms;

    pub(super) fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 1000,
            index_interval_bytes: 100,
            timestamp_after_max_ms: i64::MAX,
            ..LogConfig::kafka_defaults()
        }
    }

    pub(super) fn wait_hw(p: &Partition, at_least: i64) {
        for _ in 0..500 {
            if p.offsets().high_watermark >= at_least {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("high watermark never reached {at_least}");
    }

    #[test]
    fn append_roll_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start();
        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher.clone()).unwrap();
        for i in 0..100 {
            // batch i holds timestamps 1000+i and 1001+i
            let out = p.append(&make_batch(2, 1000 + i, None)).unwrap();
            assert_eq!(out.base_offset, i * 2);
        }
        wait_hw(&p, 200);
        assert!(p.lock().segments.len() > 5, "segments rolled");
        // read from the middle of a batch returns that whole batch first
        let ReadOutcome::Records(data) = p.read(77, 10_000, true).unwrap() else {
            panic!()
        };
        let first = BatchHeader::parse(&data).unwrap();
        assert_eq!(first.base_offset, 76);
        // max_bytes smaller than one batch still returns one batch
        let ReadOutcome::Records(one) = p.read(0, 10, true).unwrap() else {
            panic!()
        };
        assert_eq!(batch::headers(&one).count(), 1);
        assert!(matches!(
            p.read(201, 100, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        let ReadOutcome::Records(empty) = p.read(200, 100, true).unwrap() else {
            panic!()
        };
        assert!(empty.is_empty());
        // by timestamp: 1050 is first reached by the second record of batch 49 (offset 99)
        assert_eq!(p.offset_for_timestamp(1050).unwrap(), Some((1050, 99)));
        assert_eq!(p.offset_for_timestamp(5000).unwrap(), None);
        assert_eq!(p.offset_of_max_timestamp().unwrap(), Some((1100, 199)));
        drop(p);

        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher).unwrap();
        let o = p.offsets();
        assert_eq!((o.log_start, o.high_watermark, o.log_end), (0, 200, 200));
        assert_eq!(p.offset_for_timestamp(1050).unwrap(), Some((1050, 99)));
        assert_eq!(p.append(&make_batch(1, 5, None)).unwrap().base_offset, 200);
        // retention by size keeps at most ~2 segments worth
        let mut c = config();
        c.retention_bytes = 1500;
        c.retention_ms = -1;
        p.set_config(c);
        wait_hw(&p, 201);
        assert!(p.apply_retention(now_ms()) > 0);
        let start = p.offsets().log_start;
        assert!(start > 0);
        assert!(matches!(
            p.read(0, 100, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        let ReadOutcome::Records(d) = p.read(start, 100, true).unwrap() else {
            panic!()
        };
        assert_eq!(BatchHeader::parse(&d).unwrap().base_offset, start);
    }
}
