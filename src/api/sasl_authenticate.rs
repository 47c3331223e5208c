//! SaslAuthenticate: one PLAIN exchange after SaslHandshake v1. A failed authentication is
//! answered SASL_AUTHENTICATION_FAILED after connection.failed.authentication.delay.ms, then
//! the connection closes, as in Kafka. Re-authentication (KIP-368) is not served.

use super::{Handled, Principal, RequestContext, SaslState};
use crate::security::sasl_plain;
use kafka_protocol::messages::{ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::time::Duration;

pub fn handle(ctx: &RequestContext, request: SaslAuthenticateRequest) -> Handled {
    let fail = |e: ResponseError, message: String, delay: Duration| Handled::Sasl {
        response: Box::new(ResponseKind::SaslAuthenticate(
            SaslAuthenticateResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        )),
        sasl: ctx.session.sasl.clone(),
        principal: None,
        close: Some(delay),
    };
    match &ctx.session.sasl {
        SaslState::Handshaken { mechanism } if mechanism == "PLAIN" => {}
        state => {
            return fail(
                ResponseError::IllegalSaslState,
                format!("Unexpected SaslAuthenticate request in SASL state {state:?}"),
                Duration::ZERO,
            )
        }
    }
    let listener = &ctx.session.listener.name;
    let users = ctx
        .broker
        .config
        .security
        .setting(listener, "plain.sasl.jaas.config")
        .and_then(|jaas| sasl_plain::users(jaas).ok())
        .unwrap_or_default();
    match sasl_plain::authenticate(&request.auth_bytes, &users) {
        Ok(user) => {
            tracing::info!(peer = %ctx.session.peer, listener = %listener, principal = %format!("User:{user}"), mechanism = "PLAIN", "SASL authentication succeeded");
            Handled::Sasl {
                response: Box::new(ResponseKind::SaslAuthenticate(
                    SaslAuthenticateResponse::default(),
                )),
                sasl: SaslState::Authenticated,
                principal: Some(Principal {
                    principal_type: "User".to_string(),
                    name: user,
                }),
                close: None,
            }
        }
        Err(message) => {
            tracing::info!(peer = %ctx.session.peer, listener = %listener, reason = %message, "SASL authentication failed");
            fail(
                ResponseError::SaslAuthenticationFailed,
                message,
                Duration::from_millis(ctx.broker.config.failed_authentication_delay_ms),
            )
        }
    }
}
