//! Bots over wss: a TLS server in this process with a self-signed
//! certificate made by the test (rcgen), trusted with `--ca-cert`.

// Helpers outside #[test] fns are test code too: a failed set-up should panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, n};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_over_wss_has_no_errors() {
    let server = Server::start_tls("wss-run").await;
    // By name and by IP: the certificate names both.
    let by_name = format!("wss://localhost:{}/ws", server.addr.port());
    let by_ip = format!("wss://{}/ws", server.addr);
    let cert = server.cert.as_ref().unwrap().display().to_string();
    let flags = format!(
        "--url {by_name} --url {by_ip} --ca-cert {cert} --games 2 --players 3 --rate 20 --duration 2s --game-duration 1000ms --ramp-up 100ms"
    );
    let (code, r) = server.run_bots(&flags).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(n(&r, "errors"), 0, "{r:#}");
    assert_eq!(n(&r, "disconnects"), 0, "{r:#}");
    assert_eq!(n(&r, "connections"), 6, "{r:#}");
    assert!(n(&r, "captures") > 0, "{r:#}");
    assert_eq!(n(&r, "attempts"), n(&r, "answered"), "{r:#}");
    assert!(n(&r, "games_completed") > 0, "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_cert_a_self_signed_server_is_refused() {
    let server = Server::start_tls("wss-untrusted").await;
    let url = format!("wss://{}/ws", server.addr);
    let flags = format!("--url {url} --idle --games 1 --players 2 --duration 300ms --ramp-up 0s");
    let (_, r) = server.run_bots(&flags).await;
    assert_eq!(n(&r, "connections"), 0, "{r:#}");
    assert!(n(&r, "errors") > 0, "{r:#}");
}
