//! Test certificates, generated with rcgen into a temp dir per test (never committed keys):
//! a CA, a server key store for localhost and 127.0.0.1, and a client certificate.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

pub struct Ca {
    pub cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// (certificate PEM, key PEM) signed by this CA.
    pub fn issue(&self, dn: &[(DnType, &str)], sans: &[&str], client: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let mut name = DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A CA with a server certificate (localhost, 127.0.0.1) and a client certificate, as files.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::Builder::new()
                .prefix("sluice-pki-")
                .tempdir()
                .unwrap(),
            ca: Ca::new("sluice test CA"),
        };
        pki.write("ca.pem", &pki.ca.cert.pem());
        pki.write_server("server.pem", &pki.ca);
        let (cert, key) = pki.ca.issue(
            &[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Example"),
                (DnType::CommonName, "Alice"),
            ],
            &[],
            true,
        );
        pki.write("client.crt", &cert);
        pki.write("client.key", &key);
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Written beside and renamed into place, as a certificate rotation does.
    pub fn write(&self, name: &str, text: &str) {
        let tmp = self.path(&format!("{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    /// A key store file: the server's key and its certificate, signed by `ca`.
    pub fn write_server(&self, name: &str, ca: &Ca) {
        let (cert, key) = ca.issue(
            &[(DnType::CommonName, "localhost")],
            &["localhost", "127.0.0.1"],
            false,
        );
        self.write(name, &format!("{key}{cert}"));
    }
}
