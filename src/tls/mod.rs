//! TLS with rustls: the certificates the front door presents, loaded from PEM files, chosen by
//! SNI ([`sni`]), and swapped whole when the files change (checked every few seconds) or on
//! SIGHUP; and the client side the one HTTP client uses for `https://` ([`client`]). A file
//! that does not load never replaces a working certificate: it is refused with an ERROR line.

pub mod client;
mod sni;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::CertificateFiles;
use crate::server::Server;
use crate::sync::{lock, read, write};

/// Largest certificate or key file read (a long chain is a few KB).
const MAX_PEM_FILE: u64 = 1024 * 1024;
/// How often the certificate files are checked for changes. A stat of each file every few
/// seconds costs nothing and sees every way a file changes: rewritten in place, renamed over,
/// or (Let's Encrypt) a symlink pointed at a new file, which inotify watches miss unless the
/// directory and every link target are watched too.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is larger than {MAX_PEM_FILE} bytes")]
    TooLarge(PathBuf),
    #[error("{0}: no certificate in it (a PEM \"BEGIN CERTIFICATE\" block)")]
    NoCertificate(PathBuf),
    #[error("{0}: no private key in it (a PEM \"BEGIN ... PRIVATE KEY\" block): {1}")]
    NoKey(PathBuf, String),
    #[error("{0}: not a PEM file: {1}")]
    Pem(PathBuf, String),
    #[error("{0}: not a usable X.509 certificate: {1}")]
    Certificate(PathBuf, String),
    #[error("{0}: the private key does not fit the certificate: {1}")]
    Key(PathBuf, String),
    #[error("TLS setup: {0}")]
    Setup(#[from] rustls::Error),
}

/// The certificates in use, swapped whole on reload. Handshakes take the current set; a
/// connection keeps the one it started with.
#[derive(Debug, Default)]
pub struct Certificates {
    /// `None`: no `[[tls]]` certificate configured, so every socket is plain HTTP.
    live: RwLock<Option<Arc<ServerConfig>>>,
    /// What the last load attempt read, to notice changes.
    watched: Mutex<Watched>,
}

#[derive(Debug, Default)]
struct Watched {
    files: Vec<CertificateFiles>,
    stamps: Vec<Option<Stamp>>,
}

/// What tells a file's versions apart without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Certificates {
    /// Load `files` at start-up; an error here stops the server from starting.
    pub fn start(files: &[CertificateFiles]) -> Result<Arc<Certificates>, TlsError> {
        let certs = Certificates::default();
        let stamps = stamps(files);
        *write(&certs.live) = build(files)?;
        *lock(&certs.watched) = Watched {
            files: files.to_vec(),
            stamps,
        };
        Ok(Arc::new(certs))
    }

    /// The acceptor for a new handshake, or `None` when TLS is not configured.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        read(&self.live).clone().map(TlsAcceptor::from)
    }

    /// Re-read `files` (SIGHUP, or a change seen on disk). On failure the running certificates
    /// stay, and the ERROR line says which file and why.
    pub fn reload(&self, files: &[CertificateFiles]) {
        let stamps = stamps(files);
        match build(files) {
            Ok(acceptor) => {
                let on = acceptor.is_some();
                let was_on = std::mem::replace(&mut *write(&self.live), acceptor).is_some();
                if on {
                    tracing::info!(certificates = files.len(), "TLS certificates loaded");
                } else if was_on {
                    tracing::info!("TLS off: no [[tls]] certificate configured any more");
                }
            }
            Err(e) => tracing::error!("TLS certificate refused, keeping the running one: {e}"),
        }
        *lock(&self.watched) = Watched {
            files: files.to_vec(),
            stamps,
        };
    }

    /// Reload if any certificate or key file changed since the last load attempt. A file
    /// caught half-written fails to load; it is tried again when it changes once more.
    pub fn check_files(&self) {
        let files = {
            let w = lock(&self.watched);
            if w.files.is_empty() || stamps(&w.files) == w.stamps {
                return;
            }
            w.files.clone()
        };
        tracing::info!("TLS certificate files changed on disk, reloading");
        self.reload(&files);
    }

    /// Check the files every [`WATCH_INTERVAL`] until shutdown.
    pub async fn watch(self: Arc<Self>, server: Arc<Server>) {
        loop {
            let shutdown = server.shutdown_notified();
            if server.is_shutting_down() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(WATCH_INTERVAL) => {}
                _ = shutdown => return,
            }
            if lock(&self.watched).files.is_empty() {
                continue;
            }
            // Reading and parsing the files is blocking file I/O; it is small and rare.
            let certs = self.clone();
            let _ = tokio::task::spawn_blocking(move || certs.check_files()).await;
        }
    }
}

/// A TLS server setup serving every certificate of `files`, or `None` for an empty list.
fn build(files: &[CertificateFiles]) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    if files.is_empty() {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = files
        .iter()
        .map(|f| load_certificate(f, &provider).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(sni::SniResolver::new(certs)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// One certificate chain and its key, checked to belong together.
fn load_certificate(
    files: &CertificateFiles,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_path = &files.certificate;
    let cert_pem = read_capped(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(cert_path.clone(), e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate(cert_path.clone()));
    };
    webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| TlsError::Certificate(cert_path.clone(), e.to_string()))?;
    let key_path = files.private_key.as_ref().unwrap_or(cert_path);
    let key_pem = match &files.private_key {
        Some(p) => read_capped(p)?,
        None => cert_pem,
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError::NoKey(key_path.clone(), e.to_string()))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| TlsError::Key(key_path.clone(), e.to_string()))
}

fn read_capped(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| TlsError::Read(path.into(), e))?;
    let mut data = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| TlsError::Read(path.into(), e))?;
    if data.len() as u64 > MAX_PEM_FILE {
        return Err(TlsError::TooLarge(path.into()));
    }
    Ok(data)
}

/// The stamp of every file `files` names (certificate, then key), `None` where unreadable.
fn stamps(files: &[CertificateFiles]) -> Vec<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .flat_map(|f| std::iter::once(&f.certificate).chain(f.private_key.as_ref()))
        .map(|p| {
            std::fs::metadata(p).ok().map(|m| Stamp {
                modified: m.modified().ok(),
                len: m.len(),
                inode: m.ino(),
            })
        })
        .collect()
}
