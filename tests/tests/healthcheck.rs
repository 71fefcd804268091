//! `gridcap healthcheck` against a real node: it finds the node from the
//! same settings as `serve` (a flag, a variable or the `--config` file),
//! exits 0 while the node is ready and 1 when nothing answers or the node
//! is not ready.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Command, Output};

use testkit::node::without_gridcap_env;
use testkit::paths::gridcap_bin;
use testkit::ports::free_addr;
use testkit::{Cluster, NodeOptions, TestDir};

/// `gridcap healthcheck ARGS` with `env`, run to its end.
async fn healthcheck(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(gridcap_bin());
    command.arg("healthcheck").args(args);
    without_gridcap_env(&mut command);
    command.env_remove("GRIDCAP_ADMIN_LISTEN");
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn says(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn healthcheck_follows_the_configuration_and_the_node_state() {
    let dir = TestDir::new("healthcheck_follows_the_configuration_and_the_node_state");
    let cluster = Cluster::single(&dir, &NodeOptions::default()).await;
    let admin = cluster.node("single").admin.to_string();

    // By flag, by variable, by the config file.
    let by_flag = healthcheck(&["--admin-listen", &admin], &[]).await;
    assert_eq!(code(&by_flag), Some(0), "{}", says(&by_flag));
    let by_env = healthcheck(&[], &[("GRIDCAP_ADMIN_LISTEN", admin.clone())]).await;
    assert_eq!(code(&by_env), Some(0), "{}", says(&by_env));
    let file = dir.join("gridcap.toml");
    std::fs::write(&file, format!("admin_listen = \"{admin}\"\n")).unwrap();
    let by_file = healthcheck(&["--config", file.to_str().unwrap()], &[]).await;
    assert_eq!(code(&by_file), Some(0), "{}", says(&by_file));
    let live = healthcheck(&["--live", "--admin-listen", &admin], &[]).await;
    assert_eq!(code(&live), Some(0), "{}", says(&live));

    // Nothing there: 1, naming what it asked.
    let nobody: SocketAddr = free_addr();
    let out = healthcheck(&["--admin-listen", &nobody.to_string()], &[]).await;
    assert_eq!(code(&out), Some(1));
    assert!(
        says(&out).contains(&format!("http://{nobody}/readyz")),
        "{}",
        says(&out)
    );

    // A configuration `serve` would refuse: 2, with the reason.
    let out = healthcheck(&["--admin-listen", &admin, "--listen", &admin], &[]).await;
    assert_eq!(code(&out), Some(2), "{}", says(&out));
    assert!(says(&out).contains("must not be public"), "{}", says(&out));
}

/// A stateless node whose Redis is unreachable is up but not ready: the
/// healthcheck fails, `--live` passes.
#[tokio::test]
async fn a_node_that_cannot_take_games_is_unhealthy_but_live() {
    let dir = TestDir::new("a_node_that_cannot_take_games_is_unhealthy_but_live");
    let admin = free_addr();
    let nowhere = free_addr();
    let mut command = testkit::node::serve_command();
    command
        .args(["--mode", "stateless", "--listen", &free_addr().to_string()])
        .args(["--admin-listen", &admin.to_string()])
        .args(["--redis", &format!("redis://{nowhere}")])
        .arg("--web-root")
        .arg(dir.join("no-web-root"));
    let _node = testkit::process::Proc::spawn("unready", command, &dir.path);
    testkit::http::wait_status(admin, "/healthz", 200).await;
    let addr = admin.to_string();
    let live = healthcheck(&["--live", "--admin-listen", &addr], &[]).await;
    assert_eq!(code(&live), Some(0), "{}", says(&live));
    let ready = healthcheck(&["--admin-listen", &addr], &[]).await;
    assert_eq!(code(&ready), Some(1), "{}", says(&ready));
    assert!(says(&ready).contains("503"), "{}", says(&ready));
}
