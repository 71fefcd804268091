//! One bot: one tokio task, one WebSocket connection at a time, playing the
//! real protocol until the run stops.
//!
//! Life of a bot: wait for its ramp-up slot, connect (binding its source
//! address), then per game: the host (`seat 0`) sends `create` and publishes
//! the game in its [`GameSlot`]; the guests wait for it and `join`. The game
//! auto-starts when the last guest is in (it is created with `max_players`
//! equal to `--players`); should a guest not arrive, the host sends `start`
//! after [`HOST_START_AFTER`]. With `--fill-gap`, guests trickle in: seat s
//! joins s gaps after the game appeared (and the host waits that much more). While the game is active each bot captures free
//! cells of its own view of the board on an open-loop [`Schedule`]. After
//! `game_over` the host creates the next game on the same connection and the
//! guests join it. A lost connection is re-made and the seat taken back with
//! `resume` and its token. At the stop, bots stop capturing, wait (bounded)
//! for the answers to their attempts, and close.
//!
//! With `--quick-play` there are no hosts and guests: every bot sends
//! `quick_play` (for a `--players` game) on its first connection and after
//! every `game_over`, and the server seats it where it likes; the bots that
//! land in one game find its shared [`Round`] by game id
//! ([`QuickPlayRounds`](crate::round::QuickPlayRounds)). Public games start
//! by themselves, so no bot ever sends `start`.
//!
//! Every bot times its way in: the send of the `create`, `join` or
//! `quick_play` that seated it, to its `joined` (time to seat) and to the
//! game's `started` (time to start).
//!
//! Everything the server says is counted in [`Stats`](crate::stats::Stats);
//! nothing the network does can panic a bot.

mod events;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;
use transport::ClientMessage;
use transport::protocol::GameStatus;

use crate::board::Board;
use crate::conn::{self, Shared, Ws};
use crate::error::BotError;
use crate::game_plan::{BotSpec, Rng, Schedule};
use crate::round::{GameSlot, Round};
use crate::stats::{ClientError, Counters, Latency};
use crate::wire;

/// Longest wait for `joined` after create/join/resume before reconnecting.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A host whose game has not filled after this long starts it anyway.
pub const HOST_START_AFTER: Duration = Duration::from_secs(10);
/// After the stop, how long a bot waits for answers to its attempts.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Wait before asking again after `create` or `quick_play` was refused.
const CREATE_RETRY: Duration = Duration::from_secs(1);
/// Wait before asking again after `already_in_game` (see `entering_refused`).
const ALREADY_IN_GAME_RETRY: Duration = Duration::from_millis(20);

/// The seat a bot holds.
#[derive(Debug)]
struct Seat {
    /// The game (and its fan-out table).
    round: Arc<Round>,
    /// Our player id in it.
    me: u8,
    /// Resumes the seat after a disconnect.
    token: String,
}

/// An attempt waiting for its own answer.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The `ref` sent (echoed in `rejected`).
    reference: u32,
    /// The cell asked for (matched by `captured`, which has no `ref`).
    cell: u8,
    /// The round it was sent in.
    generation: u64,
    /// Its scheduled instant: latency counts from here.
    due: Instant,
}

/// What a `joined` will be the answer to.
#[derive(Debug)]
enum Enter {
    /// Our `create`.
    Create,
    /// Our `join` of this round.
    Join(Arc<Round>),
    /// Our `resume` of the seat we hold.
    Resume,
    /// Our `quick_play`.
    QuickPlay,
}

/// Where a connection is in the protocol.
#[derive(Debug)]
enum Phase {
    /// Sent create/join/quick_play/resume at `since`; waiting for `joined`.
    Entering { kind: Enter, since: Instant },
    /// A guest between games: waiting for the host's next one.
    AwaitingRound,
    /// Holding a seat (the game's status is in `Bot::status`).
    Seated,
    /// Create/join/resume was refused for a reason that may pass; asks
    /// again at `at`.
    Retry { at: Instant, kind: Enter },
    /// The run stopped: waiting until `until` for answers, then closing.
    Draining { until: Instant },
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The run is over.
    Stopped,
    /// The connection failed or the server closed it.
    Lost,
}

/// One bot's state; lives as long as its task.
#[derive(Debug)]
pub struct Bot {
    /// Its place in the run.
    spec: BotSpec,
    /// Run-wide state.
    shared: Arc<Shared>,
    /// Its game slot, where rounds are published.
    slot: Arc<GameSlot>,
    /// Sees the slot's rounds.
    rounds: watch::Receiver<Option<Arc<Round>>>,
    /// Its own random choices.
    rng: Rng,
    /// Display name sent with create/join.
    name: String,
    /// The seat held, if any (kept across reconnects for `resume`).
    seat: Option<Seat>,
    /// The held game's status as last heard.
    status: GameStatus,
    /// Our view of the board.
    board: Board,
    /// Capture schedule while the game is active.
    schedule: Option<Schedule>,
    /// Seated players, for the host's fallback `start`.
    players: usize,
    /// When the current game was joined, for the host's fallback `start`.
    seated_at: Instant,
    /// Whether the host already sent `start` for this game.
    start_sent: bool,
    /// Whether we are the held game's host (by the server's snapshot): the
    /// host alone counts the game's start and end.
    hosting: bool,
    /// When the create/join/quick_play that seated us was sent, until the
    /// game's `started` records the time to start.
    entered_at: Option<Instant>,
    /// Last event seq of the held game, to notice gaps.
    last_seq: u64,
    /// Attempts without an answer, oldest first.
    pending: VecDeque<Pending>,
    /// Next `ref`.
    next_ref: u32,
    /// Newest round generation this bot joined or gave up on.
    last_generation: u64,
    /// Protocol phase of the current connection.
    phase: Phase,
    /// TCP connect + handshake time of the current connection, until its
    /// first `joined` records connect+join latency.
    connect_time: Option<Duration>,
    /// The run has stopped.
    stopping: bool,
}

impl Bot {
    /// A bot that has not connected yet.
    pub fn new(spec: BotSpec, shared: Arc<Shared>, slot: Arc<GameSlot>) -> Bot {
        let rounds = slot.subscribe();
        let rng = Rng::new(shared.plan.seed, u64::from(spec.id));
        Bot {
            name: format!("bot{}", spec.id),
            spec,
            shared,
            slot,
            rounds,
            rng,
            seat: None,
            status: GameStatus::Waiting,
            board: Board::default(),
            schedule: None,
            players: 0,
            seated_at: Instant::now(),
            start_sent: false,
            hosting: false,
            entered_at: None,
            last_seq: 0,
            pending: VecDeque::new(),
            next_ref: 0,
            last_generation: 0,
            phase: Phase::AwaitingRound,
            connect_time: None,
            stopping: false,
        }
    }

    fn counters(&self) -> &Counters {
        &self.shared.stats.counters
    }

    fn record(&self, kind: Latency, d: Duration) {
        self.shared.stats.record(self.spec.id, kind, d);
    }

    /// Plays until the run stops.
    pub async fn run(mut self) {
        let stop = self.shared.stop.clone();
        let start = self.shared.epoch + self.spec.start_after;
        tokio::select! {
            () = tokio::time::sleep_until(start.into()) => {}
            () = stop.cancelled() => return,
        }
        let mut backoff = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let started = Instant::now();
            let plan = &self.shared.plan;
            let Some(target) = plan.targets.get(self.spec.target) else {
                return; // cannot happen: specs index the plan's targets
            };
            let source = self
                .spec
                .source
                .and_then(|i| plan.source_ips.get(i))
                .copied();
            match conn::connect(target, source, self.shared.ws_config).await {
                Ok(ws) => {
                    backoff = Duration::from_millis(100);
                    Counters::inc(&self.counters().connections);
                    self.connect_time = Some(started.elapsed());
                    let end = self.session(ws).await;
                    Counters::inc(&self.counters().closed);
                    // Attempts of a lost connection are never answered.
                    self.pending.clear();
                    if end == End::Stopped || stop.is_cancelled() {
                        return;
                    }
                    Counters::inc(&self.counters().disconnects);
                }
                Err(e) => {
                    debug!(bot = self.spec.id, "connect failed: {e}");
                    self.counters().client_error(ClientError::Connect);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Runs one connection until it ends.
    async fn session(&mut self, mut ws: Ws) -> End {
        let end = match self.session_loop(&mut ws).await {
            Ok(end) => end,
            Err(e) => {
                debug!(bot = self.spec.id, "connection lost: {e}");
                End::Lost
            }
        };
        if end == End::Stopped {
            conn::close(&mut ws).await;
        }
        end
    }

    async fn session_loop(&mut self, ws: &mut Ws) -> Result<End, BotError> {
        let stop = self.shared.stop.clone();
        self.first_move(ws).await?;
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            if matches!(self.phase, Phase::Draining { .. }) && self.pending.is_empty() {
                return Ok(End::Stopped);
            }
            let wake = self.next_wake();
            if wake != armed {
                if let Some(at) = wake {
                    timer.as_mut().reset(at.into());
                }
                armed = wake;
            }
            tokio::select! {
                incoming = ws.next() => {
                    if let Some(end) = self.on_frame(incoming, ws).await? {
                        return Ok(end);
                    }
                }
                () = stop.cancelled(), if !self.stopping => {
                    self.stopping = true;
                    self.schedule = None;
                    if self.pending.is_empty() || !matches!(self.phase, Phase::Seated) {
                        return Ok(End::Stopped);
                    }
                    self.phase = Phase::Draining { until: Instant::now() + DRAIN_LIMIT };
                }
                changed = self.rounds.changed(), if matches!(self.phase, Phase::AwaitingRound) => {
                    if changed.is_err() {
                        return Ok(End::Stopped); // the slot is gone: the run is over
                    }
                    self.try_join(ws).await?;
                }
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    if let Some(end) = self.on_timer(ws).await? {
                        return Ok(end);
                    }
                }
            }
        }
    }

    /// The first message on a new connection.
    async fn first_move(&mut self, ws: &mut Ws) -> Result<(), BotError> {
        if let Phase::Retry {
            kind: Enter::Join(_),
            ..
        } = self.phase
        {
            // A slow-filling join still due, sent on this connection; the
            // seat held (if any) is in a game that is over.
            return Ok(());
        }
        // A finished game is not resumed: its node may be gone with it.
        if let Some(seat) = self
            .seat
            .as_ref()
            .filter(|_| self.status != GameStatus::Completed)
        {
            let resume = ClientMessage::Resume {
                game: seat.round.game_id.clone(),
                token: seat.token.clone(),
            };
            self.enter(ws, &resume, Enter::Resume).await
        } else if self.shared.plan.quick_play {
            self.quick_play(ws).await
        } else if self.spec.is_host() {
            self.create(ws).await
        } else {
            self.phase = Phase::AwaitingRound;
            self.try_join(ws).await
        }
    }

    async fn send(&self, ws: &mut Ws, message: &ClientMessage) -> Result<(), BotError> {
        conn::send(ws, message, self.counters()).await
    }

    async fn enter(
        &mut self,
        ws: &mut Ws,
        message: &ClientMessage,
        kind: Enter,
    ) -> Result<(), BotError> {
        let since = Instant::now();
        self.send(ws, message).await?;
        self.phase = Phase::Entering { kind, since };
        Ok(())
    }

    /// Asks matchmaking for a seat in a `--players` game.
    async fn quick_play(&mut self, ws: &mut Ws) -> Result<(), BotError> {
        let quick_play = ClientMessage::QuickPlay {
            name: self.name.clone(),
            max_players: Some(i64::from(self.shared.plan.players)),
        };
        self.enter(ws, &quick_play, Enter::QuickPlay).await
    }

    /// Whether this bot starts its games itself when they do not fill: the
    /// slot's host, unless idle (games must not start) or with quick play
    /// (the server starts public games).
    fn starts_games(&self) -> bool {
        let plan = &self.shared.plan;
        self.spec.is_host() && !plan.idle && !plan.quick_play
    }

    /// How long the host waits for its game to fill before starting it:
    /// [`HOST_START_AFTER`] after the last slow-filling guest is due.
    fn start_after(&self) -> Duration {
        let plan = &self.shared.plan;
        HOST_START_AFTER + plan.fill_gap * u32::from(plan.players.saturating_sub(1))
    }

    async fn create(&mut self, ws: &mut Ws) -> Result<(), BotError> {
        let plan = &self.shared.plan;
        let players = if plan.idle {
            // One seat more than will be taken: the game never starts.
            (plan.players + 1).min(8)
        } else {
            plan.players
        };
        let create = ClientMessage::Create {
            name: self.name.clone(),
            max_players: Some(i64::from(players)),
            duration_ms: plan.game_duration_ms,
            public: None,
        };
        self.enter(ws, &create, Enter::Create).await
    }

    /// A guest joins the slot's newest round if it has not tried it yet;
    /// with slow fills (`--fill-gap`), seat s waits s gaps first.
    async fn try_join(&mut self, ws: &mut Ws) -> Result<(), BotError> {
        let round = self.rounds.borrow_and_update().clone();
        if let Some(round) = round
            && round.generation > self.last_generation
        {
            self.last_generation = round.generation;
            let gap = self.shared.plan.fill_gap * u32::from(self.spec.seat);
            if !gap.is_zero() {
                self.phase = Phase::Retry {
                    at: Instant::now() + gap,
                    kind: Enter::Join(round),
                };
                return Ok(());
            }
            let join = ClientMessage::Join {
                game: round.game_id.clone(),
                name: self.name.clone(),
            };
            self.enter(ws, &join, Enter::Join(round)).await?;
        }
        Ok(())
    }

    fn next_wake(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Entering { since, .. } => Some(*since + JOIN_TIMEOUT),
            Phase::Retry { at, .. } => Some(*at),
            Phase::Draining { until } => Some(*until),
            Phase::AwaitingRound => None,
            Phase::Seated => match self.status {
                GameStatus::Active => self.schedule.as_ref().map(Schedule::next_due),
                GameStatus::Waiting if self.starts_games() && !self.start_sent => {
                    Some(self.seated_at + self.start_after())
                }
                _ => None,
            },
        }
    }

    async fn on_timer(&mut self, ws: &mut Ws) -> Result<Option<End>, BotError> {
        let now = Instant::now();
        match &self.phase {
            Phase::Entering { since, .. } if now >= *since + JOIN_TIMEOUT => {
                self.counters().client_error(ClientError::JoinTimeout);
                return Ok(Some(End::Lost));
            }
            Phase::Retry { at, .. } if now >= *at => {
                if let Phase::Retry { kind, .. } =
                    std::mem::replace(&mut self.phase, Phase::AwaitingRound)
                {
                    self.redo(ws, kind).await?;
                }
            }
            Phase::Draining { until } if now >= *until => return Ok(Some(End::Stopped)),
            Phase::Seated if self.status == GameStatus::Active => {
                self.send_due_captures(ws, now).await?
            }
            Phase::Seated
                if self.status == GameStatus::Waiting
                    && self.starts_games()
                    && now >= self.seated_at + self.start_after() =>
            {
                self.start_sent = true;
                if self.players >= 2 {
                    self.send(ws, &ClientMessage::Start {}).await?;
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// Sends every capture the schedule has due by `now`, in one flush.
    async fn send_due_captures(&mut self, ws: &mut Ws, now: Instant) -> Result<(), BotError> {
        let (Some(schedule), Some(seat)) = (self.schedule.as_mut(), self.seat.as_ref()) else {
            return Ok(());
        };
        let mut sent = 0u64;
        while let Some(due) = schedule.take_due(now) {
            let Some(cell) = self.board.pick(&mut self.rng) else {
                Counters::inc(&self.shared.stats.counters.skipped);
                continue;
            };
            let reference = self.next_ref;
            self.next_ref = self.next_ref.wrapping_add(1);
            seat.round.mark_sent(seat.me, cell, due);
            self.pending.push_back(Pending {
                reference,
                cell,
                generation: seat.round.generation,
                due,
            });
            ws.feed(Message::Binary(wire::encode_capture(cell, reference)))
                .await?;
            self.shared.stats.record(
                self.spec.id,
                Latency::SendLag,
                now.saturating_duration_since(due),
            );
            sent += 1;
        }
        if sent > 0 {
            ws.flush().await?;
            let c = &self.shared.stats.counters;
            c.attempts
                .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
            c.messages_out
                .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}
