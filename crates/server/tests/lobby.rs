//! Protocol §7 and the `started` rule of §4 through the wire: short codes,
//! public games and `GET /api/lobby`, quick play, the lobby countdown, and
//! the player who fills a game hearing `started` like everyone else.
//!
//! Run against one node here, against two stateless nodes in
//! `stateless_conformance` and over TLS in `tls_conformance` (both include
//! this file), and against stateful nodes in `tests/tests/cluster_lobby.rs`.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gridcap::config::ServeOptions;
use transport::protocol::{ClientMessage, ErrorCode, ServerMessage};

const ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

fn quick_play(name: &str, max_players: Option<i64>) -> ClientMessage {
    ClientMessage::QuickPlay {
        name: name.into(),
        max_players,
    }
}

fn create_public(name: &str, max_players: i64) -> ClientMessage {
    ClientMessage::Create {
        name: name.into(),
        max_players: Some(max_players),
        duration_ms: None,
        public: Some(true),
    }
}

async fn server_with_lobby_start(ms: u64) -> TestServer {
    TestServer::start_with(ServeOptions {
        lobby_start_ms: Some(ms),
        ..options()
    })
    .await
}

/// The lobby once `ok` holds of it (a stateless node reads it at most
/// every half second).
async fn lobby_until(
    server: &TestServer,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    http::get_json_until(server.addr, "/api/lobby", ok).await
}

fn listed(list: &serde_json::Value, id: &str) -> Option<serde_json::Value> {
    list.as_array()?
        .iter()
        .find(|e| e["id"].as_str() == Some(id))
        .cloned()
}

#[tokio::test]
async fn the_player_who_fills_a_game_hears_started_after_its_snapshot() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 2, 30_000).await;
    let mut guest = server.connect().await;
    guest.send(&join(&host.game_id(), "guest")).await;
    testkit::client::assert_filler_hears_started(&mut host, &mut guest).await;
}

#[tokio::test]
async fn codes_name_games_case_insensitively_wherever_an_id_is_taken() {
    let server = TestServer::start().await;
    let host = host_game(&server, 3, 30_000).await;
    let game = host.replica.clone().expect("joined");
    assert_eq!(game.code.len(), 6);
    assert!(
        game.code.chars().all(|c| ALPHABET.contains(c)),
        "{}",
        game.code
    );

    let mut guest = server.connect().await;
    guest.send(&join(&game.code.to_lowercase(), "guest")).await;
    let joined = guest.joined().await;
    assert_eq!(
        (joined.id.as_str(), joined.code.as_str()),
        (game.id.as_str(), game.code.as_str())
    );

    let by_code = http::get_json(server.addr, &format!("/api/games/{}", game.code)).await;
    assert_eq!(by_code["id"].as_str(), Some(game.id.as_str()));
    assert_eq!(by_code["code"].as_str(), Some(game.code.as_str()));

    // Resume by code on a new connection takes the seat back.
    let token = guest.token.clone().expect("a token");
    let mut back = server.connect().await;
    back.send(&resume(&game.code, &token)).await;
    assert_eq!(back.joined().await.id, game.id);

    let mut stranger = server.connect().await;
    stranger.send(&join("ZZZZZZ", "x")).await;
    stranger.error(ErrorCode::UnknownGame).await;
    stranger.send(&join("K7QX0M", "x")).await; // 0 is not in the alphabet
    stranger.error(ErrorCode::UnknownGame).await;
    assert_eq!(
        http::get(server.addr, "/api/games/ZZZZZZ").await.status,
        404
    );
}

#[tokio::test]
async fn the_lobby_lists_open_and_running_public_games_only() {
    let server = TestServer::start().await;
    let private = host_game(&server, 2, 30_000).await;
    let mut public = server.connect().await;
    public.send(&create_public("ada", 2)).await;
    let game = public.joined().await;
    assert!(game.public);
    assert!(!private.replica.as_ref().expect("joined").public);

    let lobby = lobby_until(&server, |l| listed(&l["waiting"], &game.id).is_some()).await;
    let entry = listed(&lobby["waiting"], &game.id).unwrap();
    assert_eq!(entry["code"].as_str(), Some(game.code.as_str()));
    assert_eq!(entry["players"], serde_json::json!(["ada"]));
    assert_eq!(entry["max_players"], 2);
    assert_eq!(entry["duration_ms"], 30_000);
    assert!(
        listed(&lobby["waiting"], &private.game_id()).is_none(),
        "private games are not listed"
    );

    // Filled: it starts and moves to the running list, with scores.
    let mut guest = server.connect().await;
    guest.send(&join(&game.id, "bob")).await;
    guest.joined().await;
    let lobby = lobby_until(&server, |l| listed(&l["active"], &game.id).is_some()).await;
    let entry = listed(&lobby["active"], &game.id).unwrap();
    assert_eq!(entry["players"], serde_json::json!(["ada", "bob"]));
    assert_eq!(entry["scores"], serde_json::json!([0, 0]));
    assert!(entry["remaining_ms"].as_u64().unwrap() <= 30_000);
    assert_eq!(entry["spectators"], 0);
    assert!(listed(&lobby["waiting"], &game.id).is_none());
}

#[tokio::test]
async fn quick_play_fills_the_oldest_open_game_of_its_size_before_creating_one() {
    let server = TestServer::start().await;
    let mut first = server.connect().await;
    first.send(&quick_play("a", Some(3))).await;
    let created = first.joined().await;
    assert!(created.public, "quick play creates public games");
    assert_eq!((created.max_players, created.duration_ms), (3, 30_000));
    assert_eq!(first.me(), 0, "and hosts them");

    let mut other_size = server.connect().await;
    other_size.send(&quick_play("b", Some(2))).await;
    assert_ne!(other_size.joined().await.id, created.id, "sizes never mix");

    let mut second = server.connect().await;
    second.send(&quick_play("c", Some(3))).await;
    let joined = second.joined().await;
    assert_eq!(joined.id, created.id, "the open game of its size");
    assert_eq!(second.me(), 1);
    // Two connected players in a public game: its countdown began.
    second.sync_to(2).await;
    assert!(
        second
            .replica
            .as_ref()
            .is_some_and(|g| g.starts_at_ms.is_some())
    );

    // A game in progress may not quick play.
    second.send(&quick_play("c", Some(3))).await;
    second.error(ErrorCode::AlreadyInGame).await;
    // Sizes are checked like create's.
    let mut bad = server.connect().await;
    bad.send(&quick_play("d", Some(9))).await;
    bad.error(ErrorCode::InvalidSettings).await;
}

#[tokio::test]
async fn a_public_game_starts_by_itself_after_its_countdown() {
    let server = server_with_lobby_start(300).await;
    let mut host = server.connect().await;
    host.send(&create_public("ada", 4)).await;
    host.joined().await;
    let mut guest = server.connect().await;
    guest.send(&join(&host.game_id(), "bob")).await;
    let (countdown, left) = testkit::client::joined_then_countdown(&mut guest).await;
    assert!(left <= 300, "{left}");
    assert!(matches!(
        host.next().await,
        ServerMessage::PlayerJoined { seq: 1, .. }
    ));
    assert_eq!(host.next().await, countdown);
    // A snapshot while it counts down carries the schedule.
    let waiting = http::get_json(server.addr, &format!("/api/games/{}", host.game_id())).await;
    assert!(waiting["starts_at_ms"].as_u64().is_some(), "{waiting}");
    // Then it starts, with seats still free.
    for c in [&mut host, &mut guest] {
        let started = c.next().await;
        assert!(
            matches!(started, ServerMessage::Started { seq: 3, .. }),
            "{started:?}"
        );
    }
}

#[tokio::test]
async fn a_countdown_is_cancelled_when_the_players_drop_below_the_minimum() {
    let server = server_with_lobby_start(60_000).await;
    let mut host = server.connect().await;
    host.send(&create_public("ada", 4)).await;
    host.joined().await;
    let mut guest = server.connect().await;
    guest.send(&join(&host.game_id(), "bob")).await;
    guest.joined().await;
    assert!(matches!(
        host.next().await,
        ServerMessage::PlayerJoined { .. }
    ));
    assert!(matches!(
        host.next().await,
        ServerMessage::Countdown {
            starts_in_ms: Some(_),
            ..
        }
    ));
    guest.close().await;
    assert!(matches!(
        host.next().await,
        ServerMessage::Presence {
            connected: false,
            ..
        }
    ));
    assert_eq!(
        host.next().await,
        ServerMessage::Countdown {
            seq: 4,
            starts_in_ms: None,
            starts_at_ms: None
        }
    );
    // A private game never counts down.
    let mut private = host_game(&server, 4, 30_000).await;
    let mut joiner = server.connect().await;
    joiner.send(&join(&private.game_id(), "c")).await;
    joiner.joined().await;
    assert!(matches!(
        private.next().await,
        ServerMessage::PlayerJoined { .. }
    ));
    private.ping_pong(7).await; // nothing else came before the pong
}
