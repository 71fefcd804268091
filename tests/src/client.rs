//! The protocol client of every test: a real WebSocket connection
//! (tokio-tungstenite, over TLS in TLS runs, see [`tls`](crate::tls)) that
//! encodes with `transport::codec` and checks the protocol's `seq` rule on
//! every message it reads: each broadcast event is exactly one past the
//! last, starting from the `joined` snapshot. It keeps a [`Replica`] of its
//! game built from those events, so any test that plays also checks that
//! events and snapshots agree.
//!
//! Every wait is bounded ([`WAIT`] unless the caller gives a limit); a
//! harness fails a test by panicking. The `try_` methods return errors
//! instead, for tests that expect a connection to fail.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use transport::codec;
use transport::protocol::{
    ClientMessage, ErrorCode, GameSnapshot, GameStatus, Number, OverReason, RejectReason,
    SUBPROTOCOL, ServerMessage,
};

use crate::replica::{Offer, Replica};
use crate::{WAIT, tls};

/// What a client reads, pings included.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // A test client: one frame at a time.
pub enum Frame {
    /// One decoded server message.
    Message(ServerMessage),
    /// A WebSocket ping from the server (answered on the next read).
    Ping,
    /// A close frame (code, reason), or `None` when the stream just ended.
    Closed(Option<(u16, String)>),
}

/// Why a read returned no frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Nothing arrived within the limit; the connection may still be fine.
    TimedOut(Duration),
    /// The connection failed (reset, protocol error).
    Failed(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::TimedOut(limit) => write!(f, "nothing received within {limit:?}"),
            ReadError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// What the client does with an event whose seq is not the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRule {
    /// Fail the test: the protocol promises no gap and no repeat.
    Strict,
    /// Skip old events and count gaps in [`Client::gaps`], for tests where
    /// a node dies and the client resyncs with `resume`.
    Resync,
}

/// A WebSocket request for `/ws` on `addr` (`wss` in TLS runs), offering
/// `gridcap.v1`.
pub fn ws_request(addr: SocketAddr) -> Request {
    request(&format!("{}://{addr}/ws", tls::ws_scheme()))
}

/// A WebSocket request for `url`, offering `gridcap.v1`.
pub fn request(url: &str) -> Request {
    let mut request = url
        .into_client_request()
        .unwrap_or_else(|e| panic!("a request for {url}: {e}"));
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    request
}

/// A handshake with `request` (bounded by [`WAIT`]); the error of a refused
/// one carries the HTTP response (`tungstenite::Error::Http`).
pub async fn handshake(request: Request) -> Result<(Client, Response), tungstenite::Error> {
    // TCP_NODELAY, as browsers set it for WebSockets.
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, tls::ws_connector());
    let (ws, response) = tokio::time::timeout(WAIT, connect)
        .await
        .map_err(|_| tungstenite::Error::Io(std::io::ErrorKind::TimedOut.into()))??;
    Ok((Client::new(ws), response))
}

/// A plain (`ws://`) handshake with `request` from the loopback address
/// `source` (any of 127.0.0.0/8), so that one test can be several clients
/// as a node or a balancer sees them; bounded by [`WAIT`].
pub async fn handshake_from(
    source: std::net::IpAddr,
    request: Request,
) -> Result<(Client, Response), tungstenite::Error> {
    let uri = request.uri().clone();
    let host = uri.host().unwrap_or("127.0.0.1").to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let connect = async {
        let target: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = socket.connect(target).await?;
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(stream)
    };
    let stream = tokio::time::timeout(WAIT, connect)
        .await
        .map_err(|_| tungstenite::Error::Io(std::io::ErrorKind::TimedOut.into()))??;
    let upgrade = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream));
    let (ws, response) = tokio::time::timeout(WAIT, upgrade)
        .await
        .map_err(|_| tungstenite::Error::Io(std::io::ErrorKind::TimedOut.into()))??;
    Ok((Client::new(ws), response))
}

/// The HTTP status of a refused handshake; panics if it was accepted.
pub async fn refused_status(request: Request) -> u16 {
    match handshake(request).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, the handshake was accepted"),
    }
}

/// A connected client on `addr` that offered `gridcap.v1`.
pub async fn connect(addr: SocketAddr) -> Client {
    match handshake(ws_request(addr)).await {
        Ok((client, _)) => client,
        Err(e) => panic!("connect to {addr}: {e}"),
    }
}

/// A client connected to `addr` from the loopback address `source` (any
/// of 127.0.0.0/8), as a node sees a client of that address.
pub async fn connect_from(addr: SocketAddr, source: [u8; 4]) -> Client {
    match handshake_from(std::net::IpAddr::from(source), ws_request(addr)).await {
        Ok((client, _)) => client,
        Err(e) => panic!("connect to {addr} from {source:?}: {e}"),
    }
}

/// Sends `create` (2 seats, 30 s rounds) and reads the answer: the game's
/// status, or the error's code.
pub async fn try_create(client: &mut Client) -> Result<GameStatus, ErrorCode> {
    client.send(&create("host", Some(2), Some(30_000))).await;
    let answer = client
        .until(|m| {
            matches!(
                m,
                ServerMessage::Joined { .. } | ServerMessage::Error { .. }
            )
        })
        .await;
    match answer {
        ServerMessage::Error { code, .. } => Err(code),
        ServerMessage::Joined { game, .. } => Ok(game.status),
        other => panic!("until returned {other:?}"),
    }
}

/// A connected client on `url` (a node or a balancer), or why not.
pub async fn try_connect_url(url: &str) -> Result<Client, String> {
    handshake(request(url))
        .await
        .map(|(client, _)| client)
        .map_err(|e| format!("connecting to {url}: {e}"))
}

/// A real WebSocket client that checks `seq` and keeps a replica of its game.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The game as built from the last `joined` and the events since, as
    /// the wire shows it (what a fresh snapshot must equal).
    pub replica: Option<GameSnapshot>,
    /// The seat from the last `joined`.
    pub you: Option<u8>,
    /// The token from the last `joined`.
    pub token: Option<String>,
    /// What to do with an event that is not the next one.
    pub seq_rule: SeqRule,
    /// Events that left a gap ([`SeqRule::Resync`] only).
    pub gaps: u32,
    /// The rules' view of the game, which moves `replica` forward.
    tracker: Option<Replica>,
}

impl Client {
    /// Wraps an upgraded stream.
    pub fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        Client {
            ws,
            replica: None,
            you: None,
            token: None,
            seq_rule: SeqRule::Strict,
            gaps: 0,
            tracker: None,
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

    /// Sends one message as one binary frame.
    pub async fn send(&mut self, message: &ClientMessage) {
        let frame = codec::encode(message).expect("encode");
        self.send_raw(Message::Binary(frame)).await;
    }

    /// Sends one message, or says why the connection refused it.
    pub async fn try_send(&mut self, message: &ClientMessage) -> Result<(), String> {
        let frame = codec::encode(message).map_err(|e| e.to_string())?;
        match tokio::time::timeout(WAIT, self.ws.send(Message::Binary(frame))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("send took over {WAIT:?}")),
        }
    }

    /// Sends any WebSocket message (for malformed-input tests).
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

    /// Sends what [`feed`](Self::feed) queued.
    pub async fn flush(&mut self) {
        tokio::time::timeout(WAIT, self.ws.flush())
            .await
            .expect("flush within WAIT")
            .expect("flush");
    }

    /// The next frame within `limit`, or why none came.
    pub async fn try_frame(&mut self, limit: Duration) -> Result<Frame, ReadError> {
        loop {
            let next = tokio::time::timeout(limit, self.ws.next())
                .await
                .map_err(|_| ReadError::TimedOut(limit))?;
            match next {
                None | Some(Err(tungstenite::Error::ConnectionClosed)) => {
                    return Ok(Frame::Closed(None));
                }
                Some(Err(e)) => return Err(ReadError::Failed(e.to_string())),
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

    /// The next message or close within `limit` (pings skipped).
    pub async fn try_recv(&mut self, limit: Duration) -> Result<Frame, ReadError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_frame(left).await? {
                Frame::Ping => continue,
                other => return Ok(other),
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

    /// Expects the next message to be `watching`; returns its snapshot.
    pub async fn watching(&mut self) -> GameSnapshot {
        match self.next().await {
            ServerMessage::Watching { game } => game,
            other => panic!("expected watching, got {other:?}"),
        }
    }

    /// Reads until `game_over`; its reason, scores and winners.
    pub async fn game_over(&mut self) -> (OverReason, Vec<u32>, Vec<u8>) {
        match self
            .until(|m| matches!(m, ServerMessage::GameOver { .. }))
            .await
        {
            ServerMessage::GameOver {
                reason,
                scores,
                winners,
                ..
            } => (reason, scores, winners),
            _ => unreachable!("filtered above"),
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
        let _closing = tokio::time::timeout(WAIT, self.ws.close(None)).await;
    }

    fn track(&mut self, message: &ServerMessage) {
        if let ServerMessage::Joined { game, you, token } = message {
            assert_eq!(game.cells.len(), 81, "a snapshot has 81 cells");
            self.tracker = Some(Replica::new(game));
            self.replica = Some(game.clone());
            self.you = Some(*you);
            self.token = Some(token.clone());
            return;
        }
        if let ServerMessage::Watching { game } = message {
            assert_eq!(game.cells.len(), 81, "a snapshot has 81 cells");
            self.tracker = Some(Replica::new(game));
            self.replica = Some(game.clone());
            self.you = None;
            self.token = None;
            return;
        }
        if message.seq().is_none() {
            return;
        }
        let tracker = self
            .tracker
            .as_mut()
            .unwrap_or_else(|| panic!("an event before joined: {message:?}"));
        match (tracker.offer(message), self.seq_rule) {
            (Offer::Applied, _) => self.replica = Some(tracker.snapshot().clone()),
            (Offer::Old, SeqRule::Resync) => {}
            (Offer::Gap, SeqRule::Resync) => self.gaps += 1,
            (offer, SeqRule::Strict) => panic!(
                "seq must grow by exactly 1 (player {:?}, {offer:?} after seq {}): {message:?}",
                self.you,
                tracker.seq()
            ),
        }
    }
}

/// `create`.
pub fn create(name: &str, max_players: Option<i64>, duration_ms: Option<i64>) -> ClientMessage {
    ClientMessage::Create {
        name: name.into(),
        max_players,
        duration_ms,
        public: None,
    }
}

/// `create` of a public game (listed in the lobby) with default duration.
pub fn create_public(name: &str, max_players: i64) -> ClientMessage {
    ClientMessage::Create {
        name: name.into(),
        max_players: Some(max_players),
        duration_ms: None,
        public: Some(true),
    }
}

/// `quick_play` for games of `max_players` seats (the server's default
/// when `None`).
pub fn quick_play(name: &str, max_players: Option<i64>) -> ClientMessage {
    ClientMessage::QuickPlay {
        name: name.into(),
        max_players,
    }
}

/// `join`.
pub fn join(game: &str, name: &str) -> ClientMessage {
    ClientMessage::Join {
        game: game.into(),
        name: name.into(),
    }
}

/// `resume`.
pub fn resume(game: &str, token: &str) -> ClientMessage {
    ClientMessage::Resume {
        game: game.into(),
        token: token.into(),
    }
}

/// `watch`, by id or code.
pub fn watch(game: &str) -> ClientMessage {
    ClientMessage::Watch { game: game.into() }
}

/// `capture` without a `ref`.
pub fn capture(cell: i64) -> ClientMessage {
    ClientMessage::Capture {
        cell,
        reference: None,
    }
}

/// `capture` with a `ref`.
pub fn capture_ref(cell: i64, reference: u32) -> ClientMessage {
    ClientMessage::Capture {
        cell,
        reference: Some(reference),
    }
}

/// `start`.
pub const START: ClientMessage = ClientMessage::Start {};
/// `leave`.
pub const LEAVE: ClientMessage = ClientMessage::Leave {};

/// Protocol §4's rule for the player whose join fills a two-seat game:
/// `filler` (which just sent its `join`) gets a `joined` snapshot taken
/// after its own `player_joined` and before the start, then the same
/// `started` as `host`.
pub async fn assert_filler_hears_started(host: &mut Client, filler: &mut Client) {
    let game = filler.joined().await;
    assert_eq!(
        game.status,
        transport::protocol::GameStatus::Waiting,
        "taken before the start"
    );
    assert_eq!(game.seq, 1, "after its own player_joined");
    assert_eq!(game.players.len(), 2);
    let started = filler.next().await;
    assert!(
        matches!(started, ServerMessage::Started { seq: 2, .. }),
        "the filler hears started: {started:?}"
    );
    assert!(matches!(
        host.next().await,
        ServerMessage::PlayerJoined { seq: 1, .. }
    ));
    assert_eq!(host.next().await, started, "everyone hears the same start");
}

/// Protocol §7's rule for the join that brings a public game to its
/// minimum: `guest` (which just sent its `join`) gets a `joined` snapshot
/// without a schedule, then the `countdown` (seq 2). Returns the countdown
/// and its `starts_in_ms`.
pub async fn joined_then_countdown(guest: &mut Client) -> (ServerMessage, u64) {
    let snapshot = guest.joined().await;
    assert_eq!(snapshot.starts_in_ms, None, "taken before the countdown");
    let countdown = guest.next().await;
    let ServerMessage::Countdown {
        seq: 2,
        starts_in_ms: Some(left),
        starts_at_ms: Some(_),
    } = countdown
    else {
        panic!("expected a countdown after the join: {countdown:?}");
    };
    (countdown, left)
}
