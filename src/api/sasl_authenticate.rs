//! SaslAuthenticate: the SASL exchange after SaslHandshake v1. PLAIN takes one round;
//! SCRAM-SHA-256/512 two (client-first, then client-final), checked against the credentials
//! AlterUserScramCredentials or `sluice format --add-scram` stored; OAUTHBEARER one (two when the
//! token is refused: the error JSON, then the client's acknowledgement). A failed authentication is answered
//! SASL_AUTHENTICATION_FAILED after connection.failed.authentication.delay.ms, then the
//! connection closes, as in Kafka. With connections.max.reauth.ms the response carries the
//! session lifetime and the client re-authenticates on the live connection (KIP-368); the
//! principal may not change.

use super::{Handled, Principal, RequestContext, SaslState};
use crate::security::sasl_oauthbearer::{self, Validator};
use crate::security::sasl_plain;
use crate::security::sasl_scram::{self, ScramMechanism};
use bytes::Bytes;
use kafka_protocol::messages::{ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::time::Duration;

pub fn handle(ctx: &RequestContext, request: SaslAuthenticateRequest) -> Handled {
    match &ctx.session.sasl {
        SaslState::Handshaken { mechanism } if mechanism == "PLAIN" => plain(ctx, &request),
        SaslState::Handshaken { mechanism } if mechanism == "OAUTHBEARER" => {
            oauthbearer(ctx, &request)
        }
        SaslState::OAuthBearerRefused if request.auth_bytes.as_ref() == b"\x01" => failed(
            ctx,
            sasl_oauthbearer::INVALID_TOKEN.to_string(),
            "the client acknowledged the token error",
        ),
        SaslState::OAuthBearerRefused => oauthbearer(ctx, &request),
        SaslState::Handshaken { mechanism } => match ScramMechanism::from_name(mechanism) {
            Some(m) => scram_first(ctx, m, &request),
            None => illegal_state(ctx),
        },
        SaslState::ScramFinal(state) => scram_final(ctx, state, &request),
        _ => illegal_state(ctx),
    }
}

fn illegal_state(ctx: &RequestContext) -> Handled {
    Handled::Sasl {
        response: Box::new(ResponseKind::SaslAuthenticate(
            SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Unexpected SaslAuthenticate request in SASL state {:?}",
                    ctx.session.sasl
                )))),
        )),
        sasl: ctx.session.sasl.clone(),
        principal: None,
        close: Some(Duration::ZERO),
    }
}

/// SASL_AUTHENTICATION_FAILED with Kafka's message, after the failed-authentication delay.
fn failed(ctx: &RequestContext, message: String, reason: &str) -> Handled {
    tracing::info!(peer = %ctx.session.peer, listener = %ctx.session.listener.name, reason, "SASL authentication failed");
    Handled::Sasl {
        response: Box::new(ResponseKind::SaslAuthenticate(
            SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        )),
        sasl: ctx.session.sasl.clone(),
        principal: None,
        close: Some(Duration::from_millis(
            ctx.broker.config.failed_authentication_delay_ms,
        )),
    }
}

/// connections.max.reauth.ms of the connection's listener (0: sessions do not expire), and, as
/// Kafka, no longer than the credential (an OAUTHBEARER token's exp, ms since the epoch).
fn session_lifetime_ms(ctx: &RequestContext, credential_expires_ms: Option<i64>) -> i64 {
    let max = ctx
        .broker
        .config
        .security
        .setting(&ctx.session.listener.name, "connections.max.reauth.ms")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0);
    match credential_expires_ms {
        Some(expires) if max > 0 => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            max.min(expires - now).max(1)
        }
        _ => max,
    }
}

fn authenticated(
    ctx: &RequestContext,
    mechanism: &str,
    user: String,
    reply: Bytes,
    credential_expires_ms: Option<i64>,
) -> Handled {
    let session = &ctx.session;
    if session.authenticated_once && session.principal.name != user {
        let message = format!(
            "Cannot change principals during re-authentication from {}:{}: User:{user}",
            session.principal.principal_type, session.principal.name
        );
        return failed(ctx, message, "re-authentication changed the principal");
    }
    let what = if session.authenticated_once {
        "SASL re-authentication succeeded"
    } else {
        "SASL authentication succeeded"
    };
    tracing::info!(peer = %session.peer, listener = %session.listener.name, principal = %format!("User:{user}"), mechanism, "{what}");
    Handled::Sasl {
        response: Box::new(ResponseKind::SaslAuthenticate(
            SaslAuthenticateResponse::default()
                .with_auth_bytes(reply)
                .with_session_lifetime_ms(session_lifetime_ms(ctx, credential_expires_ms)),
        )),
        sasl: SaslState::Authenticated,
        principal: Some(Principal {
            principal_type: "User".to_string(),
            name: user,
        }),
        close: None,
    }
}

fn plain(ctx: &RequestContext, request: &SaslAuthenticateRequest) -> Handled {
    let users = ctx
        .broker
        .config
        .security
        .setting(&ctx.session.listener.name, "plain.sasl.jaas.config")
        .and_then(|jaas| sasl_plain::users(jaas).ok())
        .unwrap_or_default();
    match sasl_plain::authenticate(&request.auth_bytes, &users) {
        Ok(user) => authenticated(ctx, "PLAIN", user, Bytes::new(), None),
        Err(message) => failed(ctx, message.clone(), &message),
    }
}

fn scram_first(
    ctx: &RequestContext,
    mechanism: ScramMechanism,
    request: &SaslAuthenticateRequest,
) -> Handled {
    let lookup = |user: &str| {
        ctx.broker
            .metadata
            .scram_credentials()
            .get(user)
            .and_then(|by_mechanism| by_mechanism.get(mechanism.name()).cloned())
    };
    match sasl_scram::client_first(mechanism, &request.auth_bytes, lookup) {
        Ok((state, reply)) => Handled::Sasl {
            response: Box::new(ResponseKind::SaslAuthenticate(
                SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(reply)),
            )),
            sasl: SaslState::ScramFinal(Box::new(state)),
            principal: None,
            close: None,
        },
        Err(e) => failed(ctx, e.client_message(mechanism), e.reason()),
    }
}

fn scram_final(
    ctx: &RequestContext,
    state: &sasl_scram::ServerFirst,
    request: &SaslAuthenticateRequest,
) -> Handled {
    match sasl_scram::client_final(state, &request.auth_bytes) {
        Ok(reply) => authenticated(
            ctx,
            state.mechanism.name(),
            state.user.clone(),
            Bytes::from(reply),
            None,
        ),
        Err(e) => failed(ctx, e.client_message(state.mechanism), e.reason()),
    }
}

/// The listener's token validator: signed (JWKS) when its server callback handler is Kafka's
/// OAuthBearerValidatorCallbackHandler, else Kafka's default, the unsecured one.
fn oauthbearer_validator(ctx: &RequestContext) -> Result<Validator, String> {
    let sec = &ctx.broker.config.security;
    let listener = &ctx.session.listener.name;
    let handler = sec.setting(listener, "oauthbearer.sasl.server.callback.handler.class");
    if !handler.is_some_and(|h| sasl_oauthbearer::SIGNED_VALIDATOR_CLASSES.contains(&h)) {
        let options = sec
            .setting(listener, "oauthbearer.sasl.jaas.config")
            .map(|jaas| sasl_plain::jaas_options(jaas).map_err(|e| e.to_string()))
            .transpose()?
            .unwrap_or_default();
        return Validator::unsecured(&options);
    }
    let url = sec
        .setting(listener, "sasl.oauthbearer.jwks.endpoint.url")
        .ok_or("sasl.oauthbearer.jwks.endpoint.url is not set")?;
    let path = url
        .strip_prefix("file://")
        .ok_or("sasl.oauthbearer.jwks.endpoint.url: sluice reads file:// JWKS only")?;
    // Read per authentication: a rotated key file applies at once.
    let jwks =
        std::fs::read_to_string(path).map_err(|e| format!("reading the JWKS {path}: {e}"))?;
    let setting =
        |name: &str, default: &str| sec.setting(listener, name).unwrap_or(default).to_string();
    Ok(Validator::Signed {
        jwks,
        issuer: sec
            .setting(listener, "sasl.oauthbearer.expected.issuer")
            .map(str::to_string),
        audience: sec
            .setting(listener, "sasl.oauthbearer.expected.audience")
            .map(|a| {
                a.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        sub_claim: setting("sasl.oauthbearer.sub.claim.name", "sub"),
        skew_s: setting("sasl.oauthbearer.clock.skew.seconds", "30")
            .parse()
            .unwrap_or(30),
    })
}

fn oauthbearer(ctx: &RequestContext, request: &SaslAuthenticateRequest) -> Handled {
    let generic = "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER";
    let initial = match sasl_oauthbearer::parse_initial(&request.auth_bytes) {
        Ok(i) => i,
        Err(reason) => return failed(ctx, generic.to_string(), &reason),
    };
    let outcome = oauthbearer_validator(ctx)
        .and_then(|v| sasl_oauthbearer::validate_with_expiry(&v, &initial.token));
    match outcome {
        Ok((principal, _)) if !initial.authzid.is_empty() && initial.authzid != principal => failed(
            ctx,
            format!(
                "Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({principal})",
                initial.authzid
            ),
            "authorization id differs from the principal",
        ),
        Ok((principal, expires_ms)) => {
            authenticated(ctx, "OAUTHBEARER", principal, Bytes::new(), Some(expires_ms))
        }
        Err(reason) => {
            tracing::info!(peer = %ctx.session.peer, listener = %ctx.session.listener.name, reason, "OAUTHBEARER token refused");
            Handled::Sasl {
                response: Box::new(ResponseKind::SaslAuthenticate(
                    SaslAuthenticateResponse::default()
                        .with_auth_bytes(Bytes::from_static(sasl_oauthbearer::INVALID_TOKEN.as_bytes())),
                )),
                sasl: SaslState::OAuthBearerRefused,
                principal: None,
                close: None,
            }
        }
    }
}
