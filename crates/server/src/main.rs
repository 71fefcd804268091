//! The `gridcap` command line.

use std::io::Write;
use std::process::ExitCode;

use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use gridcap::admin::healthcheck::Check;
use gridcap::config::{Config, ServeOptions};
use gridcap::server::Listeners;

/// jemalloc, for idle memory (see the `jemalloc` feature in Cargo.toml).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// gridcap: a real-time multiplayer 9x9 grid-capture game server.
///
/// Players race to capture the 81 cells of a grid in a timed round; every
/// capture is broadcast over WebSocket as MessagePack (see docs/protocol.md).
#[derive(Debug, Parser)]
#[command(name = "gridcap", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a game server node: HTTP, the browser client and WebSocket on one port.
    ///
    /// Every setting is a flag, a GRIDCAP_* environment variable, or a key of
    /// the --config TOML file (flag > variable > file > default).
    Serve(Box<ServeOptions>),
    /// Drive bot players against one or more servers and report latencies.
    ///
    /// Bots play the real protocol over real WebSockets: the first bot of a
    /// game creates it, the others join, the host starts, every bot captures
    /// free cells at an open-loop rate. See docs/benchmarks.md for examples.
    Bots(Box<bots::BotArgs>),
    /// Ask a running node whether it is ready (exit 0) or not (exit 1).
    ///
    /// Reads the same configuration as `serve` (flags, GRIDCAP_* variables,
    /// --config) and asks the node's admin listener (--admin-listen) for
    /// `/readyz`, or `/healthz` with --live. For Docker's HEALTHCHECK and
    /// systemd's ExecStartPost.
    Healthcheck(Box<HealthcheckArgs>),
}

/// `gridcap healthcheck`'s own flags, then every `serve` setting.
#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// Ask `/healthz` (the process answers) instead of `/readyz` (the node
    /// takes games: not draining, its game store reachable).
    #[arg(long)]
    live: bool,
    /// Keep asking until the node answers 200 or this many ms have passed
    /// (0 = ask once).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    wait_ms: u64,
    /// Longest one request may take, in ms.
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    timeout_ms: u64,
    #[command(flatten)]
    serve: ServeOptions,
}

/// Parses a command line; `serve --help` shows every option's default.
fn parse_cli<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let command = Cli::command()
        .mut_subcommand("serve", gridcap::config::document_defaults)
        .mut_subcommand("healthcheck", gridcap::config::document_defaults);
    Cli::from_arg_matches(&command.try_get_matches_from(args)?)
}

fn main() -> ExitCode {
    let cli = parse_cli(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(options) => serve(*options),
        Command::Bots(args) => run_bots(*args),
        Command::Healthcheck(args) => healthcheck(*args),
    }
}

/// The configuration `serve` would run with, or exit code 2 with the reason.
fn resolve(options: ServeOptions) -> Result<Config, ExitCode> {
    options
        .merge_file()
        .and_then(ServeOptions::resolve)
        .map_err(|e| {
            eprintln!("gridcap: {e}");
            ExitCode::from(2)
        })
}

/// A multi-threaded runtime, or the reason it could not start.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("gridcap: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let config = match resolve(args.serve) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let check = Check {
        admin: config.admin_listen,
        live: args.live,
        wait: Duration::from_millis(args.wait_ms),
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(check.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("gridcap healthcheck: {why}");
            ExitCode::FAILURE
        }
    }
}

fn serve(options: ServeOptions) -> ExitCode {
    let mut config = match resolve(options) {
        Ok(c) => c,
        Err(code) => return code,
    };
    gridcap::telemetry::init_logging(config.log_format);
    gridcap::edge::nofile::fit(&mut config);
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let listeners = match Listeners::bind(&config).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("gridcap: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (addr, admin) = match (listeners.public.local_addr(), listeners.admin.local_addr()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("gridcap: cannot read the bound address: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut out = std::io::stdout().lock();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let _ignored = writeln!(out, "gridcap: listening on {scheme}://{addr}");
        if addr.ip().is_unspecified() {
            let _ignored = writeln!(
                out,
                "gridcap: open {scheme}://127.0.0.1:{} to play",
                addr.port()
            );
        }
        let _ignored = writeln!(out, "gridcap: admin on http://{admin}/admin");
        let _ignored = out.flush();
        drop(out);
        match gridcap::server::run(listeners, config, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gridcap: server failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn run_bots(args: bots::BotArgs) -> ExitCode {
    gridcap::telemetry::init_logging(gridcap::config::LogFormat::Text);
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(bots::run(args)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("gridcap bots: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_options(args: &[&str]) -> ServeOptions {
        let argv = ["gridcap", "serve"].iter().chain(args);
        match parse_cli(argv).unwrap().command {
            Command::Serve(options) => *options,
            _ => unreachable!("parsed `serve`"),
        }
    }

    #[test]
    fn serve_help_shows_defaults_and_variables() {
        let mut command =
            Cli::command().mut_subcommand("serve", gridcap::config::document_defaults);
        let help = command
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("[default: 0.0.0.0:8080]"), "{help}");
        assert!(help.contains("[env: GRIDCAP_RATE_LIMIT=]"), "{help}");
        let err = parse_cli(["gridcap", "serve", "--help"]).unwrap_err();
        assert!(err.to_string().contains("[default: 20]"), "{err}");
    }

    /// Set in the child process that `flag_beats_env_beats_file_beats_default`
    /// runs, so that its variables never reach the other tests' threads.
    const CHILD: &str = "GRIDCAP_TEST_PRECEDENCE_CHILD";

    /// flag > `GRIDCAP_*` variable > `GRIDCAP_CONFIG` file > default, from a
    /// real command line. The variables are set for a copy of this test
    /// binary running only this test (tests share one environment, and
    /// `set_var` is unsafe).
    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        if std::env::var_os(CHILD).is_some() {
            let options = serve_options(&["--rate-limit", "9"]);
            let config = options.merge_file().unwrap().resolve().unwrap();
            assert_eq!(config.limits.rate_per_sec, 9, "flag over variable and file");
            assert_eq!(config.limits.rate_burst, 11, "variable over file");
            assert_eq!(config.max_games, 8, "file over default");
            assert_eq!(config.max_connections, 10_000, "default");
            return;
        }
        let dir = std::env::temp_dir().join(format!("gridcap-precedence-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gridcap.toml");
        std::fs::write(&file, "rate_limit = 5\nrate_burst = 6\nmax_games = 8\n").unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GRIDCAP_") {
                child.env_remove(name);
            }
        }
        let out = child
            .args(["--exact", "tests::flag_beats_env_beats_file_beats_default"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("GRIDCAP_CONFIG", &file)
            .env("GRIDCAP_RATE_LIMIT", "10")
            .env("GRIDCAP_RATE_BURST", "11")
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && report.contains("1 passed"),
            "{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
