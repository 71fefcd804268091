//! A client-side replica of a game: a `joined` snapshot with every later
//! broadcast event applied, as a client would. Comparing it with a fresh
//! snapshot (from `resume` or HTTP) checks that events and snapshots agree.

use transport::protocol::{GameSnapshot, GameStatus, ServerMessage};

/// Applies one broadcast event (the caller checked its seq).
pub fn apply(game: &mut GameSnapshot, event: &ServerMessage) {
    let seq = event.seq().expect("a broadcast event");
    game.seq = seq;
    match event {
        ServerMessage::PlayerJoined { player, .. } => {
            assert_eq!(game.status, GameStatus::Waiting, "joins only while waiting");
            assert_eq!(player.color, player.id, "colour equals id");
            assert!(player.connected, "a joiner is connected");
            assert_eq!(player.score, 0, "a joiner has no cells");
            assert!(
                game.players.iter().all(|p| p.id != player.id),
                "a joiner takes a free seat: {event:?} in {game:?}"
            );
            if !game.players.iter().any(|p| p.id == game.host) {
                game.host = player.id; // a newcomer to an emptied game hosts it
            }
            let at = game.players.partition_point(|p| p.id < player.id);
            game.players.insert(at, player.clone());
        }
        ServerMessage::PlayerLeft { player, host, .. } => {
            if game.status == GameStatus::Waiting {
                game.players.retain(|p| p.id != *player);
            } else if let Some(p) = game.players.iter_mut().find(|p| p.id == *player) {
                p.connected = false;
            }
            if let Some(host) = host {
                game.host = *host;
            }
        }
        ServerMessage::Presence {
            player, connected, ..
        } => {
            let p = game
                .players
                .iter_mut()
                .find(|p| p.id == *player)
                .expect("presence of a seated player");
            assert_ne!(p.connected, *connected, "presence announces a change");
            p.connected = *connected;
        }
        ServerMessage::Started {
            ends_at_ms,
            remaining_ms,
            ..
        } => {
            assert_eq!(game.status, GameStatus::Waiting);
            assert!(*remaining_ms <= game.duration_ms);
            game.status = GameStatus::Active;
            game.ends_at_ms = Some(*ends_at_ms);
            game.remaining_ms = Some(*remaining_ms);
        }
        ServerMessage::Captured {
            cell,
            player,
            score,
            ..
        } => {
            assert_eq!(
                game.status,
                GameStatus::Active,
                "captures only while active"
            );
            let slot = &mut game.cells[usize::from(*cell)];
            assert_eq!(*slot, 0, "a cell is never re-captured: {event:?}");
            *slot = player + 1;
            let p = game
                .players
                .iter_mut()
                .find(|p| p.id == *player)
                .expect("the capturer is seated");
            assert_eq!(*score, p.score + 1, "score grows by one per capture");
            p.score = *score;
        }
        ServerMessage::GameOver {
            scores, winners, ..
        } => {
            assert_eq!(game.status, GameStatus::Active);
            assert_eq!(scores.len(), usize::from(game.max_players));
            for p in &game.players {
                assert_eq!(scores[usize::from(p.id)], p.score, "score of {}", p.id);
            }
            let top = game.players.iter().map(|p| p.score).max().unwrap_or(0);
            let leaders: Vec<u8> = game
                .players
                .iter()
                .filter(|p| p.score == top)
                .map(|p| p.id)
                .collect();
            assert_eq!(*winners, leaders, "winners are all tied leaders");
            game.status = GameStatus::Completed;
            game.winners = Some(winners.clone());
            game.ends_at_ms = None;
            game.remaining_ms = None;
        }
        other => panic!("not a broadcast event: {other:?}"),
    }
}

/// Asserts two snapshots describe the same game (`remaining_ms` depends on
/// when each was taken, so only its presence is compared).
#[track_caller]
pub fn assert_same_game(a: &GameSnapshot, b: &GameSnapshot) {
    let strip = |g: &GameSnapshot| GameSnapshot {
        remaining_ms: g.remaining_ms.map(|_| 0),
        ..g.clone()
    };
    assert_eq!(strip(a), strip(b));
}
