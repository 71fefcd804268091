//! The WebSocket handshake (RFC 6455 §4.2) on axum/hyper, checked against
//! protocol §1, then handed to tokio-tungstenite and a session.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::either::Either;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::{debug, warn};
use transport::session::SessionLimits;
use transport::{Outbox, SUBPROTOCOL, session};

use crate::edge::admission::{Admission, Refused};
use crate::games::Games;
use crate::metrics as m;
use crate::session::PlayerSession;
use crate::state::AppState;

/// A refused handshake: status and a short plain-text reason.
fn refuse(status: StatusCode, why: &'static str) -> Response {
    crate::metrics::handshake_refused(status.as_u16(), why);
    (status, why).into_response()
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// What the checks decided about the subprotocol.
enum Subprotocol {
    /// None offered: accept without one.
    None,
    /// `gridcap.v1` offered: echo it.
    Ours,
}

/// Protocol §1: no subprotocol, or one list that includes ours; `None`
/// (answered 400) when only others are offered.
fn choose_subprotocol(headers: &HeaderMap) -> Option<Subprotocol> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if offered.is_empty() {
        Some(Subprotocol::None)
    } else if offered.contains(&SUBPROTOCOL) {
        Some(Subprotocol::Ours)
    } else {
        None
    }
}

/// Protocol §1: a present Origin must be on the allow-list (when there is one).
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin
            .to_str()
            .map(|o| {
                allowed
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(o.trim_end_matches('/')))
            })
            .unwrap_or(false),
    }
}

/// What the accept loop hands hyper: a plain or (boxed) TLS connection.
type RawIo = Either<TcpStream, Box<tokio_rustls::server::TlsStream<TcpStream>>>;

/// `GET /ws`: validates the handshake, answers 101 and runs the session.
pub async fn upgrade<G: Games>(
    State(state): State<Arc<AppState<G>>>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
    if !header_has_token(headers, header::CONNECTION, "upgrade")
        || !header_has_token(headers, header::UPGRADE, "websocket")
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade request",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut r = refuse(
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket version 13 required",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let accept = derive_accept_key(key.as_bytes());
    if !origin_allowed(headers, &state.config.allowed_origins) {
        return refuse(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let Some(subprotocol) = choose_subprotocol(headers) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported subprotocol; offer gridcap.v1",
        );
    };
    let peer = request
        .extensions()
        .get::<super::accept::Peer>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    // The relay header is believed only from a cluster peer's address:
    // anyone else could send it to dodge the drain and per-IP limits.
    let claimed_hops = request
        .headers()
        .get(crate::games::HOPS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let hops = if claimed_hops > 0 && state.games.is_peer(peer) {
        claimed_hops
    } else {
        0
    };
    // A draining node still takes relays from its peers: players of its
    // running games may come back through another node.
    if state.is_draining() && hops == 0 {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is draining; try another node",
        );
    }
    let ip = super::per_ip::client_ip(peer, request.headers(), &state.config.trusted_proxies);
    // Relays from cluster peers carry many players: no per-IP cap for them.
    let counted_ip = (hops == 0).then_some(ip);
    let admission = match Admission::try_new(&state, counted_ip) {
        Ok(admission) => admission,
        Err(Refused::Address) => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from this address",
            );
        }
        Err(Refused::Node) => return turn_away(&state, request, &accept, &subprotocol),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let session_state = state.clone();
    state.sessions.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                debug!("upgrade failed: {e}");
                return;
            }
        };
        let limits = &session_state.config.limits;
        // The sampler behind the write hold; started once per process.
        transport::hold::start(limits.write_hold_max);
        // The connection's own socket rather than hyper's boxed `Upgraded`:
        // one indirection and a rewind buffer less on every read and write.
        let Ok(parts) = upgraded.downcast::<TokioIo<RawIo>>() else {
            // The accept loop hands hyper nothing else; every WebSocket
            // test would fail first.
            warn!("upgraded connection of an unexpected type; dropped");
            return;
        };
        // Bytes the client sent after its request: copied, so that hyper's
        // read buffer (8 KiB) they point into is freed now.
        let early = parts.read_buf.to_vec();
        let io = parts.io.into_inner();
        drop(parts.read_buf);
        let conn = session_state.next_conn_id();
        let outbox = Outbox::new(conn, limits.outbox_capacity);
        let handler = PlayerSession::new(session_state.clone(), hops, ip);
        m::connections(1.0);
        let parks = !limits.park_after.is_zero();
        let host = SessionHost {
            _tracked: session_state.sessions.token(),
            admission,
        };
        // The session is a task of its own, spawned here, and this one ends:
        // each connection's task then holds only its own session's future
        // (built by combinators, which keep no second copy of what they
        // move), not this upgrade's state nor the larger of the two kinds.
        let tasks = &session_state.sessions;
        match io {
            // Plain TCP parks while idle (no WebSocket state held, and no
            // task: see `transport::session::run_parked`), unless parking
            // is off (`--ws-park-after-ms 0`).
            Either::Left(tcp) if parks => {
                // Boxed, here and for every later activation (`Node`): see
                // `Node`'s `spawn`.
                tasks.spawn(Box::pin(session::run_parked(
                    tcp, early, outbox, handler, host,
                )));
            }
            // TLS keeps its WebSocket for the connection's life: rustls
            // holds buffers and state of its own below it, so parking would
            // save little. So does plain TCP with parking off (no frame
            // tracking on its reads, ~8 % fewer instructions per frame).
            io => {
                let config = Some(limits.websocket_config());
                let ws = WebSocketStream::from_partially_read(io, early, Role::Server, config);
                let node = Node(session_state.clone());
                let stop = session::Host::shutdown(&host);
                tasks.spawn(
                    ws.then(move |ws| session::run(ws, outbox, node, handler, stop))
                        .map(move |end| session::Host::ended(host, conn, end)),
                );
            }
        }
    });

    switching_protocols(&accept, &subprotocol)
}

/// What one connection holds of its node for its whole life, parked or
/// not: the node and its place in the node's connection limits, and a
/// count in the node's session tracker (a parked session is no task, so
/// the tracker would not see it otherwise, and the drain would not wait
/// for it). 40 bytes (the connection's id is its outbox's), so that a
/// parked session's slot fits jemalloc's 224-byte size class (see the
/// size test).
struct SessionHost<G> {
    /// Given back when the session ends.
    admission: Admission<G>,
    /// Held, not read: dropped when the session ends.
    _tracked: TaskTrackerToken,
}

impl<G> SessionHost<G> {
    fn state(&self) -> &Arc<AppState<G>> {
        self.admission.state()
    }
}

impl<G: Games> session::Host for SessionHost<G> {
    type Tasks = Node<G>;

    fn limits(&self) -> &SessionLimits {
        &self.state().config.limits
    }

    fn tasks(&self) -> Node<G> {
        Node(self.state().clone())
    }

    fn beats(&self) -> &session::Beats {
        &self.state().beats
    }

    fn sockets(&self) -> &session::IdleSockets {
        &self.state().sockets
    }

    fn shutdown(&self) -> impl Future<Output = ()> + Unpin + Send + 'static {
        // Boxed: `Unpin`, so that a session does not store it twice.
        Box::pin(self.state().close_sessions.clone().cancelled_owned())
    }

    fn ended(self, conn: u64, end: session::SessionEnd) {
        m::connections(-1.0);
        m::session_ended(&end);
        debug!(conn, ?end, "session ended");
        // The permits and the tracker's count go with `self`.
    }
}

/// A session's handle on its node: what a session task borrows its limits
/// from (one pointer, no copy per connection), and what spawns a parked
/// session's activations on the node's session tracker.
struct Node<G>(Arc<AppState<G>>);

impl<G> std::borrow::Borrow<SessionLimits> for Node<G> {
    fn borrow(&self) -> &SessionLimits {
        &self.0.config.limits
    }
}

impl<G> session::Tasks for Node<G> {
    fn spawn<F: Future<Output = ()> + Send + 'static>(self, activation: F) {
        // Wake-ups come from the runtime's own threads (its I/O and timer
        // drivers, its tasks); one from anywhere else, or after the
        // runtime is gone, drops the session, as the runtime's end would.
        //
        // Boxed: tokio allocates a task's cell 128-byte aligned, and glibc
        // cannot reuse a freed aligned chunk for the next aligned request
        // of the same size (it asks for the size plus the alignment), so a
        // connection's first task, freed at its first park, left a ~1.9 KB
        // hole behind every idle player (1,982 against 1,341 B of RSS per
        // idle player, docs/benchmarks.md). A box is a plain allocation the
        // next one of its size reuses; the cell is then 128 bytes.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                self.0.sessions.spawn_on(Box::pin(activation), &runtime);
            }
            Err(e) => warn!("a parked session woke outside the runtime and ends: {e}"),
        }
    }
}

/// The 101 answer that completes a handshake.
fn switching_protocols(accept: &str, subprotocol: &Subprotocol) -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Subprotocol::Ours = subprotocol {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    response
}

/// Protocol §1, past `--max-connections`: upgrade and close at once with
/// 1013 (overloaded), so that a browser, which cannot read a refused
/// handshake's status, can tell its user to try later. At most
/// `--max-overload-closes` such connections at once; past them, HTTP 503.
fn turn_away<G: Games>(
    state: &Arc<AppState<G>>,
    mut request: Request,
    accept: &str,
    subprotocol: &Subprotocol,
) -> Response {
    let Ok(permit) = state.overload_closes.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; try again later",
        );
    };
    m::overload_closed();
    let on_upgrade = hyper::upgrade::on(&mut request);
    let limits = state.config.limits.clone();
    state.sessions.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = Some(limits.websocket_config());
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, config).await;
        session::close(
            &mut ws,
            session::CLOSE_OVERLOADED,
            "too many connections; try again later",
            &limits,
        )
        .await;
        drop(permit);
    });
    switching_protocols(accept, subprotocol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::local::LocalGames;

    /// The host a parked session keeps: with the 64-byte `PlayerSession`,
    /// its slot fits jemalloc's 224-byte class (transport's
    /// `a_parked_players_slot_fits_224_bytes` counts them as 40 and 64).
    #[test]
    fn a_sessions_host_is_40_bytes() {
        assert_eq!(std::mem::size_of::<SessionHost<LocalGames>>(), 40);
    }
}
