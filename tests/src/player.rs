//! A player: the kit's [`Client`] (which checks `seq` and keeps a replica)
//! that survives reconnects to other nodes and records its game's events,
//! so that tests can compare what players on different nodes saw.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use transport::protocol::{ClientMessage, ErrorCode, GameSnapshot, GameStatus, ServerMessage};

use crate::WAIT;
use crate::client::{Client, Frame, ReadError, try_connect_url};

/// One player on one connection at a time.
#[derive(Debug)]
pub struct Player {
    /// A name for messages (also sent as the player's name).
    pub name: String,
    /// The URL of the current connection (a node or a balancer).
    pub url: String,
    /// The connection; `None` after it closed.
    client: Option<Client>,
    /// The seat from the last `joined`.
    pub you: Option<u8>,
    /// The token from the last `joined`, for `resume`.
    pub token: Option<String>,
    /// The game from the last `joined`.
    pub game: Option<String>,
    /// The last `joined` snapshot.
    pub snapshot: Option<GameSnapshot>,
    /// The game as the current connection's replica last showed it (kept
    /// across reconnects until the next `joined`).
    pub replica: Option<GameSnapshot>,
    /// Every broadcast event of the current game, by seq, as received.
    pub events: BTreeMap<u64, ServerMessage>,
    /// Every message read, in order, for panic messages.
    pub transcript: Vec<String>,
}

impl Player {
    /// Connects to `url` (bounded by [`WAIT`]); panics on failure.
    pub async fn connect(url: &str, name: &str) -> Player {
        let client = connect_client(url)
            .await
            .unwrap_or_else(|e| panic!("{name}: cannot connect to {url}: {e}"));
        Player {
            name: name.to_owned(),
            url: url.to_owned(),
            client: Some(client),
            you: None,
            token: None,
            game: None,
            snapshot: None,
            replica: None,
            events: BTreeMap::new(),
            transcript: Vec::new(),
        }
    }

    /// Replaces the connection with a new one to `url` (seat data kept).
    /// Returns the connection error, if any, instead of panicking.
    pub async fn reconnect(&mut self, url: &str) -> Result<(), String> {
        if let Some(old) = self.client.take() {
            // A close on a connection the server already dropped may fail.
            let _closing = tokio::time::timeout(Duration::from_millis(200), old.close()).await;
        }
        self.url = url.to_owned();
        self.client = Some(connect_client(url).await?);
        self.transcript.push(format!("-- reconnected to {url}"));
        Ok(())
    }

    /// Sends `message`; panics if the connection is gone.
    pub async fn send(&mut self, message: &ClientMessage) {
        let name = self.name.clone();
        let client = self
            .client
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: no connection to send {message:?} on"));
        client
            .try_send(message)
            .await
            .unwrap_or_else(|e| panic!("{name}: sending {message:?}: {e}"));
        self.transcript.push(format!("-> {message:?}"));
    }

    /// The next message or close, bounded by `limit` (pings skipped). The
    /// client checks seq (a gap or a repeat fails the test); the player
    /// records broadcast events and checks that a seq seen again after a
    /// resume is the same event.
    pub async fn recv_within(&mut self, limit: Duration) -> Result<Frame, ReadError> {
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| ReadError::Failed("no connection".to_owned()))?;
        let received = match client.try_recv(limit).await {
            Ok(r) => r,
            Err(e) => {
                self.transcript.push(format!("<- error {e}"));
                return Err(e);
            }
        };
        if let Some(replica) = &client.replica {
            self.replica = Some(replica.clone());
        }
        match &received {
            Frame::Message(message) => {
                self.transcript.push(format!("<- {message:?}"));
                self.record(message);
            }
            Frame::Closed(frame) => {
                self.transcript.push(format!("<- closed {frame:?}"));
                self.client = None;
            }
            Frame::Ping => {}
        }
        Ok(received)
    }

    fn record(&mut self, message: &ServerMessage) {
        if let ServerMessage::Joined { game, you, token } = message {
            self.you = Some(*you);
            self.token = Some(token.clone());
            if self.game.as_deref() != Some(game.id.as_str()) {
                self.events.clear();
            }
            self.game = Some(game.id.clone());
            self.snapshot = Some(game.clone());
        } else if let Some(seq) = message.seq()
            && let Some(previous) = self.events.insert(seq, message.clone())
        {
            // The same seq seen again after a resume must be the same event.
            assert_eq!(
                &previous,
                message,
                "{}: seq {seq} changed meaning across connections\n{}",
                self.name,
                self.transcript()
            );
        }
    }

    /// Reads until `want` matches a message (bounded by [`WAIT`] in all);
    /// panics on a close, a timeout, or an `error` that `want` does not
    /// accept. Other messages are recorded and skipped.
    pub async fn until(
        &mut self,
        what: &str,
        want: impl Fn(&ServerMessage) -> bool,
    ) -> ServerMessage {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left).await {
                Ok(Frame::Message(m)) if want(&m) => return m,
                Ok(Frame::Message(m @ ServerMessage::Error { .. })) => panic!(
                    "{}: waiting for {what}, got {m:?}\n{}",
                    self.name,
                    self.transcript()
                ),
                Ok(Frame::Message(_) | Frame::Ping) => {}
                Ok(Frame::Closed(frame)) => panic!(
                    "{}: waiting for {what}, the connection to {} closed ({frame:?})\n{}",
                    self.name,
                    self.url,
                    self.transcript()
                ),
                Err(e) => panic!(
                    "{}: waiting for {what} on {}: {e}\n{}",
                    self.name,
                    self.url,
                    self.transcript()
                ),
            }
        }
    }

    /// Sends a seating `message` (`join`, `resume`…) and expects it refused
    /// with `code`; panics on `joined` or another error.
    pub async fn refused_with(&mut self, message: &ClientMessage, code: ErrorCode) {
        self.send(message).await;
        let answer = self
            .until(&format!("{code:?} for {message:?}"), |m| {
                matches!(
                    m,
                    ServerMessage::Error { .. } | ServerMessage::Joined { .. }
                )
            })
            .await;
        assert!(
            matches!(answer, ServerMessage::Error { code: got, .. } if got == code),
            "{}: {message:?} answered {answer:?}, not {code:?}\n{}",
            self.name,
            self.transcript()
        );
    }

    /// `create`, then the `joined` answer.
    pub async fn create(&mut self, max_players: i64, duration_ms: i64) -> GameSnapshot {
        self.send(&ClientMessage::Create {
            name: self.name.clone(),
            max_players: Some(max_players),
            duration_ms: Some(duration_ms),
            public: None,
        })
        .await;
        self.joined("joined after create").await
    }

    /// `join`, then the `joined` answer.
    pub async fn join(&mut self, game: &str) -> GameSnapshot {
        self.send(&ClientMessage::Join {
            game: game.to_owned(),
            name: self.name.clone(),
        })
        .await;
        self.joined("joined after join").await
    }

    /// `resume` of the held seat; the `joined` snapshot, or the error code.
    pub async fn resume(&mut self) -> Result<GameSnapshot, ErrorCode> {
        let (game, token) = match (&self.game, &self.token) {
            (Some(g), Some(t)) => (g.clone(), t.clone()),
            _ => panic!("{}: no seat to resume", self.name),
        };
        self.send(&ClientMessage::Resume { game, token }).await;
        match self
            .until("joined or error after resume", |m| {
                matches!(
                    m,
                    ServerMessage::Joined { .. } | ServerMessage::Error { .. }
                )
            })
            .await
        {
            ServerMessage::Joined { game, .. } => Ok(game),
            ServerMessage::Error { code, .. } => Err(code),
            _ => unreachable!("filtered above"),
        }
    }

    async fn joined(&mut self, what: &str) -> GameSnapshot {
        match self
            .until(what, |m| matches!(m, ServerMessage::Joined { .. }))
            .await
        {
            ServerMessage::Joined { game, .. } => game,
            _ => unreachable!("filtered above"),
        }
    }

    /// Waits until the game is active: at once if the last snapshot says
    /// so and nothing since ended it, else until `started`.
    pub async fn until_started(&mut self) {
        let already = self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.status == GameStatus::Active)
            || self
                .events
                .values()
                .any(|e| matches!(e, ServerMessage::Started { .. }));
        if !already {
            self.until("started", |m| matches!(m, ServerMessage::Started { .. }))
                .await;
        }
    }

    /// Sends a `capture` of each cell (with `ref` = the cell).
    pub async fn capture_all(&mut self, cells: &[u8]) {
        for &cell in cells {
            self.send(&ClientMessage::Capture {
                cell: i64::from(cell),
                reference: Some(u32::from(cell)),
            })
            .await;
        }
    }

    /// Reads until the board holds at least `n` captured cells.
    pub async fn until_captured(&mut self, n: usize) {
        while self.cells().iter().filter(|&&c| c != 0).count() < n {
            self.until("a capture", |m| matches!(m, ServerMessage::Captured { .. }))
                .await;
        }
    }

    /// Tries every cell, so that the game ends with a full board at once
    /// instead of by time (the taken ones are refused).
    pub async fn fill_board(&mut self) {
        let all: Vec<u8> = (0..81).collect();
        self.capture_all(&all).await;
    }

    /// Reads until `game_over` (the game's timer ends it; no sleeping).
    pub async fn until_game_over(&mut self) -> ServerMessage {
        if let Some(over) = self
            .events
            .values()
            .find(|e| matches!(e, ServerMessage::GameOver { .. }))
        {
            return over.clone();
        }
        self.until("game_over", |m| matches!(m, ServerMessage::GameOver { .. }))
            .await
    }

    /// Reads until the connection closes (skipping messages); the close
    /// frame's code, if any.
    pub async fn until_closed(&mut self) -> Option<u16> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left).await {
                Ok(Frame::Closed(frame)) => return frame.map(|(code, _)| code),
                Ok(Frame::Message(_) | Frame::Ping) => {}
                // A reset or an abrupt end is a close without a frame.
                Err(ReadError::Failed(_)) => {
                    self.client = None;
                    return None;
                }
                Err(e) => panic!(
                    "{}: the connection to {} did not close: {e}\n{}",
                    self.name,
                    self.url,
                    self.transcript()
                ),
            }
        }
    }

    /// The seq of the last event applied (the snapshot's at `joined`).
    pub fn last_seq(&self) -> u64 {
        self.replica.as_ref().map_or(0, |g| g.seq)
    }

    /// Whether the connection is still open (as far as this side knows).
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// The last messages exchanged, for panic messages.
    pub fn transcript(&self) -> String {
        let start = self.transcript.len().saturating_sub(25);
        let mut out = format!("--- transcript of {} (last 25) ---\n", self.name);
        for line in &self.transcript[start..] {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The board as built from the last `joined` snapshot and the
    /// `captured` events since (by the client's replica).
    pub fn cells(&self) -> Vec<u8> {
        self.replica
            .as_ref()
            .map_or_else(|| vec![0; 81], |g| g.cells.clone())
    }
}

async fn connect_client(url: &str) -> Result<Client, String> {
    try_connect_url(url).await
}

/// Asserts that every player saw the same event for every seq they both
/// received, and that each saw every event from its join to `game_over`.
pub fn assert_same_events(players: &[&Player]) {
    let reference = players
        .iter()
        .max_by_key(|p| p.events.len())
        .expect("at least one player");
    for player in players {
        let Some((&last, _)) = player.events.last_key_value() else {
            panic!("{} received no event\n{}", player.name, player.transcript());
        };
        let first = player.snapshot.as_ref().map_or(0, |s| s.seq) + 1;
        for seq in first..=last {
            let mine = player.events.get(&seq).unwrap_or_else(|| {
                panic!("{} misses seq {seq}\n{}", player.name, player.transcript())
            });
            if let Some(theirs) = reference.events.get(&seq) {
                assert_eq!(
                    mine, theirs,
                    "seq {seq}: {} and {} saw different events",
                    player.name, reference.name
                );
            }
        }
    }
}
