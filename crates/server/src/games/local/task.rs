//! One task owns one game: it drives the rules' state machine, its timer,
//! and the fan-out of every event to the seats' outboxes.
//!
//! Sessions talk to the task through a bounded command queue; the task
//! never waits on a session (pushes into outboxes never block), so one slow
//! or misbehaving client cannot stall its game.
//!
//! A game with nothing due (no round, no lobby countdown, no expiry) and no
//! command queued is not a task at all: its state waits in a slot that the
//! next command, or the node's stop, turns into a task again (see
//! [`transport::slot`]).
//! Only one task at a time ever runs a game.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use game_logic::{Game, PlayerId, PlayerName, Status, Timestamp};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep, sleep_until};
use tracing::{debug, warn};
use transport::convert::{event_message, game_snapshot, refusal_message};
use transport::protocol::GameSnapshot;
use transport::slot::{self, Parking};
use transport::{Outbox, codec};
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::ServerError;
use crate::games::Capture;
use crate::games::code::{GameCode, GameRef};
use crate::games::lobby::{Listing, LocalLobby};
use crate::games::local::census::Census;
use crate::games::local::moving::WaitingGame;
use crate::metrics as m;
use crate::outgoing;
use crate::tokens::{self, TokenHash};

mod queue;

/// Commands a game's task accepts.
#[derive(Debug)]
pub enum Command {
    /// Seat a new player; the task sends `joined` to `outbox`.
    Join {
        /// Validated name.
        name: PlayerName,
        /// The joining connection.
        outbox: Outbox,
        /// The seat, or why not.
        reply: oneshot::Sender<Result<PlayerId, ServerError>>,
    },
    /// Take back a seat by token; the task sends `joined` to `outbox`.
    Resume {
        /// The token as the client sent it.
        token: String,
        /// The resuming connection.
        outbox: Outbox,
        /// The seat, or why not.
        reply: oneshot::Sender<Result<PlayerId, ServerError>>,
    },
    /// The host starts the round.
    Start {
        /// Who asks.
        player: PlayerId,
        /// The asking connection (ignored if it no longer holds the seat).
        conn: u64,
    },
    /// A capture attempt.
    Capture {
        /// Who captures.
        player: PlayerId,
        /// The asking connection.
        conn: u64,
        /// The cell, its `ref` and when it was received.
        capture: Capture,
    },
    /// The player leaves (or detaches from a completed game).
    Leave {
        /// Who leaves.
        player: PlayerId,
        /// The leaving connection.
        conn: u64,
    },
    /// The connection holding a seat ended without `leave`.
    Disconnected {
        /// The seat.
        player: PlayerId,
        /// The ended connection.
        conn: u64,
    },
    /// A connection starts watching (or resyncs); the task sends `watching`.
    Watch {
        /// The watching connection.
        outbox: Outbox,
        /// Done, or `game_full`.
        reply: oneshot::Sender<Result<(), ServerError>>,
    },
    /// A connection stops watching.
    Unwatch {
        /// The connection.
        conn: u64,
        /// Told once no further event reaches the connection, if asked.
        done: Option<oneshot::Sender<()>>,
    },
    /// The game as JSON-able wire snapshot (HTTP API).
    Snapshot {
        /// Where to send it.
        reply: oneshot::Sender<GameSnapshot>,
    },
    /// A draining node moves the game to a peer, if it is waiting: the task
    /// sends what the peer needs to `export` (dropped if not waiting), then
    /// holds every other command until `verdict`. `true`: the peer has the
    /// game; the task sends its players and spectators away with 1001 (they
    /// resume and watch there) and ends. Otherwise it goes on here.
    HandOff {
        /// Where the waiting game goes.
        export: oneshot::Sender<WaitingGame>,
        /// Whether the peer took it.
        verdict: oneshot::Receiver<bool>,
    },
    /// The node holds too many unattended games and this is the oldest:
    /// end it now if it is still unattended (see [`Census`]).
    Evict,
}

/// Who a game is beyond its rules: how clients name it, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The game's id.
    pub id: Uuid,
    /// Its short code.
    pub code: GameCode,
    /// When it was created (the lobby's "oldest first").
    pub created: Timestamp,
}

/// What every game task of a node runs with: one allocation shared by all
/// of them, one pointer in each.
#[derive(Debug)]
pub struct NodeEnv {
    /// Timestamps for the rules.
    pub clock: Clock,
    /// Commands a game's queue holds before senders wait.
    pub queue: usize,
    /// Most connections watching one game at once.
    pub max_spectators: usize,
    /// Where a public game is listed.
    pub lobby: LocalLobby,
    /// Where a game reports its status and when nobody attends it.
    pub census: Census,
}

/// The sending side of a game's task, kept in the registry and by sessions.
///
/// One pointer: the game's name and status live in its command queue's
/// shared allocation.
#[derive(Debug, Clone)]
pub struct GameHandle {
    /// Bounded command queue into the task; it also carries the game's
    /// identity and its status, mirrored by the task for lock-free reads.
    tx: queue::Sender<Command, Identity>,
}

impl GameHandle {
    /// The game's id.
    pub fn id(&self) -> Uuid {
        self.tx.name().id
    }

    /// Its short code.
    pub fn code(&self) -> GameCode {
        self.tx.name().code
    }

    /// Whether this is the game a client named.
    pub fn is(&self, game: &GameRef) -> bool {
        let identity = self.tx.name();
        match game {
            GameRef::Id(id) => identity.id == *id,
            GameRef::Code(code) => identity.code == *code,
        }
    }

    /// The game's status as last published by its task.
    pub fn status(&self) -> Status {
        match self.tx.status() {
            0 => Status::Waiting,
            1 => Status::Active,
            _ => Status::Completed,
        }
    }

    /// Tells the game to end now (the node stops), waking it if it is
    /// parked; commands still queued are dropped. Never waits.
    pub(super) fn stop(&self) {
        self.tx.stop();
    }

    /// Asks the task to end if the game is still unattended (the census's
    /// cap); `false` if its queue is full or it has ended. Never waits.
    pub fn evict(&self) -> bool {
        self.tx.try_send(Command::Evict).is_ok()
    }

    /// A handle whose task is gone (census tests).
    #[cfg(test)]
    pub fn ended(id: Uuid) -> GameHandle {
        let identity = Identity {
            id,
            code: GameCode::random(),
            created: Timestamp::from_unix_ms(0),
        };
        let (tx, _ended) = queue::channel(1, identity);
        GameHandle { tx }
    }

    /// Sends a command; `UnknownGame` if the task has ended.
    pub async fn send(&self, command: Command) -> Result<(), ServerError> {
        self.tx
            .send(command)
            .await
            .map_err(|_| ServerError::UnknownGame)
    }

    /// Sends a command and awaits its reply.
    pub async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ServerError>>) -> Command,
    ) -> Result<T, ServerError> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply)).await?;
        answer.await.map_err(|_| ServerError::UnknownGame)?
    }

    /// Asks a waiting game's task for what a peer needs to take it over;
    /// the task then waits for the sender's verdict (see
    /// [`Command::HandOff`]). `None` if the game is not waiting.
    pub async fn hand_off(&self) -> Option<(WaitingGame, oneshot::Sender<bool>)> {
        let (export, exported) = oneshot::channel();
        let (verdict, verdict_rx) = oneshot::channel();
        let command = Command::HandOff {
            export,
            verdict: verdict_rx,
        };
        self.send(command).await.ok()?;
        let game = exported.await.ok()?;
        Some((game, verdict))
    }

    /// The wire snapshot of the game, if its task is still running.
    pub async fn snapshot(&self) -> Option<GameSnapshot> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Snapshot { reply }).await.ok()?;
        answer.await.ok()
    }
}

fn status_code(s: Status) -> u8 {
    match s {
        Status::Waiting => 0,
        Status::Active => 1,
        Status::Completed => 2,
    }
}

/// How an activation of a game's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// The game is over: its goodbyes, and the task ends.
    Ended,
    /// Nothing is due and nothing queued: the game may park.
    Idle,
}

/// What woke a running game.
enum Next {
    /// A command, or the queue's end (`None`: every sender gone, or the
    /// node stops).
    Command(Option<Command>),
    /// The round timer, the lobby countdown or the expiry.
    Timer,
}

/// A game between activations: its state and its goodbye.
struct Parked<F> {
    task: GameTask,
    on_exit: F,
}

impl<F: FnOnce(&Identity) + Send + 'static> slot::Resume for Parked<F> {
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.task.rx.poll_ready(cx)
    }

    fn resume(self) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // Boxed: a freed task cell (128-byte aligned) is a hole that
                // glibc cannot refill with the next cell of its size (see
                // the sessions' `Node::spawn` in edge/ws.rs); a box is one
                // the next game's box reuses.
                runtime.spawn(Box::pin(self.task.life(self.on_exit)));
            }
            // Woken outside the runtime (it is gone): the process is ending.
            Err(_) => debug!(game = %self.task.identity().id, "woken with no runtime"),
        }
    }
}

/// What a seat holds beyond the rules: its token and its connection.
#[derive(Debug)]
struct SeatLink {
    /// Hash of the seat's resume token.
    token: TokenHash,
    /// The connection holding the seat now, if any.
    outbox: Option<Outbox>,
}

/// The state owned by one game's task.
///
/// A node may hold many waiting games, so this is kept small: nothing is
/// stored twice (the identity is the queue's, the handle is made from `tx`
/// when the census needs one) and the seats' links are sized to the game.
struct GameTask {
    game: Game,
    /// What the node's games share: clock, lobby, census, limits.
    node: Arc<NodeEnv>,
    /// The seq and spectator count the lobby listing was last made at.
    listed: Option<(u64, u32)>,
    /// Indexed by player id, one per seat of the game.
    links: Box<[Option<SeatLink>]>,
    /// Connections watching, each once.
    spectators: Vec<Outbox>,
    /// The command queue, which holds the game's names and age too.
    rx: queue::Receiver<Command, Identity>,
    /// A sender of this game's own queue, which the census evicts it by.
    tx: queue::Sender<Command, Identity>,
    /// The status the census counts this game under.
    counted_as: Option<Status>,
    /// Whether the census counts this game as unattended.
    counted_unattended: bool,
    /// Whether a player has been connected here (a game moved from a
    /// draining peer has nobody connected until its players resume).
    attended_once: bool,
}

/// Starts the task of a new game whose host is connected on `host`, sends
/// the host its `joined`, and returns the handle. `on_exit` runs with the
/// game's identity when the task ends (the registry removes the game there).
pub fn spawn(
    identity: Identity,
    game: Game,
    host: Outbox,
    node: Arc<NodeEnv>,
    on_exit: impl FnOnce(&Identity) + Send + 'static,
) -> GameHandle {
    let host_id = game.host();
    let (token, hash) = tokens::issue();
    let (handle, mut task) = GameTask::new(identity, game, node);
    task.link(
        host_id,
        SeatLink {
            token: hash,
            outbox: Some(host.clone()),
        },
    );
    task.send_joined(&host, host_id, token);
    task.launch(on_exit);
    handle
}

/// Starts the task of a waiting game moved here from a draining peer: its
/// seats are held by their tokens' `hashes`, nobody connected until they
/// resume. `on_exit` as for [`spawn`].
pub fn spawn_regathered(
    identity: Identity,
    game: Game,
    hashes: Vec<(PlayerId, TokenHash)>,
    node: Arc<NodeEnv>,
    on_exit: impl FnOnce(&Identity) + Send + 'static,
) -> GameHandle {
    let (handle, mut task) = GameTask::new(identity, game, node);
    for (player, token) in hashes {
        task.link(
            player,
            SeatLink {
                token,
                outbox: None,
            },
        );
    }
    task.launch(on_exit);
    handle
}

impl GameTask {
    /// The task's state and its handle, before any seat is linked.
    fn new(identity: Identity, game: Game, node: Arc<NodeEnv>) -> (GameHandle, GameTask) {
        let (tx, rx) = queue::channel(node.queue, identity);
        rx.publish(status_code(game.status()));
        let handle = GameHandle { tx: tx.clone() };
        let seats = usize::from(game.settings().max_players());
        let task = GameTask {
            game,
            node,
            listed: None,
            links: std::iter::repeat_with(|| None).take(seats).collect(),
            spectators: Vec::new(),
            rx,
            tx,
            counted_as: None,
            counted_unattended: false,
            attended_once: false,
        };
        (handle, task)
    }

    /// The names and age of the game.
    fn identity(&self) -> &Identity {
        self.rx.name()
    }

    /// The link of `player`'s seat, if the game has that seat.
    fn link_of(&mut self, player: PlayerId) -> Option<&mut Option<SeatLink>> {
        self.links.get_mut(player.index())
    }

    /// Links `player`'s seat to `link`.
    fn link(&mut self, player: PlayerId, link: SeatLink) {
        if let Some(slot) = self.link_of(player) {
            *slot = Some(link);
        }
    }

    /// Lists the game (quick play must see a game it created before anyone
    /// can look) and runs it until it ends.
    fn launch(mut self, on_exit: impl FnOnce(&Identity) + Send + 'static) {
        self.publish_status();
        m::game_created();
        slot::Resume::resume(Parked {
            task: self,
            on_exit,
        });
    }

    /// What one activation of the game runs: the game until it ends (then
    /// its goodbyes) or until it has nothing due and nothing queued (then
    /// it parks, and the task ends).
    ///
    /// Not an `async fn`: one stores its arguments twice (captured, then
    /// moved into the body's locals), which would double the game's state
    /// in every task (1,472 bytes instead of ~860; see the size test).
    #[allow(clippy::manual_async_fn)]
    fn life<F: FnOnce(&Identity) + Send + 'static>(
        mut self,
        on_exit: F,
    ) -> impl Future<Output = ()> + Send + 'static {
        async move {
            if self.run().await == Run::Idle {
                // After the last await: the parked state is not the future's.
                let parked = Parked {
                    task: self,
                    on_exit,
                };
                if let Parking::Here(woken) = slot::park(parked) {
                    // A command came while parking: the next activation.
                    slot::Resume::resume(woken);
                }
                return;
            }
            let id = self.identity().id;
            self.node.lobby.set(id, None);
            self.node.census.moved(self.counted_as.take(), None);
            if self.counted_unattended {
                self.node.census.attended(&id);
            }
            m::spectators_changed(-i64::try_from(self.spectators.len()).unwrap_or(0));
            m::game_dropped();
            on_exit(self.identity());
        }
    }

    /// Runs the game until it ends, or until it may park.
    async fn run(&mut self) -> Run {
        // The timer exists only while something is due: a waiting game
        // usually has no deadline, and a `Sleep` is 112 bytes.
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        let mut armed: Option<Timestamp> = None;
        loop {
            let due = self.game.poll_timeout();
            if due != armed {
                match due {
                    Some(at) => {
                        let at = self.node.clock.instant(at);
                        match timer.as_mut() {
                            Some(timer) => timer.as_mut().reset(at),
                            None => timer = Some(Box::pin(sleep_until(at))),
                        }
                    }
                    None => timer = None,
                }
                armed = due;
            }
            let next = if timer.is_none() {
                // Nothing due: a command now, or park.
                match self.rx.try_recv() {
                    Some(command) => Next::Command(command),
                    None => return Run::Idle,
                }
            } else {
                // Futures of one pointer each (`recv` and an `async fn` would
                // hold theirs twice).
                tokio::select! {
                    command = poll_fn(|cx| self.rx.poll_recv(cx)) => Next::Command(command),
                    () = poll_fn(|cx| Self::poll_timer(&mut timer, cx)) => Next::Timer,
                }
            };
            match next {
                Next::Command(command) => match command {
                    Some(Command::HandOff { export, verdict }) => {
                        // Boxed: a rare path that must not size every game's task.
                        if Box::pin(self.hand_off(export, verdict)).await {
                            debug!(game = %self.identity().id, "moved to a peer");
                            break;
                        }
                    }
                    Some(Command::Evict) => {
                        if self.game.unattended_since().is_some() {
                            debug!(game = %self.identity().id, "evicted: too many unattended games");
                            m::game_evicted();
                            break;
                        }
                        // Someone came back in time; the census let go of it.
                        self.counted_unattended = false;
                    }
                    Some(command) => self.handle(command),
                    // Every sender gone, or the node stops.
                    None => break,
                },
                Next::Timer => {
                    let now = self.node.clock.now();
                    self.game.handle_timeout(now);
                    self.flush_events(None, now);
                    if self.game.is_expired(now) {
                        debug!(game = %self.identity().id, "expired");
                        break;
                    }
                    // Re-arm even when the deadline did not move (a timer that
                    // fired early by a millisecond of rounding).
                    armed = None;
                }
            }
        }
        Run::Ended
    }

    /// Ready when `timer` has fired; never without one.
    fn poll_timer(timer: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
        match timer {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }

    fn handle(&mut self, command: Command) {
        let now = self.node.clock.now();
        match command {
            Command::Join {
                name,
                outbox,
                reply,
            } => {
                let result = self.join(name, &outbox, now);
                if reply.send(result).is_err() {
                    debug!(game = %self.identity().id, "joiner went away before the reply");
                }
            }
            Command::Resume {
                token,
                outbox,
                reply,
            } => {
                let result = self.resume(token, &outbox, now);
                if reply.send(result).is_err() {
                    debug!(game = %self.identity().id, "resumer went away before the reply");
                }
            }
            Command::Start { player, conn } => {
                if let Some(outbox) = self.current(player, conn) {
                    match self.game.start(player, now) {
                        Ok(()) => self.flush_events(None, now),
                        Err(e) => outgoing::send(&outbox, &refusal_message(e, 0, None)),
                    }
                }
            }
            Command::Capture {
                player,
                conn,
                capture,
            } => {
                let Some(outbox) = self.current(player, conn) else {
                    return;
                };
                match self.game.capture(player, capture.cell, now) {
                    Ok(()) => {
                        m::capture_accepted();
                        self.broadcast(None, Some((conn, capture.received)), now);
                    }
                    Err(e) => outgoing::refuse(&outbox, e, &capture),
                }
            }
            Command::Leave { player, conn } => {
                if self.current(player, conn).is_some() {
                    if let Err(e) = self.game.leave(player, now) {
                        debug!(game = %self.identity().id, "leave refused: {e}");
                    }
                    let seated = self.game.player(player).is_some();
                    if let Some(slot) = self.link_of(player) {
                        if !seated {
                            *slot = None; // Seat freed.
                        } else if let Some(link) = slot {
                            link.outbox = None;
                        }
                    }
                    self.flush_events(Some(conn), now);
                }
            }
            Command::Disconnected { player, conn } => {
                if self.current(player, conn).is_some() {
                    if let Some(Some(link)) = self.link_of(player) {
                        link.outbox = None;
                    }
                    if let Err(e) = self.game.set_connected(player, false, now) {
                        debug!(game = %self.identity().id, "presence refused: {e}");
                    }
                    self.flush_events(Some(conn), now);
                }
            }
            Command::Watch { outbox, reply } => {
                let result = self.watch(&outbox, now);
                if reply.send(result).is_err() {
                    debug!(game = %self.identity().id, "spectator went away before the reply");
                }
            }
            Command::Unwatch { conn, done } => {
                self.spectators.retain(|o| o.id() != conn);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            // `run` handles these: they may end the task.
            Command::HandOff { .. } | Command::Evict => {}
            Command::Snapshot { reply } => {
                if reply.send(self.wire_snapshot(now)).is_err() {
                    debug!(game = %self.identity().id, "snapshot reader went away");
                }
            }
        }
        self.publish_status();
    }

    /// See [`Command::HandOff`]; `true` when the game has moved.
    async fn hand_off(
        &mut self,
        export: oneshot::Sender<WaitingGame>,
        verdict: oneshot::Receiver<bool>,
    ) -> bool {
        if self.game.status() != Status::Waiting {
            return false; // `export` dropped: nothing to move
        }
        let hashes: Vec<(PlayerId, TokenHash)> = PlayerId::all()
            .filter_map(|p| Some((p, self.links.get(p.index())?.as_ref()?.token)))
            .collect();
        if export
            .send(WaitingGame::of(self.identity(), &self.game, &hashes))
            .is_err()
        {
            return false;
        }
        let moved = tokio::select! {
            moved = verdict => moved.unwrap_or(false),
            () = poll_fn(|cx| self.rx.poll_stopped(cx)) => false,
        };
        if moved {
            let why = "game moved to another node; resume it";
            for link in self.links.iter().flatten() {
                if let Some(outbox) = &link.outbox {
                    outbox.close(transport::session::CLOSE_GOING_AWAY, why);
                }
            }
            for outbox in &self.spectators {
                outbox.close(transport::session::CLOSE_GOING_AWAY, why);
            }
        }
        moved
    }

    fn join(
        &mut self,
        name: PlayerName,
        outbox: &Outbox,
        now: Timestamp,
    ) -> Result<PlayerId, ServerError> {
        let player = self.game.join(name, now)?;
        let (token, hash) = tokens::issue();
        self.link(
            player,
            SeatLink {
                token: hash,
                outbox: Some(outbox.clone()),
            },
        );
        self.flush_events(Some(outbox.id()), now);
        self.send_joined(outbox, player, token);
        // What the join causes (the start of a game it filled, a lobby
        // countdown) comes after the joiner's snapshot, to everyone.
        self.game.handle_timeout(now);
        self.flush_events(None, now);
        Ok(player)
    }

    fn resume(
        &mut self,
        token: String,
        outbox: &Outbox,
        now: Timestamp,
    ) -> Result<PlayerId, ServerError> {
        let hash = TokenHash::of(&token);
        let player = PlayerId::all()
            .find(|p| {
                self.links
                    .get(p.index())
                    .and_then(Option::as_ref)
                    .is_some_and(|l| l.token.matches(&hash))
            })
            .ok_or(ServerError::BadToken)?;
        // A connection holds one seat. Resuming its own seat is a resync;
        // taking another seat of this game would link it to both (every
        // event delivered twice, the first seat never disconnected).
        if PlayerId::all().any(|p| p != player && self.current(p, outbox.id()).is_some()) {
            return Err(ServerError::AlreadyInGame);
        }
        self.game.can_resume(player)?;
        let link = self
            .link_of(player)
            .and_then(Option::as_mut)
            .ok_or(ServerError::BadToken)?;
        if let Some(old) = link.outbox.replace(outbox.clone())
            && old.id() != outbox.id()
        {
            old.close(transport::session::CLOSE_REPLACED, "session replaced");
        }
        self.game.set_connected(player, true, now)?;
        self.flush_events(Some(outbox.id()), now);
        self.send_joined(outbox, player, token);
        Ok(player)
    }

    /// Adds (or resyncs) a spectator and sends it `watching`.
    fn watch(&mut self, outbox: &Outbox, now: Timestamp) -> Result<(), ServerError> {
        if !self.spectators.iter().any(|o| o.id() == outbox.id()) {
            if self.spectators.len() >= self.node.max_spectators {
                return Err(ServerError::Game(game_logic::GameError::GameFull));
            }
            self.spectators.push(outbox.clone());
            m::spectators_changed(1);
        }
        let game = self.wire_snapshot(now);
        outgoing::send(
            outbox,
            &transport::protocol::ServerMessage::Watching { game },
        );
        Ok(())
    }

    /// The game on the wire, as seen at `now`.
    fn wire_snapshot(&self, now: Timestamp) -> GameSnapshot {
        let mut id = Uuid::encode_buffer();
        let mut snapshot = game_snapshot(
            self.identity().id.hyphenated().encode_lower(&mut id),
            self.identity().code.as_str(),
            &self.game.snapshot(),
            now,
        );
        snapshot.spectators = u32::try_from(self.spectators.len()).unwrap_or(u32::MAX);
        snapshot
    }

    /// The outbox of `player` if connection `conn` still holds the seat;
    /// commands from a replaced connection are dropped.
    fn current(&self, player: PlayerId, conn: u64) -> Option<Outbox> {
        self.links
            .get(player.index())?
            .as_ref()
            .and_then(|l| l.outbox.as_ref())
            .filter(|o| o.id() == conn)
            .cloned()
    }

    fn send_joined(&self, outbox: &Outbox, you: PlayerId, token: String) {
        let snapshot = self.wire_snapshot(self.node.clock.now());
        outgoing::send(outbox, &outgoing::joined(snapshot, you, token));
    }

    /// Broadcasts every queued event, encoded once, to every connected seat
    /// except `skip` (a joiner whose `joined` snapshot already includes them)
    /// and to every spectator. A spectator whose outbox refuses the frame (a
    /// slow consumer being cut, or gone) stops watching.
    fn flush_events(&mut self, skip: Option<u64>, now: Timestamp) {
        self.broadcast(skip, None, now);
    }

    /// [`flush_events`](Self::flush_events), with `stamp`: the capturing
    /// connection and its capture's arrival. Its own `captured` echo is
    /// stamped, so that the write records the broadcast latency.
    fn broadcast(&mut self, skip: Option<u64>, stamp: Option<(u64, Instant)>, now: Timestamp) {
        let mut stamp = stamp;
        // Publish the status before any event leaves: a client that reacts
        // to `game_over` at once (play again) must find the game completed.
        self.publish_status();
        while let Some(event) = self.game.poll_event() {
            let frame: Bytes = match codec::encode_server(&event_message(&event, now)) {
                Ok(f) => f,
                Err(e) => {
                    warn!(game = %self.identity().id, "cannot encode event: {e}");
                    continue;
                }
            };
            let mut delivered = 0u64;
            for outbox in self
                .links
                .iter()
                .flatten()
                .filter_map(|l| l.outbox.as_ref())
            {
                if Some(outbox.id()) == skip {
                    continue;
                }
                let pushed = match stamp {
                    Some((conn, since)) if conn == outbox.id() => {
                        // The first event of a capture is its `captured`.
                        stamp = None;
                        outbox.push_stamped(frame.clone(), since)
                    }
                    _ => outbox.push(frame.clone()),
                };
                match pushed {
                    Ok(()) => delivered += 1,
                    Err(e) => {
                        debug!(game = %self.identity().id, conn = outbox.id(), "event not queued: {e}")
                    }
                }
            }
            let watchers = self.spectators.len();
            self.spectators
                .retain(|outbox| match outbox.push(frame.clone()) {
                    Ok(()) => true,
                    Err(e) => {
                        // The queue's field, not `identity()`: `spectators` is borrowed.
                        debug!(game = %self.rx.name().id, conn = outbox.id(), "spectator cut: {e}");
                        false
                    }
                });
            let watching = self.spectators.len();
            m::spectators_changed(-i64::try_from(watchers - watching).unwrap_or(0));
            m::spectator_deliveries(u64::try_from(watching).unwrap_or(0));
            m::deliveries(delivered);
            if let game_logic::Event::GameOver { .. } = event {
                m::game_over();
            }
        }
        self.publish_status();
    }

    /// Publishes the status (for lock-free reads and the census) and, for
    /// a public game whose state moved on, its lobby listing.
    fn publish_status(&mut self) {
        let status = self.game.status();
        self.rx.publish(status_code(status));
        self.node.census.moved(self.counted_as, Some(status));
        self.counted_as = Some(status);
        self.count_unattended();
        let watching = u32::try_from(self.spectators.len()).unwrap_or(u32::MAX);
        let now_listed = (self.game.seq(), watching);
        if self.game.settings().public() && self.listed != Some(now_listed) {
            self.listed = Some(now_listed);
            let Identity { id, code, created } = *self.identity();
            let listing = Listing::of(id, code.as_str(), created, &self.game.snapshot())
                .map(|l| l.watched_by(self.spectators.len()));
            self.node.lobby.set(id, listing);
        }
    }

    /// Tells the census when the game turns unattended or attended again;
    /// asks the oldest unattended game to end when this one is one too
    /// many. A game moved here counts only once a player has come back.
    fn count_unattended(&mut self) {
        let unattended = self.game.unattended_since().is_some();
        self.attended_once |= !unattended;
        let unattended = unattended && self.attended_once;
        if unattended == self.counted_unattended {
            return;
        }
        self.counted_unattended = unattended;
        if !unattended {
            self.node.census.attended(&self.identity().id);
            return;
        }
        let handle = GameHandle {
            tx: self.tx.clone(),
        };
        if let Some(oldest) = self.node.census.unattended(&handle)
            && !oldest.evict()
        {
            // Busy or ending: it expires on its own clock.
            debug!(game = %oldest.id(), "unattended game not evicted: its queue is full");
        }
    }
}

#[cfg(test)]
mod tests {
    use game_logic::{Settings, SettingsBounds};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::games::local::registry::Registry;
    use crate::games::{Capacity, GameCounts};

    /// tokio keeps a task's future in a cell with its header and trailer
    /// (96 bytes on x86_64), rounded up to 128 bytes.
    const TASK_CELL_OVERHEAD: usize = 96;

    /// A game with something due is a task: what the spawned future holds
    /// inline decides the task cell's size. It was 1,880 bytes (a 2,048-byte
    /// cell), then 776, then 688; it is 664 and must fit an 896-byte cell.
    /// A parked game's slot holds only its state (480 bytes; 504 before the
    /// settings kept their lengths in milliseconds), its goodbye (a
    /// pointer), the slot's lock (8) and the `Arc`'s counts (16): 512, one
    /// of jemalloc's size classes (at 536 it took the 640-byte class).
    #[tokio::test]
    async fn a_waiting_games_task_fits_in_an_896_byte_task_cell() {
        let clock = Clock::new();
        let bounds = SettingsBounds::default();
        let settings = Settings::new(Some(4), None, &bounds).unwrap();
        let game = Game::new(settings, PlayerName::new("ada").unwrap(), clock.now());
        let identity = Identity {
            id: Uuid::new_v4(),
            code: GameCode::random(),
            created: clock.now(),
        };
        let capacity = Capacity {
            games: 1,
            spectators: 1,
            unattended: 0,
        };
        let registry = Registry::new(clock, capacity, CancellationToken::new());
        let (_handle, task) = GameTask::new(identity, game, registry.node_env());
        let life = task.life(registry.on_exit_for_test());
        let size = size_of_val(&life);
        assert!(
            size + TASK_CELL_OVERHEAD <= 896,
            "the task's future is {size} bytes"
        );
        assert!(size_of::<GameTask>() <= 480, "a parked game's state grew");
    }

    fn capacity() -> Capacity {
        Capacity {
            games: 8,
            spectators: 1,
            unattended: 0,
        }
    }

    /// Tasks alive on the test's runtime.
    fn tasks() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    /// Parked games' slots alive on this (the test's only) thread.
    fn parked() -> usize {
        slot::live_on_this_thread()
    }

    /// Lets every woken task run until all wait again (paused time: no
    /// timer fires here).
    async fn settle() {
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
    }

    /// A game of five seats hosted on connection 1, in `registry`.
    fn hosted(registry: &Registry) -> (GameHandle, Outbox) {
        let settings = Settings::new(Some(5), None, &SettingsBounds::default()).unwrap();
        let host = Outbox::new(1, 64);
        let name = PlayerName::new("ada").unwrap();
        let game = registry.create(Uuid::new_v4(), settings, name, &host, |_| true);
        (game, host)
    }

    async fn join(game: &GameHandle, conn: u64) -> Result<PlayerId, ServerError> {
        let name = PlayerName::new(&format!("p{conn}")).unwrap();
        let outbox = Outbox::new(conn, 64);
        game.request(|reply| Command::Join {
            name,
            outbox,
            reply,
        })
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_game_with_nothing_due_is_no_task_until_a_command_wakes_it() {
        let registry = Registry::new(Clock::new(), capacity(), CancellationToken::new());
        let (game, _host) = hosted(&registry);
        settle().await;
        // One task: the registry's, which waits for the node's stop.
        assert_eq!(tasks(), 1, "a waiting game with nothing due is a task");
        assert_eq!(parked(), 1);
        // A command wakes it; the join's review runs; it parks again.
        assert_eq!(join(&game, 2).await.unwrap().index(), 1);
        let snapshot = game.snapshot().await.expect("a parked game answers");
        assert_eq!(snapshot.players.len(), 2);
        settle().await;
        assert_eq!((tasks(), parked()), (1, 1), "parked again, in one slot");
        assert_eq!(game.status(), Status::Waiting);
        assert_eq!(registry.counts().waiting, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_game_with_something_due_stays_a_task_until_it_is_done() {
        let registry = Registry::new(Clock::new(), capacity(), CancellationToken::new());
        let (game, _host) = hosted(&registry);
        settle().await;
        // The host's connection ends: nobody attends the game, whose expiry
        // is now due, so it is a task with a timer again.
        let gone = Command::Disconnected {
            player: PlayerId::FIRST,
            conn: 1,
        };
        game.send(gone).await.unwrap();
        settle().await;
        assert_eq!((tasks(), parked()), (2, 0), "a game with a timer is a task");
        tokio::time::sleep(game_logic::RETENTION + std::time::Duration::from_secs(1)).await;
        settle().await;
        assert!(registry.is_empty(), "the unattended game expired");
        assert_eq!((tasks(), parked()), (1, 0));
        assert!(game.snapshot().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_nodes_stop_reaches_parked_games_and_games_made_after_it() {
        let stop = CancellationToken::new();
        let registry = Registry::new(Clock::new(), capacity(), stop.clone());
        let (first, _host) = hosted(&registry);
        let (second, _host) = hosted(&registry);
        settle().await;
        assert_eq!((tasks(), parked(), registry.len()), (1, 2, 2));
        stop.cancel();
        settle().await;
        assert!(registry.is_empty(), "every game said its goodbye");
        assert_eq!(registry.counts(), GameCounts::default());
        assert_eq!((tasks(), parked()), (0, 0), "no task, no slot left");
        for game in [&first, &second] {
            assert!(matches!(join(game, 3).await, Err(ServerError::UnknownGame)));
        }
        // A game made once the node stops ends at once.
        let (late, _host) = hosted(&registry);
        settle().await;
        assert!(registry.is_empty());
        assert!(late.snapshot().await.is_none());
        assert_eq!((tasks(), parked()), (0, 0));
    }
}
