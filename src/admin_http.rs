//! The admin HTTP listener (`--admin-listen`, default 127.0.0.1:9644): /metrics in the
//! Prometheus text format, /v1/health (the process answers) and /v1/ready (recovery done,
//! manifests loaded, Kafka listeners up; 503 before), and the web console (`console`) at `/`.

use crate::broker::Broker;
use crate::config::AdminListen;
use crate::metrics::Scrape;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// Set once the broker serves Kafka clients.
pub static READY: AtomicBool = AtomicBool::new(false);
/// The broker, once it is open (the listener starts before recovery, so /v1/health answers
/// during it).
pub static BROKER: OnceLock<Weak<Broker>> = OnceLock::new();

struct AdminState {
    registry: Registry,
}

/// Binds the listener and serves it in the background. A bind failure on the default address
/// is logged and the broker goes on without it; on an address given explicitly it is an error.
pub async fn start(listen: AdminListen) -> anyhow::Result<()> {
    let socket = match tokio::net::TcpListener::bind(listen.addr).await {
        Ok(s) => s,
        Err(e) if !listen.explicit => {
            tracing::warn!(addr = %listen.addr, error = %e, "admin listener not started (--admin-listen none turns it off)");
            return Ok(());
        }
        Err(e) => anyhow::bail!("admin listener on {}: {e}", listen.addr),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { broker: &BROKER }));
    let state = Arc::new(AdminState { registry });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/health", get(|| async { "ok\n" }))
        .route("/v1/ready", get(ready))
        .with_state(state)
        .merge(crate::console::router(&BROKER));
    tracing::info!(addr = %listen.addr, "admin listener started");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(socket, app).await {
            tracing::warn!(error = %e, "admin listener stopped");
        }
    });
    Ok(())
}

async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "encoding failed\n".to_string(),
        ),
    }
}

async fn ready() -> (StatusCode, &'static str) {
    match READY.load(Ordering::Acquire) {
        true => (StatusCode::OK, "ready\n"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
    }
}
