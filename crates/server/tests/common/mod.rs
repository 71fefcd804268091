//! Shared harness for the server's integration tests: a real server on a
//! free loopback port, and real WebSocket clients.
//!
//! Every [`TestClient`] checks the protocol's `seq` rule on every message it
//! reads (each broadcast event is exactly one past the last, starting from
//! the `joined` snapshot) and keeps a replica of its game built from those
//! events (see [`replica`]), so any test that plays also checks that the
//! events and the snapshots agree.
//!
//! Every wait is bounded by [`WAIT`]; nothing sleeps to wait for a timer.
//!
//! **Stateless runs.** With `GRIDCAP_TEST_BACKEND=stateless`, or in a test
//! binary whose name starts with `stateless_conformance` (see
//! `stateless_conformance.rs`, which includes the conformance files),
//! [`TestServer`] is a pair of stateless nodes sharing a redis-server it
//! starts ([`stateless`]), and [`TestServer::connect`] alternates between
//! them: the same tests then check that a client cannot tell the modes
//! apart, with the players of each game spread over two nodes.
//!
//! **TLS runs.** With `GRIDCAP_TEST_TLS=1`, or in a test binary whose name
//! starts with `tls_conformance`, every server serves https/wss only with a
//! self-signed certificate made by the test, and every client connects over
//! TLS trusting exactly it ([`tls`]). The two switches combine.

#![allow(dead_code, unreachable_pub)]
// Test helpers are test code: clippy.toml's allow-*-in-tests only covers
// #[test] functions, not helpers outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod http;
pub mod raw;
pub mod replica;
pub mod stateless;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gridcap::config::{Config, ServeOptions};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use transport::codec;
use transport::protocol::{
    ClientMessage, ErrorCode, GameSnapshot, GameStatus, Number, RejectReason, SUBPROTOCOL,
    ServerMessage,
};

/// How long any single expected message may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Settings every test server starts from: defaults, except a short close
/// handshake and drain so that `shutdown()` never stalls a test.
pub fn options() -> ServeOptions {
    ServeOptions {
        close_timeout_ms: Some(500),
        drain_timeout_ms: Some(5_000),
        // A directory that does not exist: the placeholder page at `/`.
        web_root: Some(std::env::temp_dir().join("gridcap-tests-no-web-root")),
        ..ServeOptions::default()
    }
}

/// In TLS runs, `options` with the test certificate (unless they already
/// name one); otherwise `options` unchanged.
fn with_test_tls(options: ServeOptions) -> ServeOptions {
    if !tls::tls_run() || options.tls_cert.is_some() {
        return options;
    }
    let material = tls::material();
    ServeOptions {
        tls_cert: Some(material.cert_path.clone()),
        tls_key: Some(material.key_path.clone()),
        ..options
    }
}

/// A server running in this test process.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Stateless runs: the second node (`addr` is the first) and Redis.
    pair: Option<StatelessPair>,
    /// Stateless runs: which node the next `connect` uses.
    turn: std::sync::atomic::AtomicUsize,
}

/// What a stateless [`TestServer`] runs besides its first node.
struct StatelessPair {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _redis: stateless::RedisServer,
}

/// Whether this run tests stateless mode (see the module docs). Without
/// redis-server (and without GRIDCAP_REQUIRE_SYSTEM_DEPS=1) it says why and
/// falls back to single mode.
pub fn stateless_run() -> bool {
    static RUN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *RUN.get_or_init(|| {
        let by_env = std::env::var("GRIDCAP_TEST_BACKEND").is_ok_and(|v| v == "stateless");
        let by_name = std::env::current_exe().ok().is_some_and(|exe| {
            exe.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("stateless_conformance"))
        });
        (by_env || by_name) && stateless::redis_available()
    })
}

impl TestServer {
    /// Starts a server with [`options`] on 127.0.0.1:0.
    pub async fn start() -> TestServer {
        Self::start_with(options()).await
    }

    /// Starts a server with `options` (the listen address is ignored).
    pub async fn start_with(options: ServeOptions) -> TestServer {
        let options = with_test_tls(options);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        if stateless_run() {
            return Self::start_stateless(options, listener).await;
        }
        Self::start_on(options, listener)
    }

    /// Starts a server whose accepted sockets have a kernel send buffer of
    /// about `bytes` (they inherit SO_SNDBUF from the listener), so that a
    /// client that stops reading blocks the server's writes after a few KiB
    /// instead of the megabytes loopback autotuning allows.
    pub async fn start_with_send_buffer(options: ServeOptions, bytes: u32) -> TestServer {
        let options = with_test_tls(options);
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_send_buffer_size(bytes).expect("SO_SNDBUF");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let listener = socket.listen(1024).expect("listen");
        if stateless_run() {
            return Self::start_stateless(options, listener).await;
        }
        Self::start_on(options, listener)
    }

    /// Two stateless nodes with `options` sharing a fresh redis-server; the
    /// first listens on `listener`.
    async fn start_stateless(options: ServeOptions, listener: TcpListener) -> TestServer {
        let redis = stateless::RedisServer::start().await;
        let options = ServeOptions {
            mode: Some(gridcap::config::Mode::Stateless),
            redis: Some(redis.url()),
            ..options
        };
        let mut first = Self::start_on(options.clone(), listener);
        let second_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let second = Self::start_on(options, second_listener);
        stateless::wait_ready(first.addr).await;
        stateless::wait_ready(second.addr).await;
        let mut second = second;
        first.pair = Some(StatelessPair {
            addr: second.addr,
            stop: second.stop.take(),
            task: second.task.take(),
            _redis: redis,
        });
        first
    }

    fn start_on(options: ServeOptions, listener: TcpListener) -> TestServer {
        let config: Config = options.resolve().expect("valid test config");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gridcap::server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
            pair: None,
            turn: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("{}://{}/ws", tls::ws_scheme(), self.addr)
    }

    /// A client that offered `gridcap.v1` (in stateless runs, on each node
    /// in turn).
    pub async fn connect(&self) -> TestClient {
        connect(self.next_addr()).await
    }

    /// The node the next client should use (always `addr` but in stateless
    /// runs, where the two nodes alternate).
    pub fn next_addr(&self) -> SocketAddr {
        match &self.pair {
            None => self.addr,
            Some(pair) => {
                let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if turn.is_multiple_of(2) {
                    self.addr
                } else {
                    pair.addr
                }
            }
        }
    }

    /// Starts the graceful shutdown and returns a task that finishes with it.
    pub fn begin_shutdown(mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("server task");
        let mut pair = self.pair.take();
        let second = pair.as_mut().and_then(|p| {
            if let Some(stop) = p.stop.take() {
                let _ = stop.send(());
            }
            p.task.take()
        });
        tokio::spawn(async move {
            task.await.expect("server task").expect("server result");
            if let Some(second) = second {
                second.await.expect("server task").expect("server result");
            }
            drop(pair); // Redis stops last.
        })
    }

    /// Triggers the graceful shutdown and waits for it.
    pub async fn shutdown(self) {
        tokio::time::timeout(Duration::from_secs(30), self.begin_shutdown())
            .await
            .expect("shutdown within 30 s")
            .expect("shutdown task");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.pair.as_mut().and_then(|p| p.stop.take()) {
            let _ = stop.send(());
        }
    }
}

/// A WebSocket request for `/ws` on `addr`, offering `gridcap.v1`.
pub fn ws_request(addr: SocketAddr) -> Request {
    let mut request = format!("{}://{addr}/ws", tls::ws_scheme())
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    request
}

/// A handshake with `request`; the error of a refused one carries the HTTP
/// response (`tungstenite::Error::Http`).
pub async fn handshake(request: Request) -> Result<(TestClient, Response), tungstenite::Error> {
    // TCP_NODELAY, as browsers set it for WebSockets.
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, tls::ws_connector());
    let (ws, response) = tokio::time::timeout(WAIT, connect)
        .await
        .expect("handshake within WAIT")?;
    Ok((TestClient::new(ws), response))
}

/// The HTTP status of a refused handshake; panics if it was accepted.
pub async fn refused_status(request: Request) -> u16 {
    match handshake(request).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, the handshake was accepted"),
    }
}

/// A connected client that offered `gridcap.v1`.
pub async fn connect(addr: SocketAddr) -> TestClient {
    handshake(ws_request(addr)).await.expect("connect").0
}

/// What a client reads, pings included.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Message(ServerMessage),
    /// A WebSocket ping from the server (answered on the next read).
    Ping,
    /// A close frame (code, reason), or `None` when the stream just ended.
    Closed(Option<(u16, String)>),
}

/// A real WebSocket client that checks `seq` and keeps a replica of its game.
#[derive(Debug)]
pub struct TestClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The game as built from the last `joined` and the events since.
    pub replica: Option<GameSnapshot>,
    /// The seat from the last `joined`.
    pub you: Option<u8>,
    /// The token from the last `joined`.
    pub token: Option<String>,
}

impl TestClient {
    pub fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> TestClient {
        TestClient {
            ws,
            replica: None,
            you: None,
            token: None,
        }
    }

    /// The game id from the last `joined`.
    pub fn game_id(&self) -> String {
        self.replica.as_ref().expect("joined a game").id.clone()
    }

    /// The seat from the last `joined`.
    pub fn me(&self) -> u8 {
        self.you.expect("joined a game")
    }

    /// The seq of the last event applied.
    pub fn seq(&self) -> u64 {
        self.replica.as_ref().expect("joined a game").seq
    }

    pub async fn send(&mut self, message: &ClientMessage) {
        let frame = codec::encode(message).expect("encode");
        self.send_raw(Message::Binary(frame)).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        tokio::time::timeout(WAIT, self.ws.send(message))
            .await
            .expect("send within WAIT")
            .expect("send");
    }

    /// Sends a binary frame of arbitrary bytes.
    pub async fn send_bytes(&mut self, bytes: impl Into<Bytes>) {
        self.send_raw(Message::Binary(bytes.into())).await;
    }

    /// Queues frames without flushing; [`flush`](Self::flush) sends them in
    /// as few writes as possible (to arrive at the server in one burst).
    pub async fn feed(&mut self, message: &ClientMessage) {
        let frame = codec::encode(message).expect("encode");
        self.ws.feed(Message::Binary(frame)).await.expect("feed");
    }

    pub async fn flush(&mut self) {
        tokio::time::timeout(WAIT, self.ws.flush())
            .await
            .expect("flush within WAIT")
            .expect("flush");
    }

    /// The next frame, or an error (reset, protocol error, timeout).
    pub async fn try_frame(&mut self, limit: Duration) -> Result<Frame, String> {
        loop {
            let next = tokio::time::timeout(limit, self.ws.next())
                .await
                .map_err(|_| format!("nothing received within {limit:?}"))?;
            match next {
                None | Some(Err(tungstenite::Error::ConnectionClosed)) => {
                    return Ok(Frame::Closed(None));
                }
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(Message::Binary(bytes))) => {
                    let message = codec::decode_server(&bytes)
                        .unwrap_or_else(|e| panic!("undecodable server frame {bytes:?}: {e}"));
                    self.track(&message);
                    return Ok(Frame::Message(message));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Frame::Closed(frame.map(|CloseFrame { code, reason }| {
                        (u16::from(code), reason.to_string())
                    })));
                }
                Some(Ok(Message::Ping(_))) => return Ok(Frame::Ping),
                Some(Ok(Message::Text(t))) => panic!("the server sent a text frame: {t}"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame, pings included; fails the test on error or timeout.
    pub async fn frame(&mut self) -> Frame {
        self.try_frame(WAIT).await.expect("a frame")
    }

    /// The next message or close (pings skipped).
    pub async fn recv(&mut self) -> Frame {
        loop {
            match self.frame().await {
                Frame::Ping => continue,
                other => return other,
            }
        }
    }

    /// The next message; a close fails the test.
    pub async fn next(&mut self) -> ServerMessage {
        match self.recv().await {
            Frame::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Reads messages until one matches `pred`, and returns it.
    pub async fn until(&mut self, mut pred: impl FnMut(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let m = self.next().await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Reads until the replica has applied the event with `seq`.
    pub async fn sync_to(&mut self, seq: u64) {
        while self.seq() < seq {
            self.next().await;
        }
        assert_eq!(self.seq(), seq, "read past the expected seq");
    }

    /// Reads (and tracks) messages until the server closes; the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.recv().await {
                Frame::Closed(frame) => return frame.map(|f| f.0),
                Frame::Message(_) | Frame::Ping => continue,
            }
        }
    }

    /// Reads until the TCP connection ends (after a close handshake, the
    /// server drops the socket only once the session, including its
    /// `on_close`, has finished: a synchronisation point for tests).
    pub async fn ended(&mut self) {
        loop {
            match self.try_frame(WAIT).await {
                Ok(Frame::Closed(None)) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    }

    /// Like [`closed`](Self::closed), but no message may come first.
    pub async fn closed_now(&mut self) -> Option<u16> {
        match self.recv().await {
            Frame::Closed(frame) => frame.map(|f| f.0),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    /// Expects the next message to be `joined`; returns its snapshot.
    pub async fn joined(&mut self) -> GameSnapshot {
        match self.next().await {
            ServerMessage::Joined { game, .. } => game,
            other => panic!("expected joined, got {other:?}"),
        }
    }

    /// Expects the next message to be `error{code}`.
    pub async fn error(&mut self, code: ErrorCode) {
        match self.next().await {
            ServerMessage::Error { code: got, message } => {
                assert_eq!(got, code, "error message: {message}");
                assert!(!message.is_empty(), "errors carry a human message");
            }
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }

    /// Expects the next message to be `rejected` for `cell` with `reference`.
    pub async fn rejected(&mut self, cell: i64, reference: Option<u32>, reason: RejectReason) {
        let expected = ServerMessage::Rejected {
            cell,
            reference,
            reason,
        };
        assert_eq!(self.next().await, expected);
    }

    /// Sends `ping` and expects its `pong`: proves the connection is open
    /// and its messages are processed.
    pub async fn ping_pong(&mut self, ts: u64) {
        self.send(&ClientMessage::Ping {
            ts: Number::Unsigned(ts),
        })
        .await;
        let pong = self
            .until(|m| matches!(m, ServerMessage::Pong { .. }))
            .await;
        let ServerMessage::Pong { ts: echoed, .. } = pong else {
            unreachable!()
        };
        assert_eq!(echoed, Number::Unsigned(ts));
    }

    /// Sends a close frame and drops the connection.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.ws.close(None)).await;
    }

    fn track(&mut self, message: &ServerMessage) {
        match message {
            ServerMessage::Joined { game, you, token } => {
                assert_eq!(game.cells.len(), 81, "a snapshot has 81 cells");
                self.replica = Some(game.clone());
                self.you = Some(*you);
                self.token = Some(token.clone());
            }
            event => {
                if let Some(seq) = event.seq() {
                    let replica = self
                        .replica
                        .as_mut()
                        .unwrap_or_else(|| panic!("an event before joined: {event:?}"));
                    assert_eq!(
                        seq,
                        replica.seq + 1,
                        "seq must grow by exactly 1 (player {:?}): {event:?}",
                        self.you
                    );
                    replica::apply(replica, event);
                }
            }
        }
    }
}

pub fn create(name: &str, max_players: Option<i64>, duration_ms: Option<i64>) -> ClientMessage {
    ClientMessage::Create {
        name: name.into(),
        max_players,
        duration_ms,
    }
}

pub fn join(game: &str, name: &str) -> ClientMessage {
    ClientMessage::Join {
        game: game.into(),
        name: name.into(),
    }
}

pub fn resume(game: &str, token: &str) -> ClientMessage {
    ClientMessage::Resume {
        game: game.into(),
        token: token.into(),
    }
}

pub fn capture(cell: i64) -> ClientMessage {
    ClientMessage::Capture {
        cell,
        reference: None,
    }
}

pub fn capture_ref(cell: i64, reference: u32) -> ClientMessage {
    ClientMessage::Capture {
        cell,
        reference: Some(reference),
    }
}

pub const START: ClientMessage = ClientMessage::Start {};
pub const LEAVE: ClientMessage = ClientMessage::Leave {};

/// Creates a game and returns the host, joined.
pub async fn host_game(server: &TestServer, max_players: i64, duration_ms: i64) -> TestClient {
    let mut c = server.connect().await;
    c.send(&create("host", Some(max_players), Some(duration_ms)))
        .await;
    let game = c.joined().await;
    assert_eq!(game.status, GameStatus::Waiting);
    c
}

/// Joins `game` as `name` on a new connection.
pub async fn join_game(server: &TestServer, game: &str, name: &str) -> TestClient {
    let mut c = server.connect().await;
    c.send(&join(game, name)).await;
    c.joined().await;
    c
}

/// Resumes a seat on a new connection.
pub async fn resume_seat(server: &TestServer, game: &str, token: &str) -> TestClient {
    let mut c = server.connect().await;
    c.send(&resume(game, token)).await;
    c.joined().await;
    c
}

/// A game of `players` seats, filled (so it auto-started), with every
/// client caught up to the `started` event. Seat `i` is `clients[i]`.
pub async fn full_game(server: &TestServer, players: i64, duration_ms: i64) -> Vec<TestClient> {
    let host = host_game(server, players, duration_ms).await;
    let id = host.game_id();
    let mut clients = vec![host];
    for i in 1..players {
        clients.push(join_game(server, &id, &format!("p{i}")).await);
    }
    let last = clients.last().expect("players").seq();
    for c in &mut clients {
        c.sync_to(last).await;
        let game = c.replica.as_ref().expect("joined");
        assert_eq!(game.status, GameStatus::Active, "a full game starts");
    }
    clients
}

/// Reads every client up to the same seq as `clients[leader]`.
pub async fn sync_all(clients: &mut [TestClient], seq: u64) {
    for c in clients.iter_mut() {
        c.sync_to(seq).await;
    }
}
