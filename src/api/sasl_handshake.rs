//! SaslHandshake: the client names its mechanism; the answer lists the listener's enabled
//! ones. v0 (raw SASL tokens after the handshake, pre-Kafka 1.0 clients) is answered but its
//! raw tokens are not served: clients since Kafka 1.0 use v1 and SaslAuthenticate. On an
//! authenticated connection whose session expires (connections.max.reauth.ms), a handshake
//! with the same mechanism starts a re-authentication (KIP-368).

use super::{str_bytes, Handled, RequestContext, SaslState, SecurityProtocol};
use kafka_protocol::messages::{ResponseKind, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::ResponseError;

/// The SASL mechanisms enabled on the connection's listener.
pub fn enabled_mechanisms(ctx: &RequestContext) -> Vec<String> {
    ctx.broker
        .config
        .security
        .setting(&ctx.session.listener.name, "sasl.enabled.mechanisms")
        .unwrap_or("")
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

pub fn handle(ctx: &RequestContext, request: SaslHandshakeRequest) -> Handled {
    let sasl_listener = matches!(
        ctx.session.listener.security_protocol,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
    );
    let mechanisms = if sasl_listener {
        enabled_mechanisms(ctx)
    } else {
        Vec::new()
    };
    let response = |e: Option<ResponseError>| {
        Box::new(ResponseKind::SaslHandshake(
            SaslHandshakeResponse::default()
                .with_error_code(e.map_or(0, |e| e.code()))
                .with_mechanisms(mechanisms.iter().map(|m| str_bytes(m)).collect()),
        ))
    };
    if !sasl_listener {
        // As Kafka's request handler answers on a listener without SASL.
        return Handled::Sasl {
            response: response(Some(ResponseError::IllegalSaslState)),
            sasl: ctx.session.sasl.clone(),
            principal: None,
            close: None,
        };
    }
    let mechanism = request.mechanism.to_string();
    // KIP-368: on an authenticated connection whose session expires, a handshake with the
    // same mechanism starts a re-authentication; without expiry Kafka refuses it.
    let reauthentication = ctx.session.sasl == SaslState::Authenticated
        && ctx.session.sasl_session_expires.is_some()
        && ctx.session.sasl_mechanism.as_deref() == Some(mechanism.as_str());
    if reauthentication {
        return Handled::Sasl {
            response: response(None),
            sasl: SaslState::Handshaken { mechanism },
            principal: None,
            close: None,
        };
    }
    if ctx.session.sasl != SaslState::NotStarted {
        return Handled::Sasl {
            response: response(Some(ResponseError::IllegalSaslState)),
            sasl: ctx.session.sasl.clone(),
            principal: None,
            close: Some(std::time::Duration::ZERO),
        };
    }
    if !mechanisms.contains(&mechanism) {
        tracing::info!(peer = %ctx.session.peer, mechanism, "SASL mechanism not enabled; closing connection");
        return Handled::Sasl {
            response: response(Some(ResponseError::UnsupportedSaslMechanism)),
            sasl: SaslState::NotStarted,
            principal: None,
            close: Some(std::time::Duration::ZERO),
        };
    }
    Handled::Sasl {
        response: response(None),
        sasl: SaslState::Handshaken { mechanism },
        principal: None,
        close: None,
    }
}
