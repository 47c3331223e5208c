//! Network front end: listeners, per-connection tasks, framing.

pub mod connection;
pub mod frame;
pub mod limits;
pub mod listener;
pub mod tls;
