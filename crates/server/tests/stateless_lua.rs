//! The Lua scripts against `game_logic::Game`: random command sequences are
//! applied to both, on a real redis-server, and must give the same answers,
//! the same events (byte frames decoded with the client codec) and the same
//! snapshots. The commands are drawn from the rules' shared random command
//! model (`game_logic::test_util`, the one the proptests and the fuzz target
//! use), in a mix of this test's own ([`MIX`]), plus two connection-level
//! cases the rules do not know of: a bad token and a stale holder.
//!
//! The model runs at the `now` each script reports (Redis's `TIME`), with
//! `handle_timeout(now)` before every command, which is what a node's timer
//! does by then; so the deadline is compared exactly, with 1 s rounds and
//! one real wait past the deadline in some games.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::stateless::{RedisServer, create_duel, redis_available, store_on, store_waiting_on};
use futures_util::StreamExt;
use game_logic::test_util::Command;
use game_logic::test_util::script::free_cell;
use game_logic::test_util::strategy::{Weights, command_with, name};
use game_logic::{
    Cell, Event, Game, GameError, PlayerId, PlayerName, Settings, SettingsBounds, Snapshot, Status,
    Timestamp,
};
use gridcap::games::GameCode;
use gridcap::games::redis::ReplicaWait;
use gridcap::games::redis::layout::game_channel;
use gridcap::games::redis::scripts::{Answer, ChannelMessage, Code};
use gridcap::games::redis::store::Store;
use gridcap::tokens::TokenHash;
use proptest::strategy::{SBoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Mutex, mpsc};
use transport::codec;
use transport::convert::event_message;
use transport::protocol::ServerMessage;
use uuid::Uuid;

/// Games played at once, and commands per game.
const GAMES: u64 = 32;
const COMMANDS: usize = 120;

/// This test's mix of the shared model: more joins, leaves and reconnects
/// than the rules' proptests, as the scripts keep the most state (seats,
/// tokens, holders) there. With the 3 % bad tokens and 5 % stale holders
/// of [`Duel::step`] it adds up to 100.
const MIX: Weights = Weights {
    join: 12,
    leave: 8,
    set_connected: 20,
    start_by_host: 2,
    start: 5,
    capture: 30,
    capture_free: 10,
    handle_timeout: 5,
};

/// The mix of the games that race to a full board (one in four): nearly
/// only captures of free cells, so that 81 of them land within a round.
const RACE_MIX: Weights = Weights {
    join: 10,
    leave: 1,
    set_connected: 4,
    start_by_host: 8,
    start: 2,
    capture: 5,
    capture_free: 60,
    handle_timeout: 2,
};

/// The most commands a racing game plays; it stops once it is over.
const RACE_COMMANDS: usize = 1_500;

/// The seeds played when `GRIDCAP_LUA_SEED` does not say: a fixed start, so
/// that a run is repeatable and [`Outcomes`] are the same from run to run.
const DEFAULT_SEED: u64 = 19;

/// What the games reached, summed over all: the test fails if the random
/// commands never reach one of the outcomes, as the comparison would then
/// pass without looking at it.
#[derive(Debug, Default, Clone, Copy)]
struct Outcomes {
    over_by_time: u32,
    board_full: u32,
    captured: u32,
    refused: u32,
    kicked: u32,
}

impl Outcomes {
    fn add(&mut self, other: Outcomes) {
        self.over_by_time += other.over_by_time;
        self.board_full += other.board_full;
        self.captured += other.captured;
        self.refused += other.refused;
        self.kicked += other.kicked;
    }
}

/// What the test sees on one game's channel.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One message at a time, through a channel.
enum Heard {
    Event(u64, ServerMessage),
    Kick(u8),
    Marker,
}

/// Routes every game channel's messages to the game's test task.
type Routes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Heard>>>>;

async fn listen(redis: &RedisServer, routes: Routes) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.psubscribe("gridcap:*").await.unwrap();
    tokio::spawn(async move {
        let mut stream = pubsub.on_message();
        while let Some(msg) = stream.next().await {
            let channel = msg.get_channel_name().to_owned();
            let payload = bytes::Bytes::copy_from_slice(msg.get_payload_bytes());
            let heard = if payload.as_ref() == b"marker" {
                Heard::Marker
            } else {
                match ChannelMessage::parse(&payload).expect("a well-formed channel message") {
                    ChannelMessage::Event { seq, frame, .. } => {
                        let decoded = codec::decode_server(&frame)
                            .expect("the Lua frame decodes with the client codec");
                        Heard::Event(seq, decoded)
                    }
                    ChannelMessage::Kick { seat, .. } => Heard::Kick(seat),
                }
            };
            if let Some(tx) = routes.lock().await.get(&channel) {
                let _ = tx.send(heard);
            }
        }
    });
}

/// One game played on both sides.
struct Duel {
    id: Uuid,
    store: Arc<Store>,
    model: Game,
    /// Per seat: the token and the current holder.
    tokens: HashMap<u8, String>,
    holders: HashMap<u8, String>,
    heard: mpsc::UnboundedReceiver<Heard>,
    publisher: redis::aio::MultiplexedConnection,
    rng: StdRng,
    /// Draws commands from the shared model, seeded like `rng`.
    runner: TestRunner,
    commands: SBoxedStrategy<Command>,
    next_holder: u32,
    log: Vec<String>,
    outcomes: Outcomes,
}

fn seat(i: u8) -> PlayerId {
    PlayerId::try_from(i).unwrap()
}

impl Duel {
    fn fresh_holder(&mut self) -> String {
        self.next_holder += 1;
        format!("test/{}", self.next_holder)
    }

    /// Applies a model command after the timer the node would have run.
    fn model<T>(
        &mut self,
        now: Timestamp,
        f: impl FnOnce(&mut Game, Timestamp) -> Result<T, GameError>,
    ) -> Result<T, GameError> {
        self.model.handle_timeout(now);
        let result = f(&mut self.model, now);
        // A script does at once what its command causes (a join's start or
        // countdown), after taking the joiner's snapshot; the model does it
        // at the next timeout, due now.
        self.model.handle_timeout(now);
        result
    }

    /// Checks one command's outcome: the script's code against the model's
    /// result, the events on the channel against the model's, the stored
    /// game against the model's snapshot.
    async fn check<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        answer: &Answer,
        model: Result<T, GameError>,
        kicked: Option<u8>,
    ) {
        self.log
            .push(format!("{what} -> {:?} / {model:?}", answer.code));
        let ctx = || format!("game {} after:\n{}", self.id, self.log.join("\n"));
        match (&answer.code, &model) {
            (Code::Ok, Ok(_)) => {}
            (Code::Refused(e), Err(m)) => assert_eq!(e, m, "{}", ctx()),
            (code, model) => panic!("script {code:?} but model {model:?}; {}", ctx()),
        }
        let expected: Vec<Event> = std::iter::from_fn(|| self.model.poll_event()).collect();
        let ctx = ctx();
        self.count(answer, &expected, kicked);
        self.expect_events(&expected, answer.now, kicked, &ctx)
            .await;
        self.compare_snapshot(&ctx).await;
    }

    fn count(&mut self, answer: &Answer, events: &[Event], kicked: Option<u8>) {
        let o = &mut self.outcomes;
        o.refused += u32::from(matches!(answer.code, Code::Refused(_)));
        o.kicked += u32::from(kicked.is_some());
        for e in events {
            match e {
                Event::Captured { .. } => o.captured += 1,
                Event::GameOver { reason, .. } => match reason {
                    game_logic::GameOverReason::Time => o.over_by_time += 1,
                    game_logic::GameOverReason::BoardFull => o.board_full += 1,
                },
                _ => {}
            }
        }
    }

    async fn expect_events(
        &mut self,
        expected: &[Event],
        now: Timestamp,
        kicked: Option<u8>,
        ctx: &str,
    ) {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(game_channel(&self.id))
            .arg("marker")
            .query_async(&mut self.publisher)
            .await
            .unwrap();
        let mut events = Vec::new();
        let mut kicks = Vec::new();
        loop {
            let heard = tokio::time::timeout(Duration::from_secs(5), self.heard.recv())
                .await
                .expect("the marker arrives")
                .expect("listener alive");
            match heard {
                Heard::Marker => break,
                Heard::Kick(s) => kicks.push(s),
                Heard::Event(seq, m) => {
                    assert_eq!(Some(seq), m.seq(), "header and frame agree; {ctx}");
                    events.push(m);
                }
            }
        }
        let want: Vec<ServerMessage> = expected.iter().map(|e| event_message(e, now)).collect();
        assert_eq!(events, want, "events; {ctx}");
        assert_eq!(
            kicks,
            kicked.into_iter().collect::<Vec<_>>(),
            "kicks; {ctx}"
        );
    }

    async fn compare_snapshot(&mut self, ctx: &str) {
        let answer = self.store.snapshot(&self.id).await.unwrap();
        let model: Snapshot = self.model.snapshot();
        match answer.game {
            Some(stored) => assert_eq!(stored.snapshot(), model, "snapshot; {ctx}"),
            None => panic!("the game vanished from Redis; {ctx}"),
        }
    }

    /// The next command of the shared model.
    fn draw(&mut self) -> Command {
        self.commands
            .new_tree(&mut self.runner)
            .expect("the strategy builds")
            .current()
    }

    async fn step(&mut self) {
        let roll = self.rng.random_range(0..100);
        let command = match roll {
            0..3 => return self.bad_token().await,
            3..8 => return self.stale_capture().await,
            _ => self.draw(),
        };
        match command {
            Command::Join(raw) => {
                let name = PlayerName::new(&raw).expect("the model draws valid names");
                let (token, hash) = gridcap::tokens::issue();
                let holder = self.fresh_holder();
                let answer = self
                    .store
                    .join(&self.id, &name, &hash.hex(), &holder, false)
                    .await
                    .unwrap();
                let model = self.model(answer.now, |g, now| g.join(name.clone(), now));
                if let Ok(p) = &model {
                    assert_eq!(answer.seat, Some(*p), "seat");
                    self.tokens.insert(u8::from(*p), token);
                    self.holders.insert(u8::from(*p), holder);
                }
                self.check("join", &answer, model, None).await;
            }
            Command::Leave(n) => {
                let Some((s, holder)) = self.held(n) else {
                    return;
                };
                let answer = self.store.leave(&self.id, seat(s), &holder).await.unwrap();
                let model = self.model(answer.now, |g, now| g.leave(seat(s), now));
                self.holders.remove(&s);
                if self.model.player(seat(s)).is_none() {
                    self.tokens.remove(&s); // A waiting game freed the seat.
                }
                self.check(&format!("leave {s}"), &answer, model, None)
                    .await;
            }
            Command::SetConnected(n, false) => {
                let Some((s, holder)) = self.held(n) else {
                    return;
                };
                let answer = self
                    .store
                    .disconnect(&self.id, seat(s), &holder)
                    .await
                    .unwrap();
                let model = self.model(answer.now, |g, now| g.set_connected(seat(s), false, now));
                self.holders.remove(&s);
                self.check(&format!("disconnect {s}"), &answer, model, None)
                    .await;
            }
            Command::SetConnected(s, true) => {
                let Some(token) = self.tokens.get(&s).cloned() else {
                    return;
                };
                let holder = self.fresh_holder();
                let hash = TokenHash::of(&token).hex();
                let answer = self.store.resume(&self.id, &hash, &holder).await.unwrap();
                let model = self.model(answer.now, |g, now| {
                    g.can_resume(seat(s))?;
                    g.set_connected(seat(s), true, now)
                });
                let kicked = if model.is_ok() {
                    assert_eq!(answer.seat, Some(seat(s)));
                    self.holders.insert(s, holder).map(|_| s)
                } else {
                    None
                };
                self.check(&format!("resume {s}"), &answer, model, kicked)
                    .await;
            }
            Command::StartByHost => self.start(u8::from(self.model.host())).await,
            Command::Start(s) => self.start(s).await,
            Command::Capture(n, raw) => {
                // The scripts take a valid `Cell`: out-of-range indexes are
                // refused before them, so they wrap around here.
                let cell = Cell::try_from(raw.rem_euclid(81)).unwrap();
                self.capture(n, cell).await;
            }
            Command::CaptureFree(n) => {
                let cell = free_cell(&self.model).unwrap_or(Cell::try_from(0u8).unwrap());
                self.capture(n, cell).await;
            }
            Command::HandleTimeout => {
                let answer = self.store.finish(&self.id).await.unwrap();
                let model = self.model(answer.now, |_, _| Ok(()));
                self.check("finish", &answer, model, None).await;
            }
        }
    }

    async fn start(&mut self, s: u8) {
        let holder = self.holders.get(&s).cloned();
        let answer = self
            .store
            .start(&self.id, seat(s), holder.as_deref().unwrap_or("nobody"))
            .await
            .unwrap();
        if holder.is_none() {
            return self.stale(&answer, "start").await;
        }
        let model = self.model(answer.now, |g, now| g.start(seat(s), now));
        self.check(&format!("start {s}"), &answer, model, None)
            .await;
    }

    /// The `n`-th held seat captures `cell`.
    async fn capture(&mut self, n: u8, cell: Cell) {
        let Some((s, holder)) = self.held(n) else {
            return;
        };
        let answer = self
            .store
            .capture(&self.id, seat(s), &holder, cell)
            .await
            .unwrap();
        let model = self.model(answer.now, |g, now| g.capture(seat(s), cell, now));
        self.check(&format!("capture {s} {cell}"), &answer, model, None)
            .await;
    }

    /// A resume with a token no seat has.
    async fn bad_token(&mut self) {
        let holder = self.fresh_holder();
        let answer = self
            .store
            .resume(&self.id, &TokenHash::of("not a token").hex(), &holder)
            .await
            .unwrap();
        assert_eq!(answer.code, Code::BadToken);
        self.model(answer.now, |_, _| Ok(())).unwrap();
        let expected: Vec<Event> = std::iter::from_fn(|| self.model.poll_event()).collect();
        self.expect_events(&expected, answer.now, None, "bad token")
            .await;
    }

    /// A connection that no longer holds its seat changes nothing.
    async fn stale_capture(&mut self) {
        let n = self.rng.random();
        let Some((s, _)) = self.held(n) else { return };
        let cell = Cell::try_from(0u8).unwrap();
        let answer = self
            .store
            .capture(&self.id, seat(s), "replaced/0", cell)
            .await
            .unwrap();
        self.stale(&answer, "stale capture").await;
    }

    /// A stale command: nothing changes but what the timer would have done.
    async fn stale(&mut self, answer: &Answer, what: &str) {
        assert_eq!(answer.code, Code::Stale, "{what}");
        self.model(answer.now, |_, _| Ok(())).unwrap();
        let expected: Vec<Event> = std::iter::from_fn(|| self.model.poll_event()).collect();
        self.expect_events(&expected, answer.now, None, what).await;
        self.compare_snapshot(what).await;
    }

    /// The `n`-th (modulo their count) seat with a holder, by seat.
    fn held(&self, n: u8) -> Option<(u8, String)> {
        let mut seats: Vec<(u8, String)> =
            self.holders.iter().map(|(s, h)| (*s, h.clone())).collect();
        seats.sort();
        if seats.is_empty() {
            return None;
        }
        let i = usize::from(n) % seats.len();
        Some(seats.swap_remove(i))
    }
}

async fn play(
    store: Arc<Store>,
    routes: Routes,
    publisher: redis::aio::MultiplexedConnection,
    seed: u64,
) -> Outcomes {
    let mut rng = StdRng::seed_from_u64(seed);
    // One game in four races to a full board in a long round.
    let race = seed % 4 == 1;
    let id = Uuid::new_v4();
    let (tx, heard) = mpsc::unbounded_channel();
    routes.lock().await.insert(game_channel(&id), tx);
    let bounds = SettingsBounds {
        min_players: rng.random_range(2..=3),
        ..SettingsBounds::default()
    };
    let max_players = rng.random_range(i64::from(bounds.min_players)..=5);
    let bounds = SettingsBounds {
        lobby_start: Duration::from_millis(rng.random_range(0..=300)),
        ..bounds
    };
    // Half the games public: their countdown and auto-start are compared too.
    let duration = if race { 60_000 } else { 1_000 };
    let settings = Settings::new(Some(max_players), Some(duration), &bounds)
        .unwrap()
        .with_public(rng.random_bool(0.5));
    let mut runner = TestRunner::new_with_rng(Config::default(), model_rng(seed));
    let host = name()
        .new_tree(&mut runner)
        .expect("the strategy builds")
        .current();
    let host = PlayerName::new(&host).expect("the model draws valid names");
    let (token, hash) = gridcap::tokens::issue();
    let answer = store
        .create(
            &id,
            &GameCode::random(),
            &host,
            &settings,
            &hash.hex(),
            "test/0",
        )
        .await
        .unwrap();
    assert_eq!(answer.code, Code::Ok);
    let mut duel = Duel {
        id,
        store,
        model: Game::new(settings, host, answer.now),
        tokens: HashMap::from([(0, token)]),
        holders: HashMap::from([(0, "test/0".to_owned())]),
        heard,
        publisher,
        rng,
        runner,
        commands: command_with(if race { RACE_MIX } else { MIX }).sboxed(),
        next_holder: 0,
        log: vec![format!("seed {seed}: create {max_players} seats")],
        outcomes: Outcomes::default(),
    };
    duel.compare_snapshot("create").await;
    // Half the games wait past their deadline once, two thirds through.
    let wait_at = seed.is_multiple_of(2).then_some(COMMANDS * 2 / 3);
    let commands = if race { RACE_COMMANDS } else { COMMANDS };
    for i in 0..commands {
        if race && duel.model.status() == Status::Completed {
            break;
        }
        if Some(i) == wait_at
            && let (Status::Active, Some(end)) = (duel.model.status(), duel.model.ends_at())
        {
            let local = duel.store.local_time(end);
            let at = duel.store.clock().instant(local) + Duration::from_millis(20);
            tokio::time::sleep_until(at).await;
            duel.log.push("(past the deadline)".to_owned());
        }
        duel.step().await;
    }
    duel.outcomes
}

/// The model's random source for the game of `seed`.
fn model_rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripts_follow_the_rules_exactly() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let (store, stop) = store_on(&redis).await;
    follow_the_rules(&redis, store, stop).await;
}

/// With `--redis-wait-replicas` the scripts queue their events and the
/// store publishes them after its `WAIT` (flush.lua): the same games give
/// the same events, in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_held_for_a_replica_follow_the_rules_exactly_too() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let _replica = RedisServer::replica_of(&redis).await;
    let wait = ReplicaWait {
        replicas: 1,
        timeout: Duration::from_millis(1_000),
    };
    let (store, stop) = store_waiting_on(&redis, Some(wait)).await;
    follow_the_rules(&redis, store, stop).await;
}

/// Plays [`GAMES`] random games through `store` on `redis`, each against
/// the rules; `stop` ends the store's health task.
async fn follow_the_rules(
    redis: &RedisServer,
    store: Arc<Store>,
    stop: tokio_util::sync::CancellationToken,
) {
    let routes: Routes = Arc::default();
    listen(redis, routes.clone()).await;
    let base: u64 = std::env::var("GRIDCAP_LUA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let seeds = format!(
        "seeds {base}..{} (GRIDCAP_LUA_SEED=<first seed> plays others)",
        base + GAMES
    );
    eprintln!("{seeds}");
    let mut games = Vec::new();
    for i in 0..GAMES {
        let publisher = redis.conn().await;
        games.push(tokio::spawn(play(
            store.clone(),
            routes.clone(),
            publisher,
            base.wrapping_add(i),
        )));
    }
    let mut outcomes = Outcomes::default();
    for g in games {
        outcomes.add(g.await.expect("a game diverged (see the panic above)"));
    }
    stop.cancel();
    eprintln!("{seeds}: {outcomes:?}");
    let o = outcomes;
    assert!(
        o.over_by_time >= 2
            && o.board_full >= 2
            && o.captured >= 500
            && o.refused >= 300
            && o.kicked >= 5,
        "the random commands missed an outcome ({seeds}): {o:?}"
    );
}

#[tokio::test]
async fn a_full_board_and_the_retention_ttl() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let (store, stop) = store_on(&redis).await;
    let (id, _) = create_duel(&store, "h/0").await;
    let mut c = redis.conn().await;
    let key = gridcap::games::redis::layout::game_key(&id);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        ttl > 60_000,
        "a waiting game with its host connected keeps the safety TTL: {ttl}"
    );
    store.disconnect(&id, seat(0), "h/0").await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "nobody connected: 60 s: {ttl}");
    let (_, hash) = gridcap::tokens::issue();
    let joined = store
        .join(
            &id,
            &PlayerName::new("b").unwrap(),
            &hash.hex(),
            "h/1",
            false,
        )
        .await
        .unwrap();
    assert_eq!(joined.code, Code::Ok);
    let game = joined.game.unwrap();
    assert_eq!(
        (game.status, game.host),
        (Status::Waiting, seat(0)),
        "a disconnect is not a leave; the joiner's snapshot precedes the start"
    );
    let game = store.snapshot(&id).await.unwrap().game.unwrap();
    assert_eq!(
        game.status,
        Status::Active,
        "the second seat started the game"
    );
    for cell in 0..81u8 {
        let answer = store
            .capture(&id, seat(1), "h/1", Cell::try_from(cell).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.code, Code::Ok);
    }
    let done = store.snapshot(&id).await.unwrap().game.unwrap();
    assert_eq!(done.status, Status::Completed);
    assert_eq!(done.reason, Some(game_logic::GameOverReason::BoardFull));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((59_000..=60_000).contains(&ttl), "completed: 60 s: {ttl}");
    stop.cancel();
}
