//! Native TLS (wss:// and https://) with rustls and the ring backend.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ServerConfig, version};

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain file is missing, unreadable or not PEM.
    #[error("cannot read the certificate chain {path}: {why}")]
    Certificate {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The private key file is missing, unreadable or not PEM.
    #[error("cannot read the private key {path}: {why}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("invalid certificate/key pair: {0}")]
    Config(String),
}

/// A TLS acceptor for the PEM certificate chain and private key, offering
/// TLS 1.3 and 1.2 and ALPN `http/1.1`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert.display().to_string(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.display().to_string(),
            why: "no CERTIFICATE block".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        why: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
