//! Idempotent-producer bookkeeping per partition: the epoch and the last five batches of
//! every producer id, so retries are acknowledged without being written twice.
//!
//! Also the partition's side of transactions (Kafka's ProducerStateManager): the first offset
//! of every producer's open transaction, set by its first transactional batch and cleared by
//! the COMMIT/ABORT marker. A decided transaction stays "unreplicated" until the high
//! watermark passes its marker, so the first unstable offset (what bounds the last stable
//! offset) never moves past a transaction whose outcome a crash could still take back.
//!
//! Snapshots (`.snapshot`, JSON) carry each producer's open transaction and coordinator
//! epoch; both fields default when absent, so snapshots written before them still load.

use super::batch::BatchHeader;
use super::control::EndTxnMarker;
use super::txn_index::AbortedTxn;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Kafka keeps the metadata of this many recent batches per producer for duplicate detection.
const CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    /// Wall-clock ms of the last append, for expiry.
    #[serde(default)]
    pub last_append_ms: i64,
    /// Epoch of the coordinator that wrote this producer's last marker (-1: none yet). A marker
    /// from an older coordinator is refused.
    #[serde(default = "no_coordinator_epoch")]
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction in this partition.
    #[serde(default)]
    pub current_txn_first_offset: Option<i64>,
}

fn no_coordinator_epoch() -> i32 {
    -1
}

impl Default for ProducerEntry {
    fn default() -> Self {
        ProducerEntry {
            epoch: 0,
            batches: VecDeque::new(),
            last_append_ms: 0,
            coordinator_epoch: no_coordinator_epoch(),
            current_txn_first_offset: None,
        }
    }
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerView {
    pub producer_id: i64,
    pub epoch: i16,
    /// -1 before its first idempotent batch.
    pub last_sequence: i32,
    pub last_append_ms: i64,
    pub coordinator_epoch: i32,
    pub current_txn_first_offset: Option<i64>,
}

/// A transaction decided by a marker (Kafka's CompletedTxn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
    /// What the aborted-transaction index records: the first offset of the oldest other
    /// open transaction, else the offset after the marker.
    pub last_stable_offset: i64,
}

impl CompletedTxn {
    /// The `.txnindex` entry of this transaction, were it aborted.
    pub fn index_entry(&self) -> AbortedTxn {
        AbortedTxn {
            producer_id: self.producer_id,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            last_stable_offset: self.last_stable_offset,
        }
    }
}

/// Why a marker was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerError {
    /// The marker's producer epoch is older than the producer's current one.
    StaleEpoch,
    /// The marker comes from an older coordinator than the producer's last marker.
    CoordinatorFenced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// A retry of a batch already in the log: answer with its original offsets.
    Duplicate(BatchMeta),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceError {
    /// The batch carries an epoch older than the producer's current one.
    StaleEpoch,
    /// A gap or reordering in sequence numbers.
    OutOfOrder,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id. Derived from `producers`.
    #[serde(skip)]
    ongoing: BTreeMap<i64, i64>,
    /// Decided transactions whose marker is not yet below the high watermark:
    /// first offset -> marker offset. Empty after recovery (everything recovered is durable).
    #[serde(skip)]
    unreplicated: BTreeMap<i64, i64>,
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq == last_seq.wrapping_add(1) || (last_seq == i32::MAX && next_seq == 0)
}

impl ProducerStates {
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        if !h.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // No state (new producer, or state removed by retention): Kafka accepts any sequence.
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch);
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrder)
            };
        }
        let last_seq = h.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        match entry.batches.back() {
            Some(last) if !in_sequence(last.last_seq, h.base_sequence) => {
                Err(SequenceError::OutOfOrder)
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records a data batch written at `base_offset` (its header's own base offset is not
    /// trusted) at wall-clock `now_ms`; a transactional one opens the producer's transaction
    /// unless it is open already. Control batches go through `record_marker`.
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64, now_ms: i64) {
        if !h.has_producer_id() || h.is_control() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(base_offset);
            self.ongoing.insert(base_offset, h.producer_id);
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        if h.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = h.producer_epoch;
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset,
            last_offset: base_offset + h.last_offset_delta as i64,
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Whether a data batch of this producer may follow its current transaction state: a
    /// producer with an open transaction may only write transactional batches until a marker
    /// ends it (Kafka: INVALID_TXN_STATE).
    pub fn txn_state_allows(&self, h: &BatchHeader) -> bool {
        // The first test keeps this free while no transaction is open anywhere.
        self.ongoing.is_empty()
            || h.is_transactional()
            || !h.has_producer_id()
            || self
                .producers
                .get(&h.producer_id)
                .is_none_or(|e| e.current_txn_first_offset.is_none())
    }

    /// Kafka's checks of a marker before it is written: the producer epoch may not go back,
    /// nor the coordinator epoch.
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), MarkerError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < entry.epoch {
            return Err(MarkerError::StaleEpoch);
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(MarkerError::CoordinatorFenced);
        }
        Ok(())
    }

    /// Records a marker of `producer_id` written at `offset`: the producer's open transaction
    /// (if any) is decided and returned, and stays unstable until the high watermark passes
    /// the marker. A marker ending no transaction only updates the epochs, as in Kafka.
    pub fn record_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
        offset: i64,
        now_ms: i64,
    ) -> Option<CompletedTxn> {
        // Computed before this transaction leaves the open set; it is skipped by producer id.
        let last_stable_offset = self
            .ongoing
            .iter()
            .find(|(_, pid)| **pid != producer_id)
            .map(|(first, _)| *first)
            .unwrap_or(offset + 1);
        let entry = self.producers.entry(producer_id).or_default();
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        if producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = producer_epoch;
        }
        entry.coordinator_epoch = marker.coordinator_epoch;
        let first_offset = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&first_offset);
        self.unreplicated.insert(first_offset, offset);
        Some(CompletedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            aborted: !marker.commit,
            last_stable_offset,
        })
    }

    /// The high watermark moved: transactions whose marker it covers are stable now.
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        self.unreplicated
            .retain(|_, marker| *marker >= high_watermark);
    }

    /// First offset of the oldest transaction that is open or whose marker is not yet below
    /// the high watermark (Kafka's firstUnstableOffset); None when there is none.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every producer this partition remembers, by producer id.
    pub fn views(&self) -> Vec<ProducerView> {
        let mut views: Vec<ProducerView> = self
            .producers
            .iter()
            .map(|(&producer_id, e)| ProducerView {
                producer_id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_append_ms: e.last_append_ms,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_first_offset: e.current_txn_first_offset,
            })
            .collect();
        views.sort_by_key(|v| v.producer_id);
        views
    }

    /// (producer id, last offset of its newest batch) of every producer remembered: the
    /// batches compaction keeps, emptied if need be, so the producer state survives it.
    pub fn last_batches(&self) -> Vec<(i64, i64)> {
        self.producers
            .iter()
            .filter_map(|(&pid, e)| e.batches.back().map(|b| (pid, b.last_offset)))
            .collect()
    }

    /// Whether `producer_id` has a transaction open in this partition.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        !self.ongoing.is_empty()
            && self
                .producers
                .get(&producer_id)
                .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// Open transactions as (producer id, first offset), oldest first.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.ongoing
            .iter()
            .map(|(first, pid)| (*pid, *first))
            .collect()
    }

    /// Forgets producers idle for longer than `expiration_ms`, as Kafka does with
    /// producer.id.expiration.ms, so client-chosen ids cannot grow this map forever. A
    /// producer with an open transaction is kept (its marker is still to come).
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_append_ms) <= expiration_ms
        });
        before - self.producers.len()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Option<ProducerStates> {
        let mut states: ProducerStates = serde_json::from_slice(bytes).ok()?;
        states.ongoing = states
            .producers
            .iter()
            .filter_map(|(pid, e)| Some((e.current_txn_first_offset?, *pid)))
            .collect();
        Some(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{tests::make_batch, BatchHeader};

    fn header(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        BatchHeader::parse(&make_batch(count, 0, Some((pid, epoch, seq)))).unwrap()
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStates::default();
        let a = header(7, 0, 0, 3);
        assert_eq!(s.check(&a), Ok(SequenceCheck::Append));
        s.record(&a, 100, 0);
        // retry of the same batch is a duplicate with its original offsets
        match s.check(&a) {
            Ok(SequenceCheck::Duplicate(m)) => assert_eq!(m.base_offset, 100),
            other => panic!("{other:?}"),
        }
        // next in sequence
        let b = header(7, 0, 3, 2);
        assert_eq!(s.check(&b), Ok(SequenceCheck::Append));
        s.record(&b, 103, 0);
        // gap
        assert_eq!(s.check(&header(7, 0, 9, 1)), Err(SequenceError::OutOfOrder));
        // stale epoch
        let mut s2 = s.clone();
        s2.record(&header(7, 1, 0, 1), 200, 0);
        assert_eq!(
            s2.check(&header(7, 0, 5, 1)),
            Err(SequenceError::StaleEpoch)
        );
        // epoch bump must restart at 0
        assert_eq!(s.check(&header(7, 1, 4, 1)), Err(SequenceError::OutOfOrder));
        assert_eq!(s.check(&header(7, 1, 0, 1)), Ok(SequenceCheck::Append));
        // unknown producer: any sequence
        assert_eq!(s.check(&header(8, 0, 42, 1)), Ok(SequenceCheck::Append));
        // survives a JSON round trip
        let back = ProducerStates::from_json(&s.to_json()).unwrap();
        assert!(matches!(back.check(&b), Ok(SequenceCheck::Duplicate(_))));
    }

    fn txn_header(pid: i64, seq: i32) -> BatchHeader {
        let mut b = make_batch(1, 0, Some((pid, 0, seq)));
        b[22] |= crate::log::batch::ATTR_TRANSACTIONAL as u8;
        BatchHeader::parse(&b).unwrap()
    }

    const ABORT: EndTxnMarker = EndTxnMarker {
        commit: false,
        coordinator_epoch: 0,
    };

    #[test]
    fn open_transactions_and_the_first_unstable_offset() {
        let mut s = ProducerStates::default();
        s.record(&txn_header(1, 0), 10, 0);
        s.record(&txn_header(1, 1), 11, 0); // same transaction
        s.record(&txn_header(2, 0), 12, 0);
        assert_eq!(s.ongoing_transactions(), vec![(1, 10), (2, 12)]);
        assert_eq!(s.first_unstable_offset(), Some(10));
        assert!(!s.txn_state_allows(&header(1, 0, 2, 1)));
        assert!(s.txn_state_allows(&header(3, 0, 0, 1)));
        let done = s.record_marker(1, 0, ABORT, 13, 0).unwrap();
        assert_eq!(
            (done.first_offset, done.last_offset, done.aborted),
            (10, 13, true)
        );
        assert_eq!(done.last_stable_offset, 12, "producer 2 is still open");
        // Decided, but unstable until the high watermark passes the marker.
        assert_eq!(s.first_unstable_offset(), Some(10));
        s.on_high_watermark(13);
        assert_eq!(s.first_unstable_offset(), Some(10));
        s.on_high_watermark(14);
        assert_eq!(s.first_unstable_offset(), Some(12));
        // Ending nothing decides nothing.
        assert_eq!(s.record_marker(1, 0, ABORT, 15, 0), None);
        let done = s.record_marker(2, 0, ABORT, 16, 0).unwrap();
        assert_eq!(done.last_stable_offset, 17);
        s.on_high_watermark(17);
        assert_eq!(s.first_unstable_offset(), None);
    }

    #[test]
    fn snapshots_carry_open_transactions_and_old_ones_still_load() {
        let mut s = ProducerStates::default();
        s.record(&txn_header(1, 0), 10, 0);
        s.record(&header(2, 0, 0, 1), 11, 0);
        s.record_marker(
            2,
            0,
            EndTxnMarker {
                commit: true,
                coordinator_epoch: 4,
            },
            12,
            0,
        );
        let back = ProducerStates::from_json(&s.to_json()).unwrap();
        assert_eq!(back.ongoing_transactions(), vec![(1, 10)]);
        assert_eq!(
            back.check_marker(2, 0, 3),
            Err(MarkerError::CoordinatorFenced)
        );
        // A snapshot from before transactions.
        let old = br#"{"producers":{"7":{"epoch":1,"batches":[{"first_seq":0,"last_seq":2,"base_offset":100,"last_offset":102}],"last_append_ms":5}}}"#;
        let old = ProducerStates::from_json(old).unwrap();
        assert!(old.ongoing_transactions().is_empty());
        assert_eq!(old.first_unstable_offset(), None);
        assert!(matches!(
            old.check(&header(7, 1, 0, 3)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        assert_eq!(old.check_marker(7, 1, 0), Ok(()));
        assert_eq!(old.check_marker(7, 0, 0), Err(MarkerError::StaleEpoch));
    }

    #[test]
    fn a_producer_with_an_open_transaction_does_not_expire() {
        let mut s = ProducerStates::default();
        s.record(&txn_header(1, 0), 10, 0);
        s.record(&header(2, 0, 0, 1), 11, 0);
        assert_eq!(s.expire(10_000, 1000), 1);
        assert_eq!(s.ongoing_transactions(), vec![(1, 10)]);
    }

    #[test]
    fn only_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&header(1, 0, i, 1), i as i64, i as i64);
        }
        assert!(matches!(
            s.check(&header(1, 0, 6, 1)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        assert!(matches!(
            s.check(&header(1, 0, 2, 1)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        assert_eq!(s.check(&header(1, 0, 1, 1)), Err(SequenceError::OutOfOrder));
        assert_eq!(s.expire(100, 1000), 0);
        assert_eq!(s.expire(2000, 1000), 1);
        assert!(s.is_empty());
    }
}
