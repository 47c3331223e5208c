//! Idempotent-producer bookkeeping per partition: the epoch and the last five batches of
//! every producer id, so retries are acknowledged without being written twice.

use super::batch::BatchHeader;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Kafka keeps the metadata of this many recent batches per producer for duplicate detection.
const CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    /// Wall-clock ms of the last append, for expiry.
    #[serde(default)]
    pub last_append_ms: i64,
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

    /// Records a batch written at `base_offset` (its header's own base offset is not trusted)
    /// at wall-clock `now_ms`.
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64, now_ms: i64) {
        if !h.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
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

    /// Forgets producers idle for longer than `expiration_ms`, as Kafka does with
    /// producer.id.expiration.ms, so client-chosen ids cannot grow this map forever.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_append_ms) <= expiration_ms);
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
        serde_json::from_slice(bytes).ok()
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
