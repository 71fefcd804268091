//! A node started under an open-files limit below `--max-connections`
//! (issue 18): it warns at start-up and serves only what fits, so the client
//! past that is turned away with a 1013 close instead of waiting unanswered
//! in the kernel's accept backlog.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use testkit::client::{handshake, ws_request};
use testkit::node::without_gridcap_env;
use testkit::paths::gridcap_bin;
use testkit::ports::free_addr;
use testkit::process::Proc;
use testkit::{Client, TestDir, http};

/// The hard (and so the soft) limit the node is started under.
const OPEN_FILES: usize = 400;
/// `--max-overload-closes` for this node.
const OVERLOAD: usize = 2;
/// What `edge::nofile` keeps for the node itself.
const RESERVED: usize = 128;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_open_files_limit_lowers_max_connections_with_a_warning() {
    let dir = TestDir::new("a_short_open_files_limit_lowers_max_connections");
    let addr = free_addr();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "ulimit -n {OPEN_FILES} && exec \"$0\" serve \"$@\""
        ))
        .arg(gridcap_bin())
        .args(["--listen", &addr.to_string()])
        .args(["--max-connections", "5000"])
        .args(["--max-overload-closes", &OVERLOAD.to_string()])
        .arg("--web-root")
        .arg(dir.join("no-web-root"));
    without_gridcap_env(&mut command);
    let node = Proc::spawn("node", command, &dir.path);
    http::wait_status(addr, "/readyz", 200).await;
    let fits = OPEN_FILES - RESERVED - OVERLOAD;
    let log = node.log_tail();
    assert!(
        log.contains(&format!("serving at most {fits} connections")),
        "no start-up warning naming the lowered limit:\n{log}"
    );

    let mut open: Vec<Client> = Vec::with_capacity(fits);
    for n in 0..fits {
        match handshake(ws_request(addr)).await {
            Ok((client, _)) => open.push(client),
            Err(e) => panic!("connection {n} of {fits} refused: {e}\n{}", node.log_tail()),
        }
    }
    // The next one is answered, not left hanging.
    let (mut past, _) = handshake(ws_request(addr))
        .await
        .expect("upgraded to be closed");
    assert_eq!(past.closed_now().await, Some(1013));
    // The admitted ones were never disturbed.
    open[0].ping_pong(1).await;
    open[fits - 1].ping_pong(2).await;
}
