//! SASL/OAUTHBEARER: librdkafka's unsecured JWTs against Kafka's default (unsecured) validator
//! with a required scope, and signed JWTs (ES256, minted by the test with a key it generates)
//! checked against a JWKS file with issuer and audience: librdkafka through its token refresh
//! callback, and the refusals on the wire (the error JSON, then SASL_AUTHENTICATION_FAILED).

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{wire, Broker};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use kafka_protocol::messages::{MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

const SIGNED_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";

fn sasl_args(port: u16, extra: &[String]) -> Vec<String> {
    let mut v = vec![
        format!("listeners=SASL_PLAINTEXT://127.0.0.1:{port}"),
        "sasl.enabled.mechanisms=OAUTHBEARER".to_string(),
    ];
    v.extend(extra.iter().cloned());
    let mut args: Vec<String> = v
        .into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect();
    args.extend(["--log-level".to_string(), "info".to_string()]);
    args
}

fn start(args: &[String]) -> Broker {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Broker::start(&refs)
}

fn now_s() -> i64 {
    common::now_ms() / 1000
}

async fn send_one(
    producer: &FutureProducer<impl ClientContext + 'static>,
    topic: &str,
) -> Result<(), String> {
    producer
        .send(
            FutureRecord::to(topic).key("k").payload("v"),
            Duration::from_secs(15),
        )
        .await
        .map(|_| ())
        .map_err(|(e, _)| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_unsecured_tokens_need_the_required_scope() {
    let port = common::free_port();
    let broker = start(&sasl_args(
        port,
        &[r#"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope="kafka";"#.to_string()],
    ));
    let bootstrap = format!("127.0.0.1:{port}");
    let producer = |config: &str| -> FutureProducer {
        let mut c = common::client_config(&bootstrap);
        c.set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanisms", "OAUTHBEARER")
            .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
            .set("sasl.oauthbearer.config", config)
            .set("message.timeout.ms", "8000");
        c.create().unwrap()
    };
    send_one(&producer("principal=alice scope=kafka,read"), "oauth-topic")
        .await
        .expect("an unsecured token with the required scope");
    let denied = send_one(&producer("principal=bob scope=read"), "oauth-topic").await;
    assert!(denied.is_err(), "a token without the scope was accepted");
    let log = std::fs::read_to_string(broker.log_path()).unwrap();
    assert!(log.contains("principal=User:alice"), "{log}");
    assert!(log.contains("lacks the required scope kafka"), "{log}");
}

/// An ES256 key pair (rcgen) as a JWKS file and the matching signing key.
struct Issuer {
    key: EncodingKey,
    kid: String,
}

impl Issuer {
    fn new(dir: &Path, kid: &str) -> Issuer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = pair.public_key_raw(); // 0x04 || x || y
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..65]),
        }]});
        std::fs::write(dir.join(format!("{kid}.json")), jwks.to_string()).unwrap();
        Issuer {
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            kid: kid.to_string(),
        }
    }

    fn token(&self, sub: &str, iss: &str, aud: &str, exp: i64) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let claims =
            serde_json::json!({"sub": sub, "iss": iss, "aud": aud, "exp": exp, "iat": now_s()});
        encode(&header, &claims, &self.key).unwrap()
    }
}

/// Hands librdkafka a token the test signs (its OAUTHBEARER token refresh callback).
struct SignedTokens(String);

impl ClientContext for SignedTokens {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;
    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        Ok(OAuthToken {
            token: self.0.clone(),
            principal_name: "carol".to_string(),
            lifetime_ms: (now_s() + 300) * 1000,
        })
    }
}

/// One OAUTHBEARER exchange on a fresh connection: the SaslAuthenticate answer and the socket.
fn authenticate(addr: SocketAddr, token: &str) -> (std::net::TcpStream, i16, Vec<u8>) {
    let mut s = wire::connect(addr, Duration::from_secs(10));
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("OAUTHBEARER"));
    s.write_all(&wire::request(1, 1, &handshake)).unwrap();
    let (_, r) = wire::response::<SaslHandshakeRequest>(1, wire::read_frame(&mut s).unwrap());
    assert_eq!(r.error_code, 0);
    let initial = format!("n,,\x01auth=Bearer {token}\x01\x01");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(initial));
    s.write_all(&wire::request(2, 2, &auth)).unwrap();
    let (_, r) = wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
    (s, r.error_code, r.auth_bytes.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_tokens_are_checked_against_the_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = Issuer::new(dir.path(), "k1");
    let stranger = Issuer::new(dir.path(), "k2");
    let port = common::free_port();
    let _broker = start(&sasl_args(
        port,
        &[
            format!("listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class={SIGNED_HANDLER}"),
            format!(
                "sasl.oauthbearer.jwks.endpoint.url=file://{}",
                dir.path().join("k1.json").display()
            ),
            "sasl.oauthbearer.expected.issuer=https://idp.test".to_string(),
            "sasl.oauthbearer.expected.audience=kafka".to_string(),
        ],
    ));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let iss = "https://idp.test";
    let later = now_s() + 300;

    // A good token: authenticated, then any request is served.
    let (mut s, code, reply) = authenticate(addr, &trusted.token("carol", iss, "kafka", later));
    assert_eq!((code, reply.as_slice()), (0, &b""[..]));
    s.write_all(&wire::request(9, 3, &MetadataRequest::default()))
        .unwrap();
    let (_, md) = wire::response::<MetadataRequest>(9, wire::read_frame(&mut s).unwrap());
    assert_eq!(md.brokers.len(), 1);

    // Refused tokens: Kafka's error JSON as a challenge, then SASL_AUTHENTICATION_FAILED, closed.
    for (what, token) in [
        (
            "wrong audience",
            trusted.token("carol", iss, "other", later),
        ),
        (
            "wrong issuer",
            trusted.token("carol", "https://evil.test", "kafka", later),
        ),
        (
            "expired",
            trusted.token("carol", iss, "kafka", now_s() - 600),
        ),
        ("unknown key", stranger.token("carol", iss, "kafka", later)),
        ("not a JWT", "abc.def.ghi".to_string()),
    ] {
        let (mut s, code, reply) = authenticate(addr, &token);
        assert_eq!(code, 0, "{what}");
        assert_eq!(reply, br#"{"status":"invalid_token"}"#, "{what}");
        let ack =
            SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from_static(b"\x01"));
        s.write_all(&wire::request(2, 3, &ack)).unwrap();
        let (_, r) =
            wire::response::<SaslAuthenticateRequest>(2, wire::read_frame(&mut s).unwrap());
        assert_eq!(r.error_code, 58, "{what}");
        assert_eq!(
            r.error_message.as_deref(),
            Some(r#"{"status":"invalid_token"}"#),
            "{what}"
        );
        wire::expect_closed(&mut s, what);
    }

    // librdkafka with the test's token callback.
    let bootstrap = format!("127.0.0.1:{port}");
    let mut c: ClientConfig = common::client_config(&bootstrap);
    c.set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanisms", "OAUTHBEARER")
        .set("message.timeout.ms", "10000");
    let good: FutureProducer<SignedTokens> = c
        .create_with_context(SignedTokens(trusted.token("carol", iss, "kafka", later)))
        .unwrap();
    send_one(&good, "signed-topic")
        .await
        .expect("librdkafka with a signed token");
    let bad: FutureProducer<SignedTokens> = c
        .create_with_context(SignedTokens(stranger.token("carol", iss, "kafka", later)))
        .unwrap();
    assert!(send_one(&bad, "signed-topic").await.is_err());
}
