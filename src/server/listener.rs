//! Accept loops, one per listen address, and graceful shutdown of their connections.

use super::connection;
use crate::api::{Listener, SecurityProtocol, Session};
use crate::broker::Broker;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub struct Listeners {
    shutdown_tx: watch::Sender<bool>,
    /// Every accept loop and connection holds a clone; all dropped = all finished.
    alive_tx: mpsc::Sender<()>,
    alive_rx: mpsc::Receiver<()>,
    pub bound: Vec<SocketAddr>,
}

fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// What clients are told to connect to for a listener bound at `bound`.
fn advertised_for(broker: &Broker, bound: SocketAddr) -> Listener {
    if let Some((host, port)) = &broker.config.advertised {
        return plaintext_listener(host.clone(), *port);
    }
    // Never advertise an empty or wildcard host: clients could not connect to it.
    let host = if bound.ip().is_unspecified() {
        machine_hostname()
    } else {
        bound.ip().to_string()
    };
    plaintext_listener(host, bound.port())
}

/// Kafka's default listener: named after its protocol.
fn plaintext_listener(advertised_host: String, advertised_port: u16) -> Listener {
    Listener {
        name: SecurityProtocol::Plaintext.name().to_string(),
        security_protocol: SecurityProtocol::Plaintext,
        advertised_host,
        advertised_port,
    }
}

impl Listeners {
    pub async fn start(broker: Arc<Broker>) -> Result<Listeners> {
        let (shutdown_tx, _) = watch::channel(false);
        let (alive_tx, alive_rx) = mpsc::channel(1);
        let mut bound = Vec::new();
        for addr in broker.config.listen.clone() {
            let socket = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let local = socket.local_addr()?;
            bound.push(local);
            let listener = Arc::new(advertised_for(&broker, local));
            tracing::info!(listen = %local, advertised = %format!("{}:{}", listener.advertised_host, listener.advertised_port), "listening");
            tokio::spawn(accept_loop(
                socket,
                broker.clone(),
                listener,
                shutdown_tx.subscribe(),
                alive_tx.clone(),
            ));
        }
        Ok(Listeners {
            shutdown_tx,
            alive_tx,
            alive_rx,
            bound,
        })
    }

    /// Stops accepting, lets every connection finish its in-flight requests, and waits.
    pub async fn shutdown(self, grace: std::time::Duration) {
        let Listeners {
            shutdown_tx,
            alive_tx,
            mut alive_rx,
            ..
        } = self;
        let _ = shutdown_tx.send(true);
        drop(alive_tx);
        if tokio::time::timeout(grace, alive_rx.recv()).await.is_err() {
            tracing::warn!("connections still busy after the shutdown grace period");
        }
    }
}

async fn accept_loop(
    socket: TcpListener,
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            a = socket.accept() => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let session = Session::new(listener.clone(), peer);
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                let alive = alive.clone();
                tokio::spawn(async move {
                    // Owned halves: no lock between reader and writer, unlike a generic split.
                    let (read_half, write_half) = stream.into_split();
                    connection::serve(read_half, write_half, broker, session, shutdown).await;
                    drop(alive);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
