//! Coordinators: consumer groups (and, later, transactions).

pub mod group;
pub mod state_log;
