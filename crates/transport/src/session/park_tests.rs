//! Parking sessions ([`run_parked`]) driven through an in-memory socket
//! and a tungstenite client, in paused time.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

use super::*;

thread_local! {
    /// How many times a session on this thread parked (each test has a
    /// runtime, and so a thread, of its own).
    pub(super) static PARKS: Cell<u32> = const { Cell::new(0) };
}

fn parks() -> u32 {
    PARKS.with(Cell::get)
}

/// An in-memory socket that can wait for bytes without consuming them
/// (it reads one ahead).
struct Sock {
    io: DuplexStream,
    ahead: Option<u8>,
}

impl AsyncRead for Sock {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(b) = this.ahead.take() {
            buf.put_slice(&[b]);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Sock {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, b)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl Sock {
    /// Ready when a byte (or EOF, or an error) can be read.
    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ahead.is_some() {
            return Poll::Ready(Ok(()));
        }
        let mut one = [0u8; 1];
        let mut buf = ReadBuf::new(&mut one);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        if let [b] = buf.filled() {
            self.ahead = Some(*b);
        }
        Poll::Ready(Ok(()))
    }
}

/// Parked, the in-memory socket stays what it is (there is no reactor).
impl Park for Sock {
    type Idle = Sock;

    fn leave(self, _: &IdleSockets) -> io::Result<Sock> {
        Ok(self)
    }

    fn poll_idle(idle: &mut Sock, _: &IdleSockets, cx: &mut Context<'_>) -> Poll<()> {
        idle.poll_read_ready(cx).map(drop)
    }

    fn rejoin(idle: Sock, _: &IdleSockets) -> io::Result<Sock> {
        Ok(idle)
    }
}

/// Records every frame it is offered.
#[derive(Clone, Default)]
struct Recorder {
    frames: Arc<Mutex<Vec<Bytes>>>,
    got: Arc<tokio::sync::Notify>,
}

impl Handler for Recorder {
    async fn on_frame(&mut self, frame: Bytes, _: &Outbox) -> FrameOutcome {
        self.frames.lock().unwrap().push(frame);
        self.got.notify_one();
        FrameOutcome::Consumed(Flow::Continue)
    }

    async fn on_message(&mut self, _: ClientMessage, _: Bytes, _: &Outbox) -> Flow {
        Flow::Continue
    }

    async fn on_close(self, _: &Outbox) {}
}

type Client = tokio_tungstenite::WebSocketStream<DuplexStream>;

const PARK_AFTER: Duration = Duration::from_millis(100);

fn limits() -> SessionLimits {
    SessionLimits {
        park_after: PARK_AFTER,
        ..SessionLimits::default()
    }
}

/// The host of a test session: tells the test how it ended.
struct TestHost {
    limits: SessionLimits,
    ended: tokio::sync::oneshot::Sender<SessionEnd>,
    beats: Arc<Beats>,
    /// Never watches anything: `Sock` parks in place.
    sockets: Arc<IdleSockets>,
    stop: watch::Receiver<bool>,
}

/// Ready once `stop` says so (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Spawns on the test's runtime.
struct TestTasks;

impl Tasks for TestTasks {
    fn spawn<F: Future<Output = ()> + Send + 'static>(self, activation: F) {
        tokio::spawn(activation);
    }
}

impl Host for TestHost {
    type Tasks = TestTasks;

    fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    fn tasks(&self) -> TestTasks {
        TestTasks
    }

    fn beats(&self) -> &Beats {
        &self.beats
    }

    fn sockets(&self) -> &IdleSockets {
        &self.sockets
    }

    fn shutdown(&self) -> impl Future<Output = ()> + Unpin + Send + 'static {
        Box::pin(stopped(self.stop.clone()))
    }

    fn ended(self, _: u64, end: SessionEnd) {
        let _ = self.ended.send(end);
    }
}

/// How a test session ended, once it has.
type Ended = tokio::sync::oneshot::Receiver<SessionEnd>;

/// A parking session on one end of a pipe, with `early` bytes already
/// read; the other end as raw bytes.
fn start_raw(
    early: Vec<u8>,
    limits: SessionLimits,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) -> (DuplexStream, Outbox, Recorder, Ended) {
    let (server, client) = tokio::io::duplex(64 * 1024);
    let outbox = Outbox::new(1, 8);
    let recorder = Recorder::default();
    let (ended, session) = tokio::sync::oneshot::channel();
    // The node's side: the shutdown as a signal, and the beats' sweeper
    // (two tasks, beside the session's).
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let beats = Arc::new(Beats::default());
    let sweeper = (beats.clone(), stop.clone());
    tokio::spawn(async move { sweeper.0.run(stopped(sweeper.1)).await });
    let host = TestHost {
        limits,
        ended,
        beats,
        sockets: Arc::new(IdleSockets::new().unwrap()),
        stop,
    };
    let sock = Sock {
        io: server,
        ahead: None,
    };
    tokio::spawn(run_parked(
        sock,
        early,
        outbox.clone(),
        recorder.clone(),
        host,
    ));
    (client, outbox, recorder, session)
}

/// [`start_raw`] with a tungstenite client on the other end and no shutdown.
async fn start(limits: SessionLimits) -> (Client, Outbox, Recorder, Ended) {
    let (client, outbox, recorder, session) =
        start_raw(Vec::new(), limits, Box::pin(std::future::pending()));
    let client = Client::from_raw_socket(client, Role::Client, None).await;
    (client, outbox, recorder, session)
}

/// A masked client frame (RFC 6455 §5.2) with a payload under 126 bytes.
fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [9u8, 8, 7, 6];
    let mut f = vec![u8::from(fin) << 7 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Waits (bounded) until the recorder holds `n` frames.
async fn frames(recorder: &Recorder, n: usize) -> Vec<Bytes> {
    timeout(Duration::from_secs(5), async {
        loop {
            let got = recorder.got.notified();
            if recorder.frames.lock().unwrap().len() >= n {
                return recorder.frames.lock().unwrap().clone();
            }
            got.await;
        }
    })
    .await
    .expect("the frames never arrived")
}

#[tokio::test(start_paused = true)]
async fn a_parked_session_wakes_on_a_client_frame() {
    let (mut client, _outbox, recorder, _session) = start(limits()).await;
    sleep(PARK_AFTER * 2).await;
    assert_eq!(parks(), 1, "a quiet session parks");
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert_eq!(
        tasks, 2,
        "the shutdown's and the beats' tasks; the parked session is none"
    );
    client
        .send(Message::Binary(Bytes::from_static(b"hello")))
        .await
        .unwrap();
    assert_eq!(frames(&recorder, 1).await, [Bytes::from_static(b"hello")]);
    sleep(PARK_AFTER / 2).await;
    assert_eq!(parks(), 1, "not before it is quiet again");
    sleep(PARK_AFTER).await;
    assert_eq!(parks(), 2, "parks again once quiet");
    let live = crate::slot::live_on_this_thread();
    assert_eq!(live, 1, "the first park's slot was freed once it woke");
    client
        .send(Message::Binary(Bytes::from_static(b"again")))
        .await
        .unwrap();
    assert_eq!(frames(&recorder, 2).await[1], Bytes::from_static(b"again"));
}

#[tokio::test(start_paused = true)]
async fn a_parked_session_wakes_on_a_queued_frame() {
    let (mut client, outbox, _recorder, _session) = start(limits()).await;
    sleep(PARK_AFTER * 2).await;
    assert_eq!(parks(), 1);
    let pushed = Instant::now();
    outbox.push(Bytes::from_static(b"event")).unwrap();
    let got = timeout(Duration::from_secs(5), client.next())
        .await
        .unwrap();
    assert_eq!(
        got.unwrap().unwrap(),
        Message::Binary(Bytes::from_static(b"event"))
    );
    assert_eq!(Instant::now(), pushed, "the queued frame went out at once");
}

/// Parked, the heartbeat still pings; a client that answers stays
/// connected past the idle timeout, parking between pings.
#[tokio::test(start_paused = true)]
async fn a_parked_session_wakes_on_the_heartbeat() {
    let limits = limits();
    let (mut client, _outbox, recorder, mut session) = start(limits.clone()).await;
    let started = Instant::now();
    // A player that joined a game (a first message), then went quiet.
    client
        .send(Message::Binary(Bytes::from_static(b"join")))
        .await
        .unwrap();
    frames(&recorder, 1).await;
    let mut pings = Vec::new();
    while pings.len() < 4 {
        // Reading answers the pings (tungstenite queues and sends the pong).
        match timeout(Duration::from_secs(60), client.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Ping(_))) => pings.push(Instant::now() - started),
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    assert_eq!(pings[0], limits.ping_interval);
    assert_eq!(pings[3], limits.ping_interval * 4, "{pings:?}");
    assert!(pings[3] > limits.idle_timeout, "the pongs were heard");
    assert!(session.try_recv().is_err(), "still connected");
    assert!(parks() >= 4, "parked between pings: {}", parks());
    let live = crate::slot::live_on_this_thread();
    assert_eq!(live, 1, "only the last park's slot is alive");
}

/// A parked session whose peer stops answering is still closed at its idle timeout.
#[tokio::test(start_paused = true)]
async fn a_parked_silent_session_is_closed_at_its_idle_timeout() {
    let limits = SessionLimits {
        first_message_timeout: Duration::from_secs(600),
        ..limits()
    };
    let (_client, _outbox, _recorder, session) =
        start_raw(Vec::new(), limits.clone(), Box::pin(std::future::pending()));
    let started = Instant::now();
    let end = timeout(Duration::from_secs(600), session)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, SessionEnd::Closed(CLOSE_POLICY));
    // Its close handshake then waits for the peer's close.
    assert_eq!(
        Instant::now() - started,
        limits.idle_timeout + limits.close_timeout
    );
    assert!(parks() >= 2);
}

/// A frame cut in two by the park boundary: the session does not park
/// while holding its first part, and reads it whole; so does one whose
/// first part wakes a parked session.
#[tokio::test(start_paused = true)]
async fn a_frame_split_across_the_park_boundary_is_read_whole() {
    let (mut client, _outbox, recorder, _session) =
        start_raw(Vec::new(), limits(), Box::pin(std::future::pending()));
    sleep(PARK_AFTER * 2).await;
    assert_eq!(parks(), 1);
    let mut bytes = masked(true, 2, b"first");
    let second = masked(true, 2, b"second, cut");
    bytes.extend_from_slice(&second[..4]);
    client.write_all(&bytes).await.unwrap();
    assert_eq!(frames(&recorder, 1).await, [Bytes::from_static(b"first")]);
    sleep(PARK_AFTER * 5).await;
    assert_eq!(parks(), 1, "parked with a partial frame buffered");
    client.write_all(&second[4..]).await.unwrap();
    assert_eq!(
        frames(&recorder, 2).await[1],
        Bytes::from_static(b"second, cut")
    );
    sleep(PARK_AFTER * 2).await;
    assert_eq!(parks(), 2);
    // Cut inside the header, this time by a parked session's wake-up,
    // and a fragmented message with a ping between its fragments.
    let third = masked(true, 2, b"third");
    client.write_all(&third[..1]).await.unwrap();
    sleep(PARK_AFTER * 3).await;
    client.write_all(&third[1..]).await.unwrap();
    assert_eq!(frames(&recorder, 3).await[2], Bytes::from_static(b"third"));
    client.write_all(&masked(false, 2, b"frag ")).await.unwrap();
    client.write_all(&masked(true, 9, b"")).await.unwrap();
    sleep(PARK_AFTER * 3).await;
    let before = parks();
    client.write_all(&masked(true, 0, b"mented")).await.unwrap();
    assert_eq!(
        frames(&recorder, 4).await[3],
        Bytes::from_static(b"frag mented")
    );
    assert_eq!(before, 2, "not parked inside a fragmented message");
    sleep(PARK_AFTER * 2).await;
    assert_eq!(parks(), 3, "parks once the message is whole");
}

/// Bytes the client sent with its handshake (already read) are the
/// session's first input.
#[tokio::test(start_paused = true)]
async fn early_bytes_are_read_first() {
    let early = masked(true, 2, b"early");
    let (mut client, _outbox, recorder, _session) =
        start_raw(early, limits(), Box::pin(std::future::pending()));
    client.write_all(&masked(true, 2, b"later")).await.unwrap();
    let got = frames(&recorder, 2).await;
    assert_eq!(
        got,
        [Bytes::from_static(b"early"), Bytes::from_static(b"later")]
    );
}

/// The shutdown reaches a parked session: it sends what is queued, then 1001.
#[tokio::test(start_paused = true)]
async fn the_shutdown_closes_a_parked_session() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (client, outbox, _recorder, session) = start_raw(
        Vec::new(),
        limits(),
        Box::pin(async {
            let _ = rx.await;
        }),
    );
    let mut client = Client::from_raw_socket(client, Role::Client, None).await;
    sleep(PARK_AFTER * 2).await;
    assert_eq!(parks(), 1);
    // Queued and the shutdown at once: the queue goes first.
    outbox.push(Bytes::from_static(b"game_over")).unwrap();
    tx.send(()).unwrap();
    let mut got = Vec::new();
    while let Some(Ok(m)) = timeout(Duration::from_secs(5), client.next())
        .await
        .unwrap()
    {
        got.push(m);
    }
    assert_eq!(got[0], Message::Binary(Bytes::from_static(b"game_over")));
    assert!(matches!(&got[1], Message::Close(Some(f)) if u16::from(f.code) == CLOSE_GOING_AWAY));
    assert_eq!(session.await.unwrap(), SessionEnd::Closed(CLOSE_GOING_AWAY));
}

/// A parked connection that never sends a binary message is closed at its
/// first-message deadline, though it answers every ping.
#[tokio::test(start_paused = true)]
async fn a_parked_session_that_never_speaks_is_closed_at_its_first_message_deadline() {
    let limits = SessionLimits {
        first_message_timeout: Duration::from_secs(40),
        ..limits()
    };
    let (mut client, _outbox, _recorder, session) = start(limits.clone()).await;
    let started = Instant::now();
    let mut pings = 0;
    let close = loop {
        match timeout(Duration::from_secs(600), client.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(Some(frame)))) => break frame,
            other => panic!("expected pings, then a close; got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), CLOSE_POLICY);
    assert_eq!(close.reason.as_str(), "no message received");
    assert_eq!(Instant::now() - started, limits.first_message_timeout);
    assert_eq!(pings, 2, "pinged at 15 and 30 s, parked between");
    assert!(parks() >= 3);
    drop(client);
    assert_eq!(session.await.unwrap(), SessionEnd::Closed(CLOSE_POLICY));
}

/// The pong that answers a parked session's ping wakes it, but it parks
/// again at once: a ping does not keep an idle session awake (with its
/// WebSocket buffers) for a whole quiet period.
#[tokio::test(start_paused = true)]
async fn a_pong_does_not_keep_a_session_awake() {
    let limits = limits();
    let (mut client, _outbox, recorder, _session) = start(limits.clone()).await;
    client
        .send(Message::Binary(Bytes::from_static(b"join")))
        .await
        .unwrap();
    frames(&recorder, 1).await;
    sleep(PARK_AFTER * 2).await;
    let before = parks();
    assert!(before >= 1, "parked once quiet");
    let ping = timeout(limits.ping_interval * 2, client.next())
        .await
        .unwrap();
    assert!(matches!(ping, Some(Ok(Message::Ping(_)))), "{ping:?}");
    // tungstenite queued the pong; a flush sends it.
    client.flush().await.unwrap();
    sleep(PARK_AFTER / 4).await;
    assert_eq!(
        parks(),
        before + 2,
        "parked after the ping, and again after reading its pong"
    );
}
