//! One task per connection. The reader decodes each request and runs its handler's
//! synchronous part in arrival order; a writer task sends the responses strictly in that order,
//! each charged to the client's quotas first (a throttled client's connection is muted).
//! The connection works over any byte stream halves, so TLS can wrap the TCP stream.

use super::frame::{read_frame, FrameError};
use crate::api::chunked::ChunkedBuf;
use crate::api::{
    self, api_versions, ApiEntry, Handled, Ordering, RequestContext, SaslState, Session,
};
use crate::broker::Broker;
use crate::metrics::METRICS;
use crate::security::quotas::{nanos_to_percent, Kind as QuotaKind};
use bytes::{BufMut, Bytes};
use futures::future::BoxFuture;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, watch};

/// Requests read ahead of their responses; beyond this the reader waits (bounded memory).
const MAX_IN_FLIGHT: usize = 32;

enum Reply {
    Ready(Box<ResponseKind>),
    Deferred(BoxFuture<'static, ResponseKind>),
}

/// What the response header and encoder need to know about the request.
#[derive(Clone, Copy)]
struct ResponseMeta {
    correlation_id: i32,
    api: &'static ApiEntry,
    api_version: i16,
    /// When the request was read (its latency runs until the response is written).
    received: Instant,
}

struct Pending {
    meta: ResponseMeta,
    reply: Reply,
    charge: Charge,
}

/// What a request costs against the client's quotas, charged when its response is ready.
struct Charge {
    session: Arc<Session>,
    request_bytes: usize,
    /// Time in the handler's synchronous part (request_percentage).
    handler_nanos: u128,
}

/// Until when (ms on the quotas' clock) the connection reads no further request: KIP-219,
/// the response carries the throttle time and goes out at once, then the connection is muted.
#[derive(Default)]
struct Mute(AtomicI64);

impl Mute {
    fn until(&self, ms: i64) {
        self.0.fetch_max(ms, AtomicOrdering::Relaxed);
    }
}

/// Charges a request to the client's quotas (Kafka's ClientQuotaManager: produce request
/// bytes against producer_byte_rate, fetch response bytes against consumer_byte_rate, handler
/// time against request_percentage); the longest throttle time goes into the response and
/// mutes the connection. A throttled fetch answers no data, as Kafka's. No quota configured:
/// a few atomic loads.
fn charge_quotas(
    broker: &Broker,
    api: &'static ApiEntry,
    version: i16,
    charge: &Charge,
    response: Option<&mut ResponseKind>,
    mute: &Mute,
) {
    let quotas = &broker.quotas;
    let session = &charge.session;
    let (user, client) = (session.principal.name.as_str(), session.client());
    let mut fetched = None;
    let bandwidth = match (api.key, &response) {
        (ApiKey::Produce, _) => quotas.record(
            QuotaKind::Produce,
            user,
            client,
            charge.request_bytes as f64,
        ),
        (ApiKey::Fetch, Some(r)) if quotas.enabled(QuotaKind::Fetch) => {
            let bytes = (api.response_size)(r, version).unwrap_or(0) as f64;
            fetched = Some(bytes);
            quotas.record(QuotaKind::Fetch, user, client, bytes)
        }
        _ => 0,
    };
    // Kafka does not throttle what a client needs to authenticate.
    let request = if api.before_auth {
        0
    } else {
        quotas.record(
            QuotaKind::Request,
            user,
            client,
            nanos_to_percent(charge.handler_nanos),
        )
    };
    let throttle = bandwidth.max(request).min(i32::MAX as u64);
    if throttle == 0 {
        return;
    }
    if let Some(response) = response {
        if let (Some(bytes), ResponseKind::Fetch(f)) = (fetched, &mut *response) {
            quotas.unrecord(QuotaKind::Fetch, user, client, bytes);
            f.responses.clear();
        }
        (api.set_throttle)(response, throttle as i32);
    }
    tracing::debug!(peer = %session.peer, client_id = client, api = ?api.key, throttle_ms = throttle, "quota exceeded; muting the connection");
    METRICS.throttled(throttle);
    mute.until(quotas.now_ms() + throttle as i64);
}

/// Serves one connection until the client closes it, an error closes it, or shutdown.
pub async fn serve<R, W>(
    read_half: R,
    write_half: W,
    broker: Arc<Broker>,
    session: Session,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut session = Arc::new(session);
    let peer = session.peer;
    tracing::info!(%peer, listener = %session.listener.name, "connection opened");
    METRICS.connection_opened();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let (written_tx, mut written) = watch::channel(0u64);
    let mute = Arc::new(Mute::default());
    let writer = tokio::spawn(write_responses(
        write_half,
        rx,
        peer,
        written_tx,
        broker.clone(),
        mute.clone(),
    ));
    let mut queued = 0u64;
    let idle = std::time::Duration::from_millis(broker.config.connections_max_idle_ms);
    loop {
        // Until SASL authentication succeeds, frames are held to sasl.server.max.receive.size.
        let max_frame = if session.awaiting_sasl() {
            broker
                .config
                .sasl_server_max_receive_size
                .min(broker.config.socket_request_max_bytes)
        } else {
            broker.config.socket_request_max_bytes
        };
        let frame = tokio::select! {
            frame = tokio::time::timeout(idle, read_frame(&mut reader, max_frame)) => match frame {
                Ok(frame) => frame,
                Err(_) => {
                    tracing::info!(%peer, client_id = session.client(), "closing idle connection (connections.max.idle.ms)");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(FrameError::Io(e)) => {
                tracing::debug!(%peer, error = %e, "read failed");
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, client_id = session.client(), error = %e, "closing connection");
                break;
            }
        };
        // A throttled client's next request waits out its throttle time (KIP-219 mute).
        let muted = mute.0.load(AtomicOrdering::Relaxed) - broker.quotas.now_ms();
        if muted > 0 {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(muted as u64)) => {}
                _ = shutdown.changed() => break,
            }
        }
        let outcome = match api_of(&frame) {
            Ok(entry) if session.awaiting_sasl() && !entry.before_auth => Err(format!(
                "unexpected {:?} request before SASL authentication",
                entry.key
            )),
            // Kafka closes such a connection without an answer (KIP-368).
            Ok(entry)
                if session.sasl_session_expired(Instant::now())
                    && !matches!(entry.key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) =>
            {
                Err(format!(
                    "{:?} after the SASL session expired without re-authentication (connections.max.reauth.ms)",
                    entry.key
                ))
            }
            Ok(entry) => {
                if entry.ordering == Ordering::AfterEarlierResponses {
                    while *written.borrow_and_update() < queued {
                        if written.changed().await.is_err() {
                            break;
                        }
                    }
                }
                handle_request(&broker, &mut session, entry, frame, &mute)
            }
            Err(reason) => Err(reason),
        };
        match outcome {
            Ok(Step::Reply(pending)) => {
                queued += 1;
                if tx.send(pending).await.is_err() {
                    break;
                }
            }
            Ok(Step::ReplyThenClose(pending, reason)) => {
                tracing::info!(%peer, client_id = session.client(), "closing connection after the response: {reason}");
                let _ = tx.send(pending).await;
                break;
            }
            Ok(Step::Nothing) => {}
            Err(reason) => {
                METRICS.request_refused();
                tracing::warn!(%peer, client_id = session.client(), "closing connection: {reason}");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
    METRICS.connection_closed();
    tracing::info!(%peer, client_id = session.client(), "connection closed");
}

/// The table entry of a request frame. `Err` closes the connection, as Kafka does for unknown
/// APIs.
fn api_of(frame: &Bytes) -> Result<&'static ApiEntry, String> {
    if frame.len() < 8 {
        return Err(format!(
            "request of {} bytes is shorter than a request header",
            frame.len()
        ));
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    api::lookup(api_key).ok_or_else(|| format!("unknown or unsupported API key {api_key}"))
}

/// What a request leads to on the connection.
enum Step {
    Reply(Pending),
    Nothing,
    /// Send this response, then close (a failed SASL exchange).
    ReplyThenClose(Pending, String),
}

/// Decodes and dispatches one request. `Err` closes the connection, as Kafka does for
/// unsupported versions and undecodable requests.
fn handle_request(
    broker: &Arc<Broker>,
    session: &mut Arc<Session>,
    entry: &'static ApiEntry,
    frame: Bytes,
    mute: &Mute,
) -> Result<Step, String> {
    let received = Instant::now();
    let request_bytes = frame.len();
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if api_version < entry.min_version || api_version > entry.max_version {
        if entry.key == ApiKey::ApiVersions {
            let response = api_versions::unsupported_version_response(broker);
            return Ok(Step::Reply(Pending {
                meta: ResponseMeta {
                    correlation_id,
                    api: entry,
                    api_version: 0,
                    received: Instant::now(),
                },
                reply: Reply::Ready(Box::new(ResponseKind::ApiVersions(response))),
                charge: Charge {
                    session: session.clone(),
                    request_bytes,
                    handler_nanos: 0,
                },
            }));
        }
        return Err(format!(
            "unsupported version {api_version} of {:?}",
            entry.key
        ));
    }
    tracing::trace!(peer = %session.peer, api = ?entry.key, version = api_version, correlation_id, "request");
    let mut body = frame;
    let header_version = entry.key.request_header_version(api_version);
    let header = catch_unwind(AssertUnwindSafe(|| {
        RequestHeader::decode(&mut body, header_version)
    }))
    .map_err(|_| "request header decoder panicked".to_string())?
    .map_err(|e| {
        format!(
            "undecodable {:?} v{api_version} request header: {e}",
            entry.key
        )
    })?;
    if let Some(id) = &header.client_id {
        if session.client_id.as_deref() != Some(id.as_str()) {
            Arc::make_mut(session).client_id = Some(id.to_string());
        }
    }
    let ctx = RequestContext {
        broker: broker.clone(),
        session: session.clone(),
        api_version,
    };
    let handled = catch_unwind(AssertUnwindSafe(|| (entry.handle)(&ctx, &mut body)))
        .map_err(|_| format!("{:?} v{api_version} handler panicked", entry.key))?
        .map_err(|e| format!("undecodable {:?} v{api_version} request: {e}", entry.key))?;
    let charge = Charge {
        session: session.clone(),
        request_bytes,
        handler_nanos: received.elapsed().as_nanos(),
    };
    let meta = ResponseMeta {
        correlation_id,
        api: entry,
        api_version,
        received,
    };
    let reply = match handled {
        Handled::Ready(r) => Reply::Ready(r),
        Handled::Deferred(f) => Reply::Deferred(f),
        Handled::NoResponse => {
            // acks=0: no response to carry the throttle time; the mute still applies.
            charge_quotas(broker, entry, api_version, &charge, None, mute);
            METRICS.request(entry.key as i16, api_version, received.elapsed());
            return Ok(Step::Nothing);
        }
        Handled::Close(reason) => return Err(reason),
        Handled::Sasl {
            response,
            sasl,
            principal,
            close,
        } => {
            let s = Arc::make_mut(session);
            if let SaslState::Handshaken { mechanism } = &sasl {
                s.sasl_mechanism = Some(mechanism.clone());
            }
            let now_authenticated = sasl == SaslState::Authenticated && principal.is_some();
            s.sasl = sasl;
            if let Some(p) = principal {
                s.principal = p;
            }
            if now_authenticated {
                // The lifetime the response tells the client is the one enforced.
                s.authenticated_once = true;
                s.sasl_session_expires = match &*response {
                    ResponseKind::SaslAuthenticate(r) if r.session_lifetime_ms > 0 => Some(
                        Instant::now()
                            + std::time::Duration::from_millis(r.session_lifetime_ms as u64),
                    ),
                    _ => None,
                };
            }
            match close {
                None => Reply::Ready(response),
                Some(delay) => {
                    let reply = Reply::Deferred(Box::pin(async move {
                        tokio::time::sleep(delay).await;
                        *response
                    }));
                    return Ok(Step::ReplyThenClose(
                        Pending {
                            meta,
                            reply,
                            charge,
                        },
                        format!("{:?} failed", entry.key),
                    ));
                }
            }
        }
    };
    Ok(Step::Reply(Pending {
        meta,
        reply,
        charge,
    }))
}

/// Encodes the size-prefixed response. Large byte fields the entry names (a Fetch response's
/// record batches, most of its bytes) go by reference, not copied.
fn encode_response(p: &ResponseMeta, response: &ResponseKind) -> anyhow::Result<Vec<Bytes>> {
    let header_version = p.api.key.response_header_version(p.api_version);
    let header = ResponseHeader::default().with_correlation_id(p.correlation_id);
    let size =
        header.compute_size(header_version)? + (p.api.response_size)(response, p.api_version)?;
    let shared = (p.api.shared_bytes)(response);
    let mut buf = ChunkedBuf::new((4 + size).min(64 * 1024), shared);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    (p.api.encode_response)(response, &mut buf, p.api_version)?;
    Ok(buf.into_chunks())
}

async fn write_responses<W: AsyncWrite + Unpin>(
    write_half: W,
    mut rx: mpsc::Receiver<Pending>,
    peer: std::net::SocketAddr,
    written: watch::Sender<u64>,
    broker: Arc<Broker>,
    mute: Arc<Mute>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, write_half);
    loop {
        let pending = match rx.try_recv() {
            Ok(p) => p,
            Err(_) => {
                if out.flush().await.is_err() {
                    return;
                }
                match rx.recv().await {
                    Some(p) => p,
                    None => break,
                }
            }
        };
        let mut response = match pending.reply {
            Reply::Ready(r) => *r,
            Reply::Deferred(f) => {
                // Send what is ready before waiting (fsync, long poll).
                if out.flush().await.is_err() {
                    return;
                }
                f.await
            }
        };
        let meta = pending.meta;
        charge_quotas(
            &broker,
            meta.api,
            meta.api_version,
            &pending.charge,
            Some(&mut response),
            &mute,
        );
        METRICS.response(meta.api.key as i16, &response);
        let chunks = match encode_response(&meta, &response) {
            Ok(chunks) => chunks,
            Err(e) => {
                tracing::error!(%peer, api = ?meta.api.key, version = meta.api_version, error = %e, "failed to encode response; closing connection");
                break;
            }
        };
        for chunk in chunks {
            if out.write_all(&chunk).await.is_err() {
                return;
            }
        }
        written.send_modify(|n| *n += 1);
        METRICS.request(
            meta.api.key as i16,
            meta.api_version,
            meta.received.elapsed(),
        );
    }
    let _ = out.flush().await;
    let _ = out.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ResponseHeader;

    /// Every API in the table: its response goes through the writer with a length prefix that
    /// matches, and decodes back, at every version served.
    #[test]
    fn every_table_entry_round_trips_its_response() {
        for entry in api::APIS {
            for version in entry.min_version..=entry.max_version {
                let meta = ResponseMeta {
                    correlation_id: 7,
                    api: entry,
                    api_version: version,
                    received: Instant::now(),
                };
                let response = (entry.sample_response)();
                let chunks = encode_response(&meta, &response)
                    .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", entry.key));
                let mut bytes: Bytes = chunks.concat().into();
                let size = i32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
                assert_eq!(
                    size,
                    bytes.len() - 4,
                    "{:?} v{version} length prefix",
                    entry.key
                );
                let _ = bytes.split_to(4);
                let header_version = entry.key.response_header_version(version);
                let header = ResponseHeader::decode(&mut bytes, header_version).unwrap();
                assert_eq!(header.correlation_id, 7);
                let decoded = ResponseKind::decode(entry.key, &mut bytes, version)
                    .unwrap_or_else(|e| panic!("{:?} v{version} decode: {e}", entry.key));
                assert_eq!(decoded, response, "{:?} v{version}", entry.key);
                assert!(
                    bytes.is_empty(),
                    "{:?} v{version} trailing bytes",
                    entry.key
                );
            }
        }
    }

    /// A handler answering with another API's response closes the connection instead of
    /// corrupting the stream with a wrong length prefix.
    #[test]
    fn a_mismatched_response_is_refused() {
        let entry = api::lookup(ApiKey::Produce as i16).unwrap();
        let meta = ResponseMeta {
            correlation_id: 1,
            api: entry,
            api_version: 9,
            received: Instant::now(),
        };
        let response = ResponseKind::Heartbeat(Default::default());
        assert!(encode_response(&meta, &response).is_err());
    }
}
