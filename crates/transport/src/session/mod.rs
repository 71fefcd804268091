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
//! Layout: this file is the loop ([`run`]) and what it talks to (the
//! [`Handler`], close codes, [`SessionEnd`]); `limits.rs` holds
//! [`SessionLimits`]; `write.rs` the write path (batches, the hold's timer,
//! the close handshake and the write counters); `tests.rs` drives the loop
//! through a fake socket.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::{Instant, Sleep, sleep, timeout};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, warn};

use crate::codec;
use crate::outbox::Outbox;
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};
use crate::ratelimit::TokenBucket;

mod limits;
mod write;

pub use limits::SessionLimits;
pub use write::close;
use write::{arm, counters, expiry, hold_until, write_queued};

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
                            break Box::pin(finish(&mut ws, &outbox, CLOSE_TOO_BIG, "message too big", limits, &mut timer)).await;
                        }
                        Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                            break SessionEnd::PeerClosed;
                        }
                        // tungstenite reports a peer's protocol violation as an
                        // error and leaves the close to us (RFC 6455 §7.4.1).
                        Some(Err(WsError::Protocol(e))) => {
                            debug!(conn = outbox.id(), "protocol violation: {e}");
                            break Box::pin(finish(&mut ws, &outbox, CLOSE_PROTOCOL, "protocol error", limits, &mut timer)).await;
                        }
                        Some(Err(WsError::Utf8(e))) => {
                            debug!(conn = outbox.id(), "invalid UTF-8: {e}");
                            break Box::pin(finish(&mut ws, &outbox, CLOSE_INVALID_DATA, "invalid UTF-8 in a text frame", limits, &mut timer)).await;
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
                    // The drain closes sessions as soon as their game is
                    // over, possibly before its game_over was written.
                    break Box::pin(finish(&mut ws, &outbox, CLOSE_GOING_AWAY, "server shutting down", limits, &mut timer)).await;
                }
                () = &mut heartbeat => {
                    let now = Instant::now();
                    let idle_deadline = last_heard + limits.idle_timeout;
                    if now >= idle_deadline {
                        break Box::pin(finish(&mut ws, &outbox, CLOSE_POLICY, "idle timeout", limits, &mut timer)).await;
                    }
                    if first_deadline.is_some_and(|d| now >= d) {
                        break Box::pin(finish(&mut ws, &outbox, CLOSE_POLICY, "no message received", limits, &mut timer)).await;
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
mod tests;
