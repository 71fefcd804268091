//! The session's read/write loop while its WebSocket machinery exists, and
//! [`Conn`], what a session keeps between two such activations.
//!
//! A session that may park ([`super::run_parked`]) leaves this loop when it
//! has been quiet for [`SessionLimits::park_after`] with nothing half done
//! (no partial frame read, nothing held or unflushed); one that may not
//! ([`super::run`]) stays in it for its whole life.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::time::{Instant, Sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::debug;

use super::write::{arm, counters, expiry, hold_until, write_queued};
use super::{
    CLOSE_GOING_AWAY, CLOSE_INVALID_DATA, CLOSE_POLICY, CLOSE_PROTOCOL, CLOSE_TOO_BIG, Flow,
    Handler, SessionEnd, SessionLimits, deliver, finish, push_error,
};
use crate::moment::{MaybeMoment, Moment};
use crate::outbox::Outbox;
use crate::protocol::ErrorCode;
use crate::ratelimit::TokenBucket;

/// Everything a session keeps for its whole life, parked or not: its queue,
/// its handler, the limits' state and its deadlines. (The WebSocket, its
/// buffers and the loop's timers exist only while the session is active.)
/// Its instants are [`Moment`]s, 8 bytes each and exact; the rate bucket
/// keeps its tokens only (the limit is the node's, passed in at each use).
pub(super) struct Conn<H> {
    pub(super) outbox: Outbox,
    pub(super) handler: H,
    bucket: TokenBucket,
    /// When the peer last sent anything (pongs included).
    last_heard: Moment,
    /// When the peer last sent anything but a pong: an answer to our own
    /// ping keeps the connection alive, but is no activity that should keep
    /// it from parking.
    last_active: Moment,
    /// Until the first binary message, the connection must speak by this time.
    first_deadline: MaybeMoment,
    /// When the last batch was written (none yet: the first goes at once).
    last_write: MaybeMoment,
    /// When the heartbeat is next due (a ping, or an idle check); see
    /// [`Conn::next_beat`].
    next_beat: Moment,
    bad_messages: u32,
    rate_strikes: u32,
}

impl<H> Conn<H> {
    pub(super) fn new(outbox: Outbox, handler: H, limits: &SessionLimits) -> Self {
        let now = Instant::now();
        Conn {
            outbox,
            handler,
            bucket: TokenBucket::new(limits.rate(), Moment::new(now)),
            last_heard: Moment::new(now),
            last_active: Moment::new(now),
            first_deadline: MaybeMoment::new(Some(now + limits.first_message_timeout)),
            last_write: MaybeMoment::NONE,
            next_beat: Moment::new(
                now + limits
                    .ping_interval
                    .min(limits.idle_timeout)
                    .min(limits.first_message_timeout),
            ),
            bad_messages: 0,
            rate_strikes: 0,
        }
    }

    /// When the heartbeat is next due (a ping, or an idle check): exactly
    /// the instant it was set to.
    pub(super) fn next_beat(&self) -> Instant {
        self.next_beat.get()
    }

    /// When the connection last read or wrote anything but a ping's pong,
    /// the last write having been at `wrote` (see [`active`]).
    fn last_io(&self, wrote: Option<Instant>) -> Instant {
        let active = self.last_active.get();
        wrote.map_or(active, |w| w.max(active))
    }
}

/// How an activation ended.
pub(super) enum Step {
    /// The session is over.
    End(SessionEnd),
    /// Quiet and at rest: the WebSocket may be dropped until the next wake.
    Park,
}

/// Whether a parking session's WebSocket is at rest: no partial frame
/// read, nothing unflushed. `None` for a session that never parks.
pub(super) type AtRest<S> = Option<fn(&mut S) -> bool>;

/// Runs the loop on `ws` until the session ends or, if `at_rest` is given,
/// until it may park. `stopping`: the shutdown already fired (while
/// parked); finish at once. Returns a block, not an `async fn`, for the
/// reason in [`super::run`]'s docs.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice (see `run`)"
)]
pub(super) fn active<'a, S, H>(
    ws: &'a mut S,
    conn: &'a mut Conn<H>,
    limits: &'a SessionLimits,
    shutdown: &'a mut (impl Future<Output = ()> + Unpin),
    at_rest: AtRest<S>,
    stopping: bool,
) -> impl Future<Output = Step> + 'a
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    H: Handler,
{
    async move {
        let counters = counters();
        let outbox = conn.outbox.clone();
        // Whether the queue is being held for the timer below.
        let mut holding = false;
        // The write hold's timer and a blocked write's timeout (never both
        // at once). Boxed and made on first use: a connection that is never
        // held and never pushed back does not carry one.
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        // When the last batch was written, kept whole while active (every
        // delivery writes: no conversion on its path); back into
        // `conn.last_write` when the session parks.
        let mut wrote = conn.last_write.get();
        // The heartbeat, and (when parking) the check for quiet.
        let beat = sleep_until(first_wake(conn, limits, at_rest.is_some(), Instant::now()));
        tokio::pin!(beat);
        if stopping {
            let end = Box::pin(finish(
                ws,
                &outbox,
                CLOSE_GOING_AWAY,
                "server shutting down",
                limits,
                &mut timer,
            ))
            .await;
            return Step::End(end);
        }

        let end = loop {
            tokio::select! {
                // The shutdown is polled after the branches that keep a busy
                // connection going: one of them is usually ready first, so the
                // cancellation token (hundreds of instructions a poll) is
                // rarely polled; its wake-up was registered the first time the
                // session went idle, when every branch is polled. The beat is
                // polled last: when it fires, the socket had no complete
                // frame buffered (what parking relies on).
                biased;
                () = outbox.ready(), if !holding => {
                    // Under load, a frame that follows the last write by less
                    // than the hold waits for the rest of it (see `hold`).
                    if let Some(due) = wrote.and_then(|at| hold_until(at, limits)) {
                        arm(&mut timer, due);
                        holding = true;
                        continue;
                    }
                    if let Some(end) = write_queued(ws, &outbox, limits, &mut timer).await {
                        break end;
                    }
                    wrote = Some(Instant::now());
                }
                () = expiry(&mut timer), if holding => {
                    holding = false;
                    if let Some(end) = write_queued(ws, &outbox, limits, &mut timer).await {
                        break end;
                    }
                    wrote = Some(Instant::now());
                }
                incoming = ws.next() => {
                    let now = Instant::now();
                    let message = match incoming {
                        None => break SessionEnd::PeerClosed,
                        Some(Err(WsError::Capacity(e))) => {
                            debug!(conn = outbox.id(), "message too big: {e}");
                            break Box::pin(finish(ws, &outbox, CLOSE_TOO_BIG, "message too big", limits, &mut timer)).await;
                        }
                        Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                            break SessionEnd::PeerClosed;
                        }
                        // tungstenite reports a peer's protocol violation as an
                        // error and leaves the close to us (RFC 6455 §7.4.1).
                        Some(Err(WsError::Protocol(e))) => {
                            debug!(conn = outbox.id(), "protocol violation: {e}");
                            break Box::pin(finish(ws, &outbox, CLOSE_PROTOCOL, "protocol error", limits, &mut timer)).await;
                        }
                        Some(Err(WsError::Utf8(e))) => {
                            debug!(conn = outbox.id(), "invalid UTF-8: {e}");
                            break Box::pin(finish(ws, &outbox, CLOSE_INVALID_DATA, "invalid UTF-8 in a text frame", limits, &mut timer)).await;
                        }
                        Some(Err(e)) => {
                            debug!(conn = outbox.id(), "read failed: {e}");
                            break SessionEnd::ReadFailed;
                        }
                        Some(Ok(m)) => m,
                    };
                    conn.last_heard = Moment::new(now);
                    if !matches!(message, Message::Pong(_)) {
                        conn.last_active = conn.last_heard;
                    }
                    if matches!(message, Message::Close(_)) {
                        continue; // tungstenite answers a close; the stream then ends.
                    }
                    // Every other frame takes a token, pongs and pings
                    // included: unsolicited pongs are legal (RFC 6455
                    // §5.5.3), so a flood of them is a flood like any other.
                    // Our own pings' answers cost one token per ping interval.
                    if !conn.bucket.try_take(limits.rate(), conn.last_heard) {
                        conn.rate_strikes += 1;
                        if conn.rate_strikes >= limits.max_rate_strikes {
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
                    conn.rate_strikes = 0;
                    let delivered = match message {
                        Message::Binary(bytes) => {
                            conn.first_deadline = MaybeMoment::NONE;
                            counters.messages_in.increment(1);
                            // Boxed: see the memory note of `run`.
                            Box::pin(deliver(&mut conn.handler, bytes, &outbox)).await
                        }
                        Message::Text(_) => Err((ErrorCode::BadFrame, "text frames are not accepted; send binary MessagePack".to_owned())),
                        _ => continue, // Ping (answered by tungstenite) and raw frames.
                    };
                    match delivered {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Close(code, reason)) => outbox.close(code, reason),
                        Err((code, why)) => {
                            conn.bad_messages += 1;
                            push_error(&outbox, code, why);
                            if conn.bad_messages >= limits.max_bad_messages {
                                outbox.close(CLOSE_POLICY, "too many bad messages");
                            }
                        }
                    }
                }
                () = &mut *shutdown => {
                    // The drain closes sessions as soon as their game is
                    // over, possibly before its game_over was written.
                    break Box::pin(finish(ws, &outbox, CLOSE_GOING_AWAY, "server shutting down", limits, &mut timer)).await;
                }
                () = &mut beat => {
                    let now = Instant::now();
                    if now >= conn.next_beat()
                        && let Some(end) = Box::pin(heartbeat(ws, conn, limits, &mut timer, now)).await
                    {
                        break end;
                    }
                    // Quiet long enough, and nothing half done: park.
                    if let Some(rest) = at_rest
                        && !holding
                        && now >= conn.last_io(wrote) + limits.park_after
                        && rest(ws)
                    {
                        conn.last_write = MaybeMoment::new(wrote);
                        return Step::Park;
                    }
                    beat.as_mut().reset(wake_at(conn, wrote, limits, at_rest.is_some(), now));
                }
            }
        };
        Step::End(end)
    }
}

/// When the beat timer should fire next: the heartbeat, or earlier, when
/// the session parks, the end of its quiet period (or, if that is over
/// but the session was not at rest, another quiet period from now).
/// `wrote`: the last write, as the active loop keeps it.
fn wake_at<H>(
    conn: &Conn<H>,
    wrote: Option<Instant>,
    limits: &SessionLimits,
    parks: bool,
    now: Instant,
) -> Instant {
    if !parks {
        return conn.next_beat();
    }
    let quiet = conn.last_io(wrote) + limits.park_after;
    let check = if quiet > now {
        quiet
    } else {
        now + limits.park_after.max(PARK_RETRY)
    };
    conn.next_beat().min(check)
}

/// When the beat timer of a new activation should first fire: as
/// [`wake_at`], except that a session woken after its quiet period (by its
/// heartbeat, or by the pong that answers it) checks at once, after what
/// woke it, whether it may park again: a ping does not keep it awake for a
/// whole quiet period.
fn first_wake<H>(conn: &Conn<H>, limits: &SessionLimits, parks: bool, now: Instant) -> Instant {
    if !parks {
        return conn.next_beat();
    }
    let quiet = conn.last_io(conn.last_write.get()) + limits.park_after;
    conn.next_beat().min(quiet.max(now))
}

/// Least wait before checking again whether a session that was quiet but
/// not at rest (a partial frame, a pong not yet flushed) may park.
const PARK_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// The heartbeat: closes a connection past its idle or first-message
/// deadline, else pings it and sets the next beat. `Some` when the
/// session is over.
async fn heartbeat<S, H>(
    ws: &mut S,
    conn: &mut Conn<H>,
    limits: &SessionLimits,
    timer: &mut Option<Pin<Box<Sleep>>>,
    now: Instant,
) -> Option<SessionEnd>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let idle_deadline = conn.last_heard.get() + limits.idle_timeout;
    if now >= idle_deadline {
        return Some(
            finish(
                ws,
                &conn.outbox,
                CLOSE_POLICY,
                "idle timeout",
                limits,
                timer,
            )
            .await,
        );
    }
    if conn.first_deadline.get().is_some_and(|d| now >= d) {
        return Some(
            finish(
                ws,
                &conn.outbox,
                CLOSE_POLICY,
                "no message received",
                limits,
                timer,
            )
            .await,
        );
    }
    let sent = timeout(limits.write_timeout, ws.send(Message::Ping(Bytes::new()))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return Some(SessionEnd::WriteFailed);
    }
    counters().wrote(1);
    let next = (now + limits.ping_interval).min(idle_deadline);
    conn.next_beat = Moment::new(conn.first_deadline.get().map_or(next, |d| next.min(d)));
    None
}

/// Whether `ws` has nothing unflushed (tungstenite may hold a pong it
/// could not write yet): a flush that completes at once.
pub(super) fn flushed<S>(ws: &mut S) -> bool
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    matches!(ws.flush().now_or_never(), Some(Ok(())))
}
