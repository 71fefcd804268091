//! Relaying a player's connection to the node that owns their game.
//!
//! The edge node opens an internal WebSocket to the owner, sends the frame
//! that asked for the game, and from then on copies binary frames both ways
//! **without decoding them**. The player cannot tell: the owner's answers
//! arrive as if from the edge. The edge still applies its own size and rate
//! limits; the owner applies the protocol.

use std::time::Duration;

use crate::metrics as m;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tracing::debug;
use transport::session::CLOSE_INTERNAL;
use transport::{Outbox, SUBPROTOCOL, SessionLimits};

/// Header counting how many relays a connection passed through.
pub const HOPS_HEADER: &str = "x-gridcap-hops";
/// Relays allowed in a chain: edge → owner; one more for a player who
/// moves to a game on a third node without reconnecting, or for a game a
/// draining node moved (edge → the ring's owner → the peer holding it);
/// and one for a game moved twice, while a node's probes lag behind
/// (edge → owner → former holder → holder).
pub const MAX_HOPS: u32 = 3;
/// Frames from the player buffered toward the owner.
const TO_OWNER_QUEUE: usize = 64;

/// Why a relay could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The owner did not accept the connection in time.
    #[error("the game's node did not answer within {0:?}")]
    Timeout(Duration),
    /// The owner refused or the network failed.
    #[error("cannot reach the game's node: {0}")]
    Connect(String),
}

/// The player's side of an open relay; dropping it closes the relay.
#[derive(Debug)]
pub struct Relay {
    to_owner: mpsc::Sender<Bytes>,
}

impl Relay {
    /// Connects to the node at `addr`, sends `first` and starts copying the
    /// owner's frames into `outbox`.
    pub async fn open(
        addr: &str,
        hops: u32,
        first: Bytes,
        outbox: Outbox,
        limits: &SessionLimits,
        limit: Duration,
    ) -> Result<Relay, RelayError> {
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .map_err(|e| RelayError::Connect(e.to_string()))?;
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        headers.insert(HOPS_HEADER, HeaderValue::from(hops + 1));
        let connect = tokio_tungstenite::connect_async_with_config(
            request,
            Some(limits.websocket_config()),
            true,
        );
        let opened = async {
            let (mut ws, _) = tokio::time::timeout(limit, connect)
                .await
                .map_err(|_| RelayError::Timeout(limit))?
                .map_err(|e| RelayError::Connect(e.to_string()))?;
            ws.send(Message::Binary(first))
                .await
                .map_err(|e| RelayError::Connect(e.to_string()))?;
            Ok(ws)
        };
        let mut ws = match opened.await {
            Ok(ws) => ws,
            Err(e) => {
                m::relay_failed(match e {
                    RelayError::Timeout(_) => "timeout",
                    RelayError::Connect(_) => "connect",
                });
                return Err(e);
            }
        };
        m::relay_opened();
        let (to_owner, mut from_player) = mpsc::channel::<Bytes>(TO_OWNER_QUEUE);
        tokio::spawn(async move {
            let mut cut = false;
            loop {
                tokio::select! {
                    frame = from_player.recv() => match frame {
                        Some(frame) => {
                            if ws.send(Message::Binary(frame)).await.is_err() {
                                outbox.close(CLOSE_INTERNAL, "the game's node went away");
                                cut = true;
                                break;
                            }
                        }
                        None => {
                            // The player's connection ended: end ours politely.
                            if let Err(e) = ws.close(None).await {
                                debug!("closing a relay: {e}");
                            }
                            break;
                        }
                    },
                    incoming = ws.next() => match incoming {
                        Some(Ok(Message::Binary(frame))) => {
                            if outbox.push(frame).is_err() {
                                break; // The player's connection is closing.
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) = frame.map_or((CLOSE_INTERNAL, String::new()), |f| {
                                (u16::from(f.code), f.reason.to_string())
                            });
                            outbox.close(code, reason);
                            break;
                        }
                        Some(Ok(_)) => {} // Pings are answered by tungstenite.
                        Some(Err(_)) | None => {
                            outbox.close(CLOSE_INTERNAL, "the game's node went away");
                            cut = true;
                            break;
                        }
                    },
                }
            }
            m::relay_ended(cut);
        });
        Ok(Relay { to_owner })
    }

    /// Forwards one undecoded frame from the player; `false` if the relay is gone.
    pub async fn forward(&self, frame: Bytes) -> bool {
        self.to_owner.send(frame).await.is_ok()
    }
}
