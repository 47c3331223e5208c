//! TLS for SSL (and SASL_SSL) listeners: a rustls server config built from the listener's
//! ssl.* settings (PEM key store and trust store, files or inline), rebuilt when a file's
//! contents change (read again as each connection is accepted: a few KiB, little next to the
//! handshake, and no modification-time granularity to miss a quick replacement), and the
//! principal of a client certificate.

use crate::api::Principal;
use crate::config::security::SecurityConfig;
use crate::security::ssl_principal::{subject_dn, Rules};
use anyhow::{anyhow, bail, Context, Result};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One listener's TLS configuration, reloaded when its files change.
pub struct TlsSource {
    listener: String,
    settings: SecurityConfig,
    files: Vec<PathBuf>,
    state: Mutex<State>,
}

struct State {
    /// The files' contents the configuration was built from.
    stamps: Vec<Option<Vec<u8>>>,
    /// Contents that did not build: not retried (nor warned about) until they change again.
    failed: Option<Vec<Option<Vec<u8>>>>,
    config: Arc<ServerConfig>,
    rules: Arc<Rules>,
}

fn stamp(path: &PathBuf) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

impl TlsSource {
    /// Builds the listener's TLS configuration; an error names the setting at fault.
    pub fn new(settings: &SecurityConfig, listener: &str) -> Result<TlsSource> {
        let files: Vec<PathBuf> = ["ssl.keystore.location", "ssl.truststore.location"]
            .iter()
            .filter_map(|k| settings.setting(listener, k))
            .map(PathBuf::from)
            .collect();
        let stamps = files.iter().map(stamp).collect();
        let (config, rules) = build(settings, listener)?;
        Ok(TlsSource {
            listener: listener.to_string(),
            settings: settings.clone(),
            files,
            state: Mutex::new(State {
                stamps,
                failed: None,
                config: Arc::new(config),
                rules: Arc::new(rules),
            }),
        })
    }

    /// The configuration for a new connection: rebuilt first if a file changed. A file that
    /// no longer builds (half written, wrong key) keeps the previous configuration.
    pub fn current(&self) -> (Arc<ServerConfig>, Arc<Rules>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stamps: Vec<_> = self.files.iter().map(stamp).collect();
        if stamps != state.stamps && state.failed.as_ref() != Some(&stamps) {
            match build(&self.settings, &self.listener) {
                Ok((config, rules)) => {
                    tracing::info!(listener = %self.listener, "TLS key store or trust store changed: reloaded");
                    state.config = Arc::new(config);
                    state.rules = Arc::new(rules);
                    state.stamps = stamps;
                    state.failed = None;
                }
                Err(e) => {
                    state.failed = Some(stamps);
                    // Retried when the files change again (they may be mid-replacement).
                    tracing::warn!(listener = %self.listener, error = format!("{e:#}"), "TLS files changed but do not load; keeping the previous ones");
                }
            }
        }
        (state.config.clone(), state.rules.clone())
    }
}

fn pem_source(
    settings: &SecurityConfig,
    listener: &str,
    location: &str,
    inline: &[&str],
) -> Result<Option<Vec<u8>>> {
    let file = settings.setting(listener, location);
    let inline: Vec<&str> = inline
        .iter()
        .filter_map(|k| settings.setting(listener, k))
        .collect();
    match (file, inline.is_empty()) {
        (Some(_), false) => bail!("{location} and the inline PEM settings are mutually exclusive"),
        (Some(path), true) => Ok(Some(
            std::fs::read(path).with_context(|| format!("{location} {path}"))?,
        )),
        (None, false) => Ok(Some(inline.join("\n").into_bytes())),
        (None, true) => Ok(None),
    }
}

fn require_pem(settings: &SecurityConfig, listener: &str, name: &str) -> Result<()> {
    match settings.setting(listener, name) {
        Some("PEM") => Ok(()),
        other => bail!(
            "{name}={}: sluice reads PEM key and trust stores only; set {name}=PEM",
            other.unwrap_or("")
        ),
    }
}

fn build(settings: &SecurityConfig, listener: &str) -> Result<(ServerConfig, Rules)> {
    let get = |k: &str| settings.setting(listener, k);
    let keystore = pem_source(
        settings,
        listener,
        "ssl.keystore.location",
        &["ssl.keystore.certificate.chain", "ssl.keystore.key"],
    )?
    .ok_or_else(|| {
        anyhow!("listener {listener} is SSL but has no ssl.keystore.location (or ssl.keystore.certificate.chain and ssl.keystore.key)")
    })?;
    require_pem(settings, listener, "ssl.keystore.type")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&keystore)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("key store certificates: {e}"))?;
    if chain.is_empty() {
        bail!("the key store has no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(&keystore).map_err(|e| {
        anyhow!("key store private key (PKCS#8, PKCS#1 or SEC1 PEM, unencrypted): {e}")
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut versions = Vec::new();
    for p in get("ssl.enabled.protocols")
        .unwrap_or("TLSv1.2,TLSv1.3")
        .split(',')
    {
        match p.trim() {
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            other => bail!("ssl.enabled.protocols: {other} is not supported"),
        }
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .context("ssl.enabled.protocols")?;

    let client_auth = get("ssl.client.auth").unwrap_or("none");
    let truststore = pem_source(
        settings,
        listener,
        "ssl.truststore.location",
        &["ssl.truststore.certificates"],
    )?;
    let builder = match (client_auth, truststore) {
        ("none", _) => builder.with_no_client_auth(),
        (_, None) => bail!(
            "ssl.client.auth={client_auth} needs a trust store (ssl.truststore.location or ssl.truststore.certificates)"
        ),
        (mode, Some(pem)) => {
            require_pem(settings, listener, "ssl.truststore.type")?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| anyhow!("trust store: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| anyhow!("trust store certificate: {e}"))?;
            }
            if roots.is_empty() {
                bail!("the trust store has no certificate");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == "requested" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| anyhow!("trust store: {e}"))?,
            )
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("key store: {e}"))?;
    let rules = Rules::parse(get("ssl.principal.mapping.rules").unwrap_or("DEFAULT"))
        .context("ssl.principal.mapping.rules")?;
    Ok((config, rules))
}

/// The principal of a TLS connection: User:<mapped subject DN> with a client certificate,
/// User:ANONYMOUS without one (as in Kafka). `Err` (no rule applies, an unparsable
/// certificate) fails the authentication.
pub fn principal(conn: &rustls::ServerConnection, rules: &Rules) -> Result<Principal> {
    let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) else {
        return Ok(Principal::anonymous());
    };
    let dn = subject_dn(cert).ok_or_else(|| anyhow!("client certificate does not parse"))?;
    Ok(Principal {
        principal_type: "User".to_string(),
        name: rules.map(&dn)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn settings(pairs: &[(&str, &str)]) -> SecurityConfig {
        let mut s = SecurityConfig::default();
        s.ssl.insert("ssl.keystore.type".into(), "PEM".into());
        s.ssl.insert("ssl.client.auth".into(), "none".into());
        for (k, v) in pairs {
            s.ssl.insert(k.to_string(), v.to_string());
        }
        s
    }

    #[test]
    fn inline_and_file_key_stores() {
        let (cert, key) = pem_pair();
        let inline = settings(&[
            ("ssl.keystore.certificate.chain", &cert),
            ("ssl.keystore.key", &key),
        ]);
        assert!(TlsSource::new(&inline, "SSL").is_ok());
        let no_key = settings(&[("ssl.keystore.certificate.chain", &cert)]);
        assert!(TlsSource::new(&no_key, "SSL").is_err());
        let mut jks = inline.clone();
        jks.ssl.insert("ssl.keystore.type".into(), "JKS".into());
        let e = TlsSource::new(&jks, "SSL").err().unwrap().to_string();
        assert!(e.contains("PEM"), "{e}");
        let mut mtls = inline.clone();
        mtls.ssl.insert("ssl.client.auth".into(), "required".into());
        assert!(TlsSource::new(&mtls, "SSL").is_err(), "no trust store");
        mtls.ssl.insert("ssl.truststore.type".into(), "PEM".into());
        mtls.ssl
            .insert("ssl.truststore.certificates".into(), cert.clone());
        assert!(TlsSource::new(&mtls, "SSL").is_ok());
        let mut tls13 = inline.clone();
        tls13
            .per_listener
            .entry("ssl".into())
            .or_default()
            .insert("ssl.enabled.protocols".into(), "TLSv1.3".into());
        let source = TlsSource::new(&tls13, "SSL").unwrap();
        assert_eq!(source.current().0.alpn_protocols.len(), 0);

        // A file: reloaded when it changes, the previous one kept while it does not load.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.pem");
        std::fs::write(&path, format!("{key}{cert}")).unwrap();
        let file = settings(&[("ssl.keystore.location", path.to_str().unwrap())]);
        let source = TlsSource::new(&file, "SSL").unwrap();
        let first = source.current().0;
        assert!(
            Arc::ptr_eq(&first, &source.current().0),
            "unchanged: no rebuild"
        );
        std::fs::write(&path, "garbage").unwrap();
        assert!(Arc::ptr_eq(&first, &source.current().0), "broken: kept");
        let (cert2, key2) = pem_pair();
        std::fs::write(&path, format!("{key2}{cert2}")).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &source.current().0),
            "replaced: rebuilt"
        );
    }
}
