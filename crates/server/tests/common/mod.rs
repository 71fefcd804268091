//! Shared harness for the server's integration tests: a real server on a
//! free loopback port, and real WebSocket clients.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use gridcap::config::{Config, ServeOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use transport::client::{Client, Received};
use transport::protocol::{ClientMessage, GameSnapshot, ServerMessage};

/// How long any single expected message may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server running in this test process.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a server with default settings on 127.0.0.1:0.
    pub async fn start() -> TestServer {
        Self::start_with(ServeOptions::default()).await
    }

    /// Starts a server with `options` (listen address is ignored).
    pub async fn start_with(options: ServeOptions) -> TestServer {
        let config: Config = options.resolve().expect("valid test config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gridcap::server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn connect(&self) -> Client {
        Client::connect(&self.ws_url()).await.expect("connect")
    }

    /// Triggers the graceful shutdown and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The next message, failing the test on close or timeout.
pub async fn next(c: &mut Client) -> ServerMessage {
    c.next_message(WAIT).await.expect("a server message")
}

/// The next message or close.
pub async fn recv(c: &mut Client) -> Received {
    c.recv_timeout(WAIT).await.expect("a message or a close")
}

/// Reads until the server closes; returns the close code.
pub async fn closed_with(c: &mut Client) -> Option<u16> {
    loop {
        match c.recv_timeout(WAIT).await {
            Ok(Received::Closed(frame)) => return frame.map(|f| f.0),
            Ok(Received::Message(_)) => continue,
            Err(e) => panic!("expected a close, got error {e}"),
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

pub fn capture(cell: i64) -> ClientMessage {
    ClientMessage::Capture {
        cell,
        reference: None,
    }
}

/// A joined seat: its client, id, token and the game snapshot it got.
pub struct Seat {
    pub client: Client,
    pub you: u8,
    pub token: String,
    pub game: GameSnapshot,
}

pub async fn expect_joined(mut client: Client) -> Seat {
    match next(&mut client).await {
        ServerMessage::Joined { game, you, token } => Seat {
            client,
            you,
            token,
            game,
        },
        other => panic!("expected joined, got {other:?}"),
    }
}

/// Creates a game on `server` and returns the host's seat.
pub async fn host_game(server: &TestServer, max_players: i64, duration_ms: i64) -> Seat {
    let mut c = server.connect().await;
    c.send(&create("host", Some(max_players), Some(duration_ms)))
        .await
        .unwrap();
    expect_joined(c).await
}

/// Joins `game` as `name`.
pub async fn join_game(server: &TestServer, game: &str, name: &str) -> Seat {
    let mut c = server.connect().await;
    c.send(&join(game, name)).await.unwrap();
    expect_joined(c).await
}

/// Reads messages until one matches `pred`; fails after `WAIT` per message.
pub async fn until(c: &mut Client, mut pred: impl FnMut(&ServerMessage) -> bool) -> ServerMessage {
    loop {
        let m = next(c).await;
        if pred(&m) {
            return m;
        }
    }
}
