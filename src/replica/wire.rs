//! A minimal async Kafka client for broker-to-broker requests (a follower's Fetch): one
//! request at a time on one connection.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longer than any wait a follower asks the leader for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A response larger than this is refused rather than buffered.
const MAX_RESPONSE: i32 = 256 << 20;

pub struct Wire {
    stream: TcpStream,
    correlation: i32,
    client_id: StrBytes,
}

impl Wire {
    pub async fn connect(addr: &str, client_id: String) -> Result<Wire> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Wire {
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
        })
    }

    pub async fn send<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request, version))
            .await
            .context("request timed out")?
    }

    async fn exchange<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = vec![0u8; 4];
        header.encode(&mut frame, R::header_version(version))?;
        request.encode(&mut frame, version)?;
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&frame).await?;
        let n = self.stream.read_i32().await?;
        if !(4..=MAX_RESPONSE).contains(&n) {
            bail!("implausible response size {n}");
        }
        let mut body = vec![0u8; n as usize];
        self.stream.read_exact(&mut body).await?;
        let mut buf = Bytes::from(body);
        let header = ResponseHeader::decode(&mut buf, R::Response::header_version(version))?;
        if header.correlation_id != self.correlation {
            bail!(
                "response to request {} answered request {}",
                self.correlation,
                header.correlation_id
            );
        }
        R::Response::decode(&mut buf, version)
    }
}
