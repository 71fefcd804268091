//! Accepting connections: TCP, optional TLS, then HTTP/1.1 with upgrades.
//!
//! A hand-rolled accept loop (instead of `axum::serve`) so that every
//! connection gets the defences a public server needs before any route runs:
//! a deadline for the TLS handshake and for the request head (slowloris), a
//! cap on the head's size, TCP_NODELAY, and the peer address for per-IP
//! limits. HTTP parsing stays hyper's.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::debug;

/// Limits applied to every accepted connection.
#[derive(Debug, Clone)]
pub struct AcceptLimits {
    /// Time allowed for the TLS handshake and for the HTTP request head.
    pub handshake_timeout: Duration,
    /// Largest HTTP request head (hyper's read buffer; at least 8 KiB).
    pub max_head_bytes: usize,
}

/// Serves `app` on `listener` until `stop`, then lets open HTTP exchanges
/// finish for up to `grace`. Upgraded WebSockets are not HTTP connections
/// any more; the server's drain closes them.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: AcceptLimits,
    stop: CancellationToken,
    grace: Duration,
) {
    let connections = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = tcp.set_nodelay(true) {
            debug!("cannot set TCP_NODELAY: {e}");
        }
        let app = app.clone();
        let tls = tls.clone();
        let limits = limits.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let Some(io) = handshake(tcp, tls, limits.handshake_timeout).await else {
                return;
            };
            let service = app.map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.handshake_timeout)
                .max_buf_size(limits.max_head_bytes.max(8192));
            let connection = builder
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stop.cancelled() => {
                    // Finish the exchange in flight, then close (keep-alive off).
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        debug!("some HTTP connections did not finish in time");
    }
}

/// A plain or TLS connection. The TLS state is boxed: it is large (rustls'
/// connection state), and unboxed it would size every plain connection too.
type Io = Either<TcpStream, Box<tokio_rustls::server::TlsStream<TcpStream>>>;

/// The TLS handshake, when configured, bounded by `limit`.
async fn handshake(tcp: TcpStream, tls: Option<TlsAcceptor>, limit: Duration) -> Option<Io> {
    let Some(acceptor) = tls else {
        return Some(Either::Left(tcp));
    };
    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(Either::Right(Box::new(stream))),
        Ok(Err(e)) => {
            debug!("TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            debug!("TLS handshake timed out");
            None
        }
    }
}

/// The peer of a request served by [`serve`].
pub type Peer = ConnectInfo<SocketAddr>;
