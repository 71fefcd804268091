//! The three ways to run: [`Mode`] as the user chooses it, [`Topology`] as
//! resolved, with the settings only that mode has.

use std::time::Duration;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::defaults::Defaults;
use super::{ConfigError, ServeOptions};

/// How games are placed across nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
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

impl Mode {
    /// The name in `--mode`, the TOML file and `/api/node`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Stateful => "stateful",
            Mode::Stateless => "stateless",
        }
    }
}

/// The resolved mode with its settings: one mode, never two.
#[derive(Debug, Clone)]
pub enum Topology {
    /// One node, games in memory.
    Single,
    /// Games in the memory of their ring owner.
    Stateful(ClusterConfig),
    /// Games in Redis.
    Stateless(StatelessConfig),
}

/// The node id `/api/node` reports in single mode.
const SINGLE_NODE_ID: &str = "single";
/// A stateless node's id when `--node-id` is not given.
const STATELESS_NODE_ID: &str = "stateless";

impl Topology {
    /// Which mode this is.
    pub fn mode(&self) -> Mode {
        match self {
            Topology::Single => Mode::Single,
            Topology::Stateful(_) => Mode::Stateful,
            Topology::Stateless(_) => Mode::Stateless,
        }
    }

    /// This node's id in logs and `/api/node`.
    pub fn node_id(&self) -> &str {
        match self {
            Topology::Single => SINGLE_NODE_ID,
            Topology::Stateful(c) => &c.node_id,
            Topology::Stateless(s) => &s.node_id,
        }
    }
}

/// One cluster member: its id and the two addresses other nodes reach it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The node's id (as in its `--node-id`).
    pub id: String,
    /// `host:port` of its game listener (relays, forwarded API calls).
    pub addr: String,
    /// `host:port` of its admin listener (health probes of `/api/node`).
    pub admin: String,
}

/// What a `--peers` entry must look like.
const PEER_SYNTAX: &str = "ID=HOST:PORT@ADMIN_HOST:ADMIN_PORT (or ID=HOST:PORT@ADMIN_PORT)";

/// Whether `addr` is `host:port` with a non-empty host and a valid port.
fn is_host_port(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
}

impl std::str::FromStr for Peer {
    type Err = String;

    fn from_str(s: &str) -> Result<Peer, String> {
        let bad = || format!("peer {s:?} is not {PEER_SYNTAX}");
        let (id, addrs) = s.split_once('=').ok_or_else(bad)?;
        let (addr, admin) = addrs.split_once('@').ok_or_else(|| {
            format!(
                "peer {s:?} has no admin address: write it as {PEER_SYNTAX}, the address \
                 of that node's --admin-listen"
            )
        })?;
        let (id, addr, admin) = (id.trim(), addr.trim(), admin.trim());
        if id.is_empty() || !is_host_port(addr) {
            return Err(bad());
        }
        let admin = match admin.parse::<u16>() {
            // `@PORT`: the game address's host.
            Ok(port) => match addr.rsplit_once(':') {
                Some((host, _)) => format!("{host}:{port}"),
                None => return Err(bad()),
            },
            Err(_) if is_host_port(admin) => admin.to_owned(),
            Err(_) => return Err(bad()),
        };
        Ok(Peer {
            id: id.to_owned(),
            addr: addr.to_owned(),
            admin,
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

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server, `redis://HOST:PORT`.
    Single(String),
    /// A Redis Cluster, any of its nodes' URLs.
    Cluster(Vec<String>),
}

/// The resolved stateless-cluster settings.
#[derive(Debug, Clone)]
pub struct StatelessConfig {
    /// This node's name in logs and `/api/node` (`--node-id`, optional).
    pub node_id: String,
    /// Where the games live.
    pub redis: RedisTarget,
    /// Replicas every event waits for before it goes out (0: none).
    pub wait_replicas: u32,
    /// The longest such wait.
    pub wait_timeout: Duration,
}

impl StatelessConfig {
    /// The wait for replicas, if any (`--redis-wait-replicas`).
    pub fn replica_wait(&self) -> Option<ReplicaWait> {
        (self.wait_replicas > 0).then_some(ReplicaWait {
            replicas: self.wait_replicas,
            timeout: self.wait_timeout,
        })
    }
}

/// Longest `--redis-wait-timeout-ms`: a `WAIT` holds the node's Redis
/// connection, and must end well inside its response timeout.
pub(super) const MAX_REDIS_WAIT_TIMEOUT_MS: u64 = 1_000;

/// How many Redis replicas must acknowledge each event before it goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    /// Replicas that must have it.
    pub replicas: u32,
    /// The longest wait; past it the event goes out anyway.
    pub timeout: Duration,
}

fn invalid<T>(message: &str) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(message.to_owned()))
}

/// The mode's settings from `o`; refuses options of another mode.
pub(super) fn resolve(o: &ServeOptions, d: &Defaults) -> Result<Topology, ConfigError> {
    let redis_given = o.redis.is_some() || o.redis_cluster.is_some();
    let no_redis = || {
        if redis_given {
            invalid("--redis and --redis-cluster need --mode stateless")
        } else {
            Ok(())
        }
    };
    match o.mode.unwrap_or(d.mode) {
        Mode::Single => {
            if o.node_id.is_some() || o.peers.is_some() {
                return invalid("--node-id and --peers need --mode stateful");
            }
            no_redis()?;
            Ok(Topology::Single)
        }
        Mode::Stateful => {
            let cluster = resolve_cluster(o, d)?;
            if o.tls_cert.is_some() {
                // Relays and probes dial peers without TLS; refuse rather than
                // start a cluster whose nodes cannot reach each other.
                return invalid(
                    "--tls-cert with --mode stateful is not supported yet: terminate TLS at the \
                     balancer (deploy/haproxy/haproxy-tls.cfg) and keep the nodes' network private",
                );
            }
            no_redis()?;
            Ok(Topology::Stateful(cluster))
        }
        Mode::Stateless => resolve_stateless(o, d).map(Topology::Stateless),
    }
}

fn resolve_cluster(o: &ServeOptions, d: &Defaults) -> Result<ClusterConfig, ConfigError> {
    let node_id = o
        .node_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| ConfigError::Invalid("--mode stateful needs --node-id".to_owned()))?;
    let mut peers = Vec::new();
    for raw in o.peers.iter().flatten() {
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
            "--peers must include this node ({node_id:?}) as {node_id}=HOST:PORT@ADMIN_PORT"
        )));
    }
    peers.sort_by(|a, b| a.id.cmp(&b.id));
    let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default).max(10));
    Ok(ClusterConfig {
        node_id,
        peers,
        probe_interval: ms(o.probe_interval_ms, d.probe_interval_ms),
        peer_timeout: ms(o.peer_timeout_ms, d.peer_timeout_ms),
    })
}

fn resolve_stateless(o: &ServeOptions, d: &Defaults) -> Result<StatelessConfig, ConfigError> {
    if o.peers.is_some() {
        return invalid("--peers is for --mode stateful; stateless nodes only share Redis");
    }
    let check = |url: &str| -> Result<String, ConfigError> {
        let url = url.trim();
        match redis::Client::open(url) {
            Ok(_) => Ok(url.to_owned()),
            Err(e) => Err(ConfigError::Invalid(format!("bad Redis URL {url:?}: {e}"))),
        }
    };
    let redis = match (&o.redis, &o.redis_cluster) {
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
            return invalid("--mode stateless needs --redis URL or --redis-cluster URL,URL,...");
        }
    };
    let wait_timeout_ms = o.redis_wait_timeout_ms.unwrap_or(d.redis_wait_timeout_ms);
    if !(1..=MAX_REDIS_WAIT_TIMEOUT_MS).contains(&wait_timeout_ms) {
        return invalid(&format!(
            "--redis-wait-timeout-ms must be 1..={MAX_REDIS_WAIT_TIMEOUT_MS}"
        ));
    }
    Ok(StatelessConfig {
        wait_replicas: o.redis_wait_replicas.unwrap_or(d.redis_wait_replicas),
        wait_timeout: Duration::from_millis(wait_timeout_ms),
        node_id: o
            .node_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .unwrap_or_else(|| STATELESS_NODE_ID.to_owned()),
        redis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The topology of the options a TOML snippet sets.
    fn resolve(toml: &str) -> Result<Topology, ConfigError> {
        let options: ServeOptions = toml::from_str(toml).unwrap();
        options.resolve().map(|c| c.topology)
    }

    fn refused(toml: &str, message: &str) {
        let err = resolve(toml).unwrap_err().to_string();
        assert!(err.contains(message), "{toml}: {err}");
    }

    #[test]
    fn mode_names_are_the_flag_values() {
        for mode in Mode::value_variants() {
            let flag = mode.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), mode.as_str());
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
    }

    #[test]
    fn default_topology_is_single() {
        let t = resolve("").unwrap();
        assert!(matches!(t, Topology::Single));
        assert_eq!((t.mode(), t.node_id()), (Mode::Single, "single"));
    }

    #[test]
    fn the_replica_wait_is_off_by_default_and_bounded() {
        let stateless = |extra: &str| match resolve(&format!(
            "mode = 'stateless'\nredis = 'redis://a:1'\n{extra}"
        )) {
            Ok(Topology::Stateless(s)) => s,
            other => panic!("{extra}: {other:?}"),
        };
        assert_eq!(stateless("").replica_wait(), None);
        assert_eq!(
            stateless("redis_wait_replicas = 1\nredis_wait_timeout_ms = 250").replica_wait(),
            Some(ReplicaWait {
                replicas: 1,
                timeout: Duration::from_millis(250)
            })
        );
        let base = "mode = 'stateless'\nredis = 'redis://a:1'\nredis_wait_replicas = 1\n";
        refused(
            &format!("{base}redis_wait_timeout_ms = 0"),
            "must be 1..=1000",
        );
        refused(
            &format!("{base}redis_wait_timeout_ms = 1001"),
            "must be 1..=1000",
        );
    }

    #[test]
    fn stateless_mode_needs_exactly_one_redis_target() {
        let t = resolve("mode = 'stateless'\nredis = 'redis://127.0.0.1:6379'").unwrap();
        assert_eq!((t.mode(), t.node_id()), (Mode::Stateless, "stateless"));
        let Topology::Stateless(s) = t else {
            panic!("not stateless: {t:?}");
        };
        assert_eq!(
            s.redis,
            RedisTarget::Single("redis://127.0.0.1:6379".into())
        );
        let t = resolve(
            "mode = 'stateless'\nnode_id = 'n1'\nredis_cluster = ['redis://a:1', 'redis://b:2']",
        )
        .unwrap();
        assert_eq!(t.node_id(), "n1");
        assert!(matches!(
            t,
            Topology::Stateless(StatelessConfig { redis: RedisTarget::Cluster(ref urls), .. })
                if urls.len() == 2
        ));
        refused("mode = 'stateless'", "needs --redis");
        refused(
            "mode = 'stateless'\nredis = 'redis://a:1'\nredis_cluster = ['redis://b:2']",
            "not both",
        );
        refused("mode = 'stateless'\nredis = 'not a url'", "bad Redis URL");
        refused("redis = 'redis://a:1'", "need --mode stateless");
        refused(
            "mode = 'stateful'\nnode_id = 'a'\npeers = ['a=127.0.0.1:9001@9101']\nredis = 'redis://a:1'",
            "need --mode stateless",
        );
        refused(
            "mode = 'stateless'\nredis = 'redis://a:1'\npeers = ['a=127.0.0.1:9001@9101']",
            "only share Redis",
        );
    }

    #[test]
    fn stateful_nodes_refuse_native_tls() {
        refused(
            "mode = 'stateful'\nnode_id = 'a'\npeers = ['a=127.0.0.1:9001@9101']\n\
             tls_cert = 'c.pem'\ntls_key = 'k.pem'",
            "balancer",
        );
    }

    #[test]
    fn stateful_mode_needs_a_consistent_peer_list() {
        let t = resolve(
            "mode = 'stateful'\nnode_id = 'b'\npeers = ['b=127.0.0.1:9002@10.0.0.2:9102', 'a=127.0.0.1:9001@9101']\n\
             probe_interval_ms = 1",
        )
        .unwrap();
        assert_eq!((t.mode(), t.node_id()), (Mode::Stateful, "b"));
        let Topology::Stateful(c) = t else {
            panic!("not stateful: {t:?}");
        };
        assert_eq!(
            c.peers[0],
            Peer {
                id: "a".into(),
                addr: "127.0.0.1:9001".into(),
                admin: "127.0.0.1:9101".into(),
            }
        );
        assert_eq!(c.peers[1].admin, "10.0.0.2:9102", "a host of its own");
        assert_eq!(
            c.probe_interval,
            Duration::from_millis(10),
            "at least 10 ms"
        );
        assert_eq!(c.peer_timeout, Duration::from_secs(2));
        refused("mode = 'stateful'", "needs --node-id");
        refused(
            "mode = 'stateful'\nnode_id = 'c'\npeers = ['a=127.0.0.1:9001@9101']",
            "must include this node",
        );
        refused(
            "mode = 'stateful'\nnode_id = 'a'\npeers = ['a=127.0.0.1:9001@9101', 'a=127.0.0.1:9002@9102']",
            "appears twice",
        );
        refused(
            "mode = 'stateful'\nnode_id = 'a'\npeers = ['a=nowhere@9101']",
            "is not ID=HOST:PORT",
        );
        refused(
            "mode = 'stateful'\nnode_id = 'a'\npeers = ['a=127.0.0.1:9001']",
            "has no admin address",
        );
        refused(
            "mode = 'stateful'\nnode_id = 'a'\npeers = ['a=127.0.0.1:9001@nowhere']",
            "is not ID=HOST:PORT",
        );
        refused("node_id = 'a'", "need --mode stateful");
    }
}
