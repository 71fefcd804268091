//! The session's write path: every queued frame buffered in tungstenite
//! and flushed once (see the module docs of [`super`]), the write hold's
//! timer, the close handshake, and the counters they keep.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use metrics::{Counter, Gauge, Histogram};
use tokio::time::{Instant, Sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{SessionEnd, SessionLimits};
use crate::TransportError;
use crate::hold;
use crate::outbox::Outbox;

/// The write path's counters, looked up once per process rather than once
/// per event (a `counter!` lookup hashes the name and labels every call).
pub(super) struct Counters {
    /// `gridcap_messages_out_total`: frames taken from outboxes and written.
    pub(super) messages_out: Counter,
    /// `gridcap_messages_in_total`: binary messages received.
    pub(super) messages_in: Counter,
    /// `gridcap_ws_frames_written_total`: every frame a session writes
    /// (messages, pings, closes): the numerator of frames per write.
    pub(super) frames_written: Counter,
    /// `gridcap_ws_flushes_total`: flushes to the socket, one write syscall
    /// each unless more than the write buffer was queued.
    pub(super) flushes: Counter,
    /// `gridcap_capture_broadcast_seconds`: a capture's arrival to the write
    /// of its `captured` echo to the capturing player.
    pub(super) broadcast: Histogram,
    /// `gridcap_ws_parked`: sessions parked now (no WebSocket state held;
    /// see [`run_parked`](super::run_parked)).
    pub(super) parked: Gauge,
}

impl Counters {
    /// A batch was written: records its stamp's age, if it had one.
    pub(super) fn written_since(&self, stamp: Option<Instant>) {
        if let Some(since) = stamp {
            self.broadcast.record(since.elapsed().as_secs_f64());
        }
    }

    /// One flush to the socket that carried `frames` frames.
    pub(super) fn wrote(&self, frames: u64) {
        self.frames_written.increment(frames);
        self.flushes.increment(1);
    }
}

/// The handles are taken by the first session of the process, so the
/// recorder must be installed before it starts (the server installs it when
/// it builds its state; in a process without one they are no-ops).
pub(super) fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| Counters {
        messages_out: metrics::counter!("gridcap_messages_out_total"),
        messages_in: metrics::counter!("gridcap_messages_in_total"),
        frames_written: metrics::counter!("gridcap_ws_frames_written_total"),
        flushes: metrics::counter!("gridcap_ws_flushes_total"),
        broadcast: metrics::histogram!("gridcap_capture_broadcast_seconds"),
        parked: metrics::gauge!("gridcap_ws_parked"),
    })
}

/// Sets `timer` to fire at `due`, making it on first use.
pub(super) fn arm(timer: &mut Option<Pin<Box<Sleep>>>, due: Instant) {
    match timer.as_mut() {
        Some(timer) => timer.as_mut().reset(due),
        None => *timer = Some(Box::pin(sleep_until(due))),
    }
}

/// Completes when `timer` does; never without one.
pub(super) async fn expiry(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(timer) => timer.await,
        None => std::future::pending().await,
    }
}

/// Until when frames that follow a write made `at` wait now; `None` when
/// they go out at once (no load, no hold configured, or the hold is over).
pub(super) fn hold_until(at: Instant, limits: &SessionLimits) -> Option<Instant> {
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
pub(super) fn write_queued<S>(
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
        if write_frames(ws, batch.frames.into_iter(), limits.write_timeout, timer)
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
    mut frames: std::vec::IntoIter<Bytes>,
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
    frames: &mut std::vec::IntoIter<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), WsError>>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    while !frames.as_slice().is_empty() {
        ready!(ws.poll_ready_unpin(cx))?;
        if let Some(frame) = frames.next() {
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
