//! The bots tests' harness: a gridcap server in this process (plain, or TLS
//! with a self-signed certificate made by the test), and `gridcap bots` run
//! against it with a JSON report.

// Each test binary uses part of the harness.
#![allow(dead_code, unreachable_pub)]

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

/// A server on 127.0.0.1:0; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    /// The certificate the server presents (TLS servers only).
    pub cert: Option<PathBuf>,
    /// The test's own directory: the certificate, the bots' reports.
    dir: PathBuf,
    _stop: oneshot::Sender<()>,
}

impl Server {
    /// A plain server with `options`; `name` names its directory.
    pub async fn start(name: &str, options: ServeOptions) -> Server {
        let dir = test_dir(name);
        Self::run(dir, None, options).await
    }

    /// A TLS server with a fresh self-signed certificate for `localhost`
    /// and `127.0.0.1`.
    pub async fn start_tls(name: &str) -> Server {
        let dir = test_dir(name);
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        let options = ServeOptions {
            tls_cert: Some(cert_path.clone()),
            tls_key: Some(key_path),
            ..ServeOptions::default()
        };
        Self::run(dir, Some(cert_path), options).await
    }

    async fn run(dir: PathBuf, cert: Option<PathBuf>, options: ServeOptions) -> Server {
        let config = options.resolve().unwrap();
        let listeners = gridcap::server::Listeners {
            public: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            admin: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = listeners.public.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(gridcap::server::run(listeners, config, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            cert,
            dir,
            _stop: stop,
        }
    }

    /// `ws://addr/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Runs `gridcap bots` with `flags` (whitespace-separated) plus
    /// `--quiet --json`; returns (exit code, JSON report).
    pub async fn run_bots(&self, flags: &str) -> (i32, Value) {
        let path = self.dir.join("report.json");
        let path_text = path.to_string_lossy().into_owned();
        let mut argv = vec!["bots", "--quiet", "--json", &path_text];
        argv.extend(flags.split_whitespace());
        let args = Cli::try_parse_from(argv).unwrap().args;
        let code = bots::run(args).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        (code, serde_json::from_str(&text).unwrap())
    }
}

/// `gridcap bots` flags from one whitespace-separated line (starting with `bots`).
pub fn parse_bots_args(line: &str) -> BotArgs {
    Cli::try_parse_from(line.split_whitespace()).unwrap().args
}

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridcap-bots-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The report's number `key`; panics with the report when it is missing.
pub fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v:#}"))
}
