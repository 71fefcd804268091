//! Every connection a node accepts has Nagle's algorithm off (TCP_NODELAY):
//! a player who loses a race gets two frames back to back (the winner's
//! `captured`, then its `rejected`), and with Nagle on the second waits for
//! the client's delayed ACK, ~40 ms. Instead of timing rounds, the test reads
//! the node's own system calls: `gridcap serve` runs under `strace`, and each
//! socket `accept4` returns must get `setsockopt(TCP_NODELAY, 1)`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Instant;

use testkit::node::without_gridcap_env;
use testkit::paths::gridcap_bin;
use testkit::ports::free_addr;
use testkit::process::{Proc, find_program};
use testkit::{POLL, Player, TestDir, WAIT, http};

/// The descriptors `accept4` returned, in order, each with whether
/// TCP_NODELAY was set on it before it was returned again.
fn accepted(log: &str) -> Vec<(u32, bool)> {
    let mut sockets: Vec<(u32, bool)> = Vec::new();
    for line in log.lines() {
        if line.contains("accept4")
            && let Some((_, ret)) = line.rsplit_once(") = ")
            && let Ok(fd) = ret.trim().parse::<u32>()
        {
            sockets.push((fd, false));
        }
        for (fd, nodelay) in sockets.iter_mut().rev() {
            if line.contains(&format!("setsockopt({fd}, SOL_TCP, TCP_NODELAY, [1], 4")) {
                *nodelay = true;
                break;
            }
        }
    }
    sockets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_connection_has_tcp_nodelay() {
    let Some(strace) = find_program("strace") else {
        // `make test` installs strace (scripts/ensure-deps.sh) and requires it.
        let required = std::env::var(testkit::balancer::REQUIRE_ENV).is_ok_and(|v| v == "1");
        assert!(
            !required,
            "strace is not installed (apt-get install strace)"
        );
        eprintln!("SKIPPED every_accepted_connection_has_tcp_nodelay: strace is not installed");
        return;
    };
    let dir = TestDir::new("every_accepted_connection_has_tcp_nodelay");
    let addr = free_addr();
    let log_path = dir.join("strace.log");
    let mut command = Command::new(strace);
    command
        .args(["-f", "-qq", "-e", "trace=accept4,setsockopt", "-o"])
        .arg(&log_path)
        .arg(gridcap_bin())
        .args(["serve", "--listen", &addr.to_string(), "--web-root"])
        .arg(dir.join("no-web-root"));
    without_gridcap_env(&mut command);
    let _node = Proc::spawn("gridcap-under-strace", command, &dir.path);
    let _tracee = StopTracee(dir.join("no-web-root"));
    http::wait_status(addr, "/readyz", 200).await;

    // Two players (WebSockets) and plain HTTP requests: all accepted sockets.
    let url = format!("ws://{addr}/ws");
    let mut host = Player::connect(&url, "host").await;
    let game = host.create(2, 30_000).await;
    let mut guest = Player::connect(&url, "guest").await;
    guest.join(&game.id).await;
    assert_eq!(http::get(addr, "/healthz").await.status, 200);

    // strace writes as the calls happen: wait for the sockets to show.
    let deadline = Instant::now() + WAIT;
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let sockets = accepted(&log);
        let without: Vec<u32> = sockets
            .iter()
            .filter(|(_, nodelay)| !nodelay)
            .map(|(fd, _)| *fd)
            .collect();
        // The readiness polls, two players and /healthz: 4 or more.
        if sockets.len() >= 4 && without.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "accepted sockets without TCP_NODELAY: {without:?} of {sockets:?}\n(log: {})",
            log_path.display()
        );
        tokio::time::sleep(POLL).await;
    }
    drop((host, guest));
}

#[test]
fn the_log_reader_sees_a_missing_nodelay() {
    let log = "\
1 accept4(9, {sa_family=AF_INET}, [128 => 16], SOCK_CLOEXEC|SOCK_NONBLOCK) = 11
1 setsockopt(11, SOL_TCP, TCP_NODELAY, [1], 4) = 0
2 accept4(9, <unfinished ...>
2 <... accept4 resumed>{sa_family=AF_INET}, [128 => 16], SOCK_CLOEXEC|SOCK_NONBLOCK) = 12
1 accept4(9, 0x7f, [128], SOCK_CLOEXEC|SOCK_NONBLOCK) = -1 EAGAIN (Resource temporarily unavailable)
3 accept4(9, {sa_family=AF_INET}, [128 => 16], SOCK_CLOEXEC|SOCK_NONBLOCK) = 11
";
    assert_eq!(accepted(log), vec![(11, true), (12, false), (11, false)]);
}

/// Kills the traced `gridcap serve` when the test ends, a panic included:
/// `Proc` kills strace, and a killed strace detaches its tracee, which would
/// run on. The node is found by its test-only web root on its command line.
struct StopTracee(std::path::PathBuf);

impl Drop for StopTracee {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(&self.0)
            .status();
    }
}
