//! `deploy/prometheus` and `deploy/grafana` against a real Prometheus
//! (Debian's `prometheus` package, which brings `promtool`):
//!
//! - the alert rules pass `promtool check rules` and their unit tests
//!   (`promtool test rules`), and `prometheus.yml` passes `check config`;
//! - a Prometheus scraping real gridcap nodes (a stateful pair and a
//!   stateless node with its Redis) on their admin listeners, while bots
//!   play, answers every query of the Grafana dashboard with data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::balancer::REQUIRE_ENV;
use testkit::bots::Bots;
use testkit::paths::deploy_dir;
use testkit::ports::free_addr;
use testkit::process::{Proc, find_program};
use testkit::redis::{Redis, RedisServer, redis_available};
use testkit::{Cluster, NodeOptions, TestDir, http};

/// Whether `program` is installed; without it the test skips with a
/// message, or fails when `make test` requires system dependencies.
fn installed(test: &str, program: &str) -> bool {
    if find_program(program).is_some() {
        return true;
    }
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{test}: {program} not installed (Debian: apt-get install prometheus)"
    );
    eprintln!("SKIPPED {test}: {program} not installed (Debian: apt-get install prometheus)");
    false
}

/// Runs `promtool ARGS` in `dir`; panics with its output unless it succeeds.
fn promtool(dir: &Path, args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    if !installed("alert_rules_pass_promtool_and_their_unit_tests", "promtool") {
        return;
    }
    let dir = deploy_dir().join("prometheus");
    promtool(&dir, &["check", "rules", "gridcap-alerts.yml"]);
    promtool(&dir, &["test", "rules", "gridcap-alerts.test.yml"]);
    promtool(&dir, &["check", "config", "prometheus.yml"]);
}

/// Every `expr` of the dashboard's panels.
fn dashboard_queries() -> Vec<String> {
    let path = deploy_dir().join("grafana").join("gridcap-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(
        queries.len() >= 15,
        "only {} queries in {}",
        queries.len(),
        path.display()
    );
    queries
}

/// `text` for a URL's query string.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result of an instant query: the series Prometheus returned.
async fn query(prometheus: SocketAddr, promql: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/query?query={}", percent_encode(promql));
    match http::try_get(prometheus, &path).await {
        Ok(reply) if reply.status == 200 => {
            let body = reply.json();
            assert_eq!(body["status"], "success", "{promql}: {body}");
            body["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
        Ok(reply) => panic!("{promql}: HTTP {}: {}", reply.status, reply.text()),
        Err(_) => Vec::new(),
    }
}

/// Prometheus scraping `targets` every second, with its data under `dir`.
fn start_prometheus(dir: &TestDir, listen: SocketAddr, targets: &[SocketAddr]) -> Proc {
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: gridcap\n    static_configs:\n      - targets: [{}]\n",
        list.join(", ")
    );
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let mut command = Command::new("prometheus");
    command
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={listen}"));
    Proc::spawn("prometheus", command, &dir.path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answers_every_dashboard_query_from_real_nodes() {
    let test = "prometheus_answers_every_dashboard_query_from_real_nodes";
    if !installed(test, "prometheus") || !redis_available() {
        return;
    }
    let dir = TestDir::new(test);
    let options = NodeOptions::default();
    let stateful = Cluster::stateful(&dir, &["a", "b"], &options).await;
    let redis = RedisServer::start().await;
    let stateless = Cluster::stateless(&dir, &["s"], &Redis::Single(redis.url()), &options).await;
    let nodes: Vec<_> = stateful.nodes.iter().chain(&stateless.nodes).collect();
    let admins: Vec<SocketAddr> = nodes.iter().map(|n| n.admin).collect();
    let listen = free_addr();
    let _prometheus = start_prometheus(&dir, listen, &admins);

    // Bots on a stateful node and on the stateless one; a refused handshake
    // (plain GET of /ws) for the refusals panel.
    let run = Duration::from_secs(40);
    let mut bots = Vec::new();
    for node in [&stateful.nodes[0], &stateless.nodes[0]] {
        let url = node.ws_url();
        let args = [
            "--url",
            &url,
            "--games",
            "2",
            "--players",
            "2",
            "--rate",
            "5",
            "--duration",
            "40s",
            "--game-duration",
            "3s",
            "--ramp-up",
            "1s",
            "--seed",
            "11",
        ];
        bots.push(Bots::start(&dir, &format!("bots-{}", node.id), &args, run));
    }
    for node in &nodes {
        assert_eq!(http::get(node.addr, "/ws").await.status, 400);
    }

    let queries = dashboard_queries();
    // Each ask queries only those still without data.
    let empty = &std::sync::Mutex::new(queries.clone());
    let bots_ref = &bots;
    let every = Duration::from_millis(500);
    testkit::poll::until_every(Duration::from_secs(35), every, move || async move {
        let asked = empty.lock().expect("queries").clone();
        let mut still = Vec::new();
        for q in asked {
            if query(listen, &q).await.is_empty() {
                still.push(q);
            }
        }
        let done = still.is_empty();
        let report = format!(
            "dashboard queries without data from Prometheus: {still:#?}\n{}",
            bots_ref.iter().map(Bots::log_tail).collect::<String>()
        );
        *empty.lock().expect("queries") = still;
        done.then_some(()).ok_or(report)
    })
    .await;
    // The numbers are the nodes' own: captures are counted while bots play.
    let captures = query(
        listen,
        "sum(rate(gridcap_captures_total{job=\"gridcap\"}[1m]))",
    )
    .await;
    let value: f64 = captures[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(value > 0.0, "no captures/s while bots play: {captures:?}");
}
