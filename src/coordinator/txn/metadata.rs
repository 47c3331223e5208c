//! One transactional.id's state, Kafka's state machine over it, and the pure transitions the
//! coordinator prepares (Kafka's `TransactionMetadata.prepare*`). A transition builds the next
//! value without touching the current one: it only replaces it once its record is durable.

use kafka_protocol::ResponseError as E;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A partition of a transaction: (topic, partition).
pub type TopicPartition = (String, i32);

/// Kafka's TransactionState, with its ids (the `TransactionStatus` of Kafka's log value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// The name DescribeTransactions / ListTransactions report.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Exact (case-sensitive) match, as Kafka's `TransactionState.fromName`.
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The states this one may be entered from (Kafka's `validPreviousStates`). PrepareAbort
    /// from Empty/Complete* is KIP-890's abort of a transaction the client is unsure about.
    pub fn valid_previous_states(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[
                Ongoing,
                PrepareEpochFence,
                Empty,
                CompleteCommit,
                CompleteAbort,
            ],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    pub fn can_follow(self, previous: TxnState) -> bool {
        self.valid_previous_states().contains(&previous)
    }

    /// Whether transactional.id.expiration.ms may remove an id in this state.
    pub fn is_expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }

    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// The `transaction.version` feature level a client used (TV0/TV1: classic protocol; TV2:
/// KIP-890 part 2, with an epoch bump at every transaction end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TransactionVersion(pub i16);

impl TransactionVersion {
    pub const TV_0: TransactionVersion = TransactionVersion(0);
    pub const TV_1: TransactionVersion = TransactionVersion(1);
    pub const TV_2: TransactionVersion = TransactionVersion(2);

    pub fn supports_epoch_bump(self) -> bool {
        self.0 >= 2
    }
}

/// Epochs at `i16::MAX - 1` and above are never handed to clients, so the coordinator can
/// always fence a producer once more (to `i16::MAX`).
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// Everything the coordinator knows about a transactional.id; also the value of its record in
/// the transaction log. Unlike Kafka's log value, `last_producer_epoch` is kept too, so a
/// KIP-360 retry of InitProducerId still succeeds after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the latest transition (KIP-360/890 retries after a rotation).
    pub prev_producer_id: i64,
    /// TV2: the producer id the current transaction rotates to when it completes (epoch
    /// exhausted), else -1.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried bump is recognised (-1: none).
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the first partition was added (-1: no transaction).
    pub start_ms: i64,
    /// Every transition stamps it; expiration counts from it.
    pub last_update_ms: i64,
    pub client_version: TransactionVersion,
}

fn illegal(meta: &TxnMetadata, what: &str) -> E {
    tracing::error!(
        transactional_id = %meta.transactional_id,
        state = meta.state.name(),
        "illegal transaction transition: {what}"
    );
    E::UnknownServerError
}

impl TxnMetadata {
    /// A freshly created id before its first InitProducerId is persisted (epoch -1).
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            prev_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            client_version: TransactionVersion::TV_0,
        }
    }

    pub fn is_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    /// Checks `next` against the state machine and stamps the producer id it replaces.
    fn transit(&self, mut next: TxnMetadata) -> Result<TxnMetadata, E> {
        if next.producer_id < 0 {
            return Err(illegal(self, "negative producer id"));
        }
        if next.state != TxnState::Dead && next.producer_epoch < 0 {
            return Err(illegal(self, "negative producer epoch"));
        }
        if !next.state.can_follow(self.state) {
            return Err(illegal(self, next.state.name()));
        }
        next.prev_producer_id = self.producer_id;
        Ok(next)
    }

    /// The epoch that fences the current producer of an Ongoing transaction (Kafka's
    /// prepareFenceProducerEpoch; PrepareEpochFence itself is never written).
    pub fn fence_epoch(&self) -> Result<i16, E> {
        if !TxnState::PrepareEpochFence.can_follow(self.state) {
            return Err(illegal(self, "PrepareEpochFence"));
        }
        if self.producer_epoch == i16::MAX {
            return Err(illegal(self, "fencing an epoch of i16::MAX"));
        }
        Ok(self.producer_epoch + 1)
    }

    /// This id with no transaction (Empty) under the given producer id and epochs.
    fn idle(
        &self,
        producer_id: i64,
        epoch: i16,
        last_epoch: i16,
        timeout_ms: i32,
        now_ms: i64,
    ) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            producer_epoch: epoch,
            last_producer_epoch: last_epoch,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            ..self.clone()
        }
    }

    /// InitProducerId on an idle id: bump the epoch. `expected_epoch` is the KIP-360 epoch the
    /// producer believes it has: equal to the current one (bump again), equal to the last one
    /// (a retry: answer the current one), else PRODUCER_FENCED.
    pub fn prepare_increment_epoch(
        &self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<TxnMetadata, E> {
        if self.is_epoch_exhausted() {
            return Err(illegal(self, "epoch bump past exhaustion"));
        }
        let bumped = self.producer_epoch + 1;
        let (epoch, last_epoch) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(expected)
                if self.producer_epoch == NO_PRODUCER_EPOCH || expected == self.producer_epoch =>
            {
                (bumped, self.producer_epoch)
            }
            Some(expected) if expected == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(E::ProducerFenced),
        };
        self.transit(self.idle(self.producer_id, epoch, last_epoch, timeout_ms, now_ms))
    }

    /// InitProducerId when the epoch is exhausted: a new producer id at epoch 0.
    pub fn prepare_producer_id_rotation(
        &self,
        new_producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> Result<TxnMetadata, E> {
        if matches!(
            self.state,
            TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
        ) {
            return Err(illegal(self, "producer id rotation during a transaction"));
        }
        let last_epoch = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        self.transit(self.idle(new_producer_id, 0, last_epoch, timeout_ms, now_ms))
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the transaction starts (or grows) -> Ongoing.
    pub fn prepare_add_partitions(
        &self,
        added: &BTreeSet<TopicPartition>,
        now_ms: i64,
        client_version: TransactionVersion,
    ) -> Result<TxnMetadata, E> {
        let start_ms = match self.state {
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => now_ms,
            _ => self.start_ms,
        };
        let mut partitions = self.partitions.clone();
        partitions.extend(added.iter().cloned());
        self.transit(TxnMetadata {
            state: TxnState::Ongoing,
            partitions,
            start_ms,
            last_update_ms: now_ms,
            client_version,
            ..self.clone()
        })
    }

    /// EndTxn: -> PrepareCommit / PrepareAbort. With TV2 the epoch is bumped here (the markers
    /// are written with the bumped epoch, fencing the transaction's own late writes);
    /// `next_producer_id` is the id to rotate to when that bump exhausts the epoch.
    pub fn prepare_abort_or_commit(
        &self,
        state: TxnState,
        client_version: TransactionVersion,
        next_producer_id: i64,
        now_ms: i64,
        no_partition_added: bool,
    ) -> Result<TxnMetadata, E> {
        let (epoch, last_epoch) = if client_version.supports_epoch_bump() {
            if self.producer_epoch == i16::MAX {
                return Err(illegal(self, "epoch bump past i16::MAX"));
            }
            (self.producer_epoch + 1, self.producer_epoch)
        } else {
            (self.producer_epoch, self.last_producer_epoch)
        };
        self.transit(TxnMetadata {
            producer_epoch: epoch,
            last_producer_epoch: last_epoch,
            // A TV2 abort with no partitions has no start; the coordinator stamps one anyway.
            start_ms: if no_partition_added {
                now_ms
            } else {
                self.start_ms
            },
            next_producer_id,
            last_update_ms: now_ms,
            client_version,
            state,
            ..self.clone()
        })
    }

    /// Markers written: Prepare* -> Complete*. A TV2 transaction whose bump exhausted the
    /// epoch moves to its next producer id at epoch 0 (`last_producer_epoch` stays what the
    /// client last saw).
    pub fn prepare_complete(&self, now_ms: i64) -> Result<TxnMetadata, E> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return Err(illegal(self, "complete outside Prepare*")),
        };
        let rotate =
            self.client_version.supports_epoch_bump() && self.next_producer_id != NO_PRODUCER_ID;
        self.transit(TxnMetadata {
            producer_id: if rotate {
                self.next_producer_id
            } else {
                self.producer_id
            },
            producer_epoch: if rotate { 0 } else { self.producer_epoch },
            next_producer_id: NO_PRODUCER_ID,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms,
            state,
            ..self.clone()
        })
    }

    /// transactional.id expiration.
    pub fn prepare_dead(&self) -> Result<TxnMetadata, E> {
        self.transit(TxnMetadata {
            state: TxnState::Dead,
            partitions: BTreeSet::new(),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_matches_kafka() {
        use TxnState::*;
        assert!(PrepareCommit.can_follow(Ongoing));
        assert!(!PrepareCommit.can_follow(Empty));
        assert!(PrepareAbort.can_follow(CompleteCommit));
        assert!(!CompleteCommit.can_follow(PrepareAbort));
        assert!(!Dead.can_follow(Ongoing));
        assert!(!Ongoing.can_follow(PrepareCommit));
        for s in TxnState::ALL {
            assert_eq!(TxnState::from_name(s.name()), Some(s));
        }
        assert_eq!(TxnState::from_name("ongoing"), None);
        let ids: BTreeSet<i8> = TxnState::ALL.iter().map(|s| s.id()).collect();
        assert_eq!(ids.len(), 8);
    }

    #[test]
    fn kip360_epoch_rules() {
        let mut m = TxnMetadata::new("t", 5, 1000, 0);
        let first = m.prepare_increment_epoch(1000, None, 1).unwrap();
        assert_eq!((first.producer_epoch, first.last_producer_epoch), (0, -1));
        m = first;
        // The producer's own epoch: bump, remembering the old one.
        let bumped = m.prepare_increment_epoch(1000, Some(0), 2).unwrap();
        assert_eq!((bumped.producer_epoch, bumped.last_producer_epoch), (1, 0));
        // A retry of that bump carries the old epoch: answered without bumping again.
        let retry = bumped.prepare_increment_epoch(1000, Some(0), 3).unwrap();
        assert_eq!((retry.producer_epoch, retry.last_producer_epoch), (1, 0));
        assert_eq!(
            bumped.prepare_increment_epoch(1000, Some(7), 3),
            Err(E::ProducerFenced)
        );
    }
}
