//! Coordinators: consumer groups (and, later, transactions).

pub mod group;
