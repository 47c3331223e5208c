//! SASL/OAUTHBEARER (RFC 7628) as Kafka serves it. The client's initial response carries a
//! bearer token (a JWT); two validators, chosen as Kafka chooses its server callback handler:
//! - unsecured (Kafka's default, OAuthBearerUnsecuredValidatorCallbackHandler, for tests): an
//!   `alg: none` JWS whose `exp` has not passed, with the listener's JAAS options
//!   unsecuredValidatorPrincipalClaimName, unsecuredValidatorScopeClaimName,
//!   unsecuredValidatorRequiredScope and unsecuredValidatorAllowableClockSkewMs;
//! - signed (OAuthBearerValidatorCallbackHandler): a JWS verified against the keys of
//!   sasl.oauthbearer.jwks.endpoint.url (a file:// URL), with sasl.oauthbearer.expected.issuer,
//!   sasl.oauthbearer.expected.audience, the sub and scope claim names and the clock skew.
//!
//! A token that fails validation is answered, as Kafka does, with the error JSON
//! `{"status":"invalid_token"}` as a challenge; the client's `\x01` reply then fails the exchange.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;

/// Kafka's server callback handler class names for the signed validator (3.x and 4.x names).
pub const SIGNED_VALIDATOR_CLASSES: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];
pub const UNSECURED_VALIDATOR_CLASS: &str = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

/// The error JSON Kafka sends back for a token it refuses.
pub const INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;

/// How a listener validates tokens.
#[derive(Debug, Clone)]
pub enum Validator {
    Unsecured {
        principal_claim: String,
        scope_claim: String,
        required_scopes: Vec<String>,
        skew_ms: i64,
    },
    Signed {
        /// The JWKS document (JSON) of sasl.oauthbearer.jwks.endpoint.url.
        jwks: String,
        issuer: Option<String>,
        audience: Vec<String>,
        sub_claim: String,
        skew_s: u64,
    },
}

impl Validator {
    /// The unsecured validator from the JAAS options of listener.name.X.oauthbearer.sasl.jaas.config.
    pub fn unsecured(options: &BTreeMap<String, String>) -> Result<Validator, String> {
        let skew_ms = match options.get("unsecuredValidatorAllowableClockSkewMs") {
            Some(v) => v.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
                format!("unsecuredValidatorAllowableClockSkewMs={v}: not a non-negative number")
            })?,
            None => 0,
        };
        Ok(Validator::Unsecured {
            principal_claim: options
                .get("unsecuredValidatorPrincipalClaimName")
                .cloned()
                .unwrap_or_else(|| "sub".into()),
            scope_claim: options
                .get("unsecuredValidatorScopeClaimName")
                .cloned()
                .unwrap_or_else(|| "scope".into()),
            required_scopes: options
                .get("unsecuredValidatorRequiredScope")
                .map(|s| {
                    s.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            skew_ms,
        })
    }
}

/// The client's initial response: `n,[a=authzid],` then `\x01`-separated key=value pairs
/// (`auth=Bearer TOKEN` and extensions), ending `\x01\x01`.
#[derive(Debug, PartialEq, Eq)]
pub struct InitialResponse {
    pub authzid: String,
    pub token: String,
    pub extensions: BTreeMap<String, String>,
}

pub fn parse_initial(message: &[u8]) -> Result<InitialResponse, String> {
    let invalid = || "Invalid OAUTHBEARER client first message".to_string();
    let text = std::str::from_utf8(message).map_err(|_| invalid())?;
    let rest = text.strip_prefix("n,").ok_or_else(invalid)?;
    let (authz, rest) = rest.split_once(',').ok_or_else(invalid)?;
    let authzid = match authz {
        "" => String::new(),
        // A saslname, unescaped as SCRAM's (=2C, =3D; any other '=' is malformed).
        a => a
            .strip_prefix("a=")
            .and_then(super::sasl_scram::unescape_name)
            .ok_or_else(invalid)?,
    };
    let body = rest
        .strip_prefix('\x01')
        .and_then(|r| r.strip_suffix("\x01\x01"))
        .ok_or_else(invalid)?;
    let mut token = None;
    let mut extensions = BTreeMap::new();
    for pair in body.split('\x01') {
        let (key, value) = pair.split_once('=').ok_or_else(invalid)?;
        if key == "auth" {
            let (scheme, t) = value.split_once(' ').ok_or_else(invalid)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(format!(
                    "Invalid scheme in OAUTHBEARER client first message: {scheme}"
                ));
            }
            let t = t.trim_start_matches(' ');
            let token_chars = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
            if t.is_empty() || !t.chars().all(token_chars) {
                return Err(invalid());
            }
            token = Some(t.to_string());
        } else if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(invalid());
        } else {
            extensions.insert(key.to_string(), value.to_string());
        }
    }
    Ok(InitialResponse {
        authzid,
        token: token.ok_or_else(invalid)?,
        extensions,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The scopes of a claim: a space-separated string or an array of strings.
fn scopes(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Validates a token; Ok: the principal name. Err: why (for the log; the client sees
/// INVALID_TOKEN).
pub fn validate(validator: &Validator, token: &str) -> Result<String, String> {
    validate_with_expiry(validator, token).map(|(principal, _)| principal)
}

/// `validate`, with the token's expiry (its `exp`, ms since the epoch): a re-authenticating
/// session (KIP-368) ends no later than its token.
pub fn validate_with_expiry(validator: &Validator, token: &str) -> Result<(String, i64), String> {
    match validator {
        Validator::Unsecured {
            principal_claim,
            scope_claim,
            required_scopes,
            skew_ms,
        } => {
            let parts: Vec<&str> = token.split('.').collect();
            if parts.len() != 3 || !parts[2].is_empty() {
                return Err("not an unsecured JWS (header.payload. with no signature)".into());
            }
            let json = |p: &str| -> Result<Value, String> {
                let bytes = BASE64URL
                    .decode(p.trim_end_matches('='))
                    .map_err(|_| "JWS part is not base64url".to_string())?;
                serde_json::from_slice(&bytes).map_err(|_| "JWS part is not JSON".to_string())
            };
            let header = json(parts[0])?;
            if header.get("alg").and_then(Value::as_str) != Some("none") {
                return Err("the unsecured validator takes alg none only".into());
            }
            let claims = json(parts[1])?;
            let now = now_ms();
            let exp = claims
                .get("exp")
                .and_then(Value::as_f64)
                .ok_or("no exp claim")?;
            if ((exp * 1000.0) as i64) + skew_ms <= now {
                return Err("the token has expired".into());
            }
            if let Some(iat) = claims.get("iat").and_then(Value::as_f64) {
                if ((iat * 1000.0) as i64) - skew_ms > now {
                    return Err("the token was issued in the future".into());
                }
            }
            let granted = scopes(claims.get(scope_claim));
            if let Some(missing) = required_scopes.iter().find(|s| !granted.contains(s)) {
                return Err(format!("the token lacks the required scope {missing}"));
            }
            claims
                .get(principal_claim)
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(|p| (p.to_string(), (exp * 1000.0) as i64))
                .ok_or_else(|| format!("no {principal_claim} claim"))
        }
        Validator::Signed {
            jwks,
            issuer,
            audience,
            sub_claim,
            skew_s,
        } => {
            use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
            let set: JwkSet =
                serde_json::from_str(jwks).map_err(|e| format!("the JWKS is not valid: {e}"))?;
            let header = decode_header(token).map_err(|e| format!("not a JWS: {e}"))?;
            let jwk = match &header.kid {
                Some(kid) => set.find(kid),
                None => set.keys.first(),
            }
            .ok_or("no key of the JWKS matches the token's kid")?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK: {e}"))?;
            let mut v = Validation::new(header.alg);
            v.leeway = *skew_s;
            v.set_required_spec_claims(&["exp"]);
            if let Some(i) = issuer {
                v.set_issuer(&[i]);
            }
            if audience.is_empty() {
                v.validate_aud = false;
            } else {
                v.set_audience(audience);
            }
            let data =
                decode::<Value>(token, &key, &v).map_err(|e| format!("invalid token: {e}"))?;
            let exp = data
                .claims
                .get("exp")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            data.claims
                .get(sub_claim)
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(|p| (p.to_string(), (exp * 1000.0) as i64))
                .ok_or_else(|| format!("no {sub_claim} claim"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsecured_token(claims: &str) -> String {
        format!(
            "{}.{}.",
            BASE64URL.encode(r#"{"alg":"none"}"#),
            BASE64URL.encode(claims)
        )
    }

    #[test]
    fn initial_responses() {
        let r = parse_initial(b"n,,\x01auth=Bearer abc.def.\x01traceId=42\x01\x01").unwrap();
        assert_eq!(r.token, "abc.def.");
        assert_eq!(r.authzid, "");
        assert_eq!(r.extensions["traceId"], "42");
        let r = parse_initial(b"n,a=alice,\x01auth=bearer x.y.z\x01\x01").unwrap();
        assert_eq!((r.authzid.as_str(), r.token.as_str()), ("alice", "x.y.z"));
        for bad in [
            &b""[..],
            b"n,,auth=Bearer x",
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"n,,\x01key=v\x01\x01",
            b"y,,\x01auth=Bearer x\x01\x01",
            b"n,,\x01auth=Bearer x\x01",
            b"\xff",
        ] {
            assert!(
                parse_initial(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn unsecured_validation() {
        let now = now_ms() / 1000;
        let v = Validator::unsecured(&BTreeMap::from([(
            "unsecuredValidatorRequiredScope".to_string(),
            "write".to_string(),
        )]))
        .unwrap();
        let ok = unsecured_token(&format!(
            r#"{{"sub":"alice","exp":{},"iat":{now},"scope":"read write"}}"#,
            now + 60
        ));
        assert_eq!(validate(&v, &ok).unwrap(), "alice");
        let expired = unsecured_token(&format!(
            r#"{{"sub":"a","exp":{},"scope":"write"}}"#,
            now - 5
        ));
        assert!(validate(&v, &expired).is_err());
        let no_scope = unsecured_token(&format!(r#"{{"sub":"a","exp":{}}}"#, now + 60));
        assert!(validate(&v, &no_scope).is_err());
        let signed = format!("{}sig", &ok);
        assert!(validate(&v, &signed).is_err());
        let hs = format!(
            "{}.{}.",
            BASE64URL.encode(r#"{"alg":"HS256"}"#),
            BASE64URL.encode(r#"{"sub":"a","exp":99999999999,"scope":"write"}"#)
        );
        assert!(validate(&v, &hs).is_err());
        assert!(validate(&v, "garbage").is_err());
    }
}
