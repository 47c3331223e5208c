//! Accept loops, one per listener, and graceful shutdown of their connections. An SSL
//! listener completes the TLS handshake before the connection task sees the stream. Every
//! accepted connection passes the connection limits (server/limits.rs) first.

use super::connection;
use super::limits::{Admission, ListenerLimits};
use super::tls::{self, TlsSource};
use crate::api::{Listener, SecurityProtocol, Session};
use crate::broker::Broker;
use crate::config::security::ListenerConfig;
use crate::metrics::METRICS;
use crate::security::sasl_scram::ScramMechanism;
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
    /// What each listener advertises (the broker's registration in cluster mode).
    pub endpoints: Vec<crate::metadata::Endpoint>,
}

fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// What clients are told to connect to for a listener bound at `bound`.
fn advertised_for(config: &ListenerConfig, bound: SocketAddr) -> Listener {
    let (advertised_host, advertised_port) = match &config.advertised {
        Some((host, port)) => (host.clone(), *port),
        // Never advertise an empty or wildcard host: clients could not connect to it.
        None if bound.ip().is_unspecified() => (machine_hostname(), bound.port()),
        None => (bound.ip().to_string(), bound.port()),
    };
    Listener {
        name: config.name.clone(),
        security_protocol: config.protocol,
        advertised_host,
        advertised_port,
    }
}

/// A SASL listener's mechanisms: PLAIN (its users in
/// listener.name.<name>.plain.sasl.jaas.config), SCRAM-SHA-256/512 (users in the metadata) and
/// OAUTHBEARER (tokens checked per listener, see security/sasl_oauthbearer.rs).
fn check_sasl(broker: &Broker, listener: &str) -> Result<()> {
    let sec = &broker.config.security;
    let mechanisms: Vec<&str> = sec
        .setting(listener, "sasl.enabled.mechanisms")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    for m in &mechanisms {
        if !["PLAIN", "OAUTHBEARER"].contains(m) && ScramMechanism::from_name(m).is_none() {
            anyhow::bail!(
                "sasl.enabled.mechanisms={}: sluice serves PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (Kafka's default is GSSAPI)",
                mechanisms.join(",")
            );
        }
    }
    if mechanisms.is_empty() {
        anyhow::bail!(
            "sasl.enabled.mechanisms names no mechanism (Kafka's default, GSSAPI, is not served)"
        );
    }
    if mechanisms.contains(&"PLAIN") {
        let jaas = sec
            .setting(listener, "plain.sasl.jaas.config")
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no listener.name.{}.plain.sasl.jaas.config (the PLAIN users)",
                    listener.to_ascii_lowercase()
                )
            })?;
        crate::security::sasl_plain::users(jaas).context("plain.sasl.jaas.config")?;
    }
    Ok(())
}

impl Listeners {
    pub async fn start(broker: Arc<Broker>) -> Result<Listeners> {
        let (shutdown_tx, _) = watch::channel(false);
        let (alive_tx, alive_rx) = mpsc::channel(1);
        let mut bound = Vec::new();
        let mut endpoints = Vec::new();
        for config in broker.config.listeners.clone() {
            if matches!(
                config.protocol,
                SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
            ) {
                check_sasl(&broker, &config.name)
                    .with_context(|| format!("listener {}", config.name))?;
            }
            let tls = match config.protocol {
                SecurityProtocol::Plaintext | SecurityProtocol::SaslPlaintext => None,
                SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => Some(Arc::new(
                    TlsSource::new(&broker.config.security, &config.name)
                        .with_context(|| format!("listener {}", config.name))?,
                )),
            };
            let addr = config.bind;
            let socket = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let local = socket.local_addr()?;
            bound.push(local);
            let listener = Arc::new(advertised_for(&config, local));
            endpoints.push(crate::metadata::Endpoint {
                listener: listener.name.clone(),
                host: listener.advertised_host.clone(),
                port: listener.advertised_port,
            });
            tracing::info!(listener = %listener.name, protocol = listener.security_protocol.name(), listen = %local, advertised = %format!("{}:{}", listener.advertised_host, listener.advertised_port), "listening");
            tokio::spawn(accept_loop(
                socket,
                broker.clone(),
                listener,
                tls,
                shutdown_tx.subscribe(),
                alive_tx.clone(),
            ));
        }
        Ok(Listeners {
            shutdown_tx,
            alive_tx,
            alive_rx,
            bound,
            endpoints,
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
    tls: Option<Arc<TlsSource>>,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    let limits = broker.connection_limits.clone();
    let own = |name: &str| {
        broker
            .config
            .security
            .setting(&listener.name, name)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let listener_limits = ListenerLimits::new(
        own("max.connections"),
        own("max.connection.creation.rate"),
        broker.quotas.window(),
    );
    loop {
        // max.connections (broker-wide and the listener's): stop accepting while that many are
        // open, as Kafka's acceptor.
        let accepted = tokio::select! {
            a = async {
                limits.wait_for_slot().await;
                if let Some(l) = &listener_limits {
                    l.wait_for_slot().await;
                }
                socket.accept().await
            } => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                // max.connection.creation.rate: the acceptor waits before serving it.
                let delay = limits.creation_delay().max(
                    listener_limits
                        .as_ref()
                        .map_or(std::time::Duration::ZERO, |l| l.creation_delay()),
                );
                if !delay.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return,
                    }
                }
                let ip_rate = broker.quotas.ip_connection_rate(&peer.ip().to_string());
                let slot = match limits.admit(peer.ip(), ip_rate, listener_limits.as_ref()) {
                    Admission::Admitted(slot) => slot,
                    Admission::TooMany(max) => {
                        tracing::info!(listener = %listener.name, "Rejected connection from {}, address already has the configured maximum of {max} connections.", peer.ip());
                        drop(stream);
                        METRICS.connection_rejected();
                        continue;
                    }
                    Admission::Throttled(delay) => {
                        METRICS.connection_rejected();
                        // Kafka holds a connection over its ip's connection_creation_rate,
                        // then closes it.
                        tracing::debug!(%peer, ?delay, "delaying the close of a throttled connection");
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            drop(stream);
                        });
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let session = Session::new(listener.clone(), peer);
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                let alive = alive.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => {
                            // Owned halves: no lock between reader and writer.
                            let (read_half, write_half) = stream.into_split();
                            connection::serve(read_half, write_half, broker, session, shutdown)
                                .await;
                        }
                        Some(tls) => serve_tls(stream, tls, broker, session, shutdown).await,
                    }
                    drop(slot);
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

/// The TLS handshake, then the connection. A handshake that fails (not TLS, an untrusted or
/// missing client certificate) or does not finish within connections.max.idle.ms closes the
/// connection, as Kafka's idle timer does.
async fn serve_tls(
    stream: tokio::net::TcpStream,
    source: Arc<TlsSource>,
    broker: Arc<Broker>,
    mut session: Session,
    shutdown: watch::Receiver<bool>,
) {
    let peer = session.peer;
    let (config, rules) = source.current();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let idle = std::time::Duration::from_millis(broker.config.connections_max_idle_ms);
    let stream = match tokio::time::timeout(idle, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(%peer, listener = %session.listener.name, error = %e, "TLS handshake failed; closing connection");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, listener = %session.listener.name, "TLS handshake not finished within connections.max.idle.ms; closing connection");
            return;
        }
    };
    match tls::principal(stream.get_ref().1, &rules) {
        Ok(principal) => {
            tracing::info!(%peer, listener = %session.listener.name, principal = %format!("{}:{}", principal.principal_type, principal.name), "TLS connection authenticated");
            session.principal = principal;
        }
        Err(e) => {
            tracing::warn!(%peer, listener = %session.listener.name, error = %e, "SSL authentication failed: no principal for the client certificate; closing connection");
            return;
        }
    }
    let (read_half, write_half) = tokio::io::split(stream);
    connection::serve(read_half, write_half, broker, session, shutdown).await;
}
