//! A raw WebSocket client over a plain TCP socket, for what a well-behaved
//! library client cannot do: never answer pings (reading raw bytes does not
//! pong, unlike tungstenite), or stop reading with a tiny receive buffer.
//! Over TLS in TLS runs (see [`tls`](crate::tls)).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;

use crate::WAIT;

/// Frame opcodes (RFC 6455 §5.2).
pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

/// One WebSocket connection driven by hand.
#[derive(Debug)]
pub struct RawConn {
    pub stream: MaybeTlsStream<TcpStream>,
    /// Bytes read but not yet parsed into frames.
    buf: Vec<u8>,
}

/// One server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

impl RawConn {
    /// Connects and completes the handshake (no subprotocol offered).
    /// `recv_buffer` sets SO_RCVBUF before connecting, when given.
    pub async fn connect(addr: SocketAddr, recv_buffer: Option<u32>) -> RawConn {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let stream = tokio::time::timeout(WAIT, socket.connect(addr))
            .await
            .expect("connect within WAIT")
            .expect("connect");
        let mut stream = crate::tls::wrap(stream, addr).await;
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut conn = RawConn {
            stream,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(at) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            assert!(
                conn.fill(WAIT).await.expect("handshake"),
                "EOF in handshake"
            );
        };
        let head = String::from_utf8_lossy(&conn.buf[..end]).to_string();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "handshake refused: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "RFC 6455 accept key: {head}"
        );
        conn.buf.drain(..end);
        conn
    }

    /// Reads more bytes; `false` at EOF.
    async fn fill(&mut self, limit: Duration) -> Result<bool, String> {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(limit, self.stream.read(&mut chunk))
            .await
            .map_err(|_| format!("nothing read within {limit:?}"))?
            .map_err(|e| e.to_string())?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next whole frame from the server, `Ok(None)` at EOF.
    pub async fn read_frame(&mut self, limit: Duration) -> Result<Option<RawFrame>, String> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Ok(Some(frame));
            }
            if !self.fill(limit).await? {
                return Ok(None);
            }
        }
    }

    /// Sends one protocol message as a binary frame.
    pub async fn send_message(&mut self, message: &transport::ClientMessage) {
        let bytes = transport::codec::encode(message).expect("encode");
        self.send_frame(OP_BINARY, &bytes).await.expect("send");
    }

    /// Reads frames until the first binary one; decoded.
    pub async fn next_message(&mut self) -> transport::ServerMessage {
        loop {
            let frame = self.read_frame(WAIT).await.expect("a frame").expect("open");
            if frame.opcode == OP_BINARY {
                return transport::codec::decode_server(&frame.payload).expect("decode");
            }
        }
    }

    /// What a stalled reader finds once it reads again after the server cut
    /// it as a slow consumer: events continuing `after` without a gap (pings
    /// skipped), then a close with 1008 "slow consumer". The seq of the last
    /// event received.
    pub async fn events_then_slow_consumer_close(&mut self, after: u64) -> u64 {
        let mut last = after;
        let close = loop {
            let frame = self
                .read_frame(WAIT)
                .await
                .expect("a frame")
                .expect("a close before EOF");
            match frame.opcode {
                OP_BINARY => {
                    let m = transport::codec::decode_server(&frame.payload).expect("decode");
                    let seq = m.seq().expect("only events were sent to it");
                    assert_eq!(seq, last + 1, "no gap before the close");
                    last = seq;
                }
                OP_PING => {}
                OP_CLOSE => break frame,
                other => panic!("unexpected opcode {other}"),
            }
        };
        assert_eq!(close.close_code(), Some(1008), "{close:?}");
        assert!(
            String::from_utf8_lossy(&close.payload[2..]).contains("slow consumer"),
            "{close:?}"
        );
        last
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let frame = encode_masked(opcode, payload);
        self.stream.write_all(&frame).await
    }

    /// Writes `wire` as it is (frames built by the caller).
    pub async fn send_wire(&mut self, wire: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(wire).await
    }

    /// Sends one message split into frames of at most `chunk` bytes (the
    /// first with `opcode`, then continuation frames; FIN on the last).
    pub async fn send_fragmented(
        &mut self,
        opcode: u8,
        payload: &[u8],
        chunk: usize,
    ) -> std::io::Result<()> {
        let parts: Vec<&[u8]> = payload.chunks(chunk).collect();
        let mut wire = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let op = if i == 0 { opcode } else { OP_CONTINUATION };
            let mut frame = encode_masked(op, part);
            if i + 1 < parts.len() {
                frame[0] &= 0x7f; // not the final fragment
            }
            wire.extend_from_slice(&frame);
        }
        self.stream.write_all(&wire).await
    }
}

/// Parses one unmasked server frame from the front of `buf`.
fn parse(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    assert_eq!(buf[1] & 0x80, 0, "server frames are not masked");
    let (len, header) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (usize::try_from(u64::from_be_bytes(b)).expect("length"), 10)
        }
        n => (usize::from(n), 2),
    };
    if buf.len() < header + len {
        return None;
    }
    let payload = buf[header..header + len].to_vec();
    Some((RawFrame { opcode, payload }, header + len))
}

/// A masked client frame (FIN set).
pub fn encode_masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}
