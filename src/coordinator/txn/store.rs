//! The transaction log's records (our `__transaction_state`): the latest metadata of every
//! transactional.id, and a removal when an id expires. Replayed on start.

use super::metadata::TxnMetadata;
use crate::coordinator::state_log::{StateLog, StateRecord};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum TxnRecord {
    /// The whole state of one transactional.id after a transition.
    Txn(TxnMetadata),
    /// transactional.id expiration (Kafka's tombstone).
    Removed { transactional_id: String },
}

/// The transaction log: an internal partition of transaction records.
pub type TxnStore = StateLog<TxnRecord>;

impl StateRecord for TxnRecord {
    fn key(&self) -> String {
        match self {
            TxnRecord::Txn(meta) => meta.transactional_id.clone(),
            TxnRecord::Removed { transactional_id } => transactional_id.clone(),
        }
    }

    fn is_removal(&self) -> bool {
        matches!(self, TxnRecord::Removed { .. })
    }
}
