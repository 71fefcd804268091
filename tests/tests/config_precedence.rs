//! Where `gridcap serve` takes each setting from, on a real command line:
//! a flag over its `GRIDCAP_*` variable, a variable over the `--config` file
//! (named by `GRIDCAP_CONFIG` here), the file over the defaults. Two settings
//! show the layer that won: the address the node listens on, and how many
//! connections one client address may hold (`max_connections_per_ip`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use testkit::client::{handshake, ws_request};
use testkit::node::serve_command;
use testkit::ports::free_addr;
use testkit::process::Proc;
use testkit::{Client, TestDir, http};
use tokio_tungstenite::tungstenite;

/// Starts `gridcap serve` with `env` and `args`; expects it ready on
/// `listening`, with nothing on each of `not_on`.
async fn serve(
    dir: &TestDir,
    name: &str,
    env: &[(&str, String)],
    args: &[String],
    listening: SocketAddr,
    not_on: &[SocketAddr],
) -> Proc {
    let mut command = serve_command();
    command
        .args(args)
        .arg("--web-root")
        .arg(dir.join("no-web-root"));
    for (key, value) in env {
        command.env(key, value);
    }
    let node = Proc::spawn(name, command, &dir.path);
    http::wait_status(listening, "/readyz", 200).await;
    for addr in not_on {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{name}: something listens on {addr}, the address of a lower layer\n{}",
            node.log_tail()
        );
    }
    node
}

/// Opens connections to `addr` until one is refused; how many were let in
/// (at most `beyond` + 1 tried).
async fn connections_allowed(addr: SocketAddr, beyond: usize) -> usize {
    let mut open: Vec<Client> = Vec::new();
    for _ in 0..=beyond {
        match handshake(ws_request(addr)).await {
            Ok((client, _)) => open.push(client),
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 429, "refused for another reason");
                return open.len();
            }
            Err(e) => panic!("connecting to {addr}: {e}"),
        }
    }
    open.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_over_variables_over_the_config_file() {
    let dir = TestDir::new("flags_over_variables_over_the_config_file");
    let [by_file, by_env, by_flag] = [free_addr(), free_addr(), free_addr()];
    let file = dir.join("gridcap.toml");
    std::fs::write(
        &file,
        format!("listen = \"{by_file}\"\nmax_connections_per_ip = 1\n"),
    )
    .unwrap();
    let config = ("GRIDCAP_CONFIG", file.display().to_string());

    // The file alone.
    let node = serve(
        &dir,
        "file",
        std::slice::from_ref(&config),
        &[],
        by_file,
        &[],
    )
    .await;
    assert_eq!(connections_allowed(by_file, 3).await, 1, "the file's limit");
    drop(node);

    // Variables over the file.
    let env = [
        config.clone(),
        ("GRIDCAP_LISTEN", by_env.to_string()),
        ("GRIDCAP_MAX_CONNECTIONS_PER_IP", "2".to_owned()),
    ];
    let node = serve(&dir, "env", &env, &[], by_env, &[by_file]).await;
    assert_eq!(
        connections_allowed(by_env, 3).await,
        2,
        "the variable's limit"
    );
    drop(node);

    // Flags over both.
    let flags = [
        "--listen".to_owned(),
        by_flag.to_string(),
        "--max-connections-per-ip".to_owned(),
        "3".to_owned(),
    ];
    let node = serve(&dir, "flags", &env, &flags, by_flag, &[by_file, by_env]).await;
    assert_eq!(connections_allowed(by_flag, 4).await, 3, "the flag's limit");
    drop(node);
}
