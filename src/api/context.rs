//! What a handler knows besides the request body: the broker, the connection's session and
//! the request version. Defined here, below server/, so handlers and their unit tests need no
//! socket: server/ fills a `Session` per connection, a test builds one by hand.

use crate::broker::Broker;
use crate::security::authorizer;
use crate::security::{Operation, ResourceType};
use futures::future::BoxFuture;
use kafka_protocol::messages::ResponseKind;
use std::net::SocketAddr;
use std::sync::Arc;

/// Kafka's security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name, as in listener.security.protocol.map.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// A listener clients connect to: its name, protocol, and the address Metadata advertises.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub security_protocol: SecurityProtocol,
    pub advertised_host: String,
    pub advertised_port: u16,
}

/// Who is on the other end, as Kafka's KafkaPrincipal ("User:ANONYMOUS" before authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub principal_type: String,
    pub name: String,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            principal_type: "User".to_string(),
            name: "ANONYMOUS".to_string(),
        }
    }
}

/// Where a SASL exchange stands on a connection (Kafka runs SASL inside the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslState {
    /// The listener needs no SASL, or the client has not started it yet.
    NotStarted,
    /// SaslHandshake chose this mechanism; SaslAuthenticate frames follow.
    Handshaken {
        mechanism: String,
    },
    /// SCRAM: the server-first message went out; the client-final message is next.
    ScramFinal(Box<crate::security::sasl_scram::ServerFirst>),
    /// OAUTHBEARER: the token was refused with the error JSON; the client's `\x01` ends it.
    OAuthBearerRefused,
    Authenticated,
}

/// Per-connection state, carried into every request's context.
#[derive(Debug, Clone)]
pub struct Session {
    pub listener: Arc<Listener>,
    pub peer: SocketAddr,
    /// The last client id the connection sent in a request header.
    pub client_id: Option<String>,
    pub principal: Principal,
    pub sasl: SaslState,
    /// The mechanism of the last SaslHandshake: a re-authentication must use the same one.
    pub sasl_mechanism: Option<String>,
    /// The client has authenticated once: a new SASL exchange is a re-authentication (KIP-368),
    /// and the principal it proves must be the same.
    pub authenticated_once: bool,
    /// When the SASL session ends (connections.max.reauth.ms): a request after it, other than
    /// SaslHandshake or SaslAuthenticate starting a re-authentication, closes the connection.
    pub sasl_session_expires: Option<std::time::Instant>,
}

impl Session {
    pub fn new(listener: Arc<Listener>, peer: SocketAddr) -> Session {
        Session {
            listener,
            peer,
            client_id: None,
            principal: Principal::anonymous(),
            sasl: SaslState::NotStarted,
            sasl_mechanism: None,
            authenticated_once: false,
            sasl_session_expires: None,
        }
    }

    /// A SASL listener whose client has not authenticated yet: only the APIs the table allows
    /// before authentication are served.
    pub fn awaiting_sasl(&self) -> bool {
        matches!(
            self.listener.security_protocol,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        ) && self.sasl != SaslState::Authenticated
            // A re-authenticating client keeps its principal for the requests in between.
            && !self.authenticated_once
    }

    /// The SASL session has expired (KIP-368) and the client did not re-authenticate.
    pub fn sasl_session_expired(&self, now: std::time::Instant) -> bool {
        self.sasl_session_expires.is_some_and(|t| now >= t)
    }

    /// The client id for log lines ("" when the client sent none).
    pub fn client(&self) -> &str {
        self.client_id.as_deref().unwrap_or("")
    }
}

/// Everything a handler knows about the request besides its body.
pub struct RequestContext {
    pub broker: Arc<Broker>,
    /// Shared with the connection: a request costs no copy of it.
    pub session: Arc<Session>,
    pub api_version: i16,
}

/// A handler's result. The synchronous part of every handler runs in request order as the
/// request is read; `Deferred` is the part that waits (fsync for acks=all, long-poll fetch).
pub enum Handled {
    Ready(Box<ResponseKind>),
    Deferred(BoxFuture<'static, ResponseKind>),
    /// acks=0 produce: Kafka sends nothing back.
    NoResponse,
    /// Close the connection after earlier responses are sent (acks=0 produce errors).
    Close(String),
    /// SaslHandshake / SaslAuthenticate: the response and the session's new SASL state (and
    /// principal, once authenticated). With `close`, the exchange failed: the response goes
    /// after that delay (connection.failed.authentication.delay.ms), then the connection
    /// closes.
    Sasl {
        response: Box<ResponseKind>,
        sasl: SaslState,
        principal: Option<Principal>,
        close: Option<std::time::Duration>,
    },
}

impl RequestContext {
    /// The caller as the authorizer sees it.
    fn caller<R>(&self, f: impl FnOnce(authorizer::Caller<'_>) -> R) -> R {
        let p = &self.session.principal;
        let principal = format!("{}:{}", p.principal_type, p.name);
        let host = self.session.peer.ip().to_string();
        f(authorizer::Caller {
            principal: &principal,
            host: &host,
        })
    }

    /// May this request's principal do `operation` on the resource? Always, with no
    /// authorizer configured.
    pub fn authorize(&self, operation: Operation, resource: ResourceType, name: &str) -> bool {
        match &self.broker.authorizer {
            None => true,
            Some(a) => self.caller(|c| a.authorize(c, operation, resource, name)),
        }
    }

    /// Kafka's checks on the cluster resource (AuthHelper.authorizeClusterOperation).
    pub fn authorize_cluster(&self, operation: Operation) -> bool {
        self.authorize(operation, ResourceType::Cluster, authorizer::CLUSTER_NAME)
    }

    /// Kafka's authorizeByResourceType: may it do `operation` on some resource of the type?
    pub fn authorize_any(&self, operation: Operation, resource: ResourceType) -> bool {
        match &self.broker.authorizer {
            None => true,
            Some(a) => self.caller(|c| a.authorize_by_type(c, operation, resource)),
        }
    }

    /// The authorized-operations bitfield Metadata, DescribeCluster and DescribeGroups report:
    /// with no authorizer, every operation of the type (as Kafka).
    pub fn authorized_operations(&self, resource: ResourceType, name: &str) -> i32 {
        match &self.broker.authorizer {
            None => resource
                .operations()
                .iter()
                .fold(0, |bits, op| bits | (1 << op.code())),
            Some(a) => self.caller(|c| a.authorized_operations(c, resource, name)),
        }
    }
}

/// A broker as Metadata and DescribeCluster list it.
pub struct BrokerView {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

impl RequestContext {
    /// The brokers a client may connect to, at the endpoints of the listener it came in on
    /// (Kafka leaves out brokers without that listener). On a single node: this broker.
    pub fn brokers(&self) -> Vec<BrokerView> {
        let registrations = self.broker.metadata.registrations();
        if registrations.is_empty() {
            return vec![BrokerView {
                node_id: self.broker.config.node_id,
                host: self.session.listener.advertised_host.clone(),
                port: self.session.listener.advertised_port,
                rack: self.broker.config.rack.clone(),
            }];
        }
        registrations
            .into_iter()
            .filter_map(|r| {
                let e = r
                    .endpoints
                    .into_iter()
                    .find(|e| e.listener == self.session.listener.name)?;
                Some(BrokerView {
                    node_id: r.node_id,
                    host: e.host,
                    port: e.port,
                    rack: r.rack,
                })
            })
            .collect()
    }

    /// KIP-951: the leader (id, epoch) of a partition this broker does not lead, for clients
    /// told NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH; None when no one leads it.
    pub fn current_leader(
        &self,
        topic: &crate::topic::Topic,
        partition: i32,
    ) -> Option<(i32, i32)> {
        let state = topic.states.get(usize::try_from(partition).ok()?)?;
        (state.leader >= 0 && state.leader != self.broker.config.node_id)
            .then_some((state.leader, state.leader_epoch))
    }

    /// The controller clients are told of: this broker on a single node.
    pub fn controller_id(&self) -> i32 {
        match self.broker.cluster {
            Some(_) => self.broker.metadata.controller_id(),
            None => self.broker.config.node_id,
        }
    }
}

impl Handled {
    pub fn ready(response: ResponseKind) -> Handled {
        Handled::Ready(Box::new(response))
    }
}
