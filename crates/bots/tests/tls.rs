//! Bots over wss: a TLS server in this process with a self-signed
//! certificate made by the test (rcgen), trusted with `--ca-cert`.

// Helpers outside #[test] fns are test code too: a failed set-up should panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use bots::BotArgs;
use clap::Parser;
use gridcap::config::ServeOptions;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: BotArgs,
}

/// A TLS server on 127.0.0.1:0 with a fresh self-signed certificate for
/// `localhost` and `127.0.0.1`; stops when dropped.
struct TlsServer {
    addr: SocketAddr,
    cert: PathBuf,
    dir: PathBuf,
    _stop: oneshot::Sender<()>,
}

async fn start_tls_server(name: &str) -> TlsServer {
    let dir = std::env::temp_dir().join(format!("gridcap-bots-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = ServeOptions {
        tls_cert: Some(cert_path.clone()),
        tls_key: Some(key_path),
        ..ServeOptions::default()
    }
    .resolve()
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(gridcap::server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    TlsServer {
        addr,
        cert: cert_path,
        dir,
        _stop: stop,
    }
}

/// Runs `gridcap bots` with `flags` plus `--json`, returns (exit code, JSON).
async fn run_bots(server: &TlsServer, flags: &[&str]) -> (i32, Value) {
    let path = server.dir.join("report.json");
    let path_text = path.to_string_lossy().into_owned();
    let mut argv = vec!["bots", "--quiet", "--json", &path_text];
    argv.extend_from_slice(flags);
    let args = Cli::try_parse_from(argv).unwrap().args;
    let code = bots::run(args).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    (code, serde_json::from_str(&text).unwrap())
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_over_wss_has_no_errors() {
    let server = start_tls_server("run").await;
    // By name and by IP: the certificate names both.
    let by_name = format!("wss://localhost:{}/ws", server.addr.port());
    let by_ip = format!("wss://{}/ws", server.addr);
    let cert = server.cert.to_string_lossy().into_owned();
    let flags = [
        "--url",
        &by_name,
        "--url",
        &by_ip,
        "--ca-cert",
        &cert,
        "--games",
        "2",
        "--players",
        "3",
        "--rate",
        "20",
        "--duration",
        "2s",
        "--game-duration",
        "1000ms",
        "--ramp-up",
        "100ms",
    ];
    let (code, r) = run_bots(&server, &flags).await;
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
    let server = start_tls_server("untrusted").await;
    let url = format!("wss://{}/ws", server.addr);
    let flags = [
        "--url",
        &url,
        "--idle",
        "--games",
        "1",
        "--players",
        "2",
        "--duration",
        "300ms",
        "--ramp-up",
        "0s",
    ];
    let (_, r) = run_bots(&server, &flags).await;
    assert_eq!(n(&r, "connections"), 0, "{r:#}");
    assert!(n(&r, "errors") > 0, "{r:#}");
}
