//! A small blocking Kafka client over kafka-protocol: connect, ApiVersions to pick each
//! request's version, Metadata, and routing to partition leaders, group coordinators and the
//! controller; TLS (rustls) and SASL PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512 when asked. It knows
//! nothing of the broker in this crate (only the SCRAM arithmetic is shared); it talks to any
//! Kafka broker.

use super::error::{CliError, Result};
use super::Common;
use crate::security::sasl_scram::{ScramClient, ScramMechanism};
use bytes::{Buf, Bytes};
use clap::ValueEnum;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "sluice-cli";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than any broker-side wait the CLI asks for (Fetch waits 500 ms, admin calls 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);
/// What admin requests give the broker (CreateTopics, DeleteRecords...).
pub const ADMIN_TIMEOUT_MS: i32 = 30_000;

pub fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The TLS and SASL options of every client command (after the command group or after the
/// subcommand; also from the environment).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SecurityArgs {
    /// Connect with TLS (implied by --tls-ca, --tls-cert and --tls-key).
    #[arg(long, env = "SLUICE_TLS_ENABLED", global = true)]
    pub tls_enabled: bool,
    /// PEM file of the certificates to trust (default: the system's trusted roots).
    #[arg(long, env = "SLUICE_TLS_CA", value_name = "FILE", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate chain of this client, for brokers that require mTLS (with --tls-key).
    #[arg(long, env = "SLUICE_TLS_CERT", value_name = "FILE", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SLUICE_TLS_KEY", value_name = "FILE", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Authenticate with SASL (with --user and --password).
    #[arg(
        long,
        env = "SLUICE_SASL_MECHANISM",
        value_enum,
        ignore_case = true,
        global = true
    )]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name.
    #[arg(long, env = "SLUICE_USER", global = true)]
    pub user: Option<String>,
    /// SASL password.
    #[arg(long, env = "SLUICE_PASSWORD", hide_env_values = true, global = true)]
    pub password: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN")]
    Plain,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Clone)]
struct SaslLogin {
    mechanism: SaslMechanism,
    user: String,
    password: String,
}

/// SecurityArgs checked and loaded: what every connection of a command uses.
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<SaslLogin>,
}

impl SecurityArgs {
    pub fn resolve(&self) -> Result<Security> {
        let tls_wanted = self.tls_enabled
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some();
        let tls = if tls_wanted {
            Some(Arc::new(self.tls_config()?))
        } else {
            None
        };
        let sasl = match (&self.sasl_mechanism, &self.user, &self.password) {
            (None, None, None) => None,
            (Some(mechanism), Some(user), Some(password)) => Some(SaslLogin {
                mechanism: *mechanism,
                user: user.clone(),
                password: password.clone(),
            }),
            (None, _, _) => {
                return Err(CliError::Usage(
                    "--user and --password need --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                        .into(),
                ))
            }
            _ => {
                return Err(CliError::Usage(
                    "--sasl-mechanism needs both --user and --password".into(),
                ))
            }
        };
        Ok(Security { tls, sasl })
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CliError::Other(format!("TLS: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        match &self.tls_ca {
            Some(path) => {
                let pem = read_pem(path, "--tls-ca")?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| bad_pem(path, &e))?;
                    roots.add(cert).map_err(|e| bad_pem(path, &e))?;
                }
                if roots.is_empty() {
                    return Err(CliError::Usage(format!(
                        "--tls-ca {}: no certificate in the file",
                        path.display()
                    )));
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        let builder = builder.with_root_certificates(roots);
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(cert), Some(key)) => {
                let chain_pem = read_pem(cert, "--tls-cert")?;
                let chain: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(&chain_pem)
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|e| bad_pem(cert, &e))?;
                if chain.is_empty() {
                    return Err(CliError::Usage(format!(
                        "--tls-cert {}: no certificate in the file",
                        cert.display()
                    )));
                }
                let key_pem = read_pem(key, "--tls-key")?;
                let private_key =
                    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad_pem(key, &e))?;
                builder
                    .with_client_auth_cert(chain, private_key)
                    .map_err(|e| CliError::Usage(format!("--tls-cert/--tls-key: {e}")))
            }
            _ => Err(CliError::Usage(
                "--tls-cert and --tls-key go together".into(),
            )),
        }
    }
}

fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))
}

fn bad_pem(path: &Path, e: &dyn std::fmt::Display) -> CliError {
    CliError::Usage(format!("{}: not usable PEM: {e}", path.display()))
}

/// A connection's byte stream: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The host of HOST:PORT or [V6]:PORT, the name a broker's certificate must carry.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// TLS over `tcp`, the handshake done (so a bad certificate is reported as such).
fn tls_stream(
    addr: &str,
    config: &Arc<rustls::ClientConfig>,
    mut tcp: TcpStream,
) -> Result<Stream> {
    let host = host_of(addr);
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| CliError::Usage(format!("{host} is neither a DNS name nor an IP address")))?;
    let mut tls = rustls::ClientConnection::new(config.clone(), name)
        .map_err(|e| CliError::Other(format!("TLS: {e}")))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| {
            CliError::Connection(format!("TLS handshake with broker {addr} failed: {e}"))
        })?;
    }
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(tls, tcp))))
}

/// One connection to one broker, with the versions it serves.
pub struct Conn {
    pub addr: String,
    stream: Stream,
    correlation: i32,
    versions: HashMap<i16, (i16, i16)>,
    pub api_versions: ApiVersionsResponse,
    login: Option<SaslLogin>,
    /// KIP-368: when to re-authenticate, 90% into the session lifetime the broker announced
    /// (a request after the expiry would get the connection closed).
    reauthenticate_at: Option<Instant>,
}

impl Conn {
    pub fn connect(addr: &str, security: &Security) -> Result<Conn> {
        let resolved: Vec<_> = addr
            .to_socket_addrs()
            .map_err(|e| {
                CliError::Connection(format!("cannot resolve broker address {addr}: {e}"))
            })?
            .collect();
        let mut last = None;
        for a in resolved {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
                    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
                    stream.set_nodelay(true)?;
                    let stream = match &security.tls {
                        Some(config) => tls_stream(addr, config, stream)?,
                        None => Stream::Plain(stream),
                    };
                    let mut conn = Conn {
                        addr: addr.to_string(),
                        stream,
                        correlation: 0,
                        versions: HashMap::new(),
                        api_versions: ApiVersionsResponse::default(),
                        login: security.sasl.clone(),
                        reauthenticate_at: None,
                    };
                    conn.handshake()?;
                    if let Some(login) = &security.sasl {
                        conn.authenticate(login)?;
                    }
                    return Ok(conn);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(CliError::Connection(match last {
            Some(e) => format!("cannot connect to broker {addr}: {e}"),
            None => format!("cannot connect to broker {addr}: no address"),
        }))
    }

    /// ApiVersions v3 (v0 if the broker is older and says UNSUPPORTED_VERSION).
    fn handshake(&mut self) -> Result<()> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(str("sluice-cli"))
            .with_client_software_version(str(env!("CARGO_PKG_VERSION")));
        let mut response = self.send_at(&request, 3)?;
        if response.error_code == 35 {
            response = self.send_at(&ApiVersionsRequest::default(), 0)?;
        }
        CliError::check(response.error_code, None, || "ApiVersions failed".into())?;
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        self.api_versions = response;
        Ok(())
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds: one for PLAIN, two for SCRAM (whose
    /// server-final message is checked: the broker proves it holds the credential).
    fn authenticate(&mut self, login: &SaslLogin) -> Result<()> {
        let mechanism = login.mechanism.name();
        let v = self.version::<SaslHandshakeRequest>(1)?;
        if v < 1 {
            return Err(CliError::kafka(
                35,
                format!("the broker at {} serves only SaslHandshake v0", self.addr),
            ));
        }
        let handshake = self.send_at(
            &SaslHandshakeRequest::default().with_mechanism(str(mechanism)),
            v,
        )?;
        let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
        CliError::check(handshake.error_code, None, || match handshake.error_code {
            33 => format!(
                "the broker at {} does not serve SASL mechanism {mechanism} (it offers: {})",
                self.addr,
                offered.join(", ")
            ),
            _ => format!("SASL handshake with {} failed", self.addr),
        })?;
        let v = self.version::<SaslAuthenticateRequest>(2)?;
        let scram = match login.mechanism {
            SaslMechanism::Plain => None,
            SaslMechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            SaslMechanism::ScramSha512 => Some(ScramMechanism::Sha512),
        };
        let refused =
            |e: String| CliError::kafka(58, format!("{mechanism} with {}: {e}", login.user));
        let lifetime_ms = match scram {
            None => {
                let token = format!("\0{}\0{}", login.user, login.password);
                self.sasl_round(token.into_bytes(), v)?.1
            }
            Some(m) => {
                let (mut client, first) = ScramClient::start(m, &login.user, &login.password);
                let (server_first, _) = self.sasl_round(first, v)?;
                let last = client.client_final(&server_first).map_err(refused)?;
                let (server_final, lifetime_ms) = self.sasl_round(last, v)?;
                client.verify_server_final(&server_final).map_err(refused)?;
                lifetime_ms
            }
        };
        self.reauthenticate_at = (lifetime_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(lifetime_ms as u64 * 9 / 10));
        Ok(())
    }

    /// One SaslAuthenticate: (the server's token, session_lifetime_ms).
    fn sasl_round(&mut self, token: Vec<u8>, v: i16) -> Result<(Bytes, i64)> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response = self.send_at(&request, v)?;
        CliError::check(
            response.error_code,
            response.error_message.as_deref(),
            || format!("SASL authentication with {} failed", self.addr),
        )?;
        Ok((response.auth_bytes, response.session_lifetime_ms))
    }

    /// Re-authenticates (KIP-368) when the session is near its end.
    fn keep_session(&mut self) -> Result<()> {
        if self.reauthenticate_at.is_some_and(|t| Instant::now() >= t) {
            if let Some(login) = self.login.clone() {
                self.authenticate(&login)?;
            }
        }
        Ok(())
    }

    /// The highest version both sides know, at most `cap` (the highest whose fields the CLI
    /// fills in correctly).
    pub fn version<R: Request>(&self, cap: i16) -> Result<i16> {
        let name = api_name(R::KEY);
        let Some(&(min, max)) = self.versions.get(&R::KEY) else {
            return Err(CliError::kafka(
                35,
                format!("the broker at {} does not serve {name}", self.addr),
            ));
        };
        let v = max.min(R::VERSIONS.max).min(cap);
        if v < min.max(R::VERSIONS.min) {
            return Err(CliError::kafka(
                35,
                format!(
                    "the broker at {} serves {name} v{min}-{max}, this client v{}-{}",
                    self.addr,
                    R::VERSIONS.min,
                    cap.min(R::VERSIONS.max)
                ),
            ));
        }
        Ok(v)
    }

    pub fn supports(&self, key: ApiKey) -> bool {
        self.versions.contains_key(&(key as i16))
    }

    /// `request` at the best version up to `cap`: (version, response).
    pub fn send<R: Request>(&mut self, request: &R, cap: i16) -> Result<(i16, R::Response)> {
        let v = self.version::<R>(cap)?;
        Ok((v, self.send_at(request, v)?))
    }

    fn write_request<R: Request>(&mut self, request: &R, version: i16) -> Result<i32> {
        if R::KEY != ApiKey::SaslHandshake as i16 && R::KEY != ApiKey::SaslAuthenticate as i16 {
            self.keep_session()?;
        }
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(str(CLIENT_ID)));
        let mut frame = vec![0u8; 4];
        let encode = |frame: &mut Vec<u8>| -> anyhow::Result<()> {
            header.encode(frame, R::header_version(version))?;
            request.encode(frame, version)
        };
        encode(&mut frame).map_err(|e| {
            CliError::Other(format!(
                "cannot encode {} v{version}: {e}",
                api_name(R::KEY)
            ))
        })?;
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&frame).map_err(|e| self.lost(e))?;
        Ok(self.correlation)
    }

    pub fn send_at<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        let correlation = self.write_request(request, version)?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).map_err(|e| self.lost(e))?;
        let n = i32::from_be_bytes(len);
        if !(4..=(512 << 20)).contains(&n) {
            return Err(CliError::Other(format!(
                "implausible response size {n} from {}",
                self.addr
            )));
        }
        let mut body = vec![0u8; n as usize];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| self.lost(e))?;
        let mut buf = Bytes::from(body);
        let decode = |buf: &mut Bytes| -> anyhow::Result<(ResponseHeader, R::Response)> {
            let header = ResponseHeader::decode(buf, R::Response::header_version(version))?;
            let response = R::Response::decode(buf, version)?;
            Ok((header, response))
        };
        let (header, response) = decode(&mut buf).map_err(|e| {
            CliError::Other(format!(
                "cannot decode the {} v{version} response of {}: {e}",
                api_name(R::KEY),
                self.addr
            ))
        })?;
        if header.correlation_id != correlation {
            return Err(CliError::Other(format!(
                "response to request {} answered request {}",
                correlation, header.correlation_id
            )));
        }
        let _ = buf.remaining();
        Ok(response)
    }

    /// A request the broker does not answer (Produce with acks=0).
    pub fn send_oneway<R: Request>(&mut self, request: &R, version: i16) -> Result<()> {
        self.write_request(request, version).map(|_| ())
    }

    fn lost(&self, e: std::io::Error) -> CliError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                CliError::Connection(format!(
                    "broker {} did not answer within {REQUEST_TIMEOUT:?}",
                    self.addr
                ))
            }
            _ => CliError::Connection(format!("connection to broker {} lost: {e}", self.addr)),
        }
    }
}

pub fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => format!("API {key}"),
    }
}

/// A broker from Metadata.
#[derive(Clone, Debug)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Connections to the cluster: the bootstrap one and one per broker id, opened when needed.
pub struct Client {
    bootstrap: Vec<String>,
    security: Security,
    boot: Option<Conn>,
    conns: HashMap<i32, Conn>,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    pub controller_id: i32,
}

impl Client {
    pub fn new(common: &Common) -> Result<Client> {
        Ok(Client {
            security: common.security.resolve()?,
            bootstrap: common
                .brokers
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            boot: None,
            conns: HashMap::new(),
            brokers: BTreeMap::new(),
            controller_id: -1,
        })
    }

    /// The bootstrap connection: the first of `--brokers` that answers ApiVersions.
    pub fn any(&mut self) -> Result<&mut Conn> {
        if self.boot.is_none() {
            let mut errors = Vec::new();
            for addr in &self.bootstrap {
                match Conn::connect(addr, &self.security) {
                    Ok(c) => {
                        self.boot = Some(c);
                        break;
                    }
                    Err(CliError::Connection(e)) => errors.push(e),
                    Err(e) => return Err(e),
                }
            }
            if self.boot.is_none() {
                return Err(CliError::Connection(if errors.is_empty() {
                    "no broker address given (--brokers)".into()
                } else {
                    errors.join("; ")
                }));
            }
        }
        Ok(self.boot.as_mut().unwrap())
    }

    /// Metadata for `topics` (all when None); never creates topics. Updates the broker list.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        let conn = self.any()?;
        let v = conn.version::<MetadataRequest>(12)?;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        metadata_request::MetadataRequestTopic::default()
                            .with_name(Some(str(t).into()))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let response = conn.send_at(&request, v)?;
        self.brokers = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerInfo {
                        id: b.node_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        self.controller_id = response.controller_id.0;
        Ok(response)
    }

    /// One topic's metadata; UNKNOWN_TOPIC_OR_PARTITION (and any other topic error) as an Err.
    pub fn topic(&mut self, topic: &str) -> Result<metadata_response::MetadataResponseTopic> {
        let md = self.metadata(Some(&[topic.to_string()]))?;
        let t = md
            .topics
            .into_iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))
            .ok_or_else(|| CliError::kafka(3, format!("Topic '{topic}' does not exist.")))?;
        CliError::check(t.error_code, None, || match t.error_code {
            3 => format!("Topic '{topic}' does not exist."),
            _ => format!("topic '{topic}'"),
        })?;
        Ok(t)
    }

    /// The connection to broker `id` (Metadata must have listed it).
    pub fn broker(&mut self, id: i32) -> Result<&mut Conn> {
        if !self.conns.contains_key(&id) {
            if self.brokers.is_empty() {
                self.metadata(Some(&[]))?;
            }
            let info = self.brokers.get(&id).cloned().ok_or_else(|| {
                CliError::kafka(8, format!("broker {id} is not in the cluster's metadata"))
            })?;
            let conn = Conn::connect(&info.addr(), &self.security)?;
            self.conns.insert(id, conn);
        }
        Ok(self.conns.get_mut(&id).unwrap())
    }

    /// Where admin requests go: the controller Metadata names, else the bootstrap broker
    /// (KRaft brokers forward them to the controller themselves).
    pub fn controller(&mut self) -> Result<&mut Conn> {
        if self.brokers.is_empty() {
            self.metadata(Some(&[]))?;
        }
        let id = self.controller_id;
        if self.brokers.contains_key(&id) {
            self.broker(id)
        } else {
            self.any()
        }
    }

    /// The coordinator of `group` (FindCoordinator, retried while it is loading).
    pub fn coordinator(&mut self, group: &str) -> Result<i32> {
        let mut last = CliError::kafka(15, "no coordinator found");
        for attempt in 0..10 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            let conn = self.any()?;
            let v = conn.version::<FindCoordinatorRequest>(6)?;
            let mut request = FindCoordinatorRequest::default();
            if v >= 4 {
                request.coordinator_keys = vec![str(group)];
            } else {
                request.key = str(group);
            }
            let response = conn.send_at(&request, v)?;
            let (code, message, node) = if v >= 4 {
                let c = response.coordinators.first().ok_or_else(|| {
                    CliError::Other("FindCoordinator answered no coordinator".into())
                })?;
                (c.error_code, c.error_message.clone(), c.node_id.0)
            } else {
                (
                    response.error_code,
                    response.error_message.clone(),
                    response.node_id.0,
                )
            };
            match CliError::check(code, message.as_deref(), || {
                format!("no coordinator for group '{group}'")
            }) {
                Ok(()) => {
                    self.metadata(Some(&[]))?;
                    return Ok(node);
                }
                Err(e) if matches!(code, 14 | 15) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

/// One config entry of DescribeConfigs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: &'static str,
    pub read_only: bool,
    pub sensitive: bool,
}

/// DescribeConfigs' config_source names (Kafka's ConfigSource).
pub fn config_source(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// An IncrementalAlterConfigs operation.
#[derive(Clone, Copy, Debug)]
pub enum AlterOp {
    Set = 0,
    Delete = 1,
    Append = 2,
    Subtract = 3,
}

impl Client {
    /// Partition -> leader id of a topic, sorted by partition.
    pub fn leaders(&mut self, topic: &str) -> Result<Vec<(i32, i32)>> {
        let t = self.topic(topic)?;
        let mut v: Vec<(i32, i32)> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    /// ListOffsets for `partitions` ((partition, leader)) at `timestamp` (-2 earliest, -1
    /// latest, else the first offset with a timestamp at or after it): partition -> offset
    /// (-1 when no record is that late) or the partition's error.
    pub fn list_offsets(
        &mut self,
        topic: &str,
        partitions: &[(i32, i32)],
        timestamp: i64,
    ) -> Result<BTreeMap<i32, Result<i64>>> {
        self.list_offsets_isolated(topic, partitions, timestamp, 0)
    }

    /// `list_offsets` with an isolation level: 1 (read_committed) answers "latest" with the
    /// last stable offset.
    pub fn list_offsets_isolated(
        &mut self,
        topic: &str,
        partitions: &[(i32, i32)],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<BTreeMap<i32, Result<i64>>> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for &(p, leader) in partitions {
            if leader < 0 {
                out.insert(
                    p,
                    Err(CliError::kafka(5, format!("partition {p} has no leader"))),
                );
            } else {
                by_leader.entry(leader).or_default().push(p);
            }
        }
        for (leader, parts) in by_leader {
            let conn = self.broker(leader)?;
            let v = conn.version::<ListOffsetsRequest>(9)?;
            let request = ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_isolation_level(isolation_level)
                .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                    .with_name(str(topic).into())
                    .with_partitions(
                        parts
                            .iter()
                            .map(|&p| {
                                list_offsets_request::ListOffsetsPartition::default()
                                    .with_partition_index(p)
                                    .with_current_leader_epoch(-1)
                                    .with_timestamp(timestamp)
                            })
                            .collect(),
                    )]);
            let response = conn.send_at(&request, v)?;
            for t in response.topics {
                for p in t.partitions {
                    let r = CliError::check(p.error_code, None, || {
                        format!("ListOffsets of {topic}/{}", p.partition_index)
                    })
                    .map(|()| p.offset);
                    out.insert(p.partition_index, r);
                }
            }
        }
        Ok(out)
    }

    /// DescribeConfigs of one resource (all keys when `keys` is empty), sent to `broker` when
    /// given (a broker's own configs), else to the bootstrap broker.
    pub fn describe_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        keys: &[String],
        broker: Option<i32>,
    ) -> Result<Vec<ConfigEntry>> {
        let conn = match broker {
            Some(id) => self.broker(id)?,
            None => self.any()?,
        };
        let v = conn.version::<DescribeConfigsRequest>(4)?;
        let request = DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str(name))
                .with_configuration_keys(if keys.is_empty() {
                    None
                } else {
                    Some(keys.iter().map(|k| str(k)).collect())
                }),
        ]);
        let response = conn.send_at(&request, v)?;
        let r = response
            .results
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Other("DescribeConfigs answered no resource".into()))?;
        CliError::check(r.error_code, r.error_message.as_deref(), || {
            format!("describing the configs of '{name}'")
        })?;
        let mut entries: Vec<ConfigEntry> = r
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: config_source(c.config_source),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// IncrementalAlterConfigs of one resource, to `broker` when given.
    pub fn alter_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        ops: &[(String, AlterOp, Option<String>)],
        broker: Option<i32>,
        validate_only: bool,
    ) -> Result<()> {
        let conn = match broker {
            Some(id) => self.broker(id)?,
            None => self.controller()?,
        };
        let v = conn.version::<IncrementalAlterConfigsRequest>(1)?;
        let request = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(str(name))
                    .with_configs(
                        ops.iter()
                            .map(|(k, op, value)| {
                                incremental_alter_configs_request::AlterableConfig::default()
                                    .with_name(str(k))
                                    .with_config_operation(*op as i8)
                                    .with_value(value.as_deref().map(str))
                            })
                            .collect(),
                    ),
            ]);
        let response = conn.send_at(&request, v)?;
        let r =
            response.responses.into_iter().next().ok_or_else(|| {
                CliError::Other("IncrementalAlterConfigs answered nothing".into())
            })?;
        CliError::check(r.error_code, r.error_message.as_deref(), || {
            format!("altering the configs of '{name}'")
        })
    }
}

/// topic -> partition -> offset.
pub type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;

impl Client {
    /// A group's committed offsets (OffsetFetch), of `topics` or of every topic when None.
    /// Partitions without a committed offset are left out.
    pub fn committed(&mut self, group: &str, topics: Option<&[String]>) -> Result<Offsets> {
        self.on_coordinator(group, |c, id| c.committed_at(group, id, topics))
    }

    /// Runs `f` with the group's coordinator; finds it again and retries while the
    /// coordinator moves or loads (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
    /// COORDINATOR_NOT_AVAILABLE: a new Kafka creates and loads __consumer_offsets first).
    pub fn on_coordinator<T>(
        &mut self,
        group: &str,
        mut f: impl FnMut(&mut Client, i32) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let coordinator = self.coordinator(group)?;
            match f(self, coordinator) {
                Err(CliError::Kafka { code: 14..=16, .. }) if attempt < 40 => {
                    attempt += 1;
                    self.conns.remove(&coordinator);
                    std::thread::sleep(Duration::from_millis(250));
                }
                r => return r,
            }
        }
    }

    fn committed_at(
        &mut self,
        group: &str,
        coordinator: i32,
        topics: Option<&[String]>,
    ) -> Result<Offsets> {
        let conn = self.broker(coordinator)?;
        let v = conn.version::<OffsetFetchRequest>(9)?;
        // Partitions of named topics: all (the broker answers -1 for those never committed).
        let mut request = OffsetFetchRequest::default();
        let topic_names: Option<Vec<String>> = topics.map(|t| t.to_vec());
        if v >= 8 {
            let mut g = offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(str(group).into());
            g.topics = topic_names.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| {
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(str(t).into())
                    })
                    .collect()
            });
            request.groups = vec![g];
        } else {
            request.group_id = str(group).into();
            request.topics = topic_names.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| {
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(str(t).into())
                    })
                    .collect()
            });
        }
        // Named topics need their partition lists.
        if let Some(ts) = &topic_names {
            for t in ts {
                let parts: Vec<i32> = self.leaders(t)?.into_iter().map(|(p, _)| p).collect();
                if let Some(g) = request.groups.first_mut() {
                    if let Some(topics) = g.topics.as_mut() {
                        for x in topics.iter_mut().filter(|x| x.name.as_str() == t) {
                            x.partition_indexes = parts.clone();
                        }
                    }
                }
                if let Some(topics) = request.topics.as_mut() {
                    for x in topics.iter_mut().filter(|x| x.name.as_str() == t) {
                        x.partition_indexes = parts.clone();
                    }
                }
            }
        }
        let conn = self.broker(coordinator)?;
        let response = conn.send_at(&request, v)?;
        let mut out = Offsets::new();
        let mut add = |topic: &str, p: i32, offset: i64, code: i16| -> Result<()> {
            CliError::check(code, None, || format!("committed offset of {topic}/{p}"))?;
            if offset >= 0 {
                out.entry(topic.to_string()).or_default().insert(p, offset);
            }
            Ok(())
        };
        if v >= 8 {
            for g in response.groups {
                CliError::check(g.error_code, None, || format!("group '{group}'"))?;
                for t in g.topics {
                    for p in t.partitions {
                        add(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                    }
                }
            }
        } else {
            CliError::check(response.error_code, None, || format!("group '{group}'"))?;
            for t in response.topics {
                for p in t.partitions {
                    add(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                }
            }
        }
        Ok(out)
    }

    /// Commits `offsets` for `group` as a simple committer (no member, generation -1), as
    /// Kafka allows for a group without active members.
    pub fn commit(&mut self, group: &str, offsets: &Offsets) -> Result<()> {
        self.on_coordinator(group, |c, id| c.commit_at(group, id, offsets))
    }

    fn commit_at(&mut self, group: &str, coordinator: i32, offsets: &Offsets) -> Result<()> {
        let conn = self.broker(coordinator)?;
        let request = OffsetCommitRequest::default()
            .with_group_id(str(group).into())
            .with_topics(
                offsets
                    .iter()
                    .map(|(t, parts)| {
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(str(t).into())
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|(&p, &o)| {
                                        offset_commit_request::OffsetCommitRequestPartition::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(o)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let (_, response) = conn.send(&request, 9)?;
        for t in response.topics {
            for p in t.partitions {
                CliError::check(p.error_code, None, || match p.error_code {
                    25 | 22 | 27 => format!(
                        "group '{group}' has active members; stop them before committing offsets"
                    ),
                    _ => format!("committing {}/{}", t.name.as_str(), p.partition_index),
                })?;
            }
        }
        Ok(())
    }
}
