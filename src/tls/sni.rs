//! Choosing the certificate for a handshake: the first whose names (subjectAltName) cover the
//! host the client asked for (SNI), else the first configured, which clients without SNI get.
//! Names are read from the certificates themselves, so the config lists files only.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::ServerName;

/// The certificates of one load, in config order (never empty).
#[derive(Debug)]
pub(super) struct SniResolver {
    certs: Vec<Arc<CertifiedKey>>,
}

impl SniResolver {
    pub(super) fn new(certs: Vec<Arc<CertifiedKey>>) -> Self {
        SniResolver { certs }
    }

    /// The certificate for `server_name` (what the client sent in SNI), if any covers it.
    fn by_name(&self, server_name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = ServerName::try_from(server_name).ok()?;
        self.certs.iter().find(|c| covers(c, &name))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|n| self.by_name(n))
            .or(self.certs.first())
            .cloned()
    }
}

/// Does the end-entity certificate of `key` name `name` (wildcards as browsers match them)?
fn covers(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    let Ok(der) = key.end_entity_cert() else {
        return false;
    };
    webpki::EndEntityCert::try_from(der)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
}
