//! Coordinators: consumer groups and transactions.

pub mod group;
pub mod state_log;
pub mod txn;
