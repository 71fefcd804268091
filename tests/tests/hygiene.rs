//! What a node must not leave behind, checked on real `gridcap serve`
//! processes: tokens in its logs (docs/protocol.md: the server "never logs"
//! one), and connections or file descriptors after clients come and go.
//!
//! Logs of every process: `target/system-tests/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::{Cluster, NodeOptions, Player, TestDir, WAIT, http};
use transport::protocol::{ClientMessage, ErrorCode, ServerMessage};

/// Every file the test's processes wrote, as one text without the colour
/// codes of the terminal format (which may sit between a field and its value).
fn logs_of(dir: &TestDir) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(&dir.path).expect("the test's log directory") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    let mut plain = String::with_capacity(all.len());
    let mut rest = all.as_str();
    while let Some(start) = rest.find('\x1b') {
        plain.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find('m').map_or(rest.len(), |m| m + 1);
        rest = &rest[end..];
    }
    plain.push_str(rest);
    plain
}

/// Tokens reach a node on `create`/`join` answers and on `resume`, directly
/// and through a relay; the nodes log at trace level; no token (nor a bad
/// one a client sent) may appear in any log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_never_logged() {
    let dir = TestDir::new("tokens_are_never_logged");
    let options = NodeOptions {
        rust_log: Some("debug,gridcap=trace,transport=trace".to_owned()),
        ..NodeOptions::default()
    };
    let mut cluster = Cluster::stateful(&dir, &["a", "b", "c"], &options).await;
    let [a, b, c] = ["a", "b", "c"].map(|id| cluster.node(id).ws_url());

    // A game on a: the host there, the guest relayed by b.
    let mut host = Player::connect(&a, "host").await;
    let game = host.create(2, 30_000).await;
    let mut guest = Player::connect(&b, "guest").await;
    guest.join(&game.id).await;
    for p in [&mut host, &mut guest] {
        p.until_started().await;
    }
    host.capture_all(&[0]).await;
    // Both resume: the guest through c (relayed), the host on a (direct).
    guest.reconnect(&c).await.unwrap();
    guest.resume().await.expect("the guest resumes through c");
    host.reconnect(&a).await.unwrap();
    host.resume().await.expect("the host resumes on a");
    guest.capture_all(&[80]).await;
    // A resume with a token no seat has, relayed by b.
    let forged = "0123456789abcdef0123456789abcdef".to_owned();
    let mut stranger = Player::connect(&b, "stranger").await;
    let forged_resume = ClientMessage::Resume {
        game: game.id.clone(),
        token: forged.clone(),
    };
    stranger
        .refused_with(&forged_resume, ErrorCode::BadToken)
        .await;

    let mut tokens = vec![forged];
    tokens.extend([&host, &guest].map(|p| p.token.clone().expect("a seat's token")));
    drop((host, guest, stranger));
    // A graceful stop: every line is written before the logs are read.
    for id in ["a", "b", "c"] {
        cluster.node_mut(id).terminate();
        cluster.node_mut(id).wait_exit(WAIT + WAIT).await;
    }
    let logs = logs_of(&dir);
    // Not vacuous: the nodes logged these sessions and their relays.
    for line in ["relaying conn=", "session ended conn="] {
        assert!(
            logs.contains(line),
            "no {line:?} in the nodes' logs: is debug logging on? ({})",
            dir.path.display()
        );
    }
    for token in &tokens {
        for spelling in [token.clone(), token.to_uppercase()] {
            assert!(
                !logs.contains(&spelling),
                "a token was logged: {spelling} (logs in {})",
                dir.path.display()
            );
        }
    }
}

/// The process's open descriptors (`/proc/<pid>/fd`).
fn open_fds(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the node's /proc entry")
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some(target.display().to_string())
        })
        .collect()
}

/// `gridcap_connections` in `/metrics` on the admin listener `addr` (absent
/// before the first one).
async fn open_connections(addr: SocketAddr) -> f64 {
    http::get(addr, "/metrics")
        .await
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("gridcap_connections "))
        .map_or(0.0, |n| n.trim().parse().expect("a number"))
}

/// Clients come and go every way they can (a leave, a dropped socket, a
/// resume that replaces a connection, a half-sent request head, plain HTTP):
/// afterwards the node holds no connection and exactly the descriptors it
/// held before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_descriptors_return_to_the_baseline_after_churn() {
    let dir = TestDir::new("connections_and_descriptors_return_to_the_baseline_after_churn");
    let cluster = Cluster::single(&dir, &NodeOptions::default()).await;
    let node = cluster.node("single");
    let (addr, url, pid) = (node.addr, node.ws_url(), node.pid().expect("running"));
    assert_eq!(open_connections(node.admin).await, 0.0);
    let baseline = open_fds(pid);

    for round in 0..10 {
        let mut host = Player::connect(&url, &format!("host-{round}")).await;
        let game = host.create(2, 60_000).await;
        let mut guest = Player::connect(&url, &format!("guest-{round}")).await;
        guest.join(&game.id).await;
        guest.send(&ClientMessage::Leave {}).await;
        assert_eq!(guest.until_closed().await, Some(1000));
        // The host's seat resumed on a new connection replaces the old one.
        let mut again = Player::connect(&url, &format!("again-{round}")).await;
        again
            .send(&ClientMessage::Resume {
                game: game.id.clone(),
                token: host.token.clone().unwrap(),
            })
            .await;
        again
            .until("joined", |m| matches!(m, ServerMessage::Joined { .. }))
            .await;
        assert_eq!(host.until_closed().await, Some(4001));
        drop(again); // no close handshake
        let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut half, b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        drop(half);
        assert_eq!(http::get(addr, "/healthz").await.status, 200);
    }

    let deadline = Instant::now() + WAIT;
    loop {
        let (connections, fds) = (open_connections(node.admin).await, open_fds(pid));
        if connections == 0.0 && fds.len() <= baseline.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the churn: {connections} connections, {} descriptors (before: {})\nnow: {fds:?}\nbefore: {baseline:?}",
            fds.len(),
            baseline.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
