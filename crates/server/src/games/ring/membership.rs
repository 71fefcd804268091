//! Health of the other nodes: each node probes every peer's `/api/node`
//! on its admin listener (the `@ADMIN` part of its `--peers` entry), and
//! reads the lobby listings and the adopted games of those that are up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::cluster::Cluster;
use super::handoff::ADOPTED_PATH;
use super::relay::HOPS_HEADER;
use crate::games::MovedGame;
use crate::games::lobby::{LISTINGS_PATH, Listing};
use crate::state::NodeInfo;

/// A peer as the last probe saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Answering and taking games.
    Ready,
    /// Answering but shutting down: no new games.
    Draining,
    /// Not answering: no new games, its games are unreachable.
    Down,
    /// Not probed yet; treated like ready for relaying, not for placing games.
    Unknown,
}

/// A peer's last probe result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Its state.
    pub state: PeerState,
    /// Games in its memory (all statuses).
    pub games: u64,
}

impl Default for PeerStatus {
    fn default() -> Self {
        PeerStatus {
            state: PeerState::Unknown,
            games: 0,
        }
    }
}

/// A plain HTTP/1 client for talking to peers.
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A client with short timeouts, for probes and API forwarding.
pub fn http_client(timeout: Duration) -> HttpClient {
    client(timeout)
}

/// A plain HTTP/1 client to peers, sending bodies of type `B`, whose
/// connections time out after `timeout`.
pub fn client<B>(timeout: Duration) -> Client<HttpConnector, B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// GETs `http://addr{path}`: status and body, within `timeout`.
pub async fn get(
    client: &HttpClient,
    addr: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, Bytes), String> {
    let request = hyper::Request::get(format!("http://{addr}{path}"))
        .header(HOPS_HEADER, "1")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((status, body.to_bytes()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Probes every peer each `probe_interval` until `stop`.
pub async fn probe_loop(cluster: Arc<Cluster>, stop: CancellationToken) {
    let client = http_client(cluster.peer_timeout);
    let mut tick = tokio::time::interval(cluster.probe_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let probes = cluster.others().map(|peer| {
            let client = client.clone();
            let peer = peer.clone();
            let timeout = cluster.peer_timeout;
            async move {
                let status = match get(&client, &peer.admin, "/api/node", timeout).await {
                    Ok((200, body)) => match serde_json::from_slice::<NodeInfo>(&body) {
                        Ok(info) => PeerStatus {
                            state: if info.draining {
                                PeerState::Draining
                            } else {
                                PeerState::Ready
                            },
                            games: info.games.total(),
                        },
                        Err(_) => PeerStatus {
                            state: PeerState::Down,
                            games: 0,
                        },
                    },
                    _ => PeerStatus {
                        state: PeerState::Down,
                        games: 0,
                    },
                };
                (peer, status)
            }
        });
        let probed = futures_util::future::join_all(probes).await;
        for (peer, status) in &probed {
            let before = cluster.state_of(&peer.id).state;
            if before != status.state {
                if status.state == PeerState::Down {
                    warn!(peer = %peer.id, addr = %peer.addr, "peer is down");
                } else {
                    info!(peer = %peer.id, state = ?status.state, "peer state changed");
                }
            }
            cluster.set_state(&peer.id, status.clone());
        }
        let lobbies = probed.iter().map(|(peer, status)| {
            let client = client.clone();
            let up = status.state != PeerState::Down;
            let timeout = cluster.peer_timeout;
            async move {
                let lists = match up {
                    true => tokio::join!(
                        fetch_list::<Listing>(&client, &peer.addr, LISTINGS_PATH, timeout),
                        fetch_list::<MovedGame>(&client, &peer.admin, ADOPTED_PATH, timeout),
                    ),
                    false => (Vec::new(), Vec::new()),
                };
                (peer.id.clone(), lists)
            }
        });
        for (peer, (listings, adopted)) in futures_util::future::join_all(lobbies).await {
            cluster.set_listings(&peer, listings);
            cluster.set_adopted(&peer, adopted);
        }
        cluster.set_probed();
    }
}

/// A peer's JSON list at `path`; empty when it cannot be read.
async fn fetch_list<T: serde::de::DeserializeOwned>(
    client: &HttpClient,
    addr: &str,
    path: &str,
    timeout: Duration,
) -> Vec<T> {
    match get(client, addr, path, timeout).await {
        Ok((200, body)) => serde_json::from_slice(&body).unwrap_or_else(|e| {
            warn!(addr, path, "a peer's list does not parse: {e}");
            Vec::new()
        }),
        _ => Vec::new(),
    }
}
