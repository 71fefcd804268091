//! `gridcap serve` options: command-line flags, `GRIDCAP_*` environment
//! variables and an optional TOML file, merged in that order of precedence,
//! then defaults.
//!
//! One struct, [`ServeOptions`], is both the clap arguments and the TOML
//! schema (every field optional), so a flag, its variable and its file key
//! can never drift apart: `--max-message-bytes`, `GRIDCAP_MAX_MESSAGE_BYTES`
//! and `max_message_bytes = 4096` are the same setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use game_logic::SettingsBounds;
use serde::Deserialize;
use transport::SessionLimits;

use crate::games::redis::RedisTarget;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How games are placed across nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One node, games in memory, no external service.
    Single,
    /// A cluster: each game lives in the memory of the node the hash ring
    /// names; any node relays players to it.
    Stateful,
    /// A cluster: every game lives in Redis, every node serves every player,
    /// Redis pub/sub carries the events between nodes.
    Stateless,
}

/// One cluster member: its id and the address other nodes reach it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The node's id (as in its `--node-id`).
    pub id: String,
    /// `host:port` of its HTTP/WebSocket listener.
    pub addr: String,
}

impl std::str::FromStr for Peer {
    type Err = String;

    fn from_str(s: &str) -> Result<Peer, String> {
        let (id, addr) = s
            .split_once('=')
            .ok_or_else(|| format!("peer {s:?} is not ID=HOST:PORT"))?;
        let (id, addr) = (id.trim(), addr.trim());
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if id.is_empty() || !port_ok {
            return Err(format!("peer {s:?} is not ID=HOST:PORT"));
        }
        Ok(Peer {
            id: id.to_owned(),
            addr: addr.to_owned(),
        })
    }
}

/// Every setting of `gridcap serve`. Defaults are listed in each help text.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// TOML file with any of these settings (keys in snake_case, e.g.
    /// `max_connections = 5000`). Flags and environment variables win over it.
    #[arg(long, env = "GRIDCAP_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// single: one node, games in memory. stateful: a cluster where each game
    /// lives on the node the consistent-hash ring names, and every node
    /// relays players to it (needs --node-id and --peers). stateless: every
    /// game lives in Redis and any node serves any player (needs --redis or
    /// --redis-cluster) [default: single].
    #[arg(long, env = "GRIDCAP_MODE", value_enum, value_name = "MODE")]
    pub mode: Option<Mode>,

    /// This node's id in the cluster; must appear in --peers.
    #[arg(long, env = "GRIDCAP_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,

    /// Every cluster member, this node included, as ID=HOST:PORT (comma-
    /// separated), e.g. `a=10.0.0.1:8080,b=10.0.0.2:8080,c=10.0.0.3:8080`.
    /// Every node must be given the same list.
    #[arg(
        long,
        env = "GRIDCAP_PEERS",
        value_name = "PEERS",
        value_delimiter = ','
    )]
    pub peers: Option<Vec<String>>,

    /// Stateless mode: the Redis server holding the games, e.g.
    /// `redis://10.0.0.5:6379`.
    #[arg(long, env = "GRIDCAP_REDIS", value_name = "URL")]
    pub redis: Option<String>,

    /// Stateless mode: a Redis Cluster, as comma-separated node URLs (any
    /// subset; the rest is discovered), e.g.
    /// `redis://10.0.0.5:7000,redis://10.0.0.6:7000`.
    #[arg(
        long,
        env = "GRIDCAP_REDIS_CLUSTER",
        value_name = "URLS",
        value_delimiter = ','
    )]
    pub redis_cluster: Option<Vec<String>>,

    /// How often each node probes its peers' health, in ms [default: 1000].
    #[arg(long, env = "GRIDCAP_PROBE_INTERVAL_MS", value_name = "MS")]
    pub probe_interval_ms: Option<u64>,

    /// Timeout for a probe or for opening a relay to a peer, in ms
    /// [default: 2000].
    #[arg(long, env = "GRIDCAP_PEER_TIMEOUT_MS", value_name = "MS")]
    pub peer_timeout_ms: Option<u64>,

    /// Address and port to serve HTTP and WebSocket on [default: 0.0.0.0:8080].
    /// Port 0 picks a free port; the chosen address is printed on stdout.
    #[arg(long, env = "GRIDCAP_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Directory of the built browser client served at `/`
    /// [default: web-client/dist].
    #[arg(long, env = "GRIDCAP_WEB_ROOT", value_name = "DIR")]
    pub web_root: Option<PathBuf>,

    /// Connected players needed before the host may start (2..=8) [default: 2].
    #[arg(long, env = "GRIDCAP_MIN_PLAYERS", value_name = "N")]
    pub min_players: Option<u8>,

    /// Shortest round a client may create, in ms (>= 1000) [default: 1000].
    #[arg(long, env = "GRIDCAP_MIN_DURATION_MS", value_name = "MS")]
    pub min_duration_ms: Option<u64>,

    /// Longest round a client may create, in ms (<= 300000) [default: 300000].
    #[arg(long, env = "GRIDCAP_MAX_DURATION_MS", value_name = "MS")]
    pub max_duration_ms: Option<u64>,

    /// Largest WebSocket message accepted, in bytes; larger closes with 1009
    /// [default: 4096].
    #[arg(long, env = "GRIDCAP_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,

    /// Messages per second per connection, on average; 0 disables [default: 20].
    #[arg(long, env = "GRIDCAP_RATE_LIMIT", value_name = "PER_SEC")]
    pub rate_limit: Option<u32>,

    /// Messages a connection may send in a burst [default: 40].
    #[arg(long, env = "GRIDCAP_RATE_BURST", value_name = "N")]
    pub rate_burst: Option<u32>,

    /// Consecutive rate-limited messages before the connection is closed with
    /// 1008 [default: 100].
    #[arg(long, env = "GRIDCAP_RATE_STRIKES", value_name = "N")]
    pub rate_strikes: Option<u32>,

    /// Bad frames or messages before the connection is closed with 1008
    /// [default: 20].
    #[arg(long, env = "GRIDCAP_MAX_BAD_MESSAGES", value_name = "N")]
    pub max_bad_messages: Option<u32>,

    /// Interval between WebSocket pings, in ms [default: 15000].
    #[arg(long, env = "GRIDCAP_PING_INTERVAL_MS", value_name = "MS")]
    pub ping_interval_ms: Option<u64>,

    /// Close a connection that sent nothing (not even a pong) for this long,
    /// in ms [default: 45000].
    #[arg(long, env = "GRIDCAP_IDLE_TIMEOUT_MS", value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,

    /// Frames queued for one connection before it is closed as a slow
    /// consumer (1008) [default: 256].
    #[arg(long, env = "GRIDCAP_OUTBOX_CAPACITY", value_name = "FRAMES")]
    pub outbox_capacity: Option<usize>,

    /// Longest a socket write may block before the connection is dropped, in
    /// ms [default: 10000].
    #[arg(long, env = "GRIDCAP_WRITE_TIMEOUT_MS", value_name = "MS")]
    pub write_timeout_ms: Option<u64>,

    /// After sending a close frame, how long to wait for the client's, in ms
    /// [default: 2000].
    #[arg(long, env = "GRIDCAP_CLOSE_TIMEOUT_MS", value_name = "MS")]
    pub close_timeout_ms: Option<u64>,

    /// Per-connection WebSocket read buffer, in bytes (client messages are
    /// tens of bytes; larger ones still arrive in several reads) [default: 256].
    #[arg(long, env = "GRIDCAP_WS_READ_BUFFER", value_name = "BYTES")]
    pub ws_read_buffer: Option<usize>,

    /// Per-connection WebSocket write buffer target, in bytes [default: 4096].
    #[arg(long, env = "GRIDCAP_WS_WRITE_BUFFER", value_name = "BYTES")]
    pub ws_write_buffer: Option<usize>,

    /// Allowed `Origin`s for WebSocket handshakes, comma-separated (e.g.
    /// `https://play.example.com`). A handshake with another Origin gets 403;
    /// one without Origin is accepted. Empty: allow all [default: empty].
    #[arg(
        long,
        env = "GRIDCAP_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,

    /// Most WebSocket connections at once; more get HTTP 503 [default: 10000].
    #[arg(long, env = "GRIDCAP_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// On SIGTERM/Ctrl-C, how long active games may run on before sessions
    /// are closed with 1001, in ms [default: 35000].
    #[arg(long, env = "GRIDCAP_DRAIN_TIMEOUT_MS", value_name = "MS")]
    pub drain_timeout_ms: Option<u64>,

    /// Log format; the level comes from RUST_LOG (default `info`) [default: text].
    #[arg(long, env = "GRIDCAP_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// PEM certificate chain: serve https:// and wss:// natively (TLS 1.2 and
    /// 1.3, rustls). Needs --tls-key.
    #[arg(
        long,
        env = "GRIDCAP_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(
        long,
        env = "GRIDCAP_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Time a new connection has for its TLS handshake and for sending its
    /// HTTP request head (slowloris defence), in ms [default: 10000].
    #[arg(long, env = "GRIDCAP_HANDSHAKE_TIMEOUT_MS", value_name = "MS")]
    pub handshake_timeout_ms: Option<u64>,

    /// Largest HTTP request head accepted, in bytes (at least 8192)
    /// [default: 16384].
    #[arg(long, env = "GRIDCAP_MAX_HEAD_BYTES", value_name = "BYTES")]
    pub max_head_bytes: Option<usize>,

    /// Most WebSocket connections from one client IP; more get HTTP 429.
    /// 0 = no per-IP limit [default: 0]. Behind a proxy, list it in
    /// --trusted-proxies so the client IP comes from X-Forwarded-For.
    #[arg(long, env = "GRIDCAP_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// Proxy IPs whose X-Forwarded-For header is believed, comma-separated
    /// (e.g. your HAProxy's address) [default: none].
    #[arg(
        long,
        env = "GRIDCAP_TRUSTED_PROXIES",
        value_name = "IPS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<std::net::IpAddr>>,

    /// Close (1008) a connection that has not sent a single protocol message
    /// this long after connecting, in ms [default: 60000].
    #[arg(long, env = "GRIDCAP_FIRST_MESSAGE_TIMEOUT_MS", value_name = "MS")]
    pub first_message_timeout_ms: Option<u64>,

    /// Most games this node holds at once; more `create`s get `overloaded`
    /// [default: 100000].
    #[arg(long, env = "GRIDCAP_MAX_GAMES", value_name = "N")]
    pub max_games: Option<usize>,
}

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

macro_rules! prefer {
    ($cli:ident, $file:ident; $($field:ident),* $(,)?) => {
        $( if $cli.$field.is_none() { $cli.$field = $file.$field; } )*
    };
}

impl ServeOptions {
    /// Fills every unset option from the `--config` file, if one was given.
    pub fn merge_file(mut self) -> Result<ServeOptions, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file: ServeOptions = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path,
            source: Box::new(source),
        })?;
        prefer!(self, file; mode, node_id, peers, redis, redis_cluster, probe_interval_ms, peer_timeout_ms, listen, web_root, min_players, min_duration_ms, max_duration_ms,
            max_message_bytes, rate_limit, rate_burst, rate_strikes, max_bad_messages,
            ping_interval_ms, idle_timeout_ms, outbox_capacity, write_timeout_ms, close_timeout_ms,
            ws_read_buffer, ws_write_buffer, allowed_origins, max_connections,
            drain_timeout_ms, log_format, tls_cert, tls_key, handshake_timeout_ms, max_head_bytes,
            max_connections_per_ip, trusted_proxies, first_message_timeout_ms, max_games);
        Ok(self)
    }

    /// Applies defaults and checks ranges.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let d = SessionLimits::default();
        let invalid = |s: &str| Err(ConfigError::Invalid(s.to_owned()));
        let bounds = SettingsBounds {
            min_duration: Duration::from_millis(self.min_duration_ms.unwrap_or(1_000)),
            max_duration: Duration::from_millis(self.max_duration_ms.unwrap_or(300_000)),
            min_players: self.min_players.unwrap_or(2),
        };
        let Ok(bounds) = bounds.validate() else {
            return invalid(
                "min-players must be 2..=8 and 1000 <= min-duration-ms <= max-duration-ms <= 300000",
            );
        };
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let limits = SessionLimits {
            max_message_bytes: self.max_message_bytes.unwrap_or(d.max_message_bytes),
            rate_per_sec: self.rate_limit.unwrap_or(d.rate_per_sec),
            rate_burst: self.rate_burst.unwrap_or(d.rate_burst),
            max_rate_strikes: self.rate_strikes.unwrap_or(d.max_rate_strikes),
            max_bad_messages: self.max_bad_messages.unwrap_or(d.max_bad_messages),
            ping_interval: ms(self.ping_interval_ms, d.ping_interval),
            idle_timeout: ms(self.idle_timeout_ms, d.idle_timeout),
            outbox_capacity: self.outbox_capacity.unwrap_or(d.outbox_capacity),
            write_timeout: ms(self.write_timeout_ms, d.write_timeout),
            close_timeout: ms(self.close_timeout_ms, d.close_timeout),
            first_message_timeout: ms(self.first_message_timeout_ms, d.first_message_timeout),
            read_buffer_bytes: self.ws_read_buffer.unwrap_or(d.read_buffer_bytes),
            write_buffer_bytes: self.ws_write_buffer.unwrap_or(d.write_buffer_bytes),
        };
        if limits.max_message_bytes < 64 {
            return invalid("max-message-bytes must be at least 64");
        }
        if limits.rate_burst == 0 || limits.max_rate_strikes == 0 || limits.max_bad_messages == 0 {
            return invalid("rate-burst, rate-strikes and max-bad-messages must be at least 1");
        }
        if limits.ping_interval.is_zero() || limits.idle_timeout < limits.ping_interval {
            return invalid("ping-interval-ms must be > 0 and idle-timeout-ms >= ping-interval-ms");
        }
        if limits.outbox_capacity == 0 || limits.write_timeout.is_zero() {
            return invalid("outbox-capacity and write-timeout-ms must be at least 1");
        }
        if limits.read_buffer_bytes < 128 {
            return invalid("ws-read-buffer must be at least 128");
        }
        let max_connections = self.max_connections.unwrap_or(10_000);
        if max_connections == 0 {
            return invalid("max-connections must be at least 1");
        }
        let cluster = self.resolve_cluster()?;
        if cluster.is_some() && self.tls_cert.is_some() {
            // Relays and probes dial peers without TLS; refuse rather than
            // start a cluster whose nodes cannot reach each other.
            return invalid(
                "--tls-cert with --mode stateful is not supported yet: terminate TLS at the \
                 balancer (deploy/haproxy/haproxy-tls.cfg) and keep the nodes' network private",
            );
        }
        let stateless = self.resolve_stateless()?;
        Ok(Config {
            cluster,
            stateless,
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080))),
            web_root: self
                .web_root
                .unwrap_or_else(|| PathBuf::from("web-client/dist")),
            bounds,
            limits,
            allowed_origins: self
                .allowed_origins
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            max_connections,
            drain_timeout: ms(self.drain_timeout_ms, Duration::from_secs(35)),
            log_format: self.log_format.unwrap_or(LogFormat::Text),
            tls: self.tls_cert.zip(self.tls_key),
            accept: crate::edge::accept::AcceptLimits {
                handshake_timeout: ms(self.handshake_timeout_ms, Duration::from_secs(10)),
                max_head_bytes: self.max_head_bytes.unwrap_or(16 * 1024).max(8192),
            },
            max_connections_per_ip: self.max_connections_per_ip.unwrap_or(0),
            trusted_proxies: self.trusted_proxies.unwrap_or_default(),
            max_games: self.max_games.unwrap_or(100_000).max(1),
        })
    }
}

/// The resolved stateful-cluster settings.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's id.
    pub node_id: String,
    /// Every member, this node included, sorted by id.
    pub peers: Vec<Peer>,
    /// Interval between health probes.
    pub probe_interval: Duration,
    /// Timeout of a probe or a relay connection.
    pub peer_timeout: Duration,
}

impl ServeOptions {
    fn resolve_stateless(&self) -> Result<Option<StatelessConfig>, ConfigError> {
        let invalid = |s: &str| Err(ConfigError::Invalid(s.to_owned()));
        let mode = self.mode.unwrap_or(Mode::Single);
        if mode != Mode::Stateless {
            if self.redis.is_some() || self.redis_cluster.is_some() {
                return invalid("--redis and --redis-cluster need --mode stateless");
            }
            return Ok(None);
        }
        if self.peers.is_some() {
            return invalid("--peers is for --mode stateful; stateless nodes only share Redis");
        }
        let check = |url: &str| -> Result<String, ConfigError> {
            let url = url.trim();
            match redis::Client::open(url) {
                Ok(_) => Ok(url.to_owned()),
                Err(e) => Err(ConfigError::Invalid(format!("bad Redis URL {url:?}: {e}"))),
            }
        };
        let redis = match (&self.redis, &self.redis_cluster) {
            (Some(url), None) => RedisTarget::Single(check(url)?),
            (None, Some(urls)) => {
                let urls: Vec<String> = urls
                    .iter()
                    .filter(|u| !u.trim().is_empty())
                    .map(|u| check(u))
                    .collect::<Result<_, _>>()?;
                if urls.is_empty() {
                    return invalid("--redis-cluster needs at least one URL");
                }
                RedisTarget::Cluster(urls)
            }
            (Some(_), Some(_)) => return invalid("give --redis or --redis-cluster, not both"),
            (None, None) => {
                return invalid(
                    "--mode stateless needs --redis URL or --redis-cluster URL,URL,...",
                );
            }
        };
        Ok(Some(StatelessConfig {
            node_id: self
                .node_id
                .clone()
                .filter(|id| !id.trim().is_empty())
                .unwrap_or_else(|| "stateless".to_owned()),
            redis,
        }))
    }

    fn resolve_cluster(&self) -> Result<Option<ClusterConfig>, ConfigError> {
        let mode = self.mode.unwrap_or(Mode::Single);
        if mode == Mode::Stateless {
            return Ok(None);
        }
        if mode == Mode::Single {
            if self.node_id.is_some() || self.peers.is_some() {
                return Err(ConfigError::Invalid(
                    "--node-id and --peers need --mode stateful".to_owned(),
                ));
            }
            return Ok(None);
        }
        let node_id = self
            .node_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| ConfigError::Invalid("--mode stateful needs --node-id".to_owned()))?;
        let mut peers = Vec::new();
        for raw in self.peers.iter().flatten() {
            let peer: Peer = raw.parse().map_err(ConfigError::Invalid)?;
            if peers.iter().any(|p: &Peer| p.id == peer.id) {
                return Err(ConfigError::Invalid(format!(
                    "peer id {:?} appears twice",
                    peer.id
                )));
            }
            peers.push(peer);
        }
        if !peers.iter().any(|p| p.id == node_id) {
            return Err(ConfigError::Invalid(format!(
                "--peers must include this node ({node_id:?}) as {node_id}=HOST:PORT"
            )));
        }
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        let probe_interval = Duration::from_millis(self.probe_interval_ms.unwrap_or(1_000).max(10));
        let peer_timeout = Duration::from_millis(self.peer_timeout_ms.unwrap_or(2_000).max(10));
        Ok(Some(ClusterConfig {
            node_id,
            peers,
            probe_interval,
            peer_timeout,
        }))
    }
}

/// The resolved stateless-cluster settings.
#[derive(Debug, Clone)]
pub struct StatelessConfig {
    /// This node's name in logs and `/api/node` (`--node-id`, optional).
    pub node_id: String,
    /// Where the games live.
    pub redis: RedisTarget,
}

/// The resolved configuration of one server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Stateful-cluster settings; `None` in other modes.
    pub cluster: Option<ClusterConfig>,
    /// Stateless-cluster settings; `None` in other modes.
    pub stateless: Option<StatelessConfig>,
    /// Where to listen.
    pub listen: SocketAddr,
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
    /// How long active games may finish during a shutdown.
    pub drain_timeout: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// PEM certificate chain and key, for native TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Handshake and request-head limits of every accepted connection.
    pub accept: crate::edge::accept::AcceptLimits,
    /// Most WebSocket connections per client IP (0 = unlimited).
    pub max_connections_per_ip: usize,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Most games held by this node.
    pub max_games: usize,
}

impl Default for Config {
    fn default() -> Self {
        match ServeOptions::default().resolve() {
            Ok(c) => c,
            Err(e) => unreachable!("the defaults are valid: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_protocol() {
        let c = Config::default();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.limits.max_message_bytes, 4096);
        assert_eq!((c.limits.rate_per_sec, c.limits.rate_burst), (20, 40));
        assert_eq!(c.limits.ping_interval, Duration::from_secs(15));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(45));
        assert_eq!(c.bounds.min_players, 2);
        assert!(c.allowed_origins.is_empty());
    }

    #[test]
    fn file_fills_what_flags_leave_unset() {
        let dir = std::env::temp_dir().join(format!("gridcap-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gridcap.toml");
        std::fs::write(
            &path,
            "rate_limit = 5\nmax_connections = 7\nallowed_origins = [\"https://a.example/\"]\n",
        )
        .unwrap();
        let cli = ServeOptions {
            config: Some(path),
            rate_limit: Some(9),
            ..Default::default()
        };
        let c = cli.merge_file().unwrap().resolve().unwrap();
        assert_eq!(c.limits.rate_per_sec, 9, "the flag wins");
        assert_eq!(c.max_connections, 7, "the file fills the rest");
        assert_eq!(c.allowed_origins, vec!["https://a.example".to_owned()]);
    }

    #[test]
    fn stateless_mode_needs_exactly_one_redis_target() {
        let ok = ServeOptions {
            mode: Some(Mode::Stateless),
            redis: Some("redis://127.0.0.1:6379".into()),
            ..Default::default()
        };
        let c = ok.resolve().unwrap();
        let s = c.stateless.unwrap();
        assert_eq!(
            s.redis,
            RedisTarget::Single("redis://127.0.0.1:6379".into())
        );
        assert!(c.cluster.is_none());
        let cluster = ServeOptions {
            mode: Some(Mode::Stateless),
            redis_cluster: Some(vec!["redis://a:1".into(), "redis://b:2".into()]),
            ..Default::default()
        };
        assert!(matches!(
            cluster.resolve().unwrap().stateless.unwrap().redis,
            RedisTarget::Cluster(ref urls) if urls.len() == 2
        ));
        for bad in [
            ServeOptions {
                mode: Some(Mode::Stateless),
                ..Default::default()
            },
            ServeOptions {
                mode: Some(Mode::Stateless),
                redis: Some("redis://a:1".into()),
                redis_cluster: Some(vec!["redis://b:2".into()]),
                ..Default::default()
            },
            ServeOptions {
                mode: Some(Mode::Stateless),
                redis: Some("not a url".into()),
                ..Default::default()
            },
            ServeOptions {
                redis: Some("redis://a:1".into()),
                ..Default::default()
            },
        ] {
            assert!(bad.resolve().is_err());
        }
    }

    #[test]
    fn unknown_file_keys_and_bad_ranges_are_errors() {
        let dir = std::env::temp_dir().join(format!("gridcap-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "rate_limt = 5\n").unwrap();
        let cli = ServeOptions {
            config: Some(path),
            ..Default::default()
        };
        assert!(matches!(cli.merge_file(), Err(ConfigError::Parse { .. })));
        let bad = ServeOptions {
            min_players: Some(9),
            ..Default::default()
        };
        assert!(matches!(bad.resolve(), Err(ConfigError::Invalid(_))));
        let bad = ServeOptions {
            idle_timeout_ms: Some(10),
            ..Default::default()
        };
        assert!(bad.resolve().is_err());
    }

    #[test]
    fn stateful_nodes_refuse_native_tls() {
        let o = ServeOptions {
            mode: Some(Mode::Stateful),
            node_id: Some("a".into()),
            peers: Some(vec!["a=127.0.0.1:9001".into()]),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..Default::default()
        };
        assert!(matches!(o.resolve(), Err(ConfigError::Invalid(m)) if m.contains("balancer")));
    }

    #[test]
    fn stateful_mode_needs_a_consistent_peer_list() {
        let peers = |p: &[&str]| Some(p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let ok = ServeOptions {
            mode: Some(Mode::Stateful),
            node_id: Some("b".into()),
            peers: peers(&["b=127.0.0.1:9002", "a=127.0.0.1:9001"]),
            ..Default::default()
        };
        let c = ok.resolve().unwrap().cluster.unwrap();
        assert_eq!(
            c.peers[0],
            Peer {
                id: "a".into(),
                addr: "127.0.0.1:9001".into()
            }
        );
        for bad in [
            ServeOptions {
                mode: Some(Mode::Stateful),
                ..Default::default()
            },
            ServeOptions {
                mode: Some(Mode::Stateful),
                node_id: Some("c".into()),
                peers: peers(&["a=127.0.0.1:9001"]),
                ..Default::default()
            },
            ServeOptions {
                mode: Some(Mode::Stateful),
                node_id: Some("a".into()),
                peers: peers(&["a=127.0.0.1:9001", "a=127.0.0.1:9002"]),
                ..Default::default()
            },
            ServeOptions {
                mode: Some(Mode::Stateful),
                node_id: Some("a".into()),
                peers: peers(&["a=nowhere"]),
                ..Default::default()
            },
        ] {
            assert!(bad.resolve().is_err());
        }
    }
}
