//! [`ServeOptions`]: the flags, their `GRIDCAP_*` variables and the TOML
//! keys, in one struct.
//!
//! Help texts carry no default: [`super::document_defaults`] appends
//! "[default: …]" from [`super::defaults::Defaults`], the values `resolve()`
//! applies.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::Mode;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting of `gridcap serve`; `None` is "not given at this layer".
///
/// Serde's field names are the TOML keys and clap's argument ids, so the
/// file layering ([`ServeOptions::merge_file`]) and the tests can walk every
/// field without a list of names.
#[derive(Debug, Clone, Default, Args, Deserialize, Serialize)]
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
    /// --redis-cluster).
    #[arg(long, env = "GRIDCAP_MODE", value_enum, value_name = "MODE")]
    pub mode: Option<Mode>,

    /// This node's id in the cluster; must appear in --peers.
    #[arg(long, env = "GRIDCAP_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,

    /// Every cluster member, this node included, as
    /// ID=HOST:PORT@ADMIN_HOST:ADMIN_PORT (comma-separated): the game port
    /// (relays, forwarded API calls) and the admin port (health probes of
    /// `/api/node`), e.g. `a=10.0.0.1:8080@10.0.0.1:9091,b=10.0.0.2:8080@9091`
    /// (`@PORT` alone means the same host). Every node must be given the
    /// same list.
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

    /// Stateless mode: before an event goes out (so before any player sees
    /// a capture, a join or a game over confirmed), wait until this many
    /// Redis replicas acknowledged it (`WAIT`), so that a failover to one of
    /// them undoes nothing a player saw. 0: do not wait (Redis replicates
    /// asynchronously; a failover can undo the last milliseconds of play).
    #[arg(long, env = "GRIDCAP_REDIS_WAIT_REPLICAS", value_name = "N")]
    pub redis_wait_replicas: Option<u32>,

    /// Stateless mode with --redis-wait-replicas: the longest wait for the
    /// replicas, in ms (1..=1000). Past it the events go out anyway (counted
    /// in `gridcap_redis_replica_wait_timeouts_total`): set Redis's
    /// `min-replicas-to-write` to refuse writes instead.
    #[arg(long, env = "GRIDCAP_REDIS_WAIT_TIMEOUT_MS", value_name = "MS")]
    pub redis_wait_timeout_ms: Option<u64>,

    /// How often each node probes its peers' health, in ms.
    #[arg(long, env = "GRIDCAP_PROBE_INTERVAL_MS", value_name = "MS")]
    pub probe_interval_ms: Option<u64>,

    /// Timeout for a probe or for opening a relay to a peer, in ms.
    #[arg(long, env = "GRIDCAP_PEER_TIMEOUT_MS", value_name = "MS")]
    pub peer_timeout_ms: Option<u64>,

    /// Address and port to serve HTTP and WebSocket on. Port 0 picks a free
    /// port; the chosen address is printed on stdout.
    #[arg(long, env = "GRIDCAP_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address and port of the admin listener: `/metrics`, `/api/node`,
    /// `/api/cluster` and the `/admin` page live there, never on --listen.
    /// Keep it on loopback or a private network; stateful peers probe it.
    #[arg(long, env = "GRIDCAP_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Directory of the built browser client served at `/`.
    #[arg(long, env = "GRIDCAP_WEB_ROOT", value_name = "DIR")]
    pub web_root: Option<PathBuf>,

    /// Connected players needed before the host may start (2..=8).
    #[arg(long, env = "GRIDCAP_MIN_PLAYERS", value_name = "N")]
    pub min_players: Option<u8>,

    /// Public games (the lobby, quick play) start by themselves this long
    /// after `min_players` of their players are connected, in ms; earlier
    /// when they fill up or the host starts them.
    #[arg(long, env = "GRIDCAP_LOBBY_START_MS", value_name = "MS")]
    pub lobby_start_ms: Option<u64>,

    /// Shortest round a client may create, in ms (>= 1000).
    #[arg(long, env = "GRIDCAP_MIN_DURATION_MS", value_name = "MS")]
    pub min_duration_ms: Option<u64>,

    /// Longest round a client may create, in ms (<= 300000).
    #[arg(long, env = "GRIDCAP_MAX_DURATION_MS", value_name = "MS")]
    pub max_duration_ms: Option<u64>,

    /// Largest WebSocket message accepted, in bytes; larger closes with 1009.
    #[arg(long, env = "GRIDCAP_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,

    /// Messages per second per connection, on average; 0 disables.
    #[arg(long, env = "GRIDCAP_RATE_LIMIT", value_name = "PER_SEC")]
    pub rate_limit: Option<u32>,

    /// Messages a connection may send in a burst.
    #[arg(long, env = "GRIDCAP_RATE_BURST", value_name = "N")]
    pub rate_burst: Option<u32>,

    /// Consecutive rate-limited messages before the connection is closed with
    /// 1008.
    #[arg(long, env = "GRIDCAP_RATE_STRIKES", value_name = "N")]
    pub rate_strikes: Option<u32>,

    /// Bad frames or messages before the connection is closed with 1008.
    #[arg(long, env = "GRIDCAP_MAX_BAD_MESSAGES", value_name = "N")]
    pub max_bad_messages: Option<u32>,

    /// Interval between WebSocket pings, in ms.
    #[arg(long, env = "GRIDCAP_PING_INTERVAL_MS", value_name = "MS")]
    pub ping_interval_ms: Option<u64>,

    /// Close a connection that sent nothing (not even a pong) for this long,
    /// in ms.
    #[arg(long, env = "GRIDCAP_IDLE_TIMEOUT_MS", value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,

    /// Frames queued for one connection before it is closed as a slow
    /// consumer (1008).
    #[arg(long, env = "GRIDCAP_OUTBOX_CAPACITY", value_name = "FRAMES")]
    pub outbox_capacity: Option<usize>,

    /// Longest a socket write may block before the connection is dropped, in
    /// ms.
    #[arg(long, env = "GRIDCAP_WRITE_TIMEOUT_MS", value_name = "MS")]
    pub write_timeout_ms: Option<u64>,

    /// After sending a close frame, how long to wait for the client's, in ms.
    #[arg(long, env = "GRIDCAP_CLOSE_TIMEOUT_MS", value_name = "MS")]
    pub close_timeout_ms: Option<u64>,

    /// Per-connection WebSocket read buffer, in bytes (client messages are
    /// tens of bytes; larger ones still arrive in several reads).
    #[arg(long, env = "GRIDCAP_WS_READ_BUFFER", value_name = "BYTES")]
    pub ws_read_buffer: Option<usize>,

    /// Per-connection WebSocket write buffer target, in bytes.
    #[arg(long, env = "GRIDCAP_WS_WRITE_BUFFER", value_name = "BYTES")]
    pub ws_write_buffer: Option<usize>,

    /// Longest a frame that follows a write may wait, when the node is fully
    /// busy, so that more frames share the connection's next write, in ms
    /// (scaled down with the load, none below 80 % busy; 0 = never wait).
    #[arg(long, env = "GRIDCAP_WRITE_HOLD_MAX_MS", value_name = "MS")]
    pub write_hold_max_ms: Option<u64>,

    /// How long a plain (non-TLS) WebSocket connection must be quiet
    /// before it parks, in ms: it then drops its WebSocket state and
    /// buffers, and is no task, until its next frame either way or its
    /// next ping. An idle player then costs ~0.8 KB instead of ~3.1 KB; a
    /// busy one ~5-10 % more CPU per frame (tracking frame boundaries). 0 =
    /// never park: for a node whose players are all busy and whose CPU
    /// counts most.
    #[arg(long, env = "GRIDCAP_WS_PARK_AFTER_MS", value_name = "MS")]
    pub ws_park_after_ms: Option<u64>,

    /// Allowed `Origin`s for WebSocket handshakes, comma-separated (e.g.
    /// `https://play.example.com`). A handshake with another Origin gets 403;
    /// one without Origin is accepted. None listed: allow all.
    #[arg(
        long,
        env = "GRIDCAP_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,

    /// Most WebSocket connections at once. Past it a connection is still
    /// upgraded but closed at once with 1013 (overloaded; try later), within
    /// --max-overload-closes; past that too, HTTP 503.
    #[arg(long, env = "GRIDCAP_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Connections past --max-connections being upgraded at once only to be
    /// closed with 1013 (overloaded), so that browsers, which cannot read a
    /// refused handshake's status, learn why. More get HTTP 503. 0 = always
    /// 503.
    #[arg(long, env = "GRIDCAP_MAX_OVERLOAD_CLOSES", value_name = "N")]
    pub max_overload_closes: Option<usize>,

    /// Games one client address may create per minute (`create`, and
    /// `quick_play` that may create); more are answered `rate_limited`.
    /// IPv6 counts by /64. 0 = no limit. Behind a proxy, list it in
    /// --trusted-proxies, or every player shares the proxy's count.
    #[arg(long, env = "GRIDCAP_MAX_CREATES_PER_IP", value_name = "N")]
    pub max_creates_per_ip: Option<u32>,

    /// Games one connection may create per minute (`create`, and
    /// `quick_play` that may create); more are answered `rate_limited`.
    /// A connection holds one seat of a waiting or active game at a time,
    /// so this bounds how fast it may play short rounds. 0 = no limit.
    #[arg(long, env = "GRIDCAP_MAX_CREATES_PER_CONNECTION", value_name = "N")]
    pub max_creates_per_connection: Option<u32>,

    /// On SIGTERM/Ctrl-C, how long a node with games in memory (single and
    /// stateful modes) lets rounds already running finish before its
    /// sessions are closed with 1001, in ms. A stateful drain starts no new
    /// round: the node first moves its waiting games to a ready peer (their
    /// players are closed with 1001 and resume there), so size it above the
    /// longest round (--max-duration-ms, or the rounds you allow) plus a few
    /// seconds. Stateless nodes do not wait for rounds (see
    /// --drain-notice-ms); this only bounds their drain.
    #[arg(long, env = "GRIDCAP_DRAIN_TIMEOUT_MS", value_name = "MS")]
    pub drain_timeout_ms: Option<u64>,

    /// Stateless mode: on SIGTERM/Ctrl-C, how long `/readyz` answers 503
    /// before the node closes every session with 1001 (its players resume
    /// on other nodes, their games are in Redis), in ms. Size it to the time
    /// your balancer takes to stop sending new connections (HAProxy: `inter
    /// × fall`); a stateless drain takes about this long. Capped by
    /// --drain-timeout-ms.
    #[arg(long, env = "GRIDCAP_DRAIN_NOTICE_MS", value_name = "MS")]
    pub drain_notice_ms: Option<u64>,

    /// Log format; the level comes from RUST_LOG (default `info`).
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
    /// HTTP request head (slowloris defence), in ms.
    #[arg(long, env = "GRIDCAP_HANDSHAKE_TIMEOUT_MS", value_name = "MS")]
    pub handshake_timeout_ms: Option<u64>,

    /// Largest HTTP request head accepted, in bytes (at least 8192).
    #[arg(long, env = "GRIDCAP_MAX_HEAD_BYTES", value_name = "BYTES")]
    pub max_head_bytes: Option<usize>,

    /// Most WebSocket connections from one client IP; more get HTTP 429.
    /// 0 = no per-IP limit. Behind a proxy, list it in --trusted-proxies so
    /// the client IP comes from X-Forwarded-For.
    #[arg(long, env = "GRIDCAP_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// Proxy IPs whose X-Forwarded-For header is believed, comma-separated
    /// (e.g. your HAProxy's address).
    #[arg(
        long,
        env = "GRIDCAP_TRUSTED_PROXIES",
        value_name = "IPS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<IpAddr>>,

    /// Close (1008) a connection that has not sent a single protocol message
    /// this long after connecting, in ms.
    #[arg(long, env = "GRIDCAP_FIRST_MESSAGE_TIMEOUT_MS", value_name = "MS")]
    pub first_message_timeout_ms: Option<u64>,

    /// Most games this node holds at once; more `create`s get `overloaded`.
    /// Stateless mode: the games of the whole cluster, counted in Redis
    /// (give every node the same value; see --redis-game-lease-ms).
    #[arg(long, env = "GRIDCAP_MAX_GAMES", value_name = "N")]
    pub max_games: Option<usize>,

    /// Most connections watching one game at once; more `watch`es get
    /// `game_full`.
    #[arg(long, env = "GRIDCAP_MAX_SPECTATORS", value_name = "N")]
    pub max_spectators: Option<usize>,

    /// Most waiting games nobody is connected to (their players left or
    /// dropped) held at once. Protocol §5 keeps such a game 60 s for its
    /// players to come back; past this many, the oldest is dropped early,
    /// so a client that creates games and drops in a loop cannot fill the
    /// game table. 0: no cap. Single and stateful modes (stateless: see
    /// `--max-games`).
    #[arg(long, env = "GRIDCAP_MAX_UNATTENDED_GAMES", value_name = "N")]
    pub max_unattended_games: Option<usize>,

    /// Stateless mode: how long a game counts against --max-games (the
    /// cluster's, counted in Redis) once no node holds a connected player of
    /// it, in ms. Nodes renew their games every third of it.
    #[arg(long, env = "GRIDCAP_REDIS_GAME_LEASE_MS", value_name = "MS")]
    pub redis_game_lease_ms: Option<u64>,
}
