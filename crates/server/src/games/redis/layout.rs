//! How a game is laid out in Redis, in one place for Rust and Lua.
//!
//! The keys and channels, the fields of a game's hash, the status letters,
//! the channel message prefixes and the rules' constants the scripts need
//! are defined here; [`lua_prelude`] turns them into the Lua definitions put
//! in front of every script at load, so the scripts name fields as `F.status`
//! or `S.score .. seat`, never as string literals, and never re-type a
//! constant of the rules. A unit test fails when a script spells one out
//! itself; `tests/stateless_layout.rs` asks a real Redis what the scripts see.
//!
//! A game `id` is the hash [`game_key`] (the braces are a Redis Cluster hash
//! tag) with these fields:
//!
//! | field | meaning |
//! | --- | --- |
//! | `st` | status letter: `w`aiting, `a`ctive, `c`ompleted |
//! | `seq` | the last event's seq |
//! | `host`, `maxp`, `minp`, `dur` | host seat, seats, min players, round ms |
//! | `ends`, `done` | the round's deadline; when it ended (unix ms) |
//! | `why`, `win` | game-over reason; winners as comma-separated seats |
//! | `own` | cells owned |
//! | `un` | waiting with nobody connected since (unix ms) |
//! | `cells` | 81 bytes: 0 free, k + 1 owned by seat k |
//! | `code`, `pub`, `cre` | short code; public (1/0); created (unix ms) |
//! | `sat`, `lst` | the scheduled lobby auto-start (unix ms); its delay (ms) |
//! | `pq`, `pp` | events queued for after the replicas' `WAIT`, events of them published (`--redis-wait-replicas` only) |
//! | `n<i>`, `s<i>`, `c<i>` | seat i's name, score, connected (1/0) |
//! | `l<i>`, `k<i>`, `h<i>` | seat i left (1), its token hash, its holder |
//!
//! Beside it, [`watchers_key`] (the game's key plus [`WATCHERS_SUFFIX`],
//! same hash tag) is a sorted set of the connections watching the game
//! (protocol §7): member `<node instance>/<conn>`, score the Redis-time
//! unix ms its lease runs out. The node holding the connection renews the
//! lease every [`SPECTATOR_RENEW`]; a node that dies stops renewing, and
//! its spectators stop counting within [`SPECTATOR_LEASE`]. Scripts count
//! the unexpired members ([`field::SPECTATORS`] in their answers, never
//! stored in the hash) and cap them (`watch.lua`), atomically.
//!
//! **The cluster's game table** (`--max-games` in stateless mode).
//! [`GAMES_KEY`] is a sorted set: member a game id, score the Redis-time
//! unix ms until which the game counts. A `create` (and a quick play that
//! creates) is first admitted by `admit.lua`, atomically: unless
//! `--max-games` games count, the game is added with a lease of
//! `--redis-game-lease-ms` ([`GAME_LEASE`] by default), else the create is
//! answered `overloaded` and writes nothing. Every node renews the lease
//! (`lease.lua`, one batched call every [`game_renew`] of the lease) of the
//! games in which it holds a connected player's seat, while they wait or
//! run; a node that sees a game complete takes it off the table at once.
//! So the cap counts the games someone plays in, plus those left within the
//! lease, although Redis keeps an unattended waiting game 60 s (protocol
//! §5). A game created and dropped counts for a whole lease, so one address
//! creating and dropping games in a loop must create `--max-games` games
//! per lease to lock honest creators out (`--max-creates-per-ip` refuses it
//! long before), and such games fill Redis with at most about
//! `(1 + 60 s / lease) × --max-games` games. (A game that ends frees its
//! place at once, and a started game whose players all dropped stops
//! counting after the lease though Redis keeps it to its round's end and
//! 60 s more; but starting a game takes two connected players, and ending
//! one a whole round or a full board, each of them limited per address
//! and per connection.)
//! A game someone resumes or still plays after its lease lapsed (its node
//! stalled) is counted again by the next renewal, even above the cap: the
//! cap refuses new games, never a game being played; give every node the
//! same `--max-games`. The table is one key of its own (hashed whole, so
//! one slot of a Redis Cluster; a game is in another slot, hence the
//! admission is a call of its own before `create.lua`); creations are rare
//! next to captures, so the one master serving it is no hot spot.

use std::fmt::Write as _;

use game_logic::{CELL_COUNT, MAX_SEATS, RETENTION, Status};
use uuid::Uuid;

/// Cells on a board.
pub const CELLS: usize = CELL_COUNT;
/// How long a completed or unattended waiting game is kept, in ms.
pub const RETENTION_MS: u128 = RETENTION.as_millis();
/// The highest seat index.
pub const LAST_SEAT: usize = MAX_SEATS as usize - 1;

/// How long a spectator counts without its node renewing it.
pub const SPECTATOR_LEASE: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a node renews the leases of its spectators (well inside
/// [`SPECTATOR_LEASE`], so a slow round trip or two cost nothing).
pub const SPECTATOR_RENEW: std::time::Duration = std::time::Duration::from_secs(1);
const _: () = assert!(SPECTATOR_RENEW.as_millis() * 3 < SPECTATOR_LEASE.as_millis());

/// How long a game counts against `--max-games` once no node renews its
/// lease (the default of `--redis-game-lease-ms`).
pub const GAME_LEASE: std::time::Duration = std::time::Duration::from_secs(15);
/// How many renewals a game's lease spans: nodes renew every
/// `lease / GAME_RENEWALS` (see [`game_renew`]).
pub const GAME_RENEWALS: u32 = 3;
// Two renewals may fail or come late before a played game stops counting.
const _: () = assert!(GAME_RENEWALS >= 3);
const _: () = assert!(GAME_LEASE.as_millis() / GAME_RENEWALS as u128 == 5_000);

/// How often a node renews its games' leases on the table, for `lease`.
pub fn game_renew(lease: std::time::Duration) -> std::time::Duration {
    lease / GAME_RENEWALS
}

/// The cluster's game table: a sorted set of game ids scored with the
/// Redis-time unix ms until which each counts against `--max-games` (see
/// the module docs).
pub const GAMES_KEY: &str = "gridcap:games";

/// Fields of a game's hash (Lua: `F.<name>`); `spectators` is only ever in
/// the scripts' answers.
pub const FIELDS: [(&str, &str); 21] = [
    ("status", field::STATUS),
    ("seq", field::SEQ),
    ("host", field::HOST),
    ("max_players", field::MAX_PLAYERS),
    ("min_players", field::MIN_PLAYERS),
    ("duration", field::DURATION),
    ("ends", field::ENDS),
    ("done", field::DONE),
    ("reason", field::REASON),
    ("winners", field::WINNERS),
    ("owned", field::OWNED),
    ("unattended", field::UNATTENDED),
    ("cells", field::CELLS),
    ("code", field::CODE),
    ("public", field::PUBLIC),
    ("starts_at", field::STARTS_AT),
    ("lobby_start", field::LOBBY_START),
    ("created", field::CREATED),
    ("spectators", field::SPECTATORS),
    ("queued", field::QUEUED),
    ("published", field::PUBLISHED),
];

/// Per-seat field prefixes (Lua: `S.<name> .. seat`).
pub const SEAT_FIELDS: [(&str, &str); 6] = [
    ("name", seat::NAME),
    ("score", seat::SCORE),
    ("connected", seat::CONNECTED),
    ("left", seat::LEFT),
    ("token", seat::TOKEN),
    ("holder", seat::HOLDER),
];

/// Status letters (Lua: `ST.<name>`).
pub const STATUSES: [(&str, &str); 3] = [
    ("waiting", status::WAITING),
    ("active", status::ACTIVE),
    ("completed", status::COMPLETED),
];

/// Names of the game hash's fields.
pub mod field {
    /// Status letter.
    pub const STATUS: &str = "st";
    /// The last event's seq.
    pub const SEQ: &str = "seq";
    /// The host's seat.
    pub const HOST: &str = "host";
    /// Seats.
    pub const MAX_PLAYERS: &str = "maxp";
    /// Connected players needed to start.
    pub const MIN_PLAYERS: &str = "minp";
    /// Round length, ms.
    pub const DURATION: &str = "dur";
    /// The round's deadline, unix ms (0 before the start).
    pub const ENDS: &str = "ends";
    /// When the game ended, unix ms.
    pub const DONE: &str = "done";
    /// Game-over reason.
    pub const REASON: &str = "why";
    /// Winners, comma-separated seats.
    pub const WINNERS: &str = "win";
    /// Cells owned.
    pub const OWNED: &str = "own";
    /// Waiting with nobody connected since, unix ms.
    pub const UNATTENDED: &str = "un";
    /// The board, one byte per cell.
    pub const CELLS: &str = "cells";
    /// The short code.
    pub const CODE: &str = "code";
    /// Public (`1`): listed in the lobby, matched by quick play.
    pub const PUBLIC: &str = "pub";
    /// The scheduled lobby auto-start, unix ms (waiting only).
    pub const STARTS_AT: &str = "sat";
    /// The lobby auto-start's delay, ms.
    pub const LOBBY_START: &str = "lst";
    /// When the game was created, unix ms.
    pub const CREATED: &str = "cre";
    /// Connections watching: not stored in the hash, but put among its
    /// fields by the scripts that answer the whole game (counted from the
    /// game's [`watchers_key`](super::watchers_key)).
    pub const SPECTATORS: &str = "spec";
    /// Events queued so far to go out after the replicas' `WAIT`
    /// (`--redis-wait-replicas`); see [`QUEUE_SUFFIX`](super::QUEUE_SUFFIX).
    pub const QUEUED: &str = "pq";
    /// Of those, how many have gone out.
    pub const PUBLISHED: &str = "pp";
}

/// Prefixes of the per-seat fields (followed by the seat index).
pub mod seat {
    /// Name.
    pub const NAME: &str = "n";
    /// Score.
    pub const SCORE: &str = "s";
    /// Connected: `1` or `0`.
    pub const CONNECTED: &str = "c";
    /// Left an active or completed game: `1`.
    pub const LEFT: &str = "l";
    /// Hash of the resume token.
    pub const TOKEN: &str = "k";
    /// The connection holding the seat (`<node instance>/<conn>`).
    pub const HOLDER: &str = "h";

    /// The field of `prefix` for seat `index`.
    pub fn of(prefix: &str, index: usize) -> String {
        format!("{prefix}{index}")
    }
}

/// Status letters.
pub mod status {
    /// Waiting.
    pub const WAITING: &str = "w";
    /// Active.
    pub const ACTIVE: &str = "a";
    /// Completed.
    pub const COMPLETED: &str = "c";
}

/// The rules' status of a status letter.
pub fn parse_status(letter: &str) -> Option<Status> {
    match letter {
        status::WAITING => Some(Status::Waiting),
        status::ACTIVE => Some(Status::Active),
        status::COMPLETED => Some(Status::Completed),
        _ => None,
    }
}

/// First byte of an event on a game's channel: `E<seq>,<status>,<ends>,<frame>`.
pub const EVENT_PREFIX: u8 = b'E';
/// First byte of a kick on a game's channel: `K<seat>,<holder>`.
pub const KICK_PREFIX: u8 = b'K';
/// First byte of a capture on a game's channel, compact (every node frames
/// the `captured` message itself, once): `C<seq>,<ends>,<cell>,<seat>,<score>`.
pub const CAPTURED_PREFIX: u8 = b'C';
/// First byte of a lobby countdown on a game's channel:
/// `T<seq>,<starts_at ms, 0 = cancelled>,<Redis now ms>`.
pub const COUNTDOWN_PREFIX: u8 = b'T';

/// How long a code stays reserved for its game.
pub const CODE_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3_600);

/// The key holding the id of the game with `code`.
pub fn code_key(code: &str) -> String {
    format!("gridcap:code:{code}")
}

/// The sorted set of public games (score: creation, unix ms).
pub const LOBBY_KEY: &str = "gridcap:lobby";

/// The sorted set of games quick play may seat players of `size` in
/// (score: creation, unix ms).
pub fn open_key(size: u8) -> String {
    format!("gridcap:open:{size}")
}

/// The lease one node holds while it creates a quick-play game of `size`.
pub fn quick_play_lock(size: u8) -> String {
    format!("gridcap:open:{size}:lock")
}

/// What a game's channel adds to its key.
pub const CHANNEL_SUFFIX: &str = ":ev";

/// What a game's queue of events adds to its key: with
/// `--redis-wait-replicas` the scripts push their events there instead of
/// publishing them, and the node publishes them (`flush.lua`) once the
/// replicas acknowledged them.
pub const QUEUE_SUFFIX: &str = ":pq";

/// The first argument of every script (where `PUBLISH` or `SPUBLISH` would
/// be) that makes it queue its events rather than publish them.
pub const QUEUE_MODE: &str = "QUEUE";

/// What the key a queuing script writes when it queued nothing adds to the
/// game's key: a write of its own makes the `WAIT` after it cover whatever
/// it read.
pub const WAITED_SUFFIX: &str = ":w";

/// What a game's set of spectators adds to its key.
pub const WATCHERS_SUFFIX: &str = ":sp";

/// The sorted set of the connections watching game `id` (same hash tag as
/// the game: the scripts touch both).
pub fn watchers_key(id: &Uuid) -> String {
    format!("{}{WATCHERS_SUFFIX}", game_key(id))
}

/// The key whose presence says node `instance` is alive.
pub fn node_key(instance: &str) -> String {
    format!("gridcap:node:{instance}")
}

/// The hash holding game `id`; the braces make it a cluster hash tag.
pub fn game_key(id: &Uuid) -> String {
    format!("gridcap:{{{id}}}")
}

/// The channel carrying game `id`'s events (same hash tag, same slot).
pub fn game_channel(id: &Uuid) -> String {
    format!("{}{CHANNEL_SUFFIX}", game_key(id))
}

/// The game id of a channel named by [`game_channel`].
pub fn channel_game(channel: &str) -> Option<Uuid> {
    let inner = channel
        .strip_prefix("gridcap:{")?
        .strip_suffix(CHANNEL_SUFFIX)?
        .strip_suffix('}')?;
    Uuid::parse_str(inner).ok()
}

/// The Lua definitions of everything above, put in front of every script.
pub fn lua_prelude() -> String {
    let table = |name: &str, entries: &[(&str, &str)]| {
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{k} = '{v}'"))
            .collect();
        format!("local {name} = {{ {} }}\n", body.join(", "))
    };
    let mut lua = String::from("-- Generated from crates/server/src/games/redis/layout.rs.\n");
    // Writing to a String cannot fail.
    let _ = writeln!(lua, "local CELLS = {CELLS}");
    let _ = writeln!(lua, "local RETENTION = {RETENTION_MS}");
    let _ = writeln!(lua, "local LAST_SEAT = {LAST_SEAT}");
    let _ = writeln!(lua, "local EVENT = '{}'", char::from(EVENT_PREFIX));
    let _ = writeln!(lua, "local KICK = '{}'", char::from(KICK_PREFIX));
    let _ = writeln!(lua, "local COUNTDOWN = '{}'", char::from(COUNTDOWN_PREFIX));
    let _ = writeln!(lua, "local CAPTURED = '{}'", char::from(CAPTURED_PREFIX));
    let _ = writeln!(lua, "local CHANNEL_SUFFIX = '{CHANNEL_SUFFIX}'");
    let _ = writeln!(lua, "local WATCHERS_SUFFIX = '{WATCHERS_SUFFIX}'");
    let _ = writeln!(lua, "local QUEUE_SUFFIX = '{QUEUE_SUFFIX}'");
    let _ = writeln!(lua, "local WAITED_SUFFIX = '{WAITED_SUFFIX}'");
    let _ = writeln!(lua, "local QUEUE = '{QUEUE_MODE}'");
    let _ = writeln!(
        lua,
        "local SPECTATOR_LEASE = {}",
        SPECTATOR_LEASE.as_millis()
    );
    lua.push_str(&table("F", &FIELDS));
    lua.push_str(&table("S", &SEAT_FIELDS));
    lua.push_str(&table("ST", &STATUSES));
    lua
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::redis::scripts::SOURCES;

    /// Every quoted string of a Lua source, as (line number, text).
    fn quoted(source: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (n, line) in source.lines().enumerate() {
            let code = line.split("--").next().unwrap_or("");
            let mut parts = code.split('\'');
            parts.next();
            while let (Some(text), _) = (parts.next(), parts.next()) {
                out.push((n + 1, text.to_owned()));
            }
        }
        out
    }

    #[test]
    fn scripts_spell_no_layout_name_or_rule_constant_themselves() {
        let mut names: Vec<&str> = FIELDS.iter().map(|(_, v)| *v).collect();
        names.extend(STATUSES.iter().map(|(_, v)| *v));
        names.extend(SEAT_FIELDS.iter().map(|(_, v)| *v));
        let prefixes = [EVENT_PREFIX, KICK_PREFIX, COUNTDOWN_PREFIX, CAPTURED_PREFIX]
            .map(|p| String::from(char::from(p)));
        names.extend(prefixes.iter().map(String::as_str));
        names.push(CHANNEL_SUFFIX);
        names.push(WATCHERS_SUFFIX);
        names.push(QUEUE_SUFFIX);
        names.push(WAITED_SUFFIX);
        names.push(QUEUE_MODE);
        for (file, source) in SOURCES {
            for (line, text) in quoted(source) {
                let seat_field = SEAT_FIELDS.iter().any(|(_, p)| {
                    text.strip_prefix(p)
                        .is_some_and(|i| i.parse::<u8>().is_ok())
                });
                assert!(
                    !names.contains(&text.as_str()) && !seat_field,
                    "{file}:{line} spells '{text}': use the generated F/S/ST/EVENT/KICK/CAPTURED/CHANNEL_SUFFIX/WATCHERS_SUFFIX names"
                );
                assert!(
                    !text.contains(",a,") && !text.contains(",w,"),
                    "{file}:{line} spells a status letter inside '{text}'"
                );
            }
            for constant in [
                format!("{CELLS}"),
                format!("{RETENTION_MS}"),
                format!("0, {LAST_SEAT}"),
                format!("{}", SPECTATOR_LEASE.as_millis()),
            ] {
                assert!(
                    !source
                        .lines()
                        .any(|l| l.split("--").next().unwrap_or("").contains(&constant)),
                    "{file} re-types the constant {constant}: use CELLS/RETENTION/LAST_SEAT/SPECTATOR_LEASE"
                );
            }
        }
    }

    #[test]
    fn the_prelude_defines_every_name_once() {
        let lua = lua_prelude();
        for (name, value) in FIELDS.iter().chain(&SEAT_FIELDS).chain(&STATUSES) {
            assert!(
                lua.contains(&format!("{name} = '{value}'")),
                "{name} missing"
            );
        }
        assert!(lua.contains("local CELLS = 81\n"));
        assert!(lua.contains("local RETENTION = 60000\n"));
        assert!(lua.contains("local LAST_SEAT = 7\n"));
        let letters: Vec<&str> = STATUSES.iter().map(|(_, v)| *v).collect();
        assert_eq!(letters.len(), 3);
        for letter in letters {
            assert!(parse_status(letter).is_some());
        }
    }

    #[test]
    fn keys_and_channels_share_the_hash_tag() {
        let id = Uuid::new_v4();
        assert_eq!(game_key(&id), format!("gridcap:{{{id}}}"));
        assert_eq!(game_channel(&id), format!("gridcap:{{{id}}}:ev"));
        assert_eq!(channel_game(&game_channel(&id)), Some(id));
        assert_eq!(channel_game("gridcap:{nope}:ev"), None);
        assert_eq!(channel_game("other"), None);
        assert_eq!(watchers_key(&id), format!("gridcap:{{{id}}}:sp"));
        assert_eq!(channel_game(&watchers_key(&id)), None);
        // The game table is no game's: hashed whole, a slot of its own.
        assert_eq!(channel_game(GAMES_KEY), None);
        assert!(!GAMES_KEY.contains('{') && GAMES_KEY != LOBBY_KEY);
    }
}
