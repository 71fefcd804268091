//! TLS runs: with `GRIDCAP_TEST_TLS=1`, or in a test binary whose name
//! starts with `tls_conformance` (see `crates/server/tests/tls_conformance.rs`),
//! the server tests' in-process servers serve https/wss only, with one
//! self-signed certificate (rcgen, for `localhost` and `127.0.0.1`) made
//! once per process, and every client of the kit — WebSocket
//! ([`client`](crate::client)), HTTP ([`http`](crate::http)) and
//! [`raw`](crate::raw) — connects over TLS trusting exactly that certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_tungstenite::{Connector, MaybeTlsStream};

use crate::WAIT;

/// Whether this run tests TLS (see the module docs).
pub fn tls_run() -> bool {
    static RUN: OnceLock<bool> = OnceLock::new();
    *RUN.get_or_init(|| {
        let by_env = std::env::var("GRIDCAP_TEST_TLS").is_ok_and(|v| v == "1");
        let by_name = std::env::current_exe().ok().is_some_and(|exe| {
            exe.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("tls_conformance"))
        });
        by_env || by_name
    })
}

/// The process's certificate: its PEM files and a client config trusting
/// exactly it.
#[derive(Debug)]
pub struct Material {
    /// The certificate, PEM, for the server's `--tls-cert`.
    pub cert_path: PathBuf,
    /// Its private key, PEM, for `--tls-key`.
    pub key_path: PathBuf,
    /// A client configuration that trusts exactly this certificate.
    pub client: Arc<rustls::ClientConfig>,
}

/// Made on first use; the files live in a per-process temporary directory.
pub fn material() -> &'static Material {
    static MATERIAL: OnceLock<Material> = OnceLock::new();
    MATERIAL.get_or_init(|| {
        // A subject unique to this process: rcgen's default is the same for
        // every certificate, so a client reaching another process's server
        // would fail with a confusing BadSignature instead of UnknownIssuer.
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("certificate parameters");
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("gridcap test {}", std::process::id()),
        );
        let key = rcgen::KeyPair::generate().expect("key pair");
        let cert = rcgen::CertifiedKey {
            cert: params.self_signed(&key).expect("self-signed certificate"),
            signing_key: key,
        };
        let dir = std::env::temp_dir().join(format!(
            "gridcap-test-tls-{}-{}",
            std::process::id(),
            std::env::current_exe()
                .ok()
                .and_then(|e| e.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, cert.cert.pem()).expect("write cert.pem");
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key.pem");
        let mut roots = RootCertStore::empty();
        roots
            .add(cert.cert.der().clone())
            .expect("trust the certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Material {
            cert_path,
            key_path,
            client: Arc::new(client),
        }
    })
}

/// The connector tokio-tungstenite should use: TLS trusting the test
/// certificate in TLS runs, `None` (plain) otherwise.
pub fn ws_connector() -> Option<Connector> {
    tls_run().then(|| Connector::Rustls(material().client.clone()))
}

/// `ws` or `wss`.
pub fn ws_scheme() -> &'static str {
    if tls_run() { "wss" } else { "ws" }
}

/// Wraps a connected socket in TLS (server name: `addr`'s IP) in TLS runs.
pub async fn wrap(stream: TcpStream, addr: SocketAddr) -> MaybeTlsStream<TcpStream> {
    tokio::time::timeout(WAIT, try_wrap(stream, addr))
        .await
        .expect("TLS handshake within WAIT")
        .expect("TLS handshake")
}

/// [`wrap`], with the handshake's error returned and no time limit.
pub async fn try_wrap(
    stream: TcpStream,
    addr: SocketAddr,
) -> std::io::Result<MaybeTlsStream<TcpStream>> {
    if !tls_run() {
        return Ok(MaybeTlsStream::Plain(stream));
    }
    let connector = TlsConnector::from(material().client.clone());
    let name = ServerName::IpAddress(addr.ip().into());
    Ok(MaybeTlsStream::Rustls(
        connector.connect(name, stream).await?,
    ))
}
