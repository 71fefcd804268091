//! Protocol §5 through the wire: the capture race, the two ways a game
//! ends (with ties), and leaving waiting and active games.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::replica::assert_same_game;
use common::*;
use gridcap::config::ServeOptions;
use tokio::time::Instant;
use transport::protocol::{
    ClientMessage, ErrorCode, GameStatus, OverReason, RejectReason, ServerMessage,
};

async fn unlimited() -> TestServer {
    TestServer::start_with(ServeOptions {
        rate_limit: Some(0),
        ..options()
    })
    .await
}

/// What one racer saw.
#[derive(Debug, Default)]
struct Tally {
    /// Cells this player captured.
    mine: BTreeSet<u8>,
    /// Its refusals: cell -> reason.
    rejected: BTreeMap<u8, RejectReason>,
    /// Every `captured` seen: cell -> owner.
    owners: BTreeMap<u8, u8>,
}

impl Tally {
    /// Applies one message; returns the cell if it answered this player's
    /// attempt.
    fn see(&mut self, me: u8, m: ServerMessage) -> Option<u8> {
        match m {
            ServerMessage::Captured { cell, player, .. } => {
                assert!(
                    self.owners.insert(cell, player).is_none(),
                    "cell {cell} twice"
                );
                (player == me).then(|| {
                    self.mine.insert(cell);
                    cell
                })
            }
            ServerMessage::Rejected {
                cell,
                reference,
                reason,
            } => {
                let cell = u8::try_from(cell).expect("a cell we sent");
                assert_eq!(reference, Some(u32::from(cell)), "ref echoed");
                assert!(
                    self.rejected.insert(cell, reason).is_none(),
                    "one answer each"
                );
                Some(cell)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Every player tries every cell of 0..=79 at the same moment: cells 0..40
/// one round per cell (a barrier lines the four attempts up), then 40..80
/// as four simultaneous bursts. Cell 80 is left free so that the board
/// cannot fill up mid-race (late attempts would become `not_active`); it is
/// taken at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_captures_of_the_same_cells_have_exactly_one_winner() {
    let server = unlimited().await;
    let players = full_game(&server, 4, 30_000).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(players.len()));
    let tasks: Vec<_> = players
        .into_iter()
        .map(|mut c| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let me = c.me();
                let mut t = Tally::default();
                let answered =
                    |t: &Tally, cell| t.mine.contains(&cell) || t.rejected.contains_key(&cell);
                for cell in 0..40u8 {
                    barrier.wait().await;
                    c.send(&capture_ref(i64::from(cell), u32::from(cell))).await;
                    while !answered(&t, cell) {
                        let m = c.next().await;
                        t.see(me, m);
                    }
                }
                for cell in 40..80u8 {
                    c.feed(&capture_ref(i64::from(cell), u32::from(cell))).await;
                }
                barrier.wait().await;
                c.flush().await;
                while !(40..80).all(|cell| answered(&t, cell)) {
                    let m = c.next().await;
                    t.see(me, m);
                }
                (c, t)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("racer"));
    }
    // Everyone reads every capture of the race.
    for (c, t) in results.iter_mut() {
        let me = c.me();
        while t.owners.len() < 80 {
            let m = c.next().await;
            t.see(me, m);
        }
    }

    let owners = results[0].1.owners.clone();
    assert_eq!(owners.len(), 80, "every cell captured exactly once");
    let mut total = 0;
    for (c, t) in &results {
        assert_eq!(t.owners, owners, "everyone saw the same captures");
        assert_eq!(
            t.mine.len() + t.rejected.len(),
            80,
            "one answer per attempt"
        );
        for cell in &t.mine {
            assert_eq!(owners[cell], c.me());
        }
        for (cell, reason) in &t.rejected {
            assert_eq!(*reason, RejectReason::Taken, "cell {cell}");
            assert_ne!(owners[cell], c.me(), "the owner is never rejected");
        }
        total += t.mine.len();
    }
    assert_eq!(total, 80);
    let winners_of_cells: BTreeSet<u8> = owners.values().copied().collect();
    assert!(
        winners_of_cells.len() > 1,
        "the players really raced: {owners:?}"
    );

    // The last cell ends the game; the scores are the race's result.
    let mut clients: Vec<TestClient> = results.into_iter().map(|(c, _)| c).collect();
    clients[0].send(&capture(80)).await;
    let mut overs = Vec::new();
    for c in clients.iter_mut() {
        overs.push(
            c.until(|m| matches!(m, ServerMessage::GameOver { .. }))
                .await,
        );
    }
    let ServerMessage::GameOver { reason, scores, .. } = overs[0].clone() else {
        unreachable!()
    };
    assert_eq!(reason, OverReason::BoardFull);
    for id in 0..4u8 {
        let won = owners.values().filter(|&&o| o == id).count() + usize::from(id == 0);
        assert_eq!(scores[usize::from(id)] as usize, won);
    }
    let reference = clients[0].replica.clone().expect("joined");
    for c in &clients {
        assert_same_game(c.replica.as_ref().expect("joined"), &reference);
    }
}

/// Eight players all try cell 40 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_players_one_cell_one_winner() {
    let server = TestServer::start().await;
    let players = full_game(&server, 8, 30_000).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(players.len()));
    let tasks: Vec<_> = players
        .into_iter()
        .map(|mut c| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let me = c.me();
                c.feed(&capture_ref(40, 40)).await;
                barrier.wait().await;
                c.flush().await;
                let mut t = Tally::default();
                while t.owners.is_empty() || (!t.mine.contains(&40) && t.rejected.is_empty()) {
                    let m = c.next().await;
                    t.see(me, m);
                }
                // Keep the connection until everyone is done: a dropped
                // client would be announced (presence) to the others.
                (c, t)
            })
        })
        .collect();
    let mut winners = BTreeSet::new();
    let mut losers = 0;
    let mut keep = Vec::new();
    for task in tasks {
        let (c, t) = task.await.expect("racer");
        let winner = t.owners[&40];
        winners.insert(winner);
        if winner == c.me() {
            assert!(t.rejected.is_empty(), "the winner is not rejected");
        } else {
            losers += 1;
            assert_eq!(t.rejected.get(&40), Some(&RejectReason::Taken));
        }
        keep.push(c);
    }
    assert_eq!(winners.len(), 1, "everyone saw the same winner");
    assert_eq!(losers, 7);
}

/// Sends `attempt` for `cell` and reads until the cell's capture and, if
/// another player won it, this player's rejection arrived; what it saw.
async fn try_and_hear(c: &mut TestClient, attempt: &ClientMessage, cell: u8) -> Tally {
    c.send(attempt).await;
    let me = c.me();
    let mut t = Tally::default();
    while t.owners.is_empty() || (t.owners[&cell] != me && t.rejected.is_empty()) {
        let m = c.next().await;
        t.see(me, m);
    }
    t
}

/// Two players try the same cell at once, 40 times: each round one wins, and
/// the other hears the winner's `captured`, then its own `rejected`: two
/// frames back to back, which Nagle's algorithm would hold back for a
/// delayed ACK. That the server turns Nagle off is tested on its syscalls
/// (tests/tests/nodelay.rs), not by timing rounds here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_race_is_answered_with_the_winners_capture_then_taken() {
    let server = unlimited().await;
    let mut p = full_game(&server, 2, 30_000).await;
    for cell in 0..40u8 {
        let (a, b) = p.split_at_mut(1);
        let attempt = capture_ref(i64::from(cell), u32::from(cell));
        let (ta, tb) = tokio::join!(
            try_and_hear(&mut a[0], &attempt, cell),
            try_and_hear(&mut b[0], &attempt, cell)
        );
        let winner = ta.owners[&cell];
        assert_eq!(tb.owners[&cell], winner, "one winner of cell {cell}");
        let loser = if winner == a[0].me() { &tb } else { &ta };
        assert_eq!(
            loser.rejected.get(&cell),
            Some(&RejectReason::Taken),
            "cell {cell}"
        );
    }
}

#[tokio::test]
async fn time_runs_out_with_tied_winners() {
    let server = TestServer::start().await;
    // Long enough for the five captures to land first on a busy machine.
    let mut host = host_game(&server, 3, 3_000).await;
    let mut guest = join_game(&server, &host.game_id(), "bob").await;
    let mut third = join_game(&server, &host.game_id(), "cy").await;
    let ServerMessage::Started { remaining_ms, .. } = host
        .until(|m| matches!(m, ServerMessage::Started { .. }))
        .await
    else {
        unreachable!()
    };
    let started = Instant::now();
    assert!(remaining_ms <= 3_000);
    host.send(&capture(0)).await;
    host.send(&capture(1)).await;
    guest.send(&capture(2)).await;
    guest.send(&capture(3)).await;
    third.send(&capture(4)).await;
    let mut overs = Vec::new();
    for c in [&mut host, &mut guest, &mut third] {
        overs.push(
            c.until(|m| matches!(m, ServerMessage::GameOver { .. }))
                .await,
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed + Duration::from_millis(100) >= Duration::from_millis(remaining_ms),
        "game over after {elapsed:?}, before the deadline ({remaining_ms} ms)"
    );
    for over in &overs {
        assert_eq!(over, &overs[0], "everyone gets the same game_over");
    }
    let ServerMessage::GameOver {
        seq,
        reason,
        scores,
        winners,
    } = overs[0].clone()
    else {
        unreachable!()
    };
    assert_eq!(seq, 9, "2 joins, start, 5 captures, game over");
    assert_eq!(reason, OverReason::Time);
    assert_eq!(scores, vec![2, 2, 1]);
    assert_eq!(winners, vec![0, 1]);
    // After the deadline: not_active.
    third.send(&capture_ref(5, 1)).await;
    third.rejected(5, Some(1), RejectReason::NotActive).await;
    let game = host.replica.clone().expect("joined");
    assert_eq!(game.status, GameStatus::Completed);
    assert_eq!(game.winners, Some(vec![0, 1]));
}

#[tokio::test]
async fn nobody_scores_everybody_wins() {
    let server = TestServer::start().await;
    // Four seats, started with two: scores has a slot per seat.
    let mut host = host_game(&server, 4, 1_000).await;
    let mut guest = join_game(&server, &host.game_id(), "bob").await;
    host.sync_to(1).await;
    host.send(&START).await;
    for c in [&mut host, &mut guest] {
        let (reason, scores, winners) = c.game_over().await;
        assert_eq!(reason, OverReason::Time);
        assert_eq!(scores, vec![0, 0, 0, 0], "one score per seat");
        assert_eq!(winners, vec![0, 1], "only seated players win");
    }
}

/// Each player in `p` captures `counts[i]` cells from a shared list.
async fn fill_board(p: &mut [TestClient], counts: &[usize]) -> ServerMessage {
    assert_eq!(counts.iter().sum::<usize>(), 81);
    let mut next = 0i64;
    for (c, &n) in p.iter_mut().zip(counts) {
        for _ in 0..n {
            c.feed(&capture(next)).await;
            next += 1;
        }
        c.flush().await;
    }
    let mut overs = Vec::new();
    for c in p.iter_mut() {
        overs.push(
            c.until(|m| matches!(m, ServerMessage::GameOver { .. }))
                .await,
        );
    }
    for over in &overs {
        assert_eq!(over, &overs[0]);
    }
    let game = p[0].replica.clone().expect("joined");
    assert!(game.cells.iter().all(|&c| c != 0), "a full board");
    for c in p.iter() {
        assert_same_game(c.replica.as_ref().expect("joined"), &game);
    }
    overs.remove(0)
}

#[tokio::test]
async fn a_full_board_ends_the_game_with_a_three_way_tie() {
    let server = unlimited().await;
    let mut p = full_game(&server, 3, 30_000).await;
    let over = fill_board(&mut p, &[27, 27, 27]).await;
    let ServerMessage::GameOver {
        reason,
        scores,
        winners,
        ..
    } = over
    else {
        unreachable!()
    };
    assert_eq!(reason, OverReason::BoardFull);
    assert_eq!(scores, vec![27, 27, 27]);
    assert_eq!(winners, vec![0, 1, 2]);
    // The game is over before its deadline: nothing more is accepted.
    p[0].send(&capture_ref(0, 1)).await;
    p[0].rejected(0, Some(1), RejectReason::NotActive).await;
}

#[tokio::test]
async fn a_full_board_with_a_two_way_tie_and_a_loser() {
    let server = unlimited().await;
    let mut p = full_game(&server, 4, 30_000).await;
    let over = fill_board(&mut p, &[30, 30, 21, 0]).await;
    let ServerMessage::GameOver {
        scores, winners, ..
    } = over
    else {
        unreachable!()
    };
    assert_eq!(scores, vec![30, 30, 21, 0]);
    assert_eq!(winners, vec![0, 1]);
}

#[tokio::test]
async fn a_full_board_with_one_winner() {
    let server = unlimited().await;
    let mut p = full_game(&server, 2, 30_000).await;
    let over = fill_board(&mut p, &[40, 41]).await;
    let ServerMessage::GameOver {
        scores, winners, ..
    } = over
    else {
        unreachable!()
    };
    assert_eq!(scores, vec![40, 41]);
    assert_eq!(winners, vec![1]);
}

/// `leaver` sends `leave` and is closed with 1000; each of `others` reads
/// exactly `player_left{seq, leaver's seat, host}` next.
async fn leaves(leaver: &mut TestClient, others: [&mut TestClient; 2], seq: u64, host: u8) {
    let player = leaver.me();
    leaver.send(&LEAVE).await;
    assert_eq!(leaver.closed_now().await, Some(1000));
    for c in others {
        assert_eq!(
            c.next().await,
            ServerMessage::PlayerLeft {
                seq,
                player,
                host: Some(host)
            }
        );
    }
}

#[tokio::test]
async fn leaving_a_waiting_game_frees_the_seat_and_hands_over_the_host() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 4, 30_000).await;
    let id = host.game_id();
    let mut p1 = join_game(&server, &id, "one").await;
    let mut p2 = join_game(&server, &id, "two").await;
    host.sync_to(2).await;
    p1.sync_to(2).await;

    // Seat 1 leaves: freed, and the next joiner takes it.
    leaves(&mut p1, [&mut host, &mut p2], 3, 0).await;
    for c in [&host, &p2] {
        assert_eq!(c.replica.as_ref().unwrap().players.len(), 2);
    }
    let mut again = join_game(&server, &id, "one again").await;
    assert_eq!(again.me(), 1, "the freed seat is reused");
    host.sync_to(4).await;
    p2.sync_to(4).await;

    // The host leaves: the lowest remaining seat hosts.
    leaves(&mut host, [&mut again, &mut p2], 5, 1).await;
    for c in [&again, &p2] {
        assert_eq!(c.replica.as_ref().unwrap().host, 1);
    }
    p2.send(&START).await;
    p2.error(ErrorCode::NotHost).await;
    again.send(&START).await;
    for c in [&mut again, &mut p2] {
        assert!(matches!(
            c.next().await,
            ServerMessage::Started { seq: 6, .. }
        ));
    }
    // A fresh snapshot agrees with what the events built.
    let watcher = resume_seat(&server, &id, p2.token.as_deref().unwrap()).await;
    assert_same_game(
        watcher.replica.as_ref().unwrap(),
        again.replica.as_ref().unwrap(),
    );
}

#[tokio::test]
async fn a_newcomer_to_an_emptied_waiting_game_hosts_it() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 3, 30_000).await;
    let id = host.game_id();
    host.send(&LEAVE).await;
    assert_eq!(host.closed_now().await, Some(1000));
    host.ended().await;
    let mut newcomer = join_game(&server, &id, "new").await;
    let game = newcomer.replica.clone().unwrap();
    assert_eq!((newcomer.me(), game.host), (0, 0));
    assert_eq!(game.seq, 2, "the leave and the join");
    let _second = join_game(&server, &id, "second").await;
    newcomer.sync_to(3).await;
    newcomer.send(&START).await;
    assert!(matches!(
        newcomer.next().await,
        ServerMessage::Started { .. }
    ));
}

#[tokio::test]
async fn leaving_an_active_game_keeps_cells_and_score() {
    let server = unlimited().await;
    let mut p = full_game(&server, 3, 30_000).await;
    let id = p[0].game_id();
    for cell in [10, 11, 12] {
        p[1].send(&capture(cell)).await;
    }
    let seq = p[0].seq() + 3;
    sync_all(&mut p, seq).await;
    let mut leaver = p.remove(1);
    leaver.send(&LEAVE).await;
    assert_eq!(leaver.closed_now().await, Some(1000));
    for c in p.iter_mut() {
        assert_eq!(
            c.next().await,
            ServerMessage::PlayerLeft {
                seq: seq + 1,
                player: 1,
                host: Some(0)
            }
        );
        let game = c.replica.as_ref().unwrap();
        let gone = &game.players[1];
        assert_eq!((gone.score, gone.connected), (3, false));
        assert_eq!(&game.cells[10..13], &[2, 2, 2]);
    }
    // A fresh snapshot says the same.
    let watcher = resume_seat(&server, &id, p[1].token.as_deref().unwrap()).await;
    assert_same_game(
        watcher.replica.as_ref().unwrap(),
        p[0].replica.as_ref().unwrap(),
    );
    // The others finish the game; the leaver's score counts.
    let mut p = [p.remove(0), watcher];
    let mut next = 0;
    for i in 0..78 {
        while (10..13).contains(&next) {
            next += 1;
        }
        p[i % 2].feed(&capture(next)).await;
        next += 1;
    }
    for c in p.iter_mut() {
        c.flush().await;
    }
    let ServerMessage::GameOver {
        scores, winners, ..
    } = p[0]
        .until(|m| matches!(m, ServerMessage::GameOver { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(scores, vec![39, 3, 39]);
    assert_eq!(winners, vec![0, 2]);
}
