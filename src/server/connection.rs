//! One task per connection. The reader decodes each request and runs its handler's
//! synchronous part in arrival order; a writer task sends the responses strictly in that order.

use super::chunked::ChunkedBuf;
use super::frame::{read_frame, FrameError};
use crate::api::{self, api_versions, Handled, Listener, RequestContext};
use crate::broker::Broker;
use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
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
    api_key: ApiKey,
    api_version: i16,
}

struct Pending {
    meta: ResponseMeta,
    reply: Reply,
}

pub struct ConnectionInfo {
    pub broker: Arc<Broker>,
    pub listener: Arc<Listener>,
    pub peer: SocketAddr,
}

pub async fn serve(stream: TcpStream, info: ConnectionInfo, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let peer = info.peer;
    tracing::info!(%peer, "connection opened");
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let (written_tx, mut written) = watch::channel(0u64);
    let writer = tokio::spawn(write_responses(write_half, rx, peer, written_tx));
    let mut queued = 0u64;
    let max_frame = info.broker.config.socket_request_max_bytes;
    let idle = std::time::Duration::from_millis(info.broker.config.connections_max_idle_ms);
    let mut client_id: Option<String> = None;
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(idle, read_frame(&mut reader, max_frame)) => match frame {
                Ok(frame) => frame,
                Err(_) => {
                    tracing::info!(%peer, client_id = client_id.as_deref().unwrap_or(""), "closing idle connection (connections.max.idle.ms)");
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
                tracing::warn!(%peer, client_id = client_id.as_deref().unwrap_or(""), error = %e, "closing connection");
                break;
            }
        };
        if waits_for_earlier_responses(&frame) {
            // Kafka handles one request per connection at a time. Group requests must see the
            // group as it is after the earlier ones (a JoinGroup waiting for the rebalance),
            // not before; everything else may run ahead (pipelined produce shares an fsync).
            while *written.borrow_and_update() < queued {
                if written.changed().await.is_err() {
                    break;
                }
            }
        }
        match handle_request(&info, frame, &mut client_id) {
            Ok(Some(pending)) => {
                queued += 1;
                if tx.send(pending).await.is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(%peer, client_id = client_id.as_deref().unwrap_or(""), "closing connection: {reason}");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
    tracing::info!(%peer, client_id = client_id.as_deref().unwrap_or(""), "connection closed");
}

fn waits_for_earlier_responses(frame: &Bytes) -> bool {
    if frame.len() < 2 {
        return false;
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    matches!(
        ApiKey::try_from(key),
        Ok(ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::ConsumerGroupHeartbeat)
    )
}

/// Decodes and dispatches one request. `Err` closes the connection, as Kafka does for
/// unknown APIs, unsupported versions and undecodable requests.
fn handle_request(
    info: &ConnectionInfo,
    frame: Bytes,
    client_id: &mut Option<String>,
) -> Result<Option<Pending>, String> {
    if frame.len() < 8 {
        return Err(format!(
            "request of {} bytes is shorter than a request header",
            frame.len()
        ));
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Some(entry) = api::lookup(api_key) else {
        return Err(format!("unknown or unsupported API key {api_key}"));
    };
    if api_version < entry.min_version || api_version > entry.max_version {
        if entry.key == ApiKey::ApiVersions {
            let response = api_versions::unsupported_version_response(&info.broker);
            return Ok(Some(Pending {
                meta: ResponseMeta {
                    correlation_id,
                    api_key: ApiKey::ApiVersions,
                    api_version: 0,
                },
                reply: Reply::Ready(Box::new(ResponseKind::ApiVersions(response))),
            }));
        }
        return Err(format!(
            "unsupported version {api_version} of {:?}",
            entry.key
        ));
    }
    tracing::trace!(peer = %info.peer, api = ?entry.key, version = api_version, correlation_id, "request");
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
        if client_id.as_deref() != Some(id.as_str()) {
            *client_id = Some(id.to_string());
        }
    }
    let ctx = RequestContext {
        broker: info.broker.clone(),
        listener: info.listener.clone(),
        api_version,
        client_id: client_id.clone(),
        peer: info.peer,
    };
    let handled = catch_unwind(AssertUnwindSafe(|| (entry.handler)(&ctx, &mut body)))
        .map_err(|_| format!("{:?} v{api_version} handler panicked", entry.key))?
        .map_err(|e| format!("undecodable {:?} v{api_version} request: {e}", entry.key))?;
    let reply = match handled {
        Handled::Ready(r) => Reply::Ready(r),
        Handled::Deferred(f) => Reply::Deferred(f),
        Handled::NoResponse => return Ok(None),
        Handled::Close(reason) => return Err(reason),
    };
    Ok(Some(Pending {
        meta: ResponseMeta {
            correlation_id,
            api_key: entry.key,
            api_version,
        },
        reply,
    }))
}

/// Encodes the size-prefixed response. A Fetch response's record batches go by reference,
/// not copied: they are most of its bytes.
fn encode_response(p: &ResponseMeta, response: &ResponseKind) -> anyhow::Result<Vec<Bytes>> {
    let header_version = p.api_key.response_header_version(p.api_version);
    let header = ResponseHeader::default().with_correlation_id(p.correlation_id);
    let size = header.compute_size(header_version)? + response_size(response, p.api_version)?;
    if let ResponseKind::Fetch(fetch) = response {
        let records = fetch
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().filter_map(|p| p.records.clone()))
            .collect();
        let mut buf = ChunkedBuf::new((4 + size).min(64 * 1024), records);
        buf.put_i32(size as i32);
        header.encode(&mut buf, header_version)?;
        fetch.encode(&mut buf, p.api_version)?;
        return Ok(buf.into_chunks());
    }
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    response.encode(&mut buf, p.api_version)?;
    Ok(vec![buf.freeze()])
}

fn response_size(response: &ResponseKind, version: i16) -> anyhow::Result<usize> {
    macro_rules! size {
        ($($variant:ident),*) => {
            match response {
                $(ResponseKind::$variant(r) => r.compute_size(version),)*
                _ => Ok(0),
            }
        };
    }
    size!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        InitProducerId,
        OffsetForLeaderEpoch,
        DescribeCluster,
        DescribeConfigs,
        FindCoordinator,
        JoinGroup,
        SyncGroup,
        Heartbeat,
        LeaveGroup,
        OffsetCommit,
        OffsetFetch,
        OffsetDelete,
        DescribeGroups,
        ListGroups,
        DeleteGroups,
        ConsumerGroupHeartbeat,
        ConsumerGroupDescribe,
        DescribeAcls,
        CreateAcls,
        DeleteAcls
    )
}

async fn write_responses(
    write_half: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Pending>,
    peer: SocketAddr,
    written: watch::Sender<u64>,
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
        let response = match pending.reply {
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
        let chunks = match encode_response(&meta, &response) {
            Ok(chunks) => chunks,
            Err(e) => {
                tracing::error!(%peer, api = ?meta.api_key, version = meta.api_version, error = %e, "failed to encode response; closing connection");
                break;
            }
        };
        for chunk in chunks {
            if out.write_all(&chunk).await.is_err() {
                return;
            }
        }
        written.send_modify(|n| *n += 1);
    }
    let _ = out.flush().await;
    let _ = out.shutdown().await;
}
