//! SASL/PLAIN (RFC 4616) as Kafka's PlainLoginModule serves it: the users are the
//! `user_NAME="password"` options of the listener's
//! `listener.name.<listener>.plain.sasl.jaas.config`.

use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;

/// Kafka's message for a wrong user or password (PlainServerCallbackHandler).
pub const INVALID_CREDENTIALS: &str = "Authentication failed: Invalid username or password";

/// The options of a JAAS configuration `LoginModuleClass required key="value" ...;`.
pub fn jaas_options(jaas: &str) -> Result<BTreeMap<String, String>> {
    let text = jaas.trim();
    let text = text
        .strip_suffix(';')
        .ok_or_else(|| anyhow!("JAAS config entry not terminated by semi-colon"))?;
    let mut rest = text.trim_start();
    let module = rest.split_whitespace().next().unwrap_or("");
    if module.is_empty() {
        bail!("JAAS config has no login module");
    }
    rest = rest[module.len()..].trim_start();
    let flag = rest.split_whitespace().next().unwrap_or("");
    if !["required", "requisite", "sufficient", "optional"].contains(&flag) {
        bail!("Invalid control flag '{flag}' in JAAS config");
    }
    rest = rest[flag.len()..].trim_start();
    let mut options = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| anyhow!("JAAS config option without a value: {rest}"))?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!("JAAS config: bad option name '{key}'");
        }
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(|| anyhow!("JAAS config: unterminated quote"))?;
            (value, &quoted[end..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        options.insert(key.to_string(), value);
        rest = tail.trim_start();
    }
    Ok(options)
}

/// The PLAIN users of a JAAS configuration: user_NAME="password".
pub fn users(jaas: &str) -> Result<BTreeMap<String, String>> {
    Ok(jaas_options(jaas)?
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v)))
        .collect())
}

/// Checks a PLAIN message `[authzid] NUL authcid NUL passwd`; Ok(user) or Kafka's message.
pub fn authenticate(token: &[u8], users: &BTreeMap<String, String>) -> Result<String, String> {
    let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
    if parts.len() != 3 {
        return Err("Invalid SASL/PLAIN response: expected 3 tokens".to_string());
    }
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| "Invalid SASL/PLAIN response: not UTF-8".to_string())
    };
    let (authz, user, password) = (text(parts[0])?, text(parts[1])?, text(parts[2])?);
    if user.is_empty() {
        return Err("Authentication failed: username not specified".to_string());
    }
    if password.is_empty() {
        return Err("Authentication failed: password not specified".to_string());
    }
    let ok = users
        .get(&user)
        .is_some_and(|p| super::equal_constant_time(p.as_bytes(), password.as_bytes()));
    if !ok {
        return Err(INVALID_CREDENTIALS.to_string());
    }
    if !authz.is_empty() && authz != user {
        return Err(
            "Authentication failed: Client requested an authorization id that is different from username"
                .to_string(),
        );
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_from_jaas() {
        let u = users(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="a \"q\" b";"#,
        )
        .unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u["alice"], "a \"q\" b");
        assert!(users("PlainLoginModule required user_a=\"x\"").is_err());
        assert!(users("PlainLoginModule maybe;").is_err());
        assert!(users("PlainLoginModule required user_a=\"x;").is_err());
    }

    #[test]
    fn plain_tokens() {
        let u: BTreeMap<String, String> = [("alice".to_string(), "secret".to_string())].into();
        assert_eq!(authenticate(b"\0alice\0secret", &u).unwrap(), "alice");
        assert_eq!(authenticate(b"alice\0alice\0secret", &u).unwrap(), "alice");
        assert_eq!(
            authenticate(b"\0alice\0wrong", &u).unwrap_err(),
            INVALID_CREDENTIALS
        );
        assert_eq!(
            authenticate(b"\0bob\0secret", &u).unwrap_err(),
            INVALID_CREDENTIALS
        );
        assert!(authenticate(b"bob\0alice\0secret", &u).is_err());
        assert!(authenticate(b"garbage", &u).is_err());
        assert!(authenticate(b"\0\0", &u).is_err());
        assert!(authenticate(b"\0a\0b\0c", &u).is_err());
    }
}
