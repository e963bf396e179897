//! The client side of TLS, for the one HTTP client's `https://` URLs: certificates are
//! verified against the system's roots (Debian: /etc/ssl/certs, from ca-certificates), or,
//! for a target with its own `ca-file`, against that file's CAs alone (as curl's `--cacert`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::{TlsError, read_capped};

/// The client configuration for a target: its own CA file, or the system roots.
pub fn config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    match ca_file {
        Some(path) => build(roots_from_file(path)?),
        None => system(),
    }
}

/// Built once: reading the system store parses every root certificate.
fn system() -> Result<Arc<ClientConfig>, TlsError> {
    static SYSTEM: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(c) = SYSTEM.get() {
        return Ok(c.clone());
    }
    let found = rustls_native_certs::load_native_certs();
    if let Some(e) = found.errors.first() {
        tracing::warn!("reading the system's CA certificates: {e}");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system CA certificates loaded");
    let config = build(roots)?;
    Ok(SYSTEM.get_or_init(|| config).clone())
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read_capped(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(path.into(), e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::NoCertificate(path.into()));
    }
    Ok(roots)
}

fn build(roots: RootCertStore) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
