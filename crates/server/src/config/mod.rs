//! `gridcap serve` configuration: command-line flags, `GRIDCAP_*`
//! environment variables and an optional TOML file, merged in that order of
//! precedence, then defaults.
//!
//! # Layout
//!
//! - [`options`]: [`ServeOptions`], both the clap arguments and the TOML
//!   schema (every field optional), so a flag, its variable and its file key
//!   can never drift apart: `--max-message-bytes`, `GRIDCAP_MAX_MESSAGE_BYTES`
//!   and `max_message_bytes = 4096` are the same setting.
//! - [`file`]: [`ServeOptions::merge_file`], the TOML file layered under the
//!   flags field by field through serde (no list of names to forget one in).
//! - [`defaults`]: every default, written once; `resolve()` applies it and
//!   [`document_defaults`] prints it in `--help`.
//! - [`topology`]: the three modes; [`Topology`] holds the settings of
//!   exactly one of them.
//! - [`limits`]: game bounds, session and accept limits, range-checked.
//! - here: [`Config`], what the server runs with, and
//!   [`ServeOptions::resolve`], which builds it.
//!
//! ```
//! use gridcap::config::{Mode, ServeOptions};
//!
//! let config = ServeOptions {
//!     mode: Some(Mode::Stateless),
//!     redis: Some("redis://127.0.0.1:6379".into()),
//!     ..Default::default()
//! }
//! .resolve()?;
//! assert_eq!(config.topology.mode(), Mode::Stateless);
//! assert_eq!(config.topology.node_id(), "stateless");
//! # Ok::<(), gridcap::config::ConfigError>(())
//! ```

mod defaults;
mod file;
mod limits;
mod options;
mod topology;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use game_logic::SettingsBounds;
use transport::SessionLimits;

use crate::edge::accept::AcceptLimits;
pub use defaults::document_defaults;
pub use options::{LogFormat, ServeOptions};
pub use topology::{
    ClusterConfig, Mode, Peer, RedisTarget, ReplicaWait, StatelessConfig, Topology,
};

/// A configuration problem, reported before the server starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file is malformed or has an unknown key.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A value is out of its range.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// The resolved configuration of one server.
#[derive(Debug, Clone)]
pub struct Config {
    /// The mode and its own settings.
    pub topology: Topology,
    /// Where to listen for players (the game, the client, health).
    pub listen: SocketAddr,
    /// Where to listen for operators and peers (metrics, node and cluster
    /// reports, the admin page).
    pub admin_listen: SocketAddr,
    /// The browser client's files.
    pub web_root: PathBuf,
    /// What clients may ask for when creating games.
    pub bounds: SettingsBounds,
    /// Per-connection limits.
    pub limits: SessionLimits,
    /// Allowed Origins (normalised, no trailing slash); empty allows all.
    pub allowed_origins: Vec<String>,
    /// Most WebSocket connections at once.
    pub max_connections: usize,
    /// Connections past `max_connections` upgraded at once only to be
    /// closed with 1013; more get HTTP 503.
    pub max_overload_closes: usize,
    /// Games one client address may create per minute (0 = no limit).
    pub max_creates_per_ip: u32,
    /// Games one connection may create per minute (0: no limit).
    pub max_creates_per_connection: u32,
    /// How long active games may finish during a shutdown.
    pub drain_timeout: Duration,
    /// Stateless: how long `/readyz` says 503 before sessions are closed.
    pub drain_notice: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// PEM certificate chain and key, for native TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Handshake and request-head limits of every accepted connection.
    pub accept: AcceptLimits,
    /// Most WebSocket connections per client IP (0 = unlimited).
    pub max_connections_per_ip: usize,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Most games held by this node.
    pub max_games: usize,
    /// Most connections watching one game.
    pub max_spectators: usize,
    /// Waiting games nobody is connected to held at once; past it the
    /// oldest is dropped early (0: no cap; single and stateful modes).
    pub max_unattended_games: usize,
    /// Stateless: how long a game counts against `--max-games` unrenewed.
    pub game_lease: Duration,
}

impl Default for Config {
    fn default() -> Self {
        match ServeOptions::default().resolve() {
            Ok(c) => c,
            Err(e) => unreachable!("the defaults are valid: {e}"),
        }
    }
}

/// Shortest `--redis-game-lease-ms`: a few Redis round trips.
const MIN_GAME_LEASE_MS: u64 = 300;
/// Longest `--redis-game-lease-ms`: an hour (Redis keeps a game 60 s
/// unattended; a longer lease only counts games that are gone).
const MAX_GAME_LEASE_MS: u64 = 3_600_000;

impl Config {
    /// What this node's games may hold.
    pub fn capacity(&self) -> crate::games::Capacity {
        crate::games::Capacity {
            games: self.max_games,
            spectators: self.max_spectators,
            unattended: self.max_unattended_games,
        }
    }
}

impl ServeOptions {
    /// Applies defaults and checks ranges.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let d = defaults::Defaults::default();
        let bounds = limits::bounds(&self, &d)?;
        let session = limits::session(&self, &d)?;
        let max_connections = limits::max_connections(&self, &d)?;
        let topology = topology::resolve(&self, &d)?;
        let accept = limits::accept(&self, &d);
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(_), Some(_)) | (None, None) => self.tls_cert.zip(self.tls_key),
            // clap refuses one without the other; a file could still.
            _ => {
                return Err(ConfigError::Invalid(
                    "--tls-cert and --tls-key must be given together".to_owned(),
                ));
            }
        };
        let game_lease_ms = self.redis_game_lease_ms.unwrap_or(d.redis_game_lease_ms);
        if !(MIN_GAME_LEASE_MS..=MAX_GAME_LEASE_MS).contains(&game_lease_ms) {
            return Err(ConfigError::Invalid(format!(
                "--redis-game-lease-ms must be {MIN_GAME_LEASE_MS}..={MAX_GAME_LEASE_MS}"
            )));
        }
        let listen = self.listen.unwrap_or(d.listen);
        let admin_listen = self.admin_listen.unwrap_or(d.admin_listen);
        if listen == admin_listen && listen.port() != 0 {
            return Err(ConfigError::Invalid(format!(
                "--listen and --admin-listen are both {listen}: the admin routes must not be public"
            )));
        }
        Ok(Config {
            topology,
            listen,
            admin_listen,
            web_root: self.web_root.unwrap_or(d.web_root),
            bounds,
            limits: session,
            allowed_origins: self
                .allowed_origins
                .unwrap_or(d.allowed_origins)
                .into_iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            max_connections,
            max_overload_closes: self.max_overload_closes.unwrap_or(d.max_overload_closes),
            max_creates_per_ip: self.max_creates_per_ip.unwrap_or(d.max_creates_per_ip),
            max_creates_per_connection: self
                .max_creates_per_connection
                .unwrap_or(d.max_creates_per_connection),
            drain_timeout: Duration::from_millis(
                self.drain_timeout_ms.unwrap_or(d.drain_timeout_ms),
            ),
            drain_notice: Duration::from_millis(self.drain_notice_ms.unwrap_or(d.drain_notice_ms)),
            log_format: self.log_format.unwrap_or(d.log_format),
            tls,
            accept,
            max_connections_per_ip: self
                .max_connections_per_ip
                .unwrap_or(d.max_connections_per_ip),
            trusted_proxies: self.trusted_proxies.unwrap_or(d.trusted_proxies),
            max_games: self.max_games.unwrap_or(d.max_games).max(1),
            max_spectators: self.max_spectators.unwrap_or(d.max_spectators),
            max_unattended_games: self.max_unattended_games.unwrap_or(d.max_unattended_games),
            game_lease: Duration::from_millis(game_lease_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_protocol() {
        let c = Config::default();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9091");
        assert_eq!(
            format!("{:?}", c.limits),
            format!("{:?}", SessionLimits::default())
        );
        assert_eq!(c.bounds.min_players, 2);
        assert_eq!(c.web_root, PathBuf::from("web-client/dist"));
        assert_eq!(c.drain_timeout, Duration::from_secs(35));
        assert_eq!((c.max_games, c.max_connections_per_ip), (100_000, 0));
        assert!(c.allowed_origins.is_empty() && c.trusted_proxies.is_empty());
        assert!(matches!(c.topology, Topology::Single));
        assert!(c.tls.is_none());
    }

    #[test]
    fn origins_are_normalised() {
        let c = ServeOptions {
            allowed_origins: Some(vec![" https://a.example/ ".into(), String::new()]),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(c.allowed_origins, vec!["https://a.example".to_owned()]);
    }

    #[test]
    fn a_tls_certificate_needs_its_key() {
        let half = ServeOptions {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let err = half.resolve().unwrap_err().to_string();
        assert!(err.contains("--tls-cert and --tls-key"), "{err}");
        let both = ServeOptions {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..Default::default()
        };
        assert_eq!(
            both.resolve().unwrap().tls,
            Some(("c.pem".into(), "k.pem".into()))
        );
    }

    #[test]
    fn the_game_lease_defaults_to_fifteen_seconds_within_its_range() {
        assert_eq!(Config::default().game_lease, Duration::from_secs(15));
        let lease = |ms| {
            ServeOptions {
                redis_game_lease_ms: Some(ms),
                ..Default::default()
            }
            .resolve()
        };
        assert_eq!(lease(300).unwrap().game_lease, Duration::from_millis(300));
        for bad in [0, 299, 3_600_001] {
            let err = lease(bad).unwrap_err().to_string();
            assert!(err.contains("--redis-game-lease-ms"), "{bad}: {err}");
        }
    }
}
