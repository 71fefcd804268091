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

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use metrics::{Counter, Histogram};
use tokio::time::{Instant, Sleep, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, warn};

use crate::TransportError;
use crate::codec;
use crate::hold;
use crate::outbox::Outbox;
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};
use crate::ratelimit::TokenBucket;

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

/// Per-connection limits; every one is configurable (see `gridcap serve --help`).
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Largest message accepted; a larger one closes with 1009.
    pub max_message_bytes: usize,
    /// Messages per second allowed on average (0 = unlimited).
    pub rate_per_sec: u32,
    /// Messages allowed in a burst.
    pub rate_burst: u32,
    /// Consecutive rate-limited messages before closing with 1008.
    pub max_rate_strikes: u32,
    /// Bad frames/messages before closing with 1008.
    pub max_bad_messages: u32,
    /// Interval between server pings.
    pub ping_interval: Duration,
    /// Close a connection that sent nothing (not even a pong) this long.
    pub idle_timeout: Duration,
    /// Frames queued for a connection before it counts as a slow consumer.
    pub outbox_capacity: usize,
    /// Longest a write to the socket may block before the connection is dropped.
    pub write_timeout: Duration,
    /// How long to wait for the peer's close frame after sending ours.
    pub close_timeout: Duration,
    /// Close (1008) a connection that sent no binary message this long
    /// after it opened: answering pings alone does not hold a slot forever.
    pub first_message_timeout: Duration,
    /// tungstenite's eagerly allocated read buffer per connection.
    pub read_buffer_bytes: usize,
    /// tungstenite's write buffer target before it writes to the socket.
    pub write_buffer_bytes: usize,
    /// Longest a frame that follows a write may wait for more frames to
    /// share the next write, when the node is fully busy (see
    /// [`hold`](crate::hold)); zero writes every batch at once.
    pub write_hold_max: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_message_bytes: 4096,
            rate_per_sec: 20,
            rate_burst: 40,
            max_rate_strikes: 100,
            max_bad_messages: 20,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            outbox_capacity: 256,
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            first_message_timeout: Duration::from_secs(60),
            read_buffer_bytes: 256,
            write_buffer_bytes: 4096,
            write_hold_max: Duration::from_millis(8),
        }
    }
}

impl SessionLimits {
    /// tungstenite settings that enforce these limits with small buffers (the
    /// 128 KiB defaults would cost ~256 KiB per connection).
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_bytes)
            .write_buffer_size(self.write_buffer_bytes)
            .max_write_buffer_size(self.write_buffer_bytes.saturating_mul(4).max(64 * 1024))
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}

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

    /// The connection is over, for whatever reason; called exactly once.
    fn on_close(self) -> impl Future<Output = ()> + Send;
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

/// The write path's counters, looked up once per process rather than once
/// per event (a `counter!` lookup hashes the name and labels every call).
struct Counters {
    /// `gridcap_messages_out_total`: frames taken from outboxes and written.
    messages_out: Counter,
    /// `gridcap_messages_in_total`: binary messages received.
    messages_in: Counter,
    /// `gridcap_ws_frames_written_total`: every frame a session writes
    /// (messages, pings, closes): the numerator of frames per write.
    frames_written: Counter,
    /// `gridcap_ws_flushes_total`: flushes to the socket, one write syscall
    /// each unless more than the write buffer was queued.
    flushes: Counter,
    /// `gridcap_capture_broadcast_seconds`: a capture's arrival to the write
    /// of its `captured` echo to the capturing player.
    broadcast: Histogram,
}

impl Counters {
    /// A batch was written: records its stamp's age, if it had one.
    fn written_since(&self, stamp: Option<Instant>) {
        if let Some(since) = stamp {
            self.broadcast.record(since.elapsed().as_secs_f64());
        }
    }

    /// One flush to the socket that carried `frames` frames.
    fn wrote(&self, frames: u64) {
        self.frames_written.increment(frames);
        self.flushes.increment(1);
    }
}

/// The handles are taken by the first session of the process, so the
/// recorder must be installed before it starts (the server installs it when
/// it builds its state; in a process without one they are no-ops).
fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| Counters {
        messages_out: metrics::counter!("gridcap_messages_out_total"),
        messages_in: metrics::counter!("gridcap_messages_in_total"),
        frames_written: metrics::counter!("gridcap_ws_frames_written_total"),
        flushes: metrics::counter!("gridcap_ws_flushes_total"),
        broadcast: metrics::histogram!("gridcap_capture_broadcast_seconds"),
    })
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
/// **Memory.** The returned future is what every connection's task holds
/// for its whole life, idle or not, so it keeps only what an idle
/// connection needs: the socket, the handler, the limits' state and the
/// heartbeat. What only a busy connection needs is boxed for the time it
/// is needed: the handler's futures (one box per client message), the
/// close handshake, the ping; the write path is a poll function with no
/// future of its own, and its timeout timer (shared with the write hold)
/// is made the first time a write or a hold needs one. It is an `async`
/// block, not an `async fn`: an `async fn` stores its arguments twice (as
/// arguments, and moved into its body), ~0.5 KB per connection. `shutdown`
/// must be `Unpin` for the same reason: pinning it in the body would move
/// it into a second slot (box it, as the server does).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice (see above)"
)]
pub fn run<S, H>(
    mut ws: S,
    outbox: Outbox,
    limits: &SessionLimits,
    mut handler: H,
    mut shutdown: impl Future<Output = ()> + Unpin,
) -> impl Future<Output = SessionEnd>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    H: Handler,
{
    async move {
        let counters = counters();
        let mut bad_messages = 0u32;
        let mut rate_strikes = 0u32;
        let mut bucket = TokenBucket::new(limits.rate_per_sec, limits.rate_burst, Instant::now());
        let mut last_heard = Instant::now();
        // Until the first binary message, the connection must speak by this time.
        let mut first_deadline = Some(last_heard + limits.first_message_timeout);
        let heartbeat = sleep(
            limits
                .ping_interval
                .min(limits.idle_timeout)
                .min(limits.first_message_timeout),
        );
        // When the last batch was written (none yet: the first goes at once),
        // and whether the queue is being held for the timer below.
        let mut last_write: Option<Instant> = None;
        let mut holding = false;
        // The write hold's timer and a blocked write's timeout (never both
        // at once). Boxed and made on first use: a connection that is never
        // held and never pushed back (every idle one) does not carry one.
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        tokio::pin!(heartbeat);

        let end = loop {
            tokio::select! {
                // The shutdown is polled after the branches that keep a busy
                // connection going: one of them is usually ready first, so the
                // cancellation token (hundreds of instructions a poll) is
                // rarely polled; its wake-up was registered the first time the
                // session went idle, when every branch is polled.
                biased;
                () = outbox.ready(), if !holding => {
                    // Under load, a frame that follows the last write by less
                    // than the hold waits for the rest of it (see `hold`).
                    if let Some(due) = last_write.and_then(|at| hold_until(at, limits)) {
                        arm(&mut timer, due);
                        holding = true;
                        continue;
                    }
                    if let Some(end) = write_queued(&mut ws, &outbox, limits, &mut timer).await {
                        break end;
                    }
                    last_write = Some(Instant::now());
                }
                () = expiry(&mut timer), if holding => {
                    holding = false;
                    if let Some(end) = write_queued(&mut ws, &outbox, limits, &mut timer).await {
                        break end;
                    }
                    last_write = Some(Instant::now());
                }
                incoming = ws.next() => {
                    let now = Instant::now();
                    let message = match incoming {
                        None => break SessionEnd::PeerClosed,
                        Some(Err(WsError::Capacity(e))) => {
                            debug!(conn = outbox.id(), "message too big: {e}");
                            break Box::pin(close(&mut ws, CLOSE_TOO_BIG, "message too big", limits)).await;
                        }
                        Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                            break SessionEnd::PeerClosed;
                        }
                        // tungstenite reports a peer's protocol violation as an
                        // error and leaves the close to us (RFC 6455 §7.4.1).
                        Some(Err(WsError::Protocol(e))) => {
                            debug!(conn = outbox.id(), "protocol violation: {e}");
                            break Box::pin(close(&mut ws, CLOSE_PROTOCOL, "protocol error", limits)).await;
                        }
                        Some(Err(WsError::Utf8(e))) => {
                            debug!(conn = outbox.id(), "invalid UTF-8: {e}");
                            break Box::pin(close(&mut ws, CLOSE_INVALID_DATA, "invalid UTF-8 in a text frame", limits)).await;
                        }
                        Some(Err(e)) => {
                            debug!(conn = outbox.id(), "read failed: {e}");
                            break SessionEnd::ReadFailed;
                        }
                        Some(Ok(m)) => m,
                    };
                    last_heard = now;
                    if matches!(message, Message::Close(_)) {
                        continue; // tungstenite answers a close; the stream then ends.
                    }
                    // Every other frame takes a token, pongs and pings
                    // included: unsolicited pongs are legal (RFC 6455
                    // §5.5.3), so a flood of them is a flood like any other.
                    // Our own pings' answers cost one token per ping interval.
                    if !bucket.try_take(now) {
                        rate_strikes += 1;
                        if rate_strikes >= limits.max_rate_strikes {
                            // Through the outbox, so that the answers queued
                            // before it (a held write, under load) go out first.
                            outbox.close(CLOSE_POLICY, "rate limit exceeded persistently");
                            continue;
                        }
                        if message.is_binary() || message.is_text() {
                            push_error(&outbox, ErrorCode::RateLimited, "too many messages; this one was dropped");
                        }
                        continue;
                    }
                    rate_strikes = 0;
                    let delivered = match message {
                        Message::Binary(bytes) => {
                            first_deadline = None;
                            counters.messages_in.increment(1);
                            // Boxed: see the memory note above.
                            Box::pin(deliver(&mut handler, bytes, &outbox)).await
                        }
                        Message::Text(_) => Err((ErrorCode::BadFrame, "text frames are not accepted; send binary MessagePack".to_owned())),
                        _ => continue, // Ping (answered by tungstenite) and raw frames.
                    };
                    match delivered {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Close(code, reason)) => outbox.close(code, reason),
                        Err((code, why)) => {
                            bad_messages += 1;
                            push_error(&outbox, code, why);
                            if bad_messages >= limits.max_bad_messages {
                                outbox.close(CLOSE_POLICY, "too many bad messages");
                            }
                        }
                    }
                }
                () = &mut shutdown => {
                    // Frames queued before the shutdown go out first: the drain
                    // closes sessions as soon as their game is over, possibly
                    // before its game_over was written. A close already
                    // requested (after `leave`, say) keeps its code.
                    let batch = outbox.take_all();
                    if write_frames(&mut ws, batch.frames, limits.write_timeout, &mut timer).await.is_err() {
                        break SessionEnd::WriteFailed;
                    }
                    counters.written_since(batch.stamp);
                    let (code, reason) = batch.close
                        .unwrap_or_else(|| (CLOSE_GOING_AWAY, "server shutting down".to_owned()));
                    break Box::pin(close(&mut ws, code, &reason, limits)).await;
                }
                () = &mut heartbeat => {
                    let now = Instant::now();
                    let idle_deadline = last_heard + limits.idle_timeout;
                    if now >= idle_deadline {
                        break Box::pin(close(&mut ws, CLOSE_POLICY, "idle timeout", limits)).await;
                    }
                    if first_deadline.is_some_and(|d| now >= d) {
                        break Box::pin(close(&mut ws, CLOSE_POLICY, "no message received", limits)).await;
                    }
                    // Boxed: every 15 s, not worth its bytes in every idle session.
                    let sent = Box::pin(timeout(limits.write_timeout, ws.send(Message::Ping(Bytes::new())))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break SessionEnd::WriteFailed;
                    }
                    counters.wrote(1);
                    let next = (now + limits.ping_interval).min(idle_deadline);
                    heartbeat.as_mut().reset(first_deadline.map_or(next, |d| next.min(d)));
                }
            }
        };
        Box::pin(handler.on_close()).await;
        end
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

/// Sets `timer` to fire at `due`, making it on first use.
fn arm(timer: &mut Option<Pin<Box<Sleep>>>, due: Instant) {
    match timer.as_mut() {
        Some(timer) => timer.as_mut().reset(due),
        None => *timer = Some(Box::pin(sleep_until(due))),
    }
}

/// Completes when `timer` does; never without one.
async fn expiry(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(timer) => timer.await,
        None => std::future::pending().await,
    }
}

/// Until when frames that follow a write made `at` wait now; `None` when
/// they go out at once (no load, no hold configured, or the hold is over).
fn hold_until(at: Instant, limits: &SessionLimits) -> Option<Instant> {
    if limits.write_hold_max.is_zero() {
        return None;
    }
    let hold = hold::current().min(limits.write_hold_max);
    if hold.is_zero() {
        return None;
    }
    let due = at + hold;
    (due > Instant::now()).then_some(due)
}

/// Writes every queued frame with one flush, then the close if one was
/// requested; `Some` when the session is over. (These write functions
/// return blocks rather than being `async fn`s, whose futures would hold
/// their arguments twice: their futures sit in every session's.)
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice (see above)"
)]
fn write_queued<S>(
    ws: &mut S,
    outbox: &Outbox,
    limits: &SessionLimits,
    timer: &mut Option<Pin<Box<Sleep>>>,
) -> impl Future<Output = Option<SessionEnd>>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    async move {
        let batch = outbox.take_all();
        if write_frames(ws, batch.frames, limits.write_timeout, timer)
            .await
            .is_err()
        {
            return Some(SessionEnd::WriteFailed);
        }
        counters().written_since(batch.stamp);
        match batch.close {
            Some((code, reason)) => Some(Box::pin(close(ws, code, &reason, limits)).await),
            None => None,
        }
    }
}

/// Feeds every frame into tungstenite's write buffer (it writes to the
/// socket on its own only past `write_buffer_bytes`), then flushes once.
/// The queue's allocation goes with it (an idle connection keeps none). A
/// write the socket holds back longer than `limit` fails; the timer for
/// that is `timer`, armed only when the socket first pushes back.
fn write_frames<S>(
    ws: &mut S,
    mut frames: VecDeque<Bytes>,
    limit: Duration,
    timer: &mut Option<Pin<Box<Sleep>>>,
) -> impl Future<Output = Result<(), TransportError>>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let count = frames.len() as u64;
    let mut blocked = false;
    std::future::poll_fn(move |cx| {
        if count == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Poll::Ready(done) = poll_write(ws, &mut frames, cx) {
            if done.is_ok() {
                counters().messages_out.increment(count);
                counters().wrote(count);
            }
            return Poll::Ready(done.map_err(TransportError::from));
        }
        if !blocked {
            blocked = true;
            arm(timer, Instant::now() + limit);
        }
        match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(TransportError::Timeout("write"))),
            _ => Poll::Pending,
        }
    })
}

/// Moves `frames` into the socket, oldest first, then flushes it.
fn poll_write<S>(
    ws: &mut S,
    frames: &mut VecDeque<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), WsError>>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    while !frames.is_empty() {
        ready!(ws.poll_ready_unpin(cx))?;
        if let Some(frame) = frames.pop_front() {
            ws.start_send_unpin(Message::Binary(frame))?;
        }
    }
    ws.poll_flush_unpin(cx)
}

/// Sends a close frame and waits (at most `limits.close_timeout`) for the
/// peer's close. Also how the server turns away a connection it upgraded
/// only to tell it why (1013 past `--max-connections`).
pub async fn close<S>(ws: &mut S, code: u16, reason: &str, limits: &SessionLimits) -> SessionEnd
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    };
    let handshake = async {
        ws.send(Message::Close(Some(frame))).await?;
        counters().wrote(1);
        while let Some(msg) = ws.next().await {
            msg?;
        }
        Ok::<(), WsError>(())
    };
    let _ignored_peer_misbehaviour = timeout(limits.close_timeout, handshake).await;
    SessionEnd::Closed(code)
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use super::*;

    /// A socket that receives nothing until it has sent a close (then it
    /// ends), and records everything sent and, per flush, how many messages
    /// had been sent by then. A `stalled` one never completes a flush (a
    /// peer that stopped reading).
    #[derive(Default)]
    struct FakeSocket {
        sent: Arc<Mutex<Vec<Message>>>,
        flushes: Arc<Mutex<Vec<usize>>>,
        flushed: Arc<tokio::sync::Notify>,
        stalled: bool,
    }

    impl Stream for FakeSocket {
        type Item = Result<Message, WsError>;

        fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let sent = self.sent.lock().unwrap();
            if sent.iter().any(|m| matches!(m, Message::Close(_))) {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        }
    }

    impl Sink<Message> for FakeSocket {
        type Error = WsError;

        fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
            self.sent.lock().unwrap().push(item);
            Ok(())
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            if self.stalled {
                return Poll::Pending;
            }
            let sent = self.sent.lock().unwrap().len();
            self.flushes.lock().unwrap().push(sent);
            self.flushed.notify_one();
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
    }

    struct Idle;

    impl Handler for Idle {
        async fn on_message(&mut self, _: ClientMessage, _: Bytes, _: &Outbox) -> Flow {
            Flow::Continue
        }

        async fn on_close(self) {}
    }

    fn close_code(m: &Message) -> Option<u16> {
        match m {
            Message::Close(Some(frame)) => Some(u16::from(frame.code)),
            _ => None,
        }
    }

    /// A game's last events (its game_over) may be queued when the drain
    /// closes the sessions: they are sent before the 1001.
    #[tokio::test]
    async fn frames_queued_before_a_shutdown_are_sent_before_the_close() {
        let socket = FakeSocket::default();
        let sent = socket.sent.clone();
        let outbox = Outbox::new(1, 8);
        outbox.push(Bytes::from_static(b"captured")).unwrap();
        outbox.push(Bytes::from_static(b"game_over")).unwrap();
        let limits = SessionLimits::default();
        let end = run(socket, outbox, &limits, Idle, std::future::ready(())).await;
        assert_eq!(end, SessionEnd::Closed(CLOSE_GOING_AWAY));
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert_eq!(sent[0], Message::Binary(Bytes::from_static(b"captured")));
        assert_eq!(sent[1], Message::Binary(Bytes::from_static(b"game_over")));
        assert_eq!(close_code(&sent[2]), Some(CLOSE_GOING_AWAY));
    }

    /// A close already requested (here after `leave`) keeps its code.
    #[tokio::test]
    async fn a_requested_close_wins_over_the_shutdown() {
        let socket = FakeSocket::default();
        let sent = socket.sent.clone();
        let outbox = Outbox::new(1, 8);
        outbox.push(Bytes::from_static(b"last")).unwrap();
        outbox.close(CLOSE_NORMAL, "left the game");
        let limits = SessionLimits::default();
        let end = run(socket, outbox, &limits, Idle, std::future::ready(())).await;
        assert_eq!(end, SessionEnd::Closed(CLOSE_NORMAL));
        let sent = sent.lock().unwrap();
        assert_eq!(sent[0], Message::Binary(Bytes::from_static(b"last")));
        assert_eq!(close_code(&sent[1]), Some(CLOSE_NORMAL));
    }

    /// Runs a session on `socket` in a task of its own, with no shutdown.
    fn spawn_session(socket: FakeSocket, outbox: Outbox) -> tokio::task::JoinHandle<SessionEnd> {
        tokio::spawn(async move {
            let limits = SessionLimits::default();
            run(socket, outbox, &limits, Idle, std::future::pending()).await
        })
    }

    /// Everything queued when the writer runs goes out in one flush.
    #[tokio::test]
    async fn queued_frames_share_one_flush() {
        let socket = FakeSocket::default();
        let (sent, flushes) = (socket.sent.clone(), socket.flushes.clone());
        let outbox = Outbox::new(1, 8);
        for frame in [&b"1"[..], b"2", b"3", b"4"] {
            outbox.push(Bytes::from_static(frame)).unwrap();
        }
        let session = spawn_session(socket, outbox.clone());
        outbox.close(CLOSE_NORMAL, "done");
        assert_eq!(session.await.unwrap(), SessionEnd::Closed(CLOSE_NORMAL));
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 5, "{sent:?}");
        assert_eq!(sent[3], Message::Binary(Bytes::from_static(b"4")));
        let flushes = flushes.lock().unwrap();
        assert_eq!(flushes.as_slice(), [4, 5], "frames, then the close");
    }

    /// Under load (a hold set), frames that follow a write by less than the
    /// hold gather and go out together when it ends; the first frame, and a
    /// frame after a quiet period longer than the hold, go out at once.
    #[tokio::test(start_paused = true)]
    async fn under_load_frames_after_a_write_share_the_next_one() {
        hold::force(Duration::from_millis(5));
        let socket = FakeSocket::default();
        let (flushes, flushed) = (socket.flushes.clone(), socket.flushed.clone());
        let outbox = Outbox::new(1, 8);
        let session = spawn_session(socket, outbox.clone());
        let started = Instant::now();
        outbox.push(Bytes::from_static(b"1")).unwrap();
        flushed.notified().await;
        assert_eq!(Instant::now(), started, "the first frame waited");
        outbox.push(Bytes::from_static(b"2")).unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        outbox.push(Bytes::from_static(b"3")).unwrap();
        flushed.notified().await;
        assert_eq!(Instant::now(), started + Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let quiet = Instant::now();
        outbox.push(Bytes::from_static(b"4")).unwrap();
        flushed.notified().await;
        assert_eq!(Instant::now(), quiet, "a frame after a quiet period waited");
        hold::force(Duration::ZERO);
        outbox.close(CLOSE_NORMAL, "done");
        assert_eq!(session.await.unwrap(), SessionEnd::Closed(CLOSE_NORMAL));
        assert_eq!(flushes.lock().unwrap()[..3], [1, 3, 4]);
    }

    /// A write the peer does not take fails after the write timeout, and
    /// the session ends (its timer is made when the write first blocks).
    #[tokio::test(start_paused = true)]
    async fn a_write_held_back_past_the_write_timeout_fails() {
        let socket = FakeSocket {
            stalled: true,
            ..FakeSocket::default()
        };
        let outbox = Outbox::new(1, 8);
        outbox.push(Bytes::from_static(b"stuck")).unwrap();
        let started = Instant::now();
        // Bounded: without its timer the session would wait forever.
        let end = timeout(Duration::from_secs(60), spawn_session(socket, outbox))
            .await
            .expect("the blocked write never timed out")
            .unwrap();
        assert_eq!(end, SessionEnd::WriteFailed);
        assert_eq!(
            Instant::now(),
            started + SessionLimits::default().write_timeout
        );
    }

    /// Writes never wait for a timer: a lone frame on an idle connection
    /// goes out at once (paused time would jump ahead if the session slept).
    #[tokio::test(start_paused = true)]
    async fn a_lone_frame_is_flushed_without_waiting() {
        let socket = FakeSocket::default();
        let (sent, flushed) = (socket.sent.clone(), socket.flushed.clone());
        let outbox = Outbox::new(1, 8);
        let started = Instant::now();
        let session = spawn_session(socket, outbox.clone());
        outbox.push(Bytes::from_static(b"lone")).unwrap();
        flushed.notified().await;
        assert_eq!(Instant::now(), started, "the write waited for a timer");
        assert_eq!(
            sent.lock().unwrap().as_slice(),
            [Message::Binary(Bytes::from_static(b"lone"))]
        );
        outbox.close(CLOSE_NORMAL, "done");
        assert_eq!(session.await.unwrap(), SessionEnd::Closed(CLOSE_NORMAL));
    }
}
