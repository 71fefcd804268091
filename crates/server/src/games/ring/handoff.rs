//! A draining node's waiting games move to ready peers, so that it starts
//! no round it might not finish, and no waiting game vanishes with it.
//!
//! For each waiting game: its task stops taking commands and hands out the
//! game ([`hand_off`](crate::games::local::task::GameHandle::hand_off)); the node POSTs it to the ready peer with
//! the fewest games ([`ADOPT_PATH`]), which starts a task of its own for it
//! under the same id and code, its seats held for their tokens. Once the
//! peer has it, this node notes where it went (and relays players there
//! while it is still up), and the old task closes its players with 1001:
//! they resume with their token, through the balancer, and land in the same
//! game on the peer. Peers learn where the game is from the adopter's
//! [`ADOPTED_PATH`] at their next probe, so its id and code keep leading
//! there after this node has stopped, and after it has started again.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tracing::{info, warn};

use super::relay::HOPS_HEADER;
use crate::config::Peer;
use crate::games::WaitingGame;

/// Where a peer takes over a waiting game (peers only).
pub const ADOPT_PATH: &str = "/api/cluster/adopt";
/// Where a node lists the games it took over (peers only).
pub const ADOPTED_PATH: &str = "/api/cluster/adopted";

/// A plain HTTP/1 client for POSTing games to peers.
pub type PostClient = Client<HttpConnector, Full<Bytes>>;

/// A client whose connections time out after `timeout`.
pub fn post_client(timeout: Duration) -> PostClient {
    super::membership::client(timeout)
}

/// Hands `game` to `peer`; `Ok` once the peer holds it.
pub async fn send(
    client: &PostClient,
    peer: &Peer,
    game: &WaitingGame,
    timeout: Duration,
) -> Result<(), String> {
    let body = serde_json::to_vec(game).map_err(|e| e.to_string())?;
    let request = hyper::Request::post(format!("http://{}{ADOPT_PATH}", peer.admin))
        .header(HOPS_HEADER, "1")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200 => Ok(()),
            status => Err(format!("the peer answered {status}")),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Logs one handed-over game.
pub fn moved(game: &WaitingGame, peer: &Peer) {
    info!(game = %game.id, code = %game.code, to = %peer.id, players = game.seats.len(), "moved a waiting game");
}

/// Logs a game that could not move (it stays; the next tick tries again).
pub fn not_moved(game: &WaitingGame, peer: &Peer, why: &str) {
    warn!(game = %game.id, to = %peer.id, "cannot move a waiting game: {why}");
}
