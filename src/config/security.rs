//! Listeners and their security settings, Kafka's way: `listeners` (NAME://HOST:PORT, the name
//! mapped to a protocol by `listener.security.protocol.map`), `advertised.listeners`, and ssl.*
//! settings that a `listener.name.<name>.` prefix overrides for one listener.

use crate::api::SecurityProtocol;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The listener-scoped settings as given (ssl.*, with the registry's defaults filled in), and
/// the overrides per listener (the lowercased listener name).
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// `listeners` as given (the registry default when not set).
    pub listeners: String,
    /// Whether `listeners` was set (file, env or --set) rather than defaulted.
    pub listeners_explicit: bool,
    pub advertised_listeners: Option<String>,
    pub protocol_map: String,
    /// Broker-wide ssl.* values by Kafka name.
    pub ssl: BTreeMap<String, String>,
    /// `listener.name.<listener>.<setting>` values: listener (lowercase) -> setting -> value.
    pub per_listener: BTreeMap<String, BTreeMap<String, String>>,
}

impl SecurityConfig {
    /// A listener-scoped setting for `listener`: its `listener.name.` override, else the
    /// broker-wide value (which holds the default), as Kafka resolves them.
    pub fn setting(&self, listener: &str, name: &str) -> Option<&str> {
        self.per_listener
            .get(&listener.to_ascii_lowercase())
            .and_then(|m| m.get(name))
            .or_else(|| self.ssl.get(name))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// One resolved listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    /// What Metadata advertises; None: the bound address.
    pub advertised: Option<(String, u16)>,
}

pub fn protocol_by_name(name: &str) -> Option<SecurityProtocol> {
    [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ]
    .into_iter()
    .find(|p| p.name() == name)
}

/// `listener.security.protocol.map`: NAME:PROTOCOL,...
pub fn parse_protocol_map(s: &str) -> Result<BTreeMap<String, SecurityProtocol>> {
    let mut map = BTreeMap::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, proto) = entry
            .split_once(':')
            .ok_or_else(|| anyhow!("'{entry}': expected LISTENER_NAME:SECURITY_PROTOCOL"))?;
        let name = name.trim().to_ascii_uppercase();
        let proto = proto.trim().to_ascii_uppercase();
        let p = protocol_by_name(&proto).ok_or_else(|| {
            anyhow!(
                "No enum constant org.apache.kafka.common.security.auth.SecurityProtocol.{proto}"
            )
        })?;
        if map.insert(name.clone(), p).is_some() {
            bail!("Listener name {name} appears more than once in listener.security.protocol.map");
        }
    }
    Ok(map)
}

/// NAME://HOST:PORT, the host possibly empty (all interfaces) or [IPv6].
pub fn parse_endpoint(s: &str) -> Result<(String, String, u16)> {
    let (name, rest) = s
        .split_once("://")
        .ok_or_else(|| anyhow!("Unable to parse {s} to a broker endpoint"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("Unable to parse {s} to a broker endpoint"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| anyhow!("Unable to parse {s} to a broker endpoint: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("Unable to parse {s} to a broker endpoint: bad listener name");
    }
    Ok((name.to_ascii_uppercase(), host.to_string(), port))
}

pub fn parse_endpoints(s: &str) -> Result<Vec<(String, String, u16)>> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(parse_endpoint)
        .collect()
}

fn bind_addr(host: &str, port: u16) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let text = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    text.to_socket_addrs()
        .with_context(|| format!("listener address {text}"))?
        .next()
        .ok_or_else(|| anyhow!("listener address {text} did not resolve"))
}

/// The listeners: `--listen` addresses (PLAINTEXT, advertised as `--advertised-listener`)
/// followed by those of `listeners`; `listeners`' default applies only without `--listen`.
pub fn resolve_listeners(
    listen: &[SocketAddr],
    advertised_flag: Option<(String, u16)>,
    sec: &SecurityConfig,
) -> Result<Vec<ListenerConfig>> {
    let map = parse_protocol_map(&sec.protocol_map).context("listener.security.protocol.map")?;
    let mut out: Vec<ListenerConfig> = listen
        .iter()
        .map(|a| ListenerConfig {
            name: SecurityProtocol::Plaintext.name().to_string(),
            protocol: SecurityProtocol::Plaintext,
            bind: *a,
            advertised: advertised_flag.clone(),
        })
        .collect();
    if out.is_empty() || sec.listeners_explicit {
        for (name, host, port) in parse_endpoints(&sec.listeners).context("listeners")? {
            let protocol = *map.get(&name).ok_or_else(|| {
                anyhow!("listeners: no security protocol defined for listener {name} (listener.security.protocol.map)")
            })?;
            if out.iter().any(|l| l.name == name) {
                bail!("listeners: each listener must have a different name, {name} appears twice (--listen is PLAINTEXT)");
            }
            out.push(ListenerConfig {
                name,
                protocol,
                bind: bind_addr(&host, port)?,
                advertised: None,
            });
        }
    }
    if let Some(adv) = &sec.advertised_listeners {
        for (name, host, port) in parse_endpoints(adv).context("advertised.listeners")? {
            if host.is_empty() || host == "0.0.0.0" || host == "::" {
                bail!("advertised.listeners cannot use the nonroutable meta-address {host:?}. Use a routable IP address.");
            }
            let l = out.iter_mut().find(|l| l.name == name).ok_or_else(|| {
                anyhow!("advertised.listeners listener names must be equal to or a subset of the ones defined in listeners: {name}")
            })?;
            l.advertised = Some((host, port));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(listeners: &str, map: &str) -> SecurityConfig {
        SecurityConfig {
            listeners: listeners.to_string(),
            listeners_explicit: true,
            protocol_map: map.to_string(),
            ..Default::default()
        }
    }

    const KAFKA_MAP: &str =
        "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";

    #[test]
    fn listeners_with_custom_names() {
        let mut s = sec(
            "CLIENT://127.0.0.1:9093,plaintext://:9092",
            &format!("CLIENT:SSL,{KAFKA_MAP}"),
        );
        s.advertised_listeners = Some("CLIENT://broker.example:19093".into());
        let l = resolve_listeners(&[], None, &s).unwrap();
        assert_eq!(l[0].name, "CLIENT");
        assert_eq!(l[0].protocol, SecurityProtocol::Ssl);
        assert_eq!(l[0].advertised, Some(("broker.example".into(), 19093)));
        assert_eq!(l[1].name, "PLAINTEXT");
        assert!(l[1].bind.ip().is_unspecified());
        assert!(resolve_listeners(&[], None, &sec("CLIENT://:1", KAFKA_MAP)).is_err());
        assert!(resolve_listeners(&[], None, &sec("SSL://:1,SSL://:2", KAFKA_MAP)).is_err());
        let mut s = sec("SSL://:1", KAFKA_MAP);
        s.advertised_listeners = Some("OTHER://h:1".into());
        assert!(resolve_listeners(&[], None, &s).is_err());
    }

    #[test]
    fn listen_flag_is_a_plaintext_listener() {
        let mut s = sec("PLAINTEXT://127.0.0.1:9092", KAFKA_MAP);
        s.listeners_explicit = false;
        let a: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let l = resolve_listeners(&[a], Some(("h".into(), 1)), &s).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].bind, a);
        s.listeners = "SSL://127.0.0.1:7001".into();
        s.listeners_explicit = true;
        let l = resolve_listeners(&[a], None, &s).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].protocol, SecurityProtocol::Ssl);
    }

    #[test]
    fn per_listener_overrides_win() {
        let mut s = SecurityConfig::default();
        s.ssl.insert("ssl.client.auth".into(), "none".into());
        s.per_listener
            .entry("client".into())
            .or_default()
            .insert("ssl.client.auth".into(), "required".into());
        assert_eq!(s.setting("CLIENT", "ssl.client.auth"), Some("required"));
        assert_eq!(s.setting("SSL", "ssl.client.auth"), Some("none"));
    }
}
