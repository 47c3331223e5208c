//! sluice: a Kafka-wire-compatible broker. See DESIGN.md for the layers.

pub mod admin_http;
pub mod alloc_guard;
pub mod api;
pub mod broker;
pub mod cli;
pub mod config;
pub mod console;
pub mod coordinator;
pub mod failpoint;
pub mod log;
pub mod logging;
pub mod metadata;
pub mod metrics;
pub mod record_batch;
pub mod replica;
pub mod security;
pub mod server;
pub mod stats;
pub mod tier;
pub mod topic;
