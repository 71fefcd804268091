//! `gridcap bots` flags, and their resolution into a checked [`Plan`].
//!
//! Parsing (clap) and checking are separate so the checks are plain
//! functions with unit tests: [`parse_duration`] for `30s`-style values,
//! [`Plan::resolve`] for ranges, URLs and the loopback rule.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_tungstenite::tungstenite::http::Uri;

use crate::error::BotError;

/// Options of `gridcap bots`.
///
/// Durations accept `ms`, `s`, `m` and `h` suffixes (`500ms`, `30s`, `2m`);
/// a bare number is seconds.
#[derive(Debug, Clone, Args)]
pub struct BotArgs {
    /// Server WebSocket URL (`ws://` or `wss://`, see --ca-cert); repeat it
    /// to spread the bots over several nodes (bot i connects to URL i mod n).
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "ws://127.0.0.1:8080/ws"
    )]
    pub urls: Vec<String>,

    /// Games played at once.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub games: u32,

    /// Bots per game, 2..=8; the first creates the game, the others join, and
    /// the game starts when all are in. With --quick-play: the `max_players`
    /// every bot asks quick play for.
    #[arg(long, value_name = "K", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(2..=8))]
    pub players: u8,

    /// Capture attempts per second per bot, open loop: attempts follow a fixed
    /// schedule whatever the answers, and latency is measured from each
    /// attempt's scheduled instant (no coordinated omission).
    #[arg(long, value_name = "R", default_value_t = 2.0)]
    pub rate: f64,

    /// Length of the whole run; games are re-created as they end.
    #[arg(long, value_name = "D", default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Round length asked for in `create` (the server accepts 1s..=300s by
    /// default) [default: 30s]. Not with --quick-play: quick play has no
    /// round length, its games get the server's default (30 s, within the
    /// server's --min-duration-ms..=--max-duration-ms).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub game_duration: Option<Duration>,

    /// Slow fills: the guest in seat s of a game joins s times this long
    /// after the host created it, as human players trickle in (the host
    /// starts an unfilled game this much later too). 0: all at once. Not
    /// with --quick-play.
    #[arg(long, value_name = "D", default_value = "0s", value_parser = parse_duration)]
    pub fill_gap: Duration,

    /// Spread the bots' first connections evenly over this time; rates in the
    /// report are measured after it.
    #[arg(long, value_name = "D", default_value = "1s", value_parser = parse_duration)]
    pub ramp_up: Duration,

    /// Local address to bind each connection to before connecting; repeat it
    /// to go past ~28k connections per address (bot i uses address i mod n).
    /// Default: chosen by the kernel.
    #[arg(long = "source-ip", value_name = "ADDR")]
    pub source_ips: Vec<IpAddr>,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Exit with code 1 when the fan-out or the capture p99 latency is above
    /// this many milliseconds. Default: no limit.
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,

    /// Seed of every random choice (cells, schedule phases), for repeatable runs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Idle players: connect, create or join, then stay connected without
    /// capturing (games are created with one seat more than --players so they
    /// never start). For connection-capacity benchmarks.
    #[arg(long)]
    pub idle: bool,

    /// Enter through matchmaking: every bot sends `quick_play` for a
    /// --players game instead of create/join (--games x --players bots in
    /// all; the server decides who plays with whom), and again after each
    /// game. Public games start by themselves when full (or after the
    /// server's --lobby-start-ms); bots never send `start`. Every other
    /// option keeps its meaning, except --game-duration and --idle, which
    /// are refused with it.
    #[arg(long)]
    pub quick_play: bool,

    /// Spectators per game: each connects like a player (same URLs and
    /// source addresses), sends `watch` for its slot's current game, follows
    /// it to game over and watches the slot's next game. Their deliveries
    /// and fan-out latency are reported apart from the players'. Not with
    /// --quick-play or --idle.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub spectators: u32,

    /// No live progress line on stderr (it is also off when stderr is not a terminal).
    #[arg(long, short)]
    pub quiet: bool,

    /// Allow targets and source addresses outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_remote: bool,

    /// For `wss://` URLs: trust exactly the certificates in this PEM file
    /// (e.g. a server's self-signed certificate) instead of the public web
    /// roots.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// Parses `500ms`, `30s`, `2m`, `1h`, or a bare number of seconds (decimals allowed).
///
/// ```
/// use std::time::Duration;
/// use bots::args::parse_duration;
///
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("3 fortnights").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (try 500ms, 30s, 2m)"))?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

/// Round length asked for in `create` when --game-duration is not given.
pub const DEFAULT_GAME_DURATION_MS: i64 = 30_000;

/// One server to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, used for the handshake's request line and `Host`.
    pub url: String,
    /// Resolved once at start so connects do not resolve names again.
    pub addr: SocketAddr,
    /// `wss://` targets: the TLS settings (the server name is the URL's host).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Checked settings of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Servers; bot i uses `targets[i % n]`.
    pub targets: Vec<Target>,
    /// Local addresses; bot i binds `source_ips[i % n]` when not empty.
    pub source_ips: Vec<IpAddr>,
    /// Games played at once.
    pub games: u32,
    /// Bots per game.
    pub players: u8,
    /// Attempts per second per bot (0: never capture).
    pub rate: f64,
    /// Whole run.
    pub duration: Duration,
    /// Round length for `create`, in ms; `None` with quick play (the
    /// server's default applies).
    pub game_duration_ms: Option<i64>,
    /// Connection spread.
    pub ramp_up: Duration,
    /// Slow fills: guest s joins s times this long after the game appears.
    pub fill_gap: Duration,
    /// Seed of the random choices.
    pub seed: u64,
    /// Connect and sit.
    pub idle: bool,
    /// Enter with `quick_play` instead of create/join.
    pub quick_play: bool,
    /// Spectators per game.
    pub spectators: u32,
    /// Latency limit for the exit code, in ms.
    pub max_p99_ms: Option<f64>,
    /// JSON report file.
    pub json: Option<PathBuf>,
    /// Show the live progress line (if stderr is a terminal).
    pub progress: bool,
}

impl Plan {
    /// Total number of bots.
    pub fn bots(&self) -> usize {
        self.games as usize * usize::from(self.players)
    }

    /// Checks `args`, resolves the URLs and enforces the loopback rule.
    pub async fn resolve(args: BotArgs) -> Result<Plan, BotError> {
        let invalid = |s: &str| Err(BotError::InvalidOption(s.to_owned()));
        if args.games == 0 {
            return invalid("--games must be at least 1");
        }
        if !(args.rate.is_finite() && (0.0..=10_000.0).contains(&args.rate)) {
            return invalid("--rate must be between 0 and 10000 attempts per second");
        }
        if args.duration.is_zero() {
            return invalid("--duration must be more than 0");
        }
        if args.quick_play && args.idle {
            return invalid(
                "--idle cannot be used with --quick-play: idle bots need games that never \
                 fill, and quick-play games start by themselves",
            );
        }
        if args.spectators > 0 && (args.quick_play || args.idle) {
            return invalid(
                "--spectators cannot be used with --quick-play or --idle: spectators watch \
                 the games their slot's host creates, and idle games never start",
            );
        }
        if args.quick_play && args.game_duration.is_some() {
            return invalid(
                "--game-duration cannot be used with --quick-play: quick play asks for no \
                 round length, its games get the server's default (set the server's \
                 --min-duration-ms/--max-duration-ms to change it)",
            );
        }
        if args.quick_play && !args.fill_gap.is_zero() {
            return invalid(
                "--fill-gap cannot be used with --quick-play: quick play has no guests \
                 joining a host's game",
            );
        }
        let game_ms = match args.game_duration {
            _ if args.quick_play => None,
            Some(d) => Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            None => Some(DEFAULT_GAME_DURATION_MS),
        };
        if game_ms.is_some_and(|ms| !(1_000..=300_000).contains(&ms)) {
            return invalid("--game-duration must be between 1s and 300s");
        }
        if let Some(limit) = args.max_p99_ms
            && !(limit.is_finite() && limit > 0.0)
        {
            return invalid("--max-p99-ms must be a positive number");
        }
        if args.urls.is_empty() {
            return invalid("give at least one --url");
        }
        let mut targets = Vec::with_capacity(args.urls.len());
        let mut tls = None;
        for url in &args.urls {
            let (addrs, secure) = resolve_url(url).await?;
            if !args.allow_remote
                && let Some(remote) = addrs.iter().find(|a| !is_loopback(a.ip()))
            {
                return Err(BotError::NotLoopback {
                    what: "target",
                    addr: remote.ip(),
                });
            }
            let tls = if secure {
                if tls.is_none() {
                    tls = Some(client_config(args.ca_cert.as_deref())?);
                }
                tls.clone()
            } else {
                None
            };
            if let Some(&addr) = addrs.first() {
                targets.push(Target {
                    url: url.clone(),
                    addr,
                    tls,
                });
            }
        }
        if args.ca_cert.is_some() && tls.is_none() {
            return invalid("--ca-cert needs at least one wss:// --url");
        }
        for &ip in &args.source_ips {
            if !args.allow_remote && !is_loopback(ip) {
                return Err(BotError::NotLoopback {
                    what: "source",
                    addr: ip,
                });
            }
            if targets.iter().any(|t| t.addr.is_ipv4() != ip.is_ipv4()) {
                return invalid("every --source-ip must be of the same IP family as every --url");
            }
        }
        Ok(Plan {
            targets,
            source_ips: args.source_ips,
            games: args.games,
            players: args.players,
            rate: if args.idle { 0.0 } else { args.rate },
            duration: args.duration,
            game_duration_ms: game_ms,
            ramp_up: args.ramp_up,
            fill_gap: args.fill_gap,
            seed: args.seed,
            idle: args.idle,
            quick_play: args.quick_play,
            spectators: args.spectators,
            max_p99_ms: args.max_p99_ms,
            json: args.json,
            progress: !args.quiet,
        })
    }
}

/// Whether `ip` is in 127.0.0.0/8 or is ::1 (or an IPv4-mapped loopback).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The TLS settings of `wss://` targets (rustls, ring): roots are the
/// certificates of `ca_cert` when given, else the public web roots.
fn client_config(ca_cert: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, BotError> {
    let mut roots = RootCertStore::empty();
    match ca_cert {
        Some(path) => {
            let bad = |why: String| {
                BotError::InvalidOption(format!("--ca-cert {}: {why}", path.display()))
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in the file".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BotError::InvalidOption(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Parses a `ws://` or `wss://` URL and resolves its host to every address
/// it names (at least one), and says whether it is `wss`; the caller checks
/// the addresses against the loopback rule and connects to the first.
async fn resolve_url(url: &str) -> Result<(Vec<SocketAddr>, bool), BotError> {
    let bad = |why: &str| BotError::InvalidUrl {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad("expected ws://host:port/path or wss://host:port/path")),
    };
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    if addrs.is_empty() {
        return Err(bad("the host name resolves to nothing"));
    }
    Ok((addrs, secure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BotArgs,
    }

    fn args(line: &[&str]) -> BotArgs {
        let mut argv = vec!["bots"];
        argv.extend_from_slice(line);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn durations_take_units_and_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn defaults_are_as_documented() {
        let a = args(&[]);
        assert_eq!(a.urls, vec!["ws://127.0.0.1:8080/ws".to_owned()]);
        assert_eq!((a.games, a.players, a.rate, a.seed), (10, 4, 2.0, 1));
        assert_eq!(a.duration, Duration::from_secs(30));
        assert_eq!(a.ramp_up, Duration::from_secs(1));
        assert!(!a.idle && !a.allow_remote && !a.quick_play);
        assert_eq!(a.game_duration, None, "30 s, applied by Plan::resolve");
        assert_eq!(a.fill_gap, Duration::ZERO, "guests join at once");
        let a = args(&[
            "--url",
            "ws://127.0.0.1:1/ws",
            "--url",
            "ws://127.0.0.2:1/ws",
        ]);
        assert_eq!(a.urls.len(), 2, "repeated --url replaces the default");
        assert!(Cli::try_parse_from(["bots", "--players", "9"]).is_err());
        assert!(Cli::try_parse_from(["bots", "--players", "1"]).is_err());
    }

    #[tokio::test]
    async fn loopback_rule() {
        let plan = Plan::resolve(args(&[
            "--url",
            "ws://127.0.0.3:9/ws",
            "--source-ip",
            "127.0.0.2",
        ]))
        .await
        .unwrap();
        assert_eq!(plan.targets[0].addr, "127.0.0.3:9".parse().unwrap());
        assert!(
            Plan::resolve(args(&["--url", "ws://[::1]:9/ws"]))
                .await
                .is_ok()
        );
        let remote = Plan::resolve(args(&["--url", "ws://192.0.2.1:9/ws"])).await;
        assert!(matches!(
            remote,
            Err(BotError::NotLoopback { what: "target", .. })
        ));
        let source = Plan::resolve(args(&[
            "--url",
            "ws://127.0.0.1:9/ws",
            "--source-ip",
            "192.0.2.1",
        ]))
        .await;
        assert!(matches!(
            source,
            Err(BotError::NotLoopback { what: "source", .. })
        ));
        let allowed =
            Plan::resolve(args(&["--url", "ws://192.0.2.1:9/ws", "--allow-remote"])).await;
        assert!(allowed.is_ok());
        let family = Plan::resolve(args(&[
            "--url",
            "ws://[::1]:9/ws",
            "--source-ip",
            "127.0.0.1",
        ]))
        .await;
        assert!(matches!(family, Err(BotError::InvalidOption(_))));
    }

    #[tokio::test]
    async fn ranges_are_checked() {
        for bad in [
            &["--games", "0"][..],
            &["--rate=-1"],
            &["--rate", "NaN"],
            &["--duration", "0s"],
            &["--game-duration", "500ms"],
            &["--game-duration", "301s"],
            &["--max-p99-ms", "0"],
            &["--url", "http://127.0.0.1/ws"],
            &[
                "--url",
                "wss://127.0.0.1/ws",
                "--ca-cert",
                "/nonexistent.pem",
            ],
            &["--url", "ws://127.0.0.1/ws", "--ca-cert", "/dev/null"],
        ] {
            assert!(Plan::resolve(args(bad)).await.is_err(), "{bad:?}");
        }
        let idle = Plan::resolve(args(&["--idle", "--rate", "50"]))
            .await
            .unwrap();
        assert_eq!(idle.rate, 0.0, "idle bots never capture");
        assert_eq!(idle.game_duration_ms, Some(30_000));
    }

    #[tokio::test]
    async fn quick_play_refuses_the_options_it_cannot_honour() {
        let plan = Plan::resolve(args(&["--quick-play", "--players", "3", "--rate", "5"]))
            .await
            .unwrap();
        assert!(plan.quick_play);
        assert_eq!((plan.players, plan.rate), (3, 5.0));
        assert_eq!(plan.game_duration_ms, None, "the server's default applies");
        for (bad, names) in [
            (&["--quick-play", "--idle"][..], "--idle"),
            (
                &["--quick-play", "--game-duration", "5s"],
                "--game-duration",
            ),
            (&["--quick-play", "--fill-gap", "2s"], "--fill-gap"),
        ] {
            match Plan::resolve(args(bad)).await {
                Err(BotError::InvalidOption(why)) => {
                    assert!(why.contains(names) && why.contains("--quick-play"), "{why}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let explicit = Plan::resolve(args(&["--game-duration", "5s"]))
            .await
            .unwrap();
        assert_eq!(explicit.game_duration_ms, Some(5_000));
    }

    #[tokio::test]
    async fn wss_urls_get_tls_settings_and_port_443() {
        let plan = Plan::resolve(args(&[
            "--url",
            "wss://127.0.0.1/ws",
            "--url",
            "ws://127.0.0.1/ws",
        ]))
        .await
        .unwrap();
        assert!(plan.targets[0].tls.is_some());
        assert_eq!(plan.targets[0].addr.port(), 443);
        assert!(plan.targets[1].tls.is_none());
        assert_eq!(plan.targets[1].addr.port(), 80);
        let empty = Plan::resolve(args(&[
            "--url",
            "wss://127.0.0.1/ws",
            "--ca-cert",
            "/dev/null",
        ]));
        assert!(empty.await.is_err(), "a --ca-cert without certificates");
    }
}
