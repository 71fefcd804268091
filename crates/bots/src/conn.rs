//! A bot's connection: the run-wide [`Shared`] state, the TCP connect
//! (bound to a source address when asked) with the WebSocket handshake, and
//! the polite close.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, client_async_tls_with_config};
use tokio_util::sync::CancellationToken;
use transport::{ClientMessage, SUBPROTOCOL, codec};

use crate::args::{Plan, Target};
use crate::error::BotError;
use crate::round::QuickPlayRounds;
use crate::stats::{Counters, Stats};

/// A bot's WebSocket (over TLS for `wss://` targets).
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest TCP connect or WebSocket handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest close handshake.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// What every bot of a run shares.
#[derive(Debug)]
pub struct Shared {
    /// The checked settings.
    pub plan: Plan,
    /// Counters and histograms (also read by the progress line).
    pub stats: Arc<Stats>,
    /// The run's clock origin: ramp-up offsets and round tables count from it.
    pub epoch: Instant,
    /// Cancelled at the stop.
    pub stop: CancellationToken,
    /// tungstenite buffers for bot connections.
    pub ws_config: WebSocketConfig,
    /// With quick play: the round of each game bots were seated in.
    pub quick_rounds: QuickPlayRounds,
}

impl Shared {
    /// Small buffers: a bot reads bursts of small frames and writes a few
    /// captures at a time, and one process holds thousands of connections.
    pub fn websocket_config() -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(1024)
            .max_write_buffer_size(64 * 1024)
            .max_message_size(Some(64 * 1024))
            .max_frame_size(Some(64 * 1024))
    }
}

/// Connects to `target` from `source` (any local address when `None`),
/// with Nagle off, and completes the WebSocket handshake offering `gridcap.v1`
/// (after the TLS handshake, for `wss://` targets).
pub async fn connect(
    target: &Target,
    source: Option<IpAddr>,
    config: WebSocketConfig,
) -> Result<Ws, BotError> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = timeout(CONNECT_TIMEOUT, socket.connect(target.addr))
        .await
        .map_err(|_| BotError::Timeout("connect"))??;
    stream.set_nodelay(true)?;
    let mut request = target.url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let connector = match &target.tls {
        Some(tls) => Connector::Rustls(tls.clone()),
        None => Connector::Plain,
    };
    let handshake = client_async_tls_with_config(request, stream, Some(config), Some(connector));
    let (ws, _response) = timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| BotError::Timeout("websocket handshake"))??;
    Ok(ws)
}

/// Sends one protocol message (counted as sent).
pub async fn send(
    ws: &mut Ws,
    message: &ClientMessage,
    counters: &Counters,
) -> Result<(), BotError> {
    let frame = codec::encode(message).map_err(|e| BotError::InvalidOption(e.to_string()))?;
    ws.send(Message::Binary(frame)).await?;
    Counters::inc(&counters.messages_out);
    Ok(())
}

/// Closes politely, within [`CLOSE_LIMIT`]: our close frame, then read until
/// the server's close ends the stream.
pub async fn close(ws: &mut Ws) {
    let handshake = async {
        ws.close(None).await?;
        while let Some(frame) = ws.next().await {
            frame?;
        }
        Ok::<(), WsError>(())
    };
    let _best_effort = timeout(CLOSE_LIMIT, handshake).await;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use transport::session::{self, CLOSE_NORMAL, Flow, Handler, SessionLimits};
    use transport::{ClientMessage, Outbox, ServerMessage, codec};

    use super::*;
    use crate::wire::{Fast, peek};

    struct Quiet;

    impl Handler for Quiet {
        async fn on_message(&mut self, _: ClientMessage, _: Bytes, _: &Outbox) -> Flow {
            Flow::Continue
        }

        async fn on_close(self, _: &Outbox) {}
    }

    /// The server's coalesced writes (~4 KiB, about 100 frames each) reach
    /// a bot as many frames per segment, cut anywhere against its 4 KiB read
    /// buffer: it reads every frame, in order, through its fast path.
    #[tokio::test]
    #[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
    async fn a_bot_reads_every_coalesced_frame() {
        const FRAMES: u64 = 500;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let echo = |_: &Request, mut response: Response| {
                let ours = HeaderValue::from_static(SUBPROTOCOL);
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", ours);
                Ok(response)
            };
            let limits = SessionLimits::default();
            let config = Some(limits.websocket_config());
            let ws = tokio_tungstenite::accept_hdr_async_with_config(tcp, echo, config)
                .await
                .unwrap();
            let outbox = Outbox::new(1, 1024);
            for seq in 1..=FRAMES {
                let captured = ServerMessage::Captured {
                    seq,
                    cell: (seq % 81) as u8,
                    player: (seq % 4) as u8,
                    score: seq as u32,
                };
                outbox
                    .push(codec::encode_server(&captured).unwrap())
                    .unwrap();
            }
            outbox.close(CLOSE_NORMAL, "done");
            session::run(ws, outbox, &limits, Quiet, std::future::pending()).await
        });
        let target = Target {
            url: format!("ws://{addr}/ws"),
            addr,
            tls: None,
        };
        let mut ws = connect(&target, None, Shared::websocket_config())
            .await
            .unwrap();
        for want in 1..=FRAMES {
            let frame = match timeout(CONNECT_TIMEOUT, ws.next()).await.unwrap() {
                Some(Ok(Message::Binary(frame))) => frame,
                other => panic!("expected captured {want}, got {other:?}"),
            };
            let expected = Fast::Captured {
                seq: want,
                cell: (want % 81) as u8,
                player: (want % 4) as u8,
            };
            assert_eq!(peek(&frame), expected);
        }
        close(&mut ws).await;
        assert_eq!(
            server.await.unwrap(),
            session::SessionEnd::Closed(CLOSE_NORMAL)
        );
    }
}
