//! The stateless backend's state and its requests to Redis: seating and
//! watching (with the subscription made first), commands, the resync of
//! stale rooms, the sweep of seats held by dead nodes, and the renewal of
//! this node's spectators' leases (and, in [`table`](super::table), of its
//! games' leases on the cluster's game table).

use std::sync::Arc;
use std::time::Duration;

use game_logic::{PlayerName, Settings, SettingsBounds, Status, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use transport::protocol::GameSnapshot;
use transport::{Outbox, ServerMessage};
use uuid::Uuid;

use super::layout::{SPECTATOR_RENEW, game_renew};
use super::pubsub::{self, Push, Recovery, Subscriber};
use super::rooms::{Followup, Member, Rooms};
use super::scripts::{Answer, ChannelMessage, Code};
use super::store::Store;
use super::{Quota, RedisTarget, ReplicaWait, Seat, StoreError, Watch, timers};
use crate::clock::Clock;
use crate::error::ServerError;
use crate::games::lobby::Listing;
use crate::games::{Capture, GameCode, GameCounts, GameRef};
use crate::metrics as m;
use crate::outgoing;
use crate::tokens::{self, TokenHash};

/// Attempts at telling Redis a connection went away, while it is down.
const DISCONNECT_ATTEMPTS: u32 = 20;

/// The stateless backend of one node (shared by its tasks).
#[derive(Debug)]
pub struct Backend {
    /// Script calls.
    pub(super) store: Arc<Store>,
    /// Local players by game.
    pub(super) rooms: Rooms,
    /// The subscription task.
    subscriber: Subscriber,
    /// Unique per process, so that holders of different nodes (or of a
    /// restarted node) never collide.
    pub(super) instance: String,
    /// What quick play matches on (its default round).
    pub(super) bounds: SettingsBounds,
    /// Most connections watching one game, counted over every node
    /// (`--max-spectators`).
    max_spectators: usize,
    /// Most games counting on the cluster's game table (`--max-games`).
    pub(super) max_games: usize,
    /// How long a game counts there without a node renewing it
    /// (`--redis-game-lease-ms`).
    pub(super) game_lease: Duration,
    /// The lobby's listings as last read from Redis, and when.
    pub(super) lobby_cache: std::sync::Mutex<Option<(tokio::time::Instant, Vec<Listing>)>>,
    /// One quick play at a time per game size on this node: a burst then
    /// contends in Redis once per node, not once per player.
    pub(super) matchmaking: [tokio::sync::Mutex<()>; game_logic::MAX_SEATS as usize + 1],
}

/// What the subscription task calls back into (without owning the backend).
struct Hooks(std::sync::Weak<Backend>);

impl Recovery for Hooks {
    fn rooms(&self) -> Vec<Uuid> {
        self.0.upgrade().map(|b| b.rooms.ids()).unwrap_or_default()
    }

    fn has_room(&self, id: &Uuid) -> bool {
        self.0.upgrade().is_some_and(|b| b.rooms.contains(id))
    }

    fn resync_all(&self) {
        if let Some(backend) = self.0.upgrade() {
            for id in backend.rooms.mark_all_stale() {
                backend.resync(id);
            }
        }
    }
}

impl Backend {
    /// Starts the backend's tasks (connections, health, pushes); they stop
    /// with `stop`. Connections are made in the background: until Redis
    /// answers, requests get `overloaded` and `/readyz` is 503.
    pub fn launch(
        target: RedisTarget,
        wait: Option<ReplicaWait>,
        clock: Clock,
        bounds: SettingsBounds,
        quota: Quota,
        stop: CancellationToken,
    ) -> Arc<Backend> {
        let (push_tx, mut push_rx) = mpsc::unbounded_channel();
        let store = Arc::new(Store::waiting(&target, clock, wait));
        let instance = Uuid::new_v4().simple().to_string();
        tokio::spawn(store.clone().run_health(
            target.clone(),
            Some(instance.clone()),
            stop.clone(),
        ));
        let backend = Arc::new_cyclic(|weak: &std::sync::Weak<Backend>| {
            let hooks: Arc<dyn Recovery> = Arc::new(Hooks(weak.clone()));
            Backend {
                store,
                rooms: Rooms::new(),
                subscriber: Subscriber::start(target, push_tx, hooks, stop.clone()),
                instance,
                bounds,
                max_spectators: quota.capacity.spectators,
                max_games: quota.capacity.games,
                game_lease: quota.game_lease,
                lobby_cache: std::sync::Mutex::new(None),
                matchmaking: Default::default(),
            }
        });
        let weak = Arc::downgrade(&backend);
        tokio::spawn(every(SWEEP_INTERVAL, weak, stop.clone(), |b| async move {
            b.sweep().await;
        }));
        let weak = Arc::downgrade(&backend);
        tokio::spawn(every(SPECTATOR_RENEW, weak, stop.clone(), |b| async move {
            b.renew().await;
        }));
        let weak = Arc::downgrade(&backend);
        let renewal = game_renew(quota.game_lease);
        info!(
            max_games = quota.capacity.games,
            lease = ?quota.game_lease,
            "--max-games counts the games of the whole cluster, in Redis"
        );
        tokio::spawn(every(renewal, weak, stop.clone(), Backend::renew_games));
        let weak = Arc::downgrade(&backend);
        tokio::spawn(async move {
            loop {
                let push = tokio::select! {
                    () = stop.cancelled() => return,
                    push = push_rx.recv() => match push {
                        Some(p) => p,
                        None => return,
                    },
                };
                let Some(backend) = weak.upgrade() else {
                    return;
                };
                match pubsub::classify(push) {
                    Some(Push::Message(d)) => backend.deliver(d.game, &d.payload),
                    Some(Push::Disconnected) => backend.subscriber.recover(),
                    None => {}
                }
            }
        });
        backend
    }

    /// Whether both Redis connections answer (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.store.is_healthy() && self.subscriber.is_healthy()
    }

    /// Games with players here, by status: (waiting, active, completed).
    pub fn counts(&self) -> GameCounts {
        self.rooms.counts()
    }

    /// The clock the node's timestamps come from.
    pub fn clock(&self) -> &Clock {
        self.store.clock()
    }

    fn holder(&self, conn: u64) -> String {
        format!("{}/{conn}", self.instance)
    }

    fn deliver(self: &Arc<Self>, game: Uuid, payload: &bytes::Bytes) {
        match ChannelMessage::parse(payload) {
            Some(message) => {
                let follow = self.rooms.dispatch(&game, message);
                self.follow(game, follow);
            }
            None => warn!(%game, "malformed message on a game channel"),
        }
    }

    fn follow(self: &Arc<Self>, game: Uuid, follow: Followup) {
        if let Some(ends) = follow.timer {
            timers::arm(self, game, ends);
        }
        if follow.resync {
            self.resync(game);
        }
        if follow.unsubscribe {
            self.subscriber.unsubscribe(game);
        }
        if follow.finished {
            self.finished(game);
        }
    }

    /// Brings the stale members of `game` up to date with a fresh snapshot,
    /// retrying while Redis is unreachable.
    fn resync(self: &Arc<Self>, game: Uuid) {
        if !self.rooms.begin_resync(&game) {
            return;
        }
        let backend = self.clone();
        tokio::spawn(async move {
            loop {
                match backend.store.snapshot(&game).await {
                    Ok(Answer {
                        code: Code::Ok,
                        game: Some(state),
                        now,
                        ..
                    }) => {
                        let follow = backend.rooms.resync(&game, &state, now);
                        backend.follow(game, follow);
                        return;
                    }
                    Ok(answer) => {
                        debug!(%game, code = ?answer.code, "resync found no game");
                        let follow = backend.rooms.drop_stale(&game);
                        backend.follow(game, follow);
                        return;
                    }
                    Err(e) => {
                        debug!(%game, "resync failed, retrying: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if !backend.rooms.contains(&game) {
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Keeps game `id`'s room for a connection about to be seated or to
    /// watch, subscribed to its channel (an error: neither, nothing kept).
    async fn enter(self: &Arc<Self>, id: Uuid) -> Result<(), ServerError> {
        if !self.is_ready() {
            // Fail fast: the subscription task may be busy reconnecting.
            return Err(ServerError::StoreUnavailable);
        }
        let subscribed = self.rooms.enter(id);
        let subscriber = self.subscriber.clone();
        if let Err(e) = subscribed
            .get_or_try_init(|| subscriber.subscribe(id))
            .await
        {
            debug!(game = %id, "cannot subscribe: {e}");
            let follow = self.rooms.abandon(&id);
            self.follow(id, follow);
            return Err(ServerError::StoreUnavailable);
        }
        Ok(())
    }

    /// Seats `conn` in game `id` with `ask` (a create, join or resume
    /// script): subscribes first, so that no event after the snapshot can
    /// be missed, then queues `joined` and the events after it.
    async fn seat(
        self: &Arc<Self>,
        id: Uuid,
        conn: u64,
        outbox: &Outbox,
        token: String,
        ask: Ask<'_>,
    ) -> Result<Option<Seated>, ServerError> {
        self.enter(id).await?;
        let holder = self.holder(conn);
        let answer = match ask {
            Ask::Create {
                name,
                settings,
                code,
            } => {
                let hash = TokenHash::of(&token).hex();
                (self.store)
                    .create(&id, code, name, settings, &hash, &holder)
                    .await
            }
            Ask::Join { name, quick } => {
                let hash = TokenHash::of(&token).hex();
                self.store.join(&id, name, &hash, &holder, quick).await
            }
            Ask::Resume => {
                let hash = TokenHash::of(&token).hex();
                self.store.resume(&id, &hash, &holder).await
            }
        };
        let refused = |e: ServerError| {
            let follow = self.rooms.abandon(&id);
            self.follow(id, follow);
            Err(e)
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                debug!(game = %id, "seating failed: {e}");
                return refused(ServerError::StoreUnavailable);
            }
        };
        if matches!(answer.code, Code::Exists | Code::NotOpen) {
            // A UUID collision: the caller draws another id; or a quick
            // play's game is not open: the caller tries another.
            let follow = self.rooms.abandon(&id);
            self.follow(id, follow);
            return Ok(None);
        }
        if let Err(e) = outcome(answer.code) {
            return refused(e);
        }
        let (Some(player), Some(state)) = (answer.seat, answer.game.as_ref()) else {
            return refused(ServerError::StoreUnavailable);
        };
        let joined = outgoing::joined(state.wire(&id, answer.now), player, token.clone());
        let Some(frame) = outgoing::encode(&joined) else {
            return refused(ServerError::StoreUnavailable);
        };
        let member = Member::new(outbox.clone(), player, holder.clone(), token);
        let follow = self.rooms.attach(id, conn, member, state, frame);
        self.follow(id, follow);
        let open =
            state.status == Status::Waiting && state.players.len() < usize::from(state.max_players);
        let seat = Seat {
            game: id,
            code: GameCode::parse(&state.code),
            player,
            holder,
        };
        Ok(Some(Seated {
            seat,
            open,
            created: state.created,
        }))
    }

    /// Creates a game hosted by `conn`; a public one is listed in the
    /// lobby (and offered to quick play when it has quick play's settings).
    pub async fn create(
        self: &Arc<Self>,
        conn: u64,
        outbox: &Outbox,
        name: PlayerName,
        settings: Settings,
    ) -> Result<Seat, ServerError> {
        loop {
            let id = Uuid::new_v4();
            // Counted first: a refused create writes nothing else.
            self.admit(id).await?;
            let seated = match self.reserve_code(id).await {
                Ok(code) => {
                    let (token, _) = tokens::issue();
                    let ask = Ask::Create {
                        name: &name,
                        settings: &settings,
                        code: &code,
                    };
                    self.seat(id, conn, outbox, token, ask).await
                }
                Err(e) => Err(e),
            };
            match seated {
                Ok(Some(seated)) => {
                    m::game_created();
                    if settings.public() {
                        self.list(id, seated.created, &settings).await;
                    }
                    return Ok(seated.seat);
                }
                // A UUID collision: another id.
                Ok(None) => self.withdraw(id).await,
                Err(e) => {
                    self.withdraw(id).await;
                    return Err(e);
                }
            }
        }
    }

    /// Seats `conn` in the waiting game `game`; with `quick`, only in a
    /// public game someone is connected to. `Ok(None)`: not open for quick
    /// play. The flag says whether a seat is still free after this one.
    pub(super) async fn join_game(
        self: &Arc<Self>,
        conn: u64,
        outbox: &Outbox,
        id: Uuid,
        name: &PlayerName,
        quick: bool,
    ) -> Result<Option<(Seat, bool)>, ServerError> {
        let (token, _) = tokens::issue();
        let ask = Ask::Join { name, quick };
        Ok(self
            .seat(id, conn, outbox, token, ask)
            .await?
            .map(|seated| (seated.seat, seated.open)))
    }

    /// Seats `conn` in the waiting game `game`.
    pub async fn join(
        self: &Arc<Self>,
        conn: u64,
        outbox: &Outbox,
        game: GameRef,
        name: PlayerName,
    ) -> Result<Seat, ServerError> {
        let id = self.resolve(&game).await?;
        let joined = self.join_game(conn, outbox, id, &name, false).await?;
        joined.map(|(seat, _)| seat).ok_or(ServerError::UnknownGame)
    }

    /// Gives `conn` the seat of `token` in `game`.
    pub async fn resume(
        self: &Arc<Self>,
        conn: u64,
        outbox: &Outbox,
        game: GameRef,
        token: String,
    ) -> Result<Seat, ServerError> {
        let id = self.resolve(&game).await?;
        self.seat(id, conn, outbox, token, Ask::Resume)
            .await?
            .map(|seated| seated.seat)
            .ok_or(ServerError::UnknownGame)
    }

    /// The game's status as this node last saw it.
    pub fn status(&self, seat: &Seat) -> Option<Status> {
        self.rooms.status(&seat.game)
    }

    /// The host starts the round.
    pub async fn start(self: &Arc<Self>, seat: &Seat, outbox: &Outbox) -> Result<(), ServerError> {
        let answer = self
            .store
            .start(&seat.game, seat.player, &seat.holder)
            .await
            .map_err(|_| ServerError::StoreUnavailable)?;
        self.close_if_stale(answer.code, seat, outbox);
        outcome(answer.code)
    }

    /// A command answered `stale`: this connection lost its seat without
    /// being told (a kick it missed, or a sweep that took its node for
    /// dead). It is closed like a replaced session, so that its client
    /// reconnects and resumes instead of playing on unheard.
    fn close_if_stale(self: &Arc<Self>, code: Code, seat: &Seat, outbox: &Outbox) {
        if code == Code::Stale {
            outbox.close(transport::session::CLOSE_REPLACED, "session replaced");
            let follow = self.rooms.detach(&seat.game, outbox.id());
            self.follow(seat.game, follow);
        }
    }

    /// A capture; refusals are answered `rejected` here, with the client's
    /// cell and ref, as the game task does.
    pub async fn capture(
        self: &Arc<Self>,
        seat: &Seat,
        capture: Capture,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        // Stamped before the call: the echo may come through pub/sub before
        // the script's reply does.
        self.rooms
            .stamp_capture(&seat.game, outbox.id(), Some(capture.received));
        let answer = self
            .store
            .capture(&seat.game, seat.player, &seat.holder, capture.cell)
            .await;
        let outcome = answer
            .map_err(|_| ServerError::StoreUnavailable)
            .and_then(|answer| {
                self.close_if_stale(answer.code, seat, outbox);
                outcome(answer.code)
            });
        if outcome.is_err() {
            self.rooms.stamp_capture(&seat.game, outbox.id(), None);
        }
        match outcome {
            Ok(()) => {
                m::capture_accepted();
                Ok(())
            }
            Err(ServerError::Game(e)) => {
                outgoing::refuse(outbox, e, &capture);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `conn` leaves its seat (and stops hearing the game first). When
    /// Redis cannot record it, the seat is handed back: the leave did not
    /// happen, and the caller must not tell the client it did.
    pub async fn leave(self: &Arc<Self>, seat: Seat, conn: u64) -> Result<(), Seat> {
        let follow = self.rooms.detach(&seat.game, conn);
        self.follow(seat.game, follow);
        match self
            .store
            .leave(&seat.game, seat.player, &seat.holder)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                debug!(game = %seat.game, "a leave could not be recorded: {e}");
                Err(seat)
            }
        }
    }

    /// `conn` ended without leaving: its seat is marked disconnected,
    /// retried in the background while Redis is unreachable.
    pub fn disconnect(self: &Arc<Self>, seat: Seat, conn: u64) {
        let follow = self.rooms.detach(&seat.game, conn);
        self.follow(seat.game, follow);
        let store = self.store.clone();
        tokio::spawn(async move {
            for attempt in 0..DISCONNECT_ATTEMPTS {
                match store
                    .disconnect(&seat.game, seat.player, &seat.holder)
                    .await
                {
                    Ok(_) => return,
                    Err(e) => {
                        debug!(game = %seat.game, attempt, "disconnect not recorded yet: {e}");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
            warn!(game = %seat.game, "gave up recording a disconnect");
        });
    }

    /// The game as the HTTP API shows it; `Ok(None)` when unknown.
    pub async fn snapshot(&self, id: &Uuid) -> Result<Option<GameSnapshot>, StoreError> {
        let answer = self.store.snapshot(id).await?;
        Ok(answer
            .game
            .filter(|_| answer.code == Code::Ok)
            .map(|g| g.wire(id, answer.now)))
    }

    /// `conn` watches `game` (protocol §7) through its channel, like a
    /// seat: subscribed first, then `watching` from the watch script's
    /// snapshot and the events after it. Watching again is a resync.
    pub async fn watch(
        self: &Arc<Self>,
        conn: u64,
        outbox: &Outbox,
        game: &GameRef,
    ) -> Result<Watch, ServerError> {
        let id = self.resolve(game).await?;
        self.enter(id).await?;
        let holder = self.holder(conn);
        let refused = |e: ServerError| {
            let follow = self.rooms.abandon(&id);
            self.follow(id, follow);
            Err(e)
        };
        let answer = match self.store.watch(&id, &holder, self.max_spectators).await {
            Ok(answer) => answer,
            Err(e) => {
                debug!(game = %id, "watching failed: {e}");
                return refused(ServerError::StoreUnavailable);
            }
        };
        if let Err(e) = outcome(answer.code) {
            return refused(e);
        }
        let Some(state) = answer.game.as_ref() else {
            return refused(ServerError::StoreUnavailable);
        };
        let watching = ServerMessage::Watching {
            game: state.wire(&id, answer.now),
        };
        let Some(frame) = outgoing::encode(&watching) else {
            return refused(ServerError::StoreUnavailable);
        };
        let member = Member::spectator(outbox.clone(), holder.clone());
        let follow = self.rooms.attach(id, conn, member, state, frame);
        self.follow(id, follow);
        Ok(Watch {
            game: id,
            code: GameCode::parse(&state.code),
            holder,
        })
    }

    /// `conn` stops watching: no event of the game reaches it once this
    /// returns, and it stops counting (or, if Redis cannot be told, when
    /// its lease runs out).
    pub async fn unwatch(self: &Arc<Self>, watch: Watch, conn: u64) {
        let follow = self.rooms.detach(&watch.game, conn);
        self.follow(watch.game, follow);
        if !self.store.is_healthy() {
            // Not worth a timeout: the lease runs out by itself.
            debug!(game = %watch.game, "Redis unreachable: an unwatch is left to the lease");
            return;
        }
        if let Err(e) = self.store.unwatch(&watch.game, &watch.holder).await {
            debug!(game = %watch.game, "an unwatch could not be recorded (the lease runs out): {e}");
        }
    }

    /// Renews the leases of this node's spectators; those whose lease ran
    /// out meanwhile (this node stalled, or Redis lost them) but still
    /// watch are counted again.
    async fn renew(&self) {
        for (id, holders) in self.rooms.spectators() {
            let missing = match self.store.renew(&id, &holders, false).await {
                Ok(missing) => missing,
                Err(e) => {
                    debug!(game = %id, "cannot renew spectators' leases: {e}");
                    return; // Redis is in trouble: next time.
                }
            };
            let lapsed = self.rooms.still_watching(&id, missing);
            if lapsed.is_empty() {
                continue;
            }
            warn!(game = %id, spectators = lapsed.len(), "spectators' leases had run out: counted again");
            if let Err(e) = self.store.renew(&id, &lapsed, true).await {
                debug!(game = %id, "cannot count spectators again: {e}");
            }
        }
    }
}

/// How often a node checks the holders of its games for dead nodes.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

/// Runs `work` every `interval` until `stop`, or until the backend is gone.
/// The sweep marks seats held by dead nodes disconnected, so the other
/// players see them go (`presence`) and a waiting game nobody holds can
/// expire, as on a single node where the closed socket says so. The
/// renewal keeps this node's spectators counted while it lives (they stop
/// counting within [`SPECTATOR_LEASE`](super::layout::SPECTATOR_LEASE)
/// once it died); so does the games' renewal for the games its players
/// play, against `--max-games`.
async fn every<F, Fut>(
    interval: Duration,
    backend: std::sync::Weak<Backend>,
    stop: CancellationToken,
    work: F,
) where
    F: Fn(Arc<Backend>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Some(backend) = backend.upgrade() else {
            return;
        };
        work(backend).await;
    }
}

impl Backend {
    async fn sweep(&self) {
        let mut verdicts: std::collections::HashMap<String, bool> = Default::default();
        for id in self.rooms.ids() {
            if self.rooms.status(&id) == Some(Status::Completed) {
                continue;
            }
            let Ok(answer) = self.store.snapshot(&id).await else {
                return; // Redis is in trouble: next time.
            };
            let Some(game) = answer.game.filter(|g| g.status != Status::Completed) else {
                continue;
            };
            for (seat, holder) in &game.holders {
                let Some((instance, _)) = holder.split_once('/') else {
                    continue;
                };
                if instance == self.instance {
                    continue;
                }
                let alive = match verdicts.get(instance) {
                    Some(v) => *v,
                    None => {
                        // In doubt (Redis trouble), a node is alive.
                        let v = self.store.alive(instance).await.unwrap_or(true);
                        verdicts.insert(instance.to_owned(), v);
                        v
                    }
                };
                if !alive {
                    debug!(game = %id, seat = %seat, "seat held by a dead node");
                    if let Err(e) = self.store.disconnect(&id, *seat, holder).await {
                        debug!(game = %id, "cannot release a dead node's seat: {e}");
                    }
                }
            }
        }
    }
}

/// Which script seats a connection.
enum Ask<'a> {
    Create {
        name: &'a PlayerName,
        settings: &'a Settings,
        code: &'a GameCode,
    },
    Join {
        name: &'a PlayerName,
        quick: bool,
    },
    Resume,
}

/// A seat just taken, and what quick play and the lobby need of its game.
struct Seated {
    seat: Seat,
    /// Waiting with a seat still free.
    open: bool,
    /// When the game was created (Redis time).
    created: Timestamp,
}

/// A script's code as the session sees it: a stale command is dropped
/// silently (the connection was replaced), as the game task does.
fn outcome(code: Code) -> Result<(), ServerError> {
    match code {
        Code::Ok | Code::Stale => Ok(()),
        Code::Refused(e) => Err(ServerError::Game(e)),
        Code::UnknownGame => Err(ServerError::UnknownGame),
        Code::BadToken => Err(ServerError::BadToken),
        Code::AlreadyInGame => Err(ServerError::AlreadyInGame),
        // `seat` handles it first.
        Code::NotOpen => Err(ServerError::UnknownGame),
        // Only `create` answers it, and `seat` handles it first.
        Code::Exists => Err(ServerError::Overloaded),
    }
}
