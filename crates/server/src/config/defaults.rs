//! The value of every option left unset, written once: `resolve()` applies
//! it and `--help` prints it ([`document_defaults`]), so the two cannot
//! disagree.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, Command};
use game_logic::SettingsBounds;
use serde::Serialize;
use transport::SessionLimits;

use super::{LogFormat, Mode};

/// The defaults, one field per [`super::ServeOptions`] field that has one,
/// under the same name and in the same unit. Options whose absence means
/// something (`--redis`, `--tls-cert`, …) have no field here.
///
/// The session limits and game bounds come from `transport` and
/// `game_logic`, which own them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Defaults {
    pub(crate) mode: Mode,
    pub(crate) probe_interval_ms: u64,
    pub(crate) peer_timeout_ms: u64,
    pub(crate) redis_wait_replicas: u32,
    pub(crate) redis_wait_timeout_ms: u64,
    pub(crate) listen: SocketAddr,
    pub(crate) admin_listen: SocketAddr,
    pub(crate) web_root: PathBuf,
    pub(crate) min_players: u8,
    pub(crate) lobby_start_ms: u64,
    pub(crate) min_duration_ms: u64,
    pub(crate) max_duration_ms: u64,
    pub(crate) max_message_bytes: usize,
    pub(crate) rate_limit: u32,
    pub(crate) rate_burst: u32,
    pub(crate) rate_strikes: u32,
    pub(crate) max_bad_messages: u32,
    pub(crate) ping_interval_ms: u64,
    pub(crate) idle_timeout_ms: u64,
    pub(crate) outbox_capacity: usize,
    pub(crate) write_timeout_ms: u64,
    pub(crate) close_timeout_ms: u64,
    pub(crate) ws_read_buffer: usize,
    pub(crate) ws_write_buffer: usize,
    pub(crate) write_hold_max_ms: u64,
    pub(crate) ws_park_after_ms: u64,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) max_connections: usize,
    pub(crate) max_overload_closes: usize,
    pub(crate) max_creates_per_ip: u32,
    pub(crate) max_creates_per_connection: u32,
    pub(crate) drain_timeout_ms: u64,
    pub(crate) drain_notice_ms: u64,
    pub(crate) log_format: LogFormat,
    pub(crate) handshake_timeout_ms: u64,
    pub(crate) max_head_bytes: usize,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) trusted_proxies: Vec<IpAddr>,
    pub(crate) first_message_timeout_ms: u64,
    pub(crate) max_games: usize,
    pub(crate) max_spectators: usize,
    pub(crate) max_unattended_games: usize,
    pub(crate) redis_game_lease_ms: u64,
}

/// `d` in whole milliseconds, the unit of every `*_ms` option.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Default for Defaults {
    fn default() -> Defaults {
        let limits = SessionLimits::default();
        let bounds = SettingsBounds::default();
        Defaults {
            mode: Mode::Single,
            probe_interval_ms: 1_000,
            peer_timeout_ms: 2_000,
            redis_wait_replicas: 0,
            redis_wait_timeout_ms: 100,
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9091)),
            web_root: PathBuf::from("web-client/dist"),
            min_players: bounds.min_players,
            lobby_start_ms: ms(bounds.lobby_start),
            min_duration_ms: ms(bounds.min_duration),
            max_duration_ms: ms(bounds.max_duration),
            max_message_bytes: limits.max_message_bytes,
            rate_limit: limits.rate_per_sec,
            rate_burst: limits.rate_burst,
            rate_strikes: limits.max_rate_strikes,
            max_bad_messages: limits.max_bad_messages,
            ping_interval_ms: ms(limits.ping_interval),
            idle_timeout_ms: ms(limits.idle_timeout),
            outbox_capacity: limits.outbox_capacity,
            write_timeout_ms: ms(limits.write_timeout),
            close_timeout_ms: ms(limits.close_timeout),
            ws_read_buffer: limits.read_buffer_bytes,
            ws_write_buffer: limits.write_buffer_bytes,
            write_hold_max_ms: ms(limits.write_hold_max),
            ws_park_after_ms: ms(limits.park_after),
            allowed_origins: Vec::new(),
            max_connections: 10_000,
            max_overload_closes: 64,
            max_creates_per_ip: 0,
            // A round takes at least --min-duration-ms or 81 captures: an
            // honest connection creates a few games a minute at most.
            max_creates_per_connection: 30,
            drain_timeout_ms: 35_000,
            // HAProxy's deploy/ checks (inter 1 s, fall 2) notice within 2 s.
            drain_notice_ms: 3_000,
            log_format: LogFormat::Text,
            handshake_timeout_ms: 10_000,
            max_head_bytes: 16 * 1024,
            max_connections_per_ip: 0,
            trusted_proxies: Vec::new(),
            first_message_timeout_ms: ms(limits.first_message_timeout),
            max_games: 100_000,
            max_spectators: 100,
            // At 60 s retention (protocol §5), 16 abandoned waiting games a
            // second before any is dropped early; a flood evicts its own.
            max_unattended_games: 1_000,
            redis_game_lease_ms: ms(crate::games::redis::layout::GAME_LEASE),
        }
    }
}

impl Defaults {
    /// Each default as `--help` shows it, by argument id: as it would be
    /// typed on the command line, an empty list as "none".
    pub(crate) fn shown(&self) -> BTreeMap<String, String> {
        // Serde rather than a hand list, so a field cannot be left out.
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(self) else {
            return BTreeMap::new();
        };
        fields
            .into_iter()
            .map(|(id, value)| {
                let text = match value {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Array(items) if items.is_empty() => "none".to_owned(),
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                (id, text)
            })
            .collect()
    }
}

/// Appends "[default: …]" to the help of every `serve` argument that has a
/// default. `main` applies it to the `serve` subcommand before parsing.
pub fn document_defaults(mut serve: Command) -> Command {
    let shown = Defaults::default().shown();
    let ids: Vec<_> = serve.get_arguments().map(|a| a.get_id().clone()).collect();
    for id in ids {
        if let Some(text) = shown.get(id.as_str()) {
            let suffix = format!("[default: {text}]");
            serve = serve.mut_arg(id, |arg| with_suffix(arg, &suffix));
        }
    }
    serve
}

fn with_suffix(arg: Arg, suffix: &str) -> Arg {
    let help = match arg.get_help() {
        Some(help) => format!("{help} {suffix}"),
        None => suffix.to_owned(),
    };
    let long = arg.get_long_help().map(|long| format!("{long} {suffix}"));
    let arg = arg.help(help);
    match long {
        Some(long) => arg.long_help(long),
        None => arg,
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;
    use crate::config::{Config, ServeOptions};

    fn serve_command() -> Command {
        ServeOptions::augment_args(Command::new("serve").no_binary_name(true))
    }

    fn help_of(arg: &Arg) -> String {
        arg.get_long_help()
            .or(arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn no_help_text_writes_a_default_by_hand() {
        for arg in serve_command().get_arguments() {
            let help = help_of(arg);
            assert!(!help.contains("[default:"), "{}: {help}", arg.get_id());
        }
    }

    #[test]
    fn every_default_belongs_to_an_argument() {
        let ids: Vec<String> = serve_command()
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        let shown = Defaults::default().shown();
        assert!(shown.len() > 25, "{shown:?}");
        for id in shown.keys() {
            assert!(ids.contains(id), "default for unknown option {id}");
        }
    }

    /// What `--help` says a default is, typed back as the flag (or, for an
    /// empty list, written as `key = []`), resolves to the same configuration
    /// as leaving the option out.
    #[test]
    fn help_shows_the_default_resolve_uses() {
        let unset = format!("{:?}", Config::default());
        let command = document_defaults(serve_command());
        let mut documented = 0;
        for arg in command.get_arguments() {
            let help = help_of(arg);
            let Some(text) = help
                .rsplit_once("[default: ")
                .and_then(|(_, rest)| rest.strip_suffix(']'))
            else {
                continue;
            };
            documented += 1;
            let id = arg.get_id().as_str();
            let options = if text == "none" {
                let file = format!("{id} = []");
                toml::from_str::<ServeOptions>(&file).unwrap()
            } else {
                let flag = format!("--{}", arg.get_long().unwrap());
                let matches = command
                    .clone()
                    .try_get_matches_from([flag.as_str(), text])
                    .unwrap();
                ServeOptions::from_arg_matches(&matches).unwrap()
            };
            let resolved = format!("{:?}", options.resolve().unwrap());
            assert_eq!(resolved, unset, "--help says {id} defaults to {text}");
        }
        assert_eq!(documented, Defaults::default().shown().len());
    }

    #[test]
    fn help_keeps_the_text_and_adds_the_default() {
        let command = document_defaults(serve_command());
        let listen = command
            .get_arguments()
            .find(|a| a.get_id() == "listen")
            .unwrap();
        let help = help_of(listen);
        assert!(help.starts_with("Address and port"), "{help}");
        assert!(help.ends_with("[default: 0.0.0.0:8080]"), "{help}");
    }
}
