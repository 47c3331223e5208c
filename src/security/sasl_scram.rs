//! SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's ScramSaslServer serves
//! them: no channel binding, the `tokenauth` extension refused (sluice has no delegation
//! tokens), credentials stored salted (salt, StoredKey, ServerKey, iterations), never the
//! password.

use crate::metadata::ScramCredential;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

/// Kafka's ScramMechanism: the type codes of AlterUserScramCredentials and
/// DescribeUserScramCredentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

/// Kafka's minimum iteration count (both mechanisms) and the most AlterUserScramCredentials
/// accepts (ScramControlManager.MAX_ITERATIONS).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn hmac_of(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }
}

// The SCRAM arithmetic of the stored credential (metadata keeps only its bytes).
impl ScramCredential {
    /// From the salted password a client sends in AlterUserScramCredentials.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac_of(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac_of(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// From a password, with a fresh random salt (the seeding subcommand).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        iterations: i32,
    ) -> ScramCredential {
        let salt = random_bytes(32);
        let salted = salted_password(mechanism, password, &salt, iterations);
        Self::from_salted_password(mechanism, &salt, &salted, iterations)
    }
}

/// One `--add-scram` value, in the syntax of Kafka's `kafka-storage format --add-scram`:
/// `SCRAM-SHA-256=[name=alice,password=alice-secret]`, with an optional `iterations=N`
/// (default 4096); a value may be double-quoted to hold ',' or ']'.
pub fn parse_add_scram(spec: &str) -> anyhow::Result<(ScramMechanism, String, ScramCredential)> {
    use anyhow::{anyhow, bail};
    let (name, body) = spec
        .split_once('=')
        .ok_or_else(|| anyhow!("expected MECHANISM=[name=...,password=...], got {spec}"))?;
    let mechanism = ScramMechanism::from_name(name.trim())
        .ok_or_else(|| anyhow!("unknown SCRAM mechanism {name}: SCRAM-SHA-256 or SCRAM-SHA-512"))?;
    let body = body
        .trim()
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .ok_or_else(|| anyhow!("expected [name=...,password=...] after {name}="))?;
    let mut fields = std::collections::BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| anyhow!("expected key=value in {body}"))?;
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| anyhow!("unterminated quote in {body}"))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_at(after.find(',').unwrap_or(after.len())),
        };
        fields.insert(key.trim().to_string(), value.to_string());
        rest = tail.strip_prefix(',').unwrap_or(tail);
    }
    let user = fields.remove("name").filter(|n| !n.is_empty());
    let user = user.ok_or_else(|| anyhow!("--add-scram {name}: name= is required"))?;
    let password = fields.remove("password");
    let password = password.ok_or_else(|| anyhow!("--add-scram {name}: password= is required"))?;
    let iterations = match fields.remove("iterations") {
        Some(n) => n
            .parse::<i32>()
            .map_err(|_| anyhow!("iterations={n}: not a number"))?,
        None => MIN_ITERATIONS,
    };
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        bail!("iterations={iterations}: must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}");
    }
    if let Some(key) = fields.keys().next() {
        bail!("--add-scram {name}: unknown key {key} (name, password, iterations)");
    }
    let credential = ScramCredential::from_password(mechanism, &password, iterations);
    Ok((mechanism, user, credential))
}

/// Hi(password, salt, iterations): PBKDF2 with the mechanism's HMAC.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &str,
    salt: &[u8],
    iterations: i32,
) -> Vec<u8> {
    let mut out = vec![0u8; mechanism.digest().output_len()];
    let rounds = NonZeroU32::new(iterations.max(1) as u32).expect("at least one round");
    pbkdf2::derive(
        mechanism.pbkdf2(),
        rounds,
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system's random source");
    b
}

/// Why an exchange failed. `Invalid` is what Kafka's SaslException becomes: one generic
/// message, so an unauthenticated client learns nothing from it; `Refused` carries Kafka's
/// own message (its SaslAuthenticationException).
#[derive(Debug, PartialEq, Eq)]
pub enum ScramError {
    Invalid(String),
    Refused(String),
}

impl ScramError {
    /// The error message the client sees.
    pub fn client_message(&self, mechanism: ScramMechanism) -> String {
        match self {
            ScramError::Invalid(_) => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                mechanism.name()
            ),
            ScramError::Refused(m) => m.clone(),
        }
    }

    /// The reason for the log.
    pub fn reason(&self) -> &str {
        match self {
            ScramError::Invalid(m) | ScramError::Refused(m) => m,
        }
    }
}

fn invalid(reason: &str) -> ScramError {
    ScramError::Invalid(reason.to_string())
}

/// The server's half-way state: it has answered the client-first message.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerFirst {
    pub mechanism: ScramMechanism,
    pub user: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
}

impl std::fmt::Debug for ServerFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ScramServerFirst({}, user={})",
            self.mechanism.name(),
            self.user
        )
    }
}

/// A saslname with =2C and =3D unescaped (RFC 5802 5.1); any other '=' is malformed.
pub(super) fn unescape_name(saslname: &str) -> Option<String> {
    let mut out = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The printable characters of a nonce: %x21-7E except ','.
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// A saslname with ',' and '=' escaped as =2C and =3D (RFC 5802 5.1).
fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The client's side of the exchange (the `sluice` command line authenticating to a broker),
/// after it sent the client-first message.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    client_nonce: String,
    /// The server signature the server-final message must carry, once client-final is built.
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// The client-first message for `user` (no channel binding, no authzid).
    pub fn start(mechanism: ScramMechanism, user: &str, password: &str) -> (ScramClient, Vec<u8>) {
        let client_nonce = BASE64.encode(random_bytes(18));
        let client_first_bare = format!("n={},r={client_nonce}", escape_name(user));
        let message = format!("n,,{client_first_bare}").into_bytes();
        let client = ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare,
            client_nonce,
            expected_server_signature: None,
        };
        (client, message)
    }

    /// Answers the server-first message with the client-final message (the proof).
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the server-first message is not UTF-8".to_string())?;
        let field = |prefix: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(prefix))
                .ok_or_else(|| format!("the server-first message has no {prefix} field"))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("the server's nonce does not extend the client's".to_string());
        }
        let salt = BASE64
            .decode(field("s=")?)
            .map_err(|_| "the server's salt is not base64".to_string())?;
        let iterations: i32 = field("i=")?
            .parse()
            .map_err(|_| "the server's iteration count is not a number".to_string())?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!("the server asks for {iterations} iterations"));
        }
        let m = self.mechanism;
        let salted = salted_password(m, &self.password, &salt, iterations);
        let client_key = m.hmac_of(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        // c=biws is base64("n,,"), the gs2 header of the client-first message.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = m.hmac_of(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.hmac_of(&salted, b"Server Key");
        self.expected_server_signature = Some(m.hmac_of(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it knows the credential too.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).unwrap_or_default();
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the server refused the proof: {e}"));
        }
        let signature = text
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or_else(|| "malformed server-final message".to_string())?;
        match &self.expected_server_signature {
            Some(expected) if super::equal_constant_time(expected, &signature) => Ok(()),
            _ => Err("the server's signature does not match: not the broker that holds this user's credential".to_string()),
        }
    }
}

/// Answers the client-first message: `lookup` finds the user's credential for the mechanism.
pub fn client_first(
    mechanism: ScramMechanism,
    message: &[u8],
    lookup: impl FnOnce(&str) -> Option<ScramCredential>,
) -> Result<(ServerFirst, Vec<u8>), ScramError> {
    let text =
        std::str::from_utf8(message).map_err(|_| invalid("client-first message is not UTF-8"))?;
    // gs2-header: "n," then an optional "a=authzid", then ","; Kafka serves no channel binding.
    let rest = text
        .strip_prefix("n,")
        .ok_or_else(|| invalid("Invalid SCRAM client first message format: channel binding"))?;
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| invalid("Invalid SCRAM client first message format"))?;
    let authzid = match authzid {
        "" => String::new(),
        a => unescape_name(
            a.strip_prefix("a=")
                .ok_or_else(|| invalid("Invalid SCRAM client first message format: authzid"))?,
        )
        .ok_or_else(|| invalid("Invalid SCRAM client first message format: authzid"))?,
    };
    let gs2_header = text[..text.len() - bare.len()].to_string();
    let mut fields = bare.split(',');
    let user = fields
        .next()
        .and_then(|f| f.strip_prefix("n="))
        .and_then(unescape_name)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| invalid("Invalid SCRAM client first message format: username"))?;
    let client_nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .filter(|n| valid_nonce(n))
        .ok_or_else(|| invalid("Invalid SCRAM client first message format: nonce"))?;
    for extension in fields {
        let (key, value) = extension
            .split_once('=')
            .ok_or_else(|| invalid("Invalid SCRAM client first message format: extension"))?;
        if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
            return Err(invalid("delegation token authentication is not served"));
        }
    }
    let credential = lookup(&user).ok_or_else(|| invalid("Invalid user credentials"))?;
    if !authzid.is_empty() && authzid != user {
        return Err(ScramError::Refused(
            "Authentication failed: Client requested an authorization id that is different from username"
                .to_string(),
        ));
    }
    if credential.iterations < MIN_ITERATIONS {
        return Err(invalid("stored iterations below the minimum"));
    }
    let nonce = format!("{client_nonce}{}", BASE64.encode(random_bytes(18)));
    let server_first = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&credential.salt),
        credential.iterations
    );
    let reply = server_first.clone().into_bytes();
    Ok((
        ServerFirst {
            mechanism,
            user,
            gs2_header,
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
            credential,
        },
        reply,
    ))
}

/// Checks the client-final message's proof; Ok: the server-final message.
pub fn client_final(state: &ServerFirst, message: &[u8]) -> Result<Vec<u8>, ScramError> {
    let text =
        std::str::from_utf8(message).map_err(|_| invalid("client-final message is not UTF-8"))?;
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or_else(|| invalid("Invalid SCRAM client final message format"))?;
    let mut fields = without_proof.split(',');
    let binding = fields
        .next()
        .and_then(|f| f.strip_prefix("c="))
        .ok_or_else(|| invalid("Invalid SCRAM client final message format: channel binding"))?;
    if BASE64.decode(binding).ok().as_deref() != Some(state.gs2_header.as_bytes()) {
        return Err(invalid("channel binding does not match the gs2 header"));
    }
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or_else(|| invalid("Invalid SCRAM client final message format: nonce"))?;
    if nonce != state.nonce {
        return Err(invalid("Invalid client nonce in the final client message."));
    }
    let proof = BASE64
        .decode(proof)
        .map_err(|_| invalid("Invalid SCRAM client final message format: proof"))?;
    let m = state.mechanism;
    let auth_message = format!(
        "{},{},{}",
        state.client_first_bare, state.server_first, without_proof
    );
    let client_signature = m.hmac_of(&state.credential.stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Err(invalid("Invalid client credentials"));
    }
    let client_key: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    let computed = m.hash(&client_key);
    if !super::equal_constant_time(&computed, &state.credential.stored_key) {
        return Err(invalid("Invalid client credentials"));
    }
    let server_signature = m.hmac_of(&state.credential.server_key, auth_message.as_bytes());
    Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's side of the exchange, as RFC 5802 section 3 computes it.
    fn client_final_message(
        m: ScramMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        gs2: &str,
    ) -> String {
        let fields: Vec<&str> = server_first.split(',').collect();
        let nonce = fields[0].strip_prefix("r=").unwrap();
        let salt = BASE64
            .decode(fields[1].strip_prefix("s=").unwrap())
            .unwrap();
        let iterations: i32 = fields[2].strip_prefix("i=").unwrap().parse().unwrap();
        let salted = salted_password(m, password, &salt, iterations);
        let client_key = m.hmac_of(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", BASE64.encode(gs2));
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = m.hmac_of(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", BASE64.encode(proof))
    }

    #[test]
    fn rfc7677_salted_password_vector() {
        // RFC 7677 section 3: user "user", password "pencil", 4096 iterations.
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = ScramCredential::from_salted_password(
            ScramMechanism::Sha256,
            &salt,
            &salted_password(ScramMechanism::Sha256, "pencil", &salt, 4096),
            4096,
        );
        let state = ServerFirst {
            mechanism: ScramMechanism::Sha256,
            user: "user".into(),
            gs2_header: "n,,".into(),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into(),
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
            credential: cred,
        };
        let reply = client_final(
            &state,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(reply).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn exchange_both_mechanisms() {
        for m in ScramMechanism::ALL {
            let cred = ScramCredential::from_password(m, "s3cret", 4096);
            let first = "n,,n=al=2Cice,r=abcdef";
            let (state, server_first) = client_first(m, first.as_bytes(), |u| {
                (u == "al,ice").then(|| cred.clone())
            })
            .unwrap();
            assert_eq!(state.user, "al,ice");
            let server_first = String::from_utf8(server_first).unwrap();
            let ok = client_final_message(m, "s3cret", "n=al=2Cice,r=abcdef", &server_first, "n,,");
            assert!(client_final(&state, ok.as_bytes())
                .unwrap()
                .starts_with(b"v="));
            let wrong =
                client_final_message(m, "guess", "n=al=2Cice,r=abcdef", &server_first, "n,,");
            assert_eq!(
                client_final(&state, wrong.as_bytes()),
                Err(invalid("Invalid client credentials"))
            );
        }
    }

    #[test]
    fn client_side_against_the_server_side() {
        for m in ScramMechanism::ALL {
            let cred = ScramCredential::from_password(m, "s3cret", 4096);
            let (mut client, first) = ScramClient::start(m, "al,ice", "s3cret");
            let (state, server_first) =
                client_first(m, &first, |u| (u == "al,ice").then(|| cred.clone())).unwrap();
            let last = client.client_final(&server_first).unwrap();
            let server_final = client_final(&state, &last).unwrap();
            assert_eq!(client.verify_server_final(&server_final), Ok(()));
            assert!(client.verify_server_final(b"v=AAAA").is_err());

            let (mut wrong, first) = ScramClient::start(m, "al,ice", "guess");
            let (state, server_first) = client_first(m, &first, |_| Some(cred.clone())).unwrap();
            let last = wrong.client_final(&server_first).unwrap();
            assert!(client_final(&state, &last).is_err());
            assert!(wrong.client_final(b"r=other,s=AAAA,i=4096").is_err());
        }
    }

    #[test]
    fn malformed_and_refused_first_messages() {
        let m = ScramMechanism::Sha512;
        let cred = ScramCredential::from_password(m, "x", 4096);
        let lookup = |u: &str| (u == "bob").then(|| cred.clone());
        for bad in [
            &b""[..],
            b"garbage",
            b"y,,n=bob,r=abc",
            b"p=tls-unique,,n=bob,r=abc",
            b"n,,n=,r=abc",
            b"n,,n=b=ob,r=abc",
            b"n,,n=bob,r=",
            b"n,,n=bob",
            b"n,,n=bob,r=abc,tokenauth=true",
            b"n,,n=carol,r=abc",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(client_first(m, bad, lookup), Err(ScramError::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            client_first(m, b"n,a=eve,n=bob,r=abc", lookup),
            Err(ScramError::Refused(_))
        ));
        assert!(client_first(m, b"n,a=bob,n=bob,r=abc,ext=1", lookup).is_ok());
    }

    #[test]
    fn add_scram_specs() {
        let (m, user, c) =
            parse_add_scram("SCRAM-SHA-512=[name=alice,password=\"a,b]c\",iterations=8192]")
                .unwrap();
        assert_eq!(
            (m, user.as_str(), c.iterations),
            (ScramMechanism::Sha512, "alice", 8192)
        );
        assert_eq!(c.stored_key.len(), 64);
        let salted = salted_password(m, "a,b]c", &c.salt, 8192);
        assert_eq!(
            c,
            ScramCredential::from_salted_password(m, &c.salt, &salted, 8192)
        );
        let (_, _, c) = parse_add_scram("SCRAM-SHA-256=[name=bob,password=x]").unwrap();
        assert_eq!((c.iterations, c.stored_key.len()), (4096, 32));
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=100]",
            "SCRAM-SHA-256=[name=a,password=b,salt=x]",
            "SCRAM-SHA-256=[name=a,password=\"b]",
        ] {
            assert!(parse_add_scram(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn final_message_checks_nonce_and_binding() {
        let m = ScramMechanism::Sha256;
        let cred = ScramCredential::from_password(m, "pw", 4096);
        let (state, sf) = client_first(m, b"n,,n=u,r=nonce1", |_| Some(cred.clone())).unwrap();
        let sf = String::from_utf8(sf).unwrap();
        let good = client_final_message(m, "pw", "n=u,r=nonce1", &sf, "n,,");
        let bad_binding = good.replacen("c=biws", "c=eSws", 1);
        assert!(client_final(&state, bad_binding.as_bytes()).is_err());
        let bad_nonce = good.replacen(",r=nonce1", ",r=nonce2", 1);
        assert!(client_final(&state, bad_nonce.as_bytes()).is_err());
        assert!(client_final(&state, b"c=biws").is_err());
        assert!(client_final(&state, b"c=biws,r=x,p=!!!").is_err());
        assert!(client_final(&state, good.as_bytes()).is_ok());
    }
}
