//! The server side of one WebSocket connection: limits, heartbeat, and the
//! read/write loop around the codec.
//!
//! [`run`] owns the socket for the connection's whole life, in a single task:
//! it reads frames, enforces the limits of protocol §1 (size, rate, bad
//! messages, idle), hands decoded messages to a [`Handler`] and writes what
//! the connection's [`Outbox`] holds. It is generic over `Sink`/`Stream`, so
//! tests can drive it without a socket.
//!
//! **Coalesced writes.** Woken by its outbox, the session takes every queued
//! frame, buffers them all in tungstenite without flushing and flushes once:
//! one write syscall (one TCP segment on loopback) for everything queued.
//! `gridcap_ws_frames_written_total` divided by `gridcap_ws_flushes_total`
//! on `/metrics` is the frames per write. At the protocol's rates a player's
//! frames come milliseconds apart, so on an idle-ish node that is one frame
//! per write, and it goes out at once. Under load the node sets a write hold
//! ([`hold`](crate::hold), bounded by [`SessionLimits::write_hold_max`]): a
//! frame that follows the connection's last write by less than the hold
//! waits for the rest of it, and whatever gathered shares the next write.
//! The first frame after a quiet period never waits.
//!
//! **Parking.** A plain-TCP session ([`run_parked`]) holds no WebSocket
//! while it is idle: after [`SessionLimits::park_after`] of quiet, between
//! two frames, it drops tungstenite's state and buffers and the loop's
//! timers and waits on the raw socket, its outbox, its heartbeat and the
//! shutdown; the first of them builds the WebSocket again (see `park.rs`).
//! A parked session is not even a task: its state waits in a slot that is
//! its own waker, and the first wake-up spawns its next activation (see
//! [`crate::slot`]). Nor is its socket in tokio's reactor: the node's one
//! [`IdleSockets`] watches it until it has bytes to read (see `idle.rs`).
//! `gridcap_ws_parked` counts the parked sessions.
//!
//! Layout: this file is the entry points ([`run`], [`run_parked`]) and
//! what they talk to (the [`Handler`], close codes, [`SessionEnd`]);
//! `active.rs` the read/write loop and what a session keeps between
//! activations; `park.rs` the parked wait and the frame-boundary tracking
//! that makes parking safe; `crate::slot` where a parked session waits
//! without a task; `idle.rs` where its socket waits off the reactor;
//! `beats.rs` its heartbeat; `limits.rs` holds [`SessionLimits`]; `write.rs`
//! the write path (batches, the hold's timer,
//! the close handshake and the write counters); `tests.rs` drives the loop
//! through a fake socket, `park_tests.rs` a parking session.

use std::borrow::Borrow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, warn};

use crate::codec;
use crate::outbox::Outbox;
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};
use crate::slot;

mod active;
mod beats;
mod idle;
mod limits;
mod park;
mod write;

use active::{AtRest, Conn, Step, active};
use beats::BeatKey;
pub use beats::Beats;
pub use idle::{IdleSockets, IdleTcp};
pub use limits::SessionLimits;
use park::Framed;
pub use park::Park;
pub use write::close;
use write::write_queued;

/// Close code: normal closure (after `leave`).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: the server is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the peer broke RFC 6455 (unmasked frame, oversized control frame…).
pub const CLOSE_PROTOCOL: u16 = 1002;
/// Close code: a text frame that is not UTF-8.
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code: policy violation (abuse, persistent flooding, slow consumer, idle).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: a message over the size limit.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: internal error.
pub const CLOSE_INTERNAL: u16 = 1011;
/// Close code: overloaded, try again later.
pub const CLOSE_OVERLOADED: u16 = 1013;
/// Close code: the seat was resumed on another connection.
pub const CLOSE_REPLACED: u16 = 4001;

/// What the handler wants after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Send what is queued, then close with this code and reason.
    Close(u16, String),
}

/// What the handler did with a raw frame offered to [`Handler::on_frame`].
#[derive(Debug)]
pub enum FrameOutcome {
    /// The handler took the frame (e.g. relayed it undecoded to another node).
    Consumed(Flow),
    /// Decode the frame and pass it to [`Handler::on_message`].
    Decode(Bytes),
}

/// The application behind a session: the server's game routing.
pub trait Handler: Send {
    /// Every binary frame that passed the rate limit, before decoding. The
    /// default asks for decoding; a handler that relays a connection to
    /// another node consumes frames here without decoding them.
    fn on_frame(
        &mut self,
        frame: Bytes,
        _outbox: &Outbox,
    ) -> impl Future<Output = FrameOutcome> + Send {
        std::future::ready(FrameOutcome::Decode(frame))
    }

    /// One decoded message; `frame` is its undecoded form. Answers go through
    /// `outbox` (so they stay in order with broadcasts).
    fn on_message(
        &mut self,
        message: ClientMessage,
        frame: Bytes,
        outbox: &Outbox,
    ) -> impl Future<Output = Flow> + Send;

    /// The connection is over, for whatever reason; called exactly once,
    /// with the connection's queue (its id names the connection: the
    /// handler need not keep a copy, parked or not).
    fn on_close(self, outbox: &Outbox) -> impl Future<Output = ()> + Send;
}

/// How a session ended, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The peer closed or the socket ended.
    PeerClosed,
    /// We closed with this code.
    Closed(u16),
    /// A write blocked too long or failed; the socket was dropped.
    WriteFailed,
    /// A read failed (I/O or a WebSocket protocol violation).
    ReadFailed,
}

/// Answers an error straight into the connection's queue.
pub fn push_error(outbox: &Outbox, code: ErrorCode, message: impl Into<String>) {
    metrics::counter!("gridcap_errors_total", "code" => code.as_str()).increment(1);
    let msg = ServerMessage::Error {
        code,
        message: message.into(),
    };
    match codec::encode_server(&msg) {
        Ok(frame) => {
            if let Err(e) = outbox.push(frame) {
                debug!(conn = outbox.id(), "error reply not queued: {e}");
            }
        }
        Err(e) => warn!("cannot encode error reply: {e}"),
    }
}

/// Runs one connection until it ends; see the module docs.
///
/// `limits` is borrowed through any owner: `&SessionLimits`, or a handle
/// the session owns (an `Arc`, the server's node state), so that the
/// session can be a task of its own, spawned by the task that upgraded it.
///
/// **Memory.** What a session keeps for its whole life is its
/// `Conn` (queue, handler, the limits' state, deadlines);
/// the active loop's future (the select state, the heartbeat timer) is
/// boxed beside it, and what only a busy connection needs is boxed for the
/// time it is needed: the handler's futures (one box per client message),
/// the close handshake, the ping; the write path is a poll function with
/// no future of its own, and its timeout timer (shared with the write
/// hold) is made the first time a write or a hold needs one. It is an
/// `async` block, not an `async fn`: an `async fn` stores its arguments
/// twice (as arguments, and moved into its body), ~0.5 KB per connection.
/// `shutdown` must be `Unpin` for the same reason: pinning it in the body
/// would move it into a second slot (box it, as the server does).
///
/// This session never parks: it is for streams that are not a raw socket
/// (TLS, tests); [`run_parked`] is the one for plain TCP.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice (see above)"
)]
pub fn run<S, H, L>(
    mut ws: S,
    outbox: Outbox,
    limits: L,
    handler: H,
    mut shutdown: impl Future<Output = ()> + Unpin,
) -> impl Future<Output = SessionEnd>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    H: Handler,
    L: Borrow<SessionLimits> + Send,
{
    // Made here and captured: moved into a local of the block, they would
    // also keep their slots as captures (the same cost as an `async fn`).
    let mut conn = Conn::new(outbox, handler, limits.borrow());
    async move {
        let limits = limits.borrow();
        let step = Box::pin(active(
            &mut ws,
            &mut conn,
            limits,
            &mut shutdown,
            None,
            false,
        ))
        .await;
        let end = match step {
            Step::End(end) => end,
            // Not without an `at_rest` check.
            Step::Park => SessionEnd::ReadFailed,
        };
        Box::pin(conn.handler.on_close(&conn.outbox)).await;
        end
    }
}

/// What a parking session needs from whoever runs it. A parked session is
/// no task (see [`crate::slot`]), so it carries its host along: its limits, how
/// to spawn its next activation, and what to do when it ends.
pub trait Host: Send + 'static {
    /// What spawns the session's activations.
    type Tasks: Tasks;

    /// The session's limits.
    fn limits(&self) -> &SessionLimits;

    /// A handle on what spawns the session's next activation.
    fn tasks(&self) -> Self::Tasks;

    /// Where the session registers its heartbeat while parked (the node's
    /// one [`Beats`], whose [`Beats::run`] must be running).
    fn beats(&self) -> &Beats;

    /// Where the session's socket waits while parked (the node's one
    /// [`IdleSockets`], whose [`IdleSockets::run`] must be running).
    fn sockets(&self) -> &IdleSockets;

    /// The node's shutdown, as a future; asked for once per activation.
    fn shutdown(&self) -> impl Future<Output = ()> + Unpin + Send + 'static;

    /// Connection `conn` (its outbox's id) is over (its handler's
    /// `on_close` has run); called once.
    fn ended(self, conn: u64, end: SessionEnd);
}

/// Spawns a parked session's next activation as a task of its own.
pub trait Tasks {
    /// Runs `activation` on the runtime (or drops it, if the runtime is
    /// gone: the session then ends with it).
    fn spawn<F: Future<Output = ()> + Send + 'static>(self, activation: F);
}

/// [`run`] on a raw socket, parking whenever the connection is idle: the
/// WebSocket (tungstenite's state and buffers) and the active loop exist
/// only while there is something to do, and are dropped when the session
/// has been quiet for [`SessionLimits::park_after`] between two frames.
/// Parked, a session is no task at all: its socket, its `Conn`, its
/// shutdown and its host wait in a slot (see [`crate::slot`]) with a heartbeat
/// timer, and the first wake-up spawns its next activation through
/// [`Host::tasks`]. The returned future is the first activation; it
/// completes when the session ends or first parks. [`Host::ended`] is
/// told the end. `early`: bytes the peer sent after its handshake,
/// already read.
pub fn run_parked<T, H, P>(
    io: T,
    early: Vec<u8>,
    outbox: Outbox,
    handler: H,
    host: P,
) -> impl Future<Output = ()> + Send
where
    T: Park,
    H: Handler + 'static,
    P: Host,
{
    let conn = Conn::new(outbox, handler, host.limits());
    let session = Awake {
        io,
        conn,
        host,
        stopping: false,
    };
    drive(session, Some(early))
}

/// A parking session at work: its socket on the reactor.
struct Awake<T, H, P> {
    io: T,
    conn: Conn<H>,
    host: P,
    /// The shutdown fired while parking: finish at once.
    stopping: bool,
}

/// A parking session between activations: everything it keeps.
struct Parked<T: Park, H, P> {
    /// Off the reactor (see `idle.rs`).
    io: T::Idle,
    conn: Conn<H>,
    host: P,
    /// The shutdown fired while parking: finish at once.
    stopping: bool,
    /// Its heartbeat, registered while parked.
    beat: Option<BeatKey>,
}

impl<T, H, P> slot::Resume for Parked<T, H, P>
where
    T: Park,
    H: Handler + 'static,
    P: Host,
{
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // An error or EOF is ready too: the active loop reads it.
        if self.conn.outbox.poll_woken(cx).is_ready()
            || T::poll_idle(&mut self.io, self.host.sockets(), cx).is_ready()
            || Instant::now() >= self.conn.next_beat()
        {
            return Poll::Ready(());
        }
        match self
            .host
            .beats()
            .register(self.conn.next_beat(), cx.waker())
        {
            Ok(key) => {
                self.beat = Some(key);
                Poll::Pending
            }
            Err(beats::Closed) => {
                self.stopping = true;
                Poll::Ready(())
            }
        }
    }

    fn resume(self) {
        write::counters().parked.decrement(1.0);
        let tasks = self.host.tasks();
        tasks.spawn(async move {
            if let Some(session) = self.unpark().await {
                drive(session, None).await;
            }
        });
    }
}

impl<T: Park, H: Handler, P: Host> Parked<T, H, P> {
    /// Its beat taken back and its socket back on the reactor: ready for
    /// the next activation (`None`: the socket could not rejoin, and the
    /// session has ended).
    async fn unpark(self) -> Option<Awake<T, H, P>> {
        let Parked {
            io,
            conn,
            host,
            stopping,
            beat,
        } = self;
        if let Some(beat) = beat {
            host.beats().cancel(beat);
        }
        match T::rejoin(io, host.sockets()) {
            Ok(io) => Some(Awake {
                io,
                conn,
                host,
                stopping,
            }),
            Err(e) => {
                warn!(
                    conn = conn.outbox.id(),
                    "a parked socket could not rejoin the reactor: {e}"
                );
                Box::pin(conn.handler.on_close(&conn.outbox)).await;
                host.ended(conn.outbox.id(), SessionEnd::ReadFailed);
                None
            }
        }
    }
}

/// Runs a parking session's activations until it ends (then tells its
/// host) or parks away from this task.
async fn drive<T, H, P>(mut session: Awake<T, H, P>, mut early: Option<Vec<u8>>)
where
    T: Park,
    H: Handler + 'static,
    P: Host,
{
    loop {
        let Awake {
            io,
            mut conn,
            host,
            stopping,
        } = session;
        let limits = host.limits();
        let mut shutdown = host.shutdown();
        let activation = activate(
            Framed::new(io),
            early.take(),
            &mut conn,
            limits,
            &mut shutdown,
            stopping,
        );
        let end = match Box::pin(activation).await {
            Ok(io) => match io.io.leave(host.sockets()) {
                Ok(io) => {
                    #[cfg(test)]
                    park_tests::PARKS.with(|p| p.set(p.get() + 1));
                    let parked = Parked {
                        io,
                        conn,
                        host,
                        stopping: false,
                        beat: None,
                    };
                    // Counted while in a slot or on its way there; out
                    // again when resumed, or kept here.
                    write::counters().parked.increment(1.0);
                    let here = match slot::park(parked) {
                        slot::Parking::Away => return,
                        slot::Parking::Here(parked) => {
                            write::counters().parked.decrement(1.0);
                            parked.unpark().await
                        }
                    };
                    match here {
                        Some(awake) => {
                            session = awake;
                            continue;
                        }
                        None => return,
                    }
                }
                Err(e) => {
                    warn!(
                        conn = conn.outbox.id(),
                        "a socket could not leave the reactor to park: {e}"
                    );
                    SessionEnd::ReadFailed
                }
            },
            Err(end) => end,
        };
        Box::pin(conn.handler.on_close(&conn.outbox)).await;
        host.ended(conn.outbox.id(), end);
        return;
    }
}

/// One activation of a parking session: a WebSocket on `io` (with the
/// `early` bytes, the first time) through the active loop; the socket
/// back when it parks, the end otherwise.
async fn activate<T, H>(
    io: Framed<T>,
    early: Option<Vec<u8>>,
    conn: &mut Conn<H>,
    limits: &SessionLimits,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
    stopping: bool,
) -> Result<Framed<T>, SessionEnd>
where
    T: Park,
    H: Handler,
{
    let mut io = io;
    let early = early.unwrap_or_default();
    io.boundary.feed(&early);
    let config = Some(limits.websocket_config());
    let mut ws = WebSocketStream::from_partially_read(io, early, Role::Server, config).await;
    let at_rest: AtRest<WebSocketStream<Framed<T>>> =
        Some(|ws| ws.get_ref().boundary.at_rest() && active::flushed(ws));
    match active(&mut ws, conn, limits, shutdown, at_rest, stopping).await {
        Step::End(end) => Err(end),
        Step::Park => Ok(ws.into_inner()),
    }
}

/// Ends the session on its own initiative (a limit, a peer's protocol
/// error, the shutdown): what is queued goes out first, as when the
/// handler asks for the close, then the close; a close already requested
/// (after `leave`, say) keeps its code.
async fn finish<S>(
    ws: &mut S,
    outbox: &Outbox,
    code: u16,
    reason: &str,
    limits: &SessionLimits,
    timer: &mut Option<Pin<Box<Sleep>>>,
) -> SessionEnd
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    match write_queued(ws, outbox, limits, timer).await {
        Some(end) => end,
        None => close(ws, code, reason, limits).await,
    }
}

/// One binary message through the handler: offered raw, then decoded and
/// handled. `Err` is a message that did not decode (code and why).
async fn deliver<H: Handler>(
    handler: &mut H,
    frame: Bytes,
    outbox: &Outbox,
) -> Result<Flow, (ErrorCode, String)> {
    match handler.on_frame(frame, outbox).await {
        FrameOutcome::Consumed(flow) => Ok(flow),
        FrameOutcome::Decode(frame) => match codec::decode_client(&frame) {
            Ok(message) => Ok(handler.on_message(message, frame, outbox).await),
            Err(e) => Err((ErrorCode::BadMessage, e.to_string())),
        },
    }
}

#[cfg(test)]
mod park_tests;
#[cfg(test)]
mod tests;
