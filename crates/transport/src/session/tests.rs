//! The session loop driven through a fake socket.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::time::{Instant, timeout};

use super::*;
use crate::hold;

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

    async fn on_close(self, _: &Outbox) {}
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
    spawn_session_with(socket, outbox, SessionLimits::default())
}

fn spawn_session_with(
    socket: FakeSocket,
    outbox: Outbox,
    limits: SessionLimits,
) -> tokio::task::JoinHandle<SessionEnd> {
    tokio::spawn(async move { run(socket, outbox, &limits, Idle, std::future::pending()).await })
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
    outbox.close(CLOSE_NORMAL, "done");
    assert_eq!(session.await.unwrap(), SessionEnd::Closed(CLOSE_NORMAL));
    assert_eq!(flushes.lock().unwrap()[..3], [1, 3, 4]);

    // A session that ends on its own (here its idle timeout) while a frame
    // is held writes that frame before its close. (In this test: the hold
    // is process-wide.)
    let socket = FakeSocket::default();
    let sent = socket.sent.clone();
    let outbox = Outbox::new(2, 8);
    let limits = SessionLimits {
        idle_timeout: Duration::from_millis(3),
        ..SessionLimits::default()
    };
    let session = spawn_session_with(socket, outbox.clone(), limits);
    outbox.push(Bytes::from_static(b"first")).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    outbox.push(Bytes::from_static(b"held")).unwrap();
    assert_eq!(session.await.unwrap(), SessionEnd::Closed(CLOSE_POLICY));
    hold::force(Duration::ZERO);
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[1], Message::Binary(Bytes::from_static(b"held")));
    assert_eq!(close_code(&sent[2]), Some(CLOSE_POLICY));
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

/// What a session keeps for its whole life besides its handler (parked or
/// not): the queue handle, the rate bucket's tokens, five instants of 8
/// bytes and two counters. It was 136 bytes with `Instant`s of 16 and a
/// bucket that kept its own copy of the limit.
#[test]
fn a_conn_keeps_72_bytes_besides_its_handler() {
    assert_eq!(std::mem::size_of::<Conn<()>>(), 72);
    assert_eq!(
        std::mem::size_of::<Conn<[u64; 14]>>(),
        72 + 112,
        "the handler is kept inline"
    );
}

/// A parked player's state, as the server parks it (a 64-byte handler, a
/// 40-byte host), is 192 bytes: with its slot's lock and its `Arc`'s
/// counts, 216, inside jemalloc's 224-byte size class. At 272 it took the
/// 320-byte class: 96 bytes more for every idle player.
#[test]
fn a_parked_players_slot_fits_224_bytes() {
    type Parked = super::Parked<tokio::net::TcpStream, [u64; 8], [u64; 5]>;
    assert_eq!(std::mem::size_of::<Parked>(), 192);
    assert!(std::mem::size_of::<Parked>() + 8 + 16 <= 224);
}
