//! Stateful cluster mode, in process: three nodes on loopback, players of one
//! game spread over them, relayed transparently to the game's owner.
//! (Real processes behind HAProxy and NGINX are tested in tests/ at the root.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::*;
use gridcap::config::{Mode, ServeOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use transport::protocol::{ErrorCode, GameStatus, ServerMessage};

struct Node {
    addr: SocketAddr,
    /// Its admin listener: `/api/node`, `/api/cluster`.
    admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(30), self.task)
            .await
            .expect("node stops")
            .expect("node task")
            .expect("node result");
    }
}

/// Three stateful nodes `a`, `b`, `c` that know each other.
async fn cluster() -> Vec<Node> {
    cluster_with(options()).await
}

/// [`cluster`] with other settings.
async fn cluster_with(base: ServeOptions) -> Vec<Node> {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(gridcap::server::Listeners {
            public: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            admin: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        });
    }
    let ids = ["a", "b", "c"];
    let peers: Vec<String> = listeners
        .iter()
        .zip(ids)
        .map(|(l, id)| {
            let (public, admin) = (l.public.local_addr(), l.admin.local_addr());
            format!("{id}={}@{}", public.unwrap(), admin.unwrap())
        })
        .collect();
    let mut nodes = Vec::new();
    for (listener, id) in listeners.into_iter().zip(ids) {
        let options = ServeOptions {
            mode: Some(Mode::Stateful),
            node_id: Some(id.to_owned()),
            peers: Some(peers.clone()),
            probe_interval_ms: Some(100),
            ..base.clone()
        };
        let config = options.resolve().expect("valid cluster config");
        let addr = listener.public.local_addr().unwrap();
        let admin = listener.admin.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gridcap::server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        nodes.push(Node {
            addr,
            admin,
            stop: Some(stop),
            task,
        });
    }
    nodes
}

#[tokio::test]
async fn players_on_three_nodes_share_one_game() {
    let nodes = cluster().await;
    // The host creates on a; the game is a's. Guests join through b and c.
    let mut host = connect(nodes[0].addr).await;
    host.send(&create("host", Some(3), Some(30_000))).await;
    let game = host.joined().await;
    let mut b = connect(nodes[1].addr).await;
    b.send(&join(&game.id, "via-b")).await;
    b.joined().await;
    let mut c = connect(nodes[2].addr).await;
    c.send(&join(&game.id, "via-c")).await;
    let snap = c.joined().await;
    assert_eq!(snap.status, GameStatus::Waiting, "taken before the start");
    // The third seat filled the game: the filler hears `started` too.
    c.sync_to(snap.seq + 1).await;
    assert_eq!(
        c.replica.as_ref().map(|g| g.status),
        Some(GameStatus::Active),
        "the third seat filled the game"
    );
    let mut players = vec![host, b, c];
    sync_all(&mut players, snap.seq + 1).await;

    // Captures from every node; everyone sees every event in one order.
    for (i, p) in players.iter_mut().enumerate() {
        p.send(&capture(i as i64 * 10)).await;
    }
    let target = snap.seq + 3;
    sync_all(&mut players, target).await;
    let boards: Vec<_> = players.iter().map(|p| p.replica.clone().unwrap()).collect();
    assert!(
        boards.windows(2).all(|w| w[0] == w[1]),
        "identical replicas on every node"
    );

    // A relayed player races the owner's local player for one cell.
    players[0].send(&capture(80)).await;
    players[2].send(&capture(80)).await;
    let winner = players[1]
        .until(|m| matches!(m, ServerMessage::Captured { cell: 80, .. }))
        .await;
    let ServerMessage::Captured { player, .. } = winner else {
        unreachable!()
    };
    let loser = if player == players[0].me() { 2 } else { 0 };
    let refused = players[loser]
        .until(|m| matches!(m, ServerMessage::Rejected { .. }))
        .await;
    assert!(
        matches!(
            refused,
            ServerMessage::Rejected {
                cell: 80,
                reason: transport::RejectReason::Taken,
                ..
            }
        ),
        "{refused:?}"
    );

    // The HTTP API answers for the game on every node.
    for node in &nodes {
        let reply = common::http::get(node.addr, &format!("/api/games/{}", game.id)).await;
        assert_eq!(reply.status, 200, "node {} serves the snapshot", node.addr);
        let json = reply.json();
        assert_eq!(json["cells"].as_array().unwrap().len(), 81);
    }
    for p in players {
        p.close().await;
    }
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test]
async fn creates_land_on_the_receiving_node_and_unknown_ids_fail_fast() {
    let nodes = cluster().await;
    for node in &nodes {
        let mut p = connect(node.addr).await;
        p.send(&create("p", Some(2), Some(30_000))).await;
        let game = p.joined().await;
        let info = common::http::get(node.admin, "/api/node").await.json();
        assert_eq!(
            info["games"]["waiting"], 1,
            "{} owns its own create ({})",
            node.addr, game.id
        );
        p.close().await;
    }
    // An id nobody has, relayed or not, is unknown_game.
    for node in &nodes {
        let mut p = connect(node.addr).await;
        p.send(&join(&uuid::Uuid::new_v4().to_string(), "x")).await;
        p.error(ErrorCode::UnknownGame).await;
        p.close().await;
    }
    let reply = common::http::get(nodes[0].admin, "/api/cluster").await;
    assert_eq!(reply.status, 200);
    let view = reply.json();
    assert_eq!(view["nodes"].as_array().unwrap().len(), 3);
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test]
async fn a_relayed_player_can_leave_and_resume() {
    let nodes = cluster().await;
    let mut host = connect(nodes[0].addr).await;
    host.send(&create("host", Some(2), Some(30_000))).await;
    let game = host.joined().await;
    let mut guest = connect(nodes[1].addr).await;
    guest.send(&join(&game.id, "guest")).await;
    guest.joined().await;
    let token = guest.token.clone().unwrap();
    // Drop the relayed connection: the owner marks the seat disconnected.
    drop(guest);
    host.until(|m| {
        matches!(
            m,
            ServerMessage::Presence {
                connected: false,
                ..
            }
        )
    })
    .await;
    // Resume through the third node.
    let mut back = connect(nodes[2].addr).await;
    back.send(&resume(&game.id, &token)).await;
    let snap = back.joined().await;
    assert_eq!(snap.id, game.id);
    host.until(|m| {
        matches!(
            m,
            ServerMessage::Presence {
                connected: true,
                ..
            }
        )
    })
    .await;
    back.send(&LEAVE).await;
    assert_eq!(
        back.closed().await,
        Some(1000),
        "leave closes with 1000 through the relay"
    );
    host.close().await;
    for n in nodes {
        n.stop().await;
    }
}

/// A stateful node told to stop drains: it hands the `create` of a player
/// connected to it to a ready peer (the game lives there, the player is
/// relayed), lets its own game run to the end, then sends its players away
/// with 1001; the relayed player resumes its game through another node.
#[tokio::test]
async fn a_draining_node_hands_creates_to_a_peer_and_lets_its_games_end() {
    let mut nodes = cluster().await;
    let (a, b, c) = (nodes[0].addr, nodes[1].addr, nodes[2].addr);
    let peers_admin = [nodes[1].admin, nodes[2].admin];
    let mut host = connect(a).await;
    host.send(&create("host", Some(2), Some(2_000))).await;
    let game = host.joined().await;
    let mut guest = connect(b).await;
    guest.send(&join(&game.id, "guest")).await;
    guest.joined().await;
    host.sync_to(2).await; // player_joined, started
    let mut late = connect(a).await;

    let stop = nodes[0].stop.take().expect("a's stop");
    let _ = stop.send(());
    common::http::wait_status(a, "/readyz", 503).await;
    let before: u64 = game_totals(&peers_admin).await;
    late.send(&create("late", Some(2), Some(30_000))).await;
    let placed = late.joined().await;
    assert_eq!(
        game_totals(&peers_admin).await,
        before + 1,
        "a draining node's create lands on a peer"
    );
    let mut other = connect(c).await;
    other.send(&join(&placed.id, "other")).await;
    other.joined().await;

    // a's own game goes on to its end, then a sends its players away.
    host.send(&capture(40)).await;
    let over = host.game_over().await;
    assert_eq!(guest.game_over().await, over);
    assert_eq!(host.closed().await, Some(1001));
    assert_eq!(late.closed().await, Some(1001));
    let task = nodes.remove(0).task;
    tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("a stops once its game is over")
        .expect("a's task")
        .expect("a's result");

    // The relayed player's game lived on the peer: it resumes through c.
    let mut back = connect(c).await;
    back.send(&resume(&placed.id, late.token.as_deref().unwrap()))
        .await;
    assert_eq!(back.joined().await.status, GameStatus::Active);
    back.send(&capture(7)).await;
    other
        .until(|m| matches!(m, ServerMessage::Captured { cell: 7, .. }))
        .await;
    for n in nodes {
        n.stop().await;
    }
}

/// Games (of any status) on the nodes whose admin listeners are at `addrs`
/// (`/api/node`).
async fn game_totals(addrs: &[SocketAddr]) -> u64 {
    let mut total = 0;
    for addr in addrs {
        let info = common::http::get(*addr, "/api/node").await.json();
        for status in ["waiting", "active", "completed"] {
            total += info["games"][status].as_u64().expect("a count");
        }
    }
    total
}

/// A handshake to `addr` from `source` that claims to be a relay
/// (`x-gridcap-hops: 1`): `Ok`, or the refusal's HTTP status.
async fn claiming_a_relay(addr: SocketAddr, source: [u8; 4]) -> Result<TestClient, u16> {
    let mut request = ws_request(addr);
    request
        .headers_mut()
        .insert("x-gridcap-hops", "1".parse().unwrap());
    match testkit::client::handshake_from(source.into(), request).await {
        Ok((client, _)) => Ok(client),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("handshake from {source:?}: {e}"),
    }
}

/// Only a peer's address may claim to be a relay: relays carry many players
/// (no per-IP cap) and bring back players of a draining node's games (let
/// in while it drains). From any other address the header is ignored, so it
/// dodges neither. (The nodes all listen on 127.0.0.1; 127.0.0.2 is not a
/// peer.)
#[tokio::test]
async fn only_a_peer_may_claim_to_be_a_relay() {
    let mut nodes = cluster_with(ServeOptions {
        max_connections_per_ip: Some(1),
        drain_timeout_ms: Some(30_000),
        ..options()
    })
    .await;
    let a = nodes[0].addr;
    let (stranger, peer) = ([127, 0, 0, 2], [127, 0, 0, 1]);
    let _first = claiming_a_relay(a, stranger)
        .await
        .expect("a first connection");
    assert_eq!(claiming_a_relay(a, stranger).await.err(), Some(429));
    let mut from_peer = Vec::new();
    for _ in 0..3 {
        from_peer.push(
            claiming_a_relay(a, peer)
                .await
                .expect("no per-IP cap for a peer"),
        );
    }

    // A game on a keeps it draining once told to stop.
    let mut host = from_peer.pop().unwrap();
    host.send(&create("host", Some(2), Some(30_000))).await;
    let game = host.joined().await;
    let mut guest = connect(nodes[1].addr).await;
    guest.send(&join(&game.id, "guest")).await;
    guest.joined().await;
    let _ = nodes[0].stop.take().expect("a's stop").send(());
    common::http::wait_status(a, "/readyz", 503).await;
    assert_eq!(
        claiming_a_relay(a, [127, 0, 0, 3]).await.err(),
        Some(503),
        "a stranger's relay claim does not get past a drain"
    );
    claiming_a_relay(a, peer)
        .await
        .expect("a peer's relay is let in while draining");
    drop((host, guest, from_peer));
    for n in nodes.into_iter().skip(1) {
        n.stop().await;
    }
}
