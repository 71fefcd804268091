//! The client side of the protocol, for bots and tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::protocol::{ClientMessage, SUBPROTOCOL, ServerMessage};
use crate::{TransportError, codec};

/// What a client receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// One decoded server message.
    Message(ServerMessage),
    /// The server closed the connection (with its close frame, if any).
    Closed(Option<(u16, String)>),
}

/// A WebSocket connection speaking protocol v1.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects to `url` (e.g. `ws://127.0.0.1:8080/ws`), offering `gridcap.v1`.
    pub async fn connect(url: &str) -> Result<Client, TransportError> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let (ws, _response) = tokio_tungstenite::connect_async(request).await?;
        Ok(Client { ws })
    }

    /// Wraps an already-upgraded stream (custom handshakes in tests).
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        Client { ws }
    }

    /// Sends one message as one binary frame.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), TransportError> {
        let frame = codec::encode(message)?;
        self.ws.send(Message::Binary(frame)).await?;
        Ok(())
    }

    /// Sends any raw WebSocket message (for malformed-input tests).
    pub async fn send_raw(&mut self, message: Message) -> Result<(), TransportError> {
        self.ws.send(message).await?;
        Ok(())
    }

    /// The next server message or the close; pings are answered and skipped.
    pub async fn recv(&mut self) -> Result<Received, TransportError> {
        loop {
            match self.ws.next().await {
                None => return Ok(Received::Closed(None)),
                Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => {
                    return Ok(Received::Closed(None));
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Binary(bytes))) => {
                    return codec::decode_server(&bytes).map(Received::Message);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Received::Closed(frame.map(
                        |CloseFrame { code, reason }| (u16::from(code), reason.to_string()),
                    )));
                }
                Some(Ok(Message::Text(t))) => {
                    return Err(TransportError::Decode(format!(
                        "unexpected text frame: {t}"
                    )));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Like [`recv`](Self::recv) but gives up after `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<Received, TransportError> {
        tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| TransportError::Timeout("receive"))?
    }

    /// The next server message; a close is an error.
    pub async fn next_message(&mut self, limit: Duration) -> Result<ServerMessage, TransportError> {
        match self.recv_timeout(limit).await? {
            Received::Message(m) => Ok(m),
            Received::Closed(_) => Err(TransportError::Closed),
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) -> Result<(), TransportError> {
        self.ws.close(None).await?;
        Ok(())
    }
}
