//! RFC 6455 at the byte level: a plain TCP client that performs the HTTP
//! upgrade by hand and writes WebSocket frames with its own tiny builder,
//! to send what no well-behaved library would: unmasked frames, invalid
//! UTF-8, fragments, oversized control frames, reserved bits and opcodes.
//!
//! Where RFC 6455 says the server *should* (or *may*) send a close frame
//! with a status code before dropping the connection, these tests expect it
//! (1002 protocol error, 1007 invalid payload data), and
//! `every_protocol_violation_ends_only_its_own_connection` checks that no
//! violation disturbs other players. Every wait is bounded by [`WAIT`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use gridcap::config::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use transport::codec;
use transport::protocol::{ClientMessage, ErrorCode, Number, ServerMessage};

// ---- a tiny RFC 6455 frame builder and reader (client side) ----

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;

const MASK: [u8; 4] = [0xa5, 0x13, 0x7e, 0xc2];

/// One frame as a client writes it (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy)]
struct Out<'a> {
    fin: bool,
    /// RSV1..3 as the top bits of a nibble (0x4 = RSV1).
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: &'a [u8],
}

impl<'a> Out<'a> {
    /// A final, masked frame: what a conforming client sends.
    fn new(opcode: u8, payload: &'a [u8]) -> Out<'a> {
        Out {
            fin: true,
            rsv: 0,
            opcode,
            masked: true,
            payload,
        }
    }

    fn fin(self, fin: bool) -> Self {
        Out { fin, ..self }
    }

    fn unmasked(self) -> Self {
        Out {
            masked: false,
            ..self
        }
    }

    fn rsv(self, rsv: u8) -> Self {
        Out { rsv, ..self }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out =
            vec![(u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | (self.opcode & 0xf)];
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let len = self.payload.len();
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if let Ok(len) = u16::try_from(len) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&len.to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if self.masked {
            out.extend_from_slice(&MASK);
            out.extend(
                self.payload
                    .iter()
                    .zip(MASK.iter().cycle())
                    .map(|(b, m)| b ^ m),
            );
        } else {
            out.extend_from_slice(self.payload);
        }
        out
    }
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct In {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl In {
    fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// How a connection ended, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// A close frame with this code (None: an empty close frame), then EOF.
    Close(Option<u16>),
    /// EOF or a reset without any close frame.
    Dropped(String),
}

/// A WebSocket connection driven by hand.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Bytes read but not parsed yet.
    buf: Vec<u8>,
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The accept value RFC 6455 §1.3 gives for `KEY`.
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Sends an upgrade request with `extra` header lines; returns the response
/// head and a connection positioned after it.
async fn upgrade(addr: SocketAddr, extra: &str) -> (String, Conn) {
    let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect within WAIT")
        .expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: gridcap.v1\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    let end = loop {
        if let Some(at) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        assert!(conn.fill().await.expect("handshake"), "EOF in handshake");
    };
    let head = String::from_utf8_lossy(&conn.buf[..end]).into_owned();
    conn.buf.drain(..end);
    (head, conn)
}

/// A connection that completed the handshake.
async fn open(addr: SocketAddr) -> Conn {
    let (head, conn) = upgrade(addr, "").await;
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "handshake refused: {head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains(&format!(
            "sec-websocket-accept: {}",
            ACCEPT.to_ascii_lowercase()
        )),
        "RFC 6455 accept key: {head}"
    );
    assert!(
        lower.contains("sec-websocket-protocol: gridcap.v1"),
        "{head}"
    );
    conn
}

fn ping_message(ts: u64) -> Vec<u8> {
    codec::encode(&ClientMessage::Ping {
        ts: Number::Unsigned(ts),
    })
    .expect("encode")
    .to_vec()
}

impl Conn {
    /// Reads more bytes; `Ok(false)` at EOF.
    async fn fill(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .map_err(|_| format!("nothing read within {WAIT:?}"))?
            .map_err(|e| format!("read: {e}"))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Consumes the body of the HTTP response whose head is `head`.
    async fn skip_body(&mut self, head: &str) {
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < length {
            assert!(self.fill().await.expect("body"), "EOF in the body");
        }
        self.buf.drain(..length);
    }

    /// Writes raw bytes. A write may fail once the server has dropped us.
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    async fn send(&mut self, frame: Out<'_>) {
        self.write(&frame.bytes()).await.expect("write a frame");
    }

    /// The next frame; `Ok(None)` at EOF, `Err` on a reset or timeout.
    async fn frame(&mut self) -> Result<Option<In>, String> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// The next application message, skipping the server's pings.
    async fn message(&mut self) -> ServerMessage {
        loop {
            let frame = self.frame().await.expect("read").expect("a frame, not EOF");
            match frame.opcode {
                OP_PING => continue,
                OP_BINARY => {
                    assert!(frame.fin, "the server does not fragment");
                    return codec::decode_server(&frame.payload).expect("a server message");
                }
                other => panic!("expected a message, got opcode {other:#x}: {frame:?}"),
            }
        }
    }

    /// Reads until the connection ends: a close frame followed by EOF, or
    /// EOF (or a reset) with no close frame. Messages and pings are skipped.
    async fn end(&mut self) -> End {
        loop {
            match self.frame().await {
                Ok(Some(f)) if f.opcode == OP_CLOSE => {
                    let code = f.close_code();
                    // The server must then end the TCP connection.
                    let rest = match self.frame().await {
                        Ok(Some(f)) => panic!("a frame after the close: {f:?}"),
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    };
                    assert!(
                        rest.is_ok() || rest.as_ref().is_err_and(|e| e.contains("reset")),
                        "after its close frame the server must end the connection: {rest:?}"
                    );
                    return End::Close(code);
                }
                Ok(Some(_)) => continue,
                Ok(None) => return End::Dropped("EOF".into()),
                Err(e) if e.contains("within") => panic!("the connection did not end: {e}"),
                Err(e) => return End::Dropped(e),
            }
        }
    }

    /// Sends `ping` and expects its `pong`.
    async fn ping_pong(&mut self, ts: u64) {
        self.send(Out::new(OP_BINARY, &ping_message(ts))).await;
        match self.message().await {
            ServerMessage::Pong { ts: echoed, .. } => assert_eq!(echoed, Number::Unsigned(ts)),
            other => panic!("expected pong, got {other:?}"),
        }
    }
}

/// Parses one server frame from the front of `buf`.
fn parse(buf: &[u8]) -> Option<(In, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames are never masked");
    assert_eq!(buf[0] & 0x70, 0, "no extension: reserved bits clear");
    let (len, header) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (usize::try_from(u64::from_be_bytes(b)).expect("length"), 10)
        }
        126 | 127 => return None,
        n => (usize::from(n), 2),
    };
    if buf.len() < header + len {
        return None;
    }
    let frame = In {
        fin: buf[0] & 0x80 != 0,
        opcode: buf[0] & 0x0f,
        payload: buf[header..header + len].to_vec(),
    };
    Some((frame, header + len))
}

/// Asserts that the server closed with `code` (close frame, then EOF).
#[track_caller]
fn assert_closed_with(end: End, code: u16, what: &str) {
    assert_eq!(
        end,
        End::Close(Some(code)),
        "{what}: RFC 6455 asks for a close frame with {code} before the connection ends"
    );
}

// ---- protocol violations ----

#[tokio::test]
async fn an_unmasked_client_frame_is_closed_with_1002() {
    let server = TestServer::start().await;
    let mut c = open(server.addr).await;
    c.ping_pong(1).await;
    c.send(Out::new(OP_BINARY, &ping_message(2)).unmasked())
        .await;
    assert_closed_with(c.end().await, 1002, "an unmasked client frame (§5.1)");
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_is_closed_with_1007() {
    let server = TestServer::start().await;
    let mut c = open(server.addr).await;
    // Valid UTF-8 text is a protocol error of ours, not of RFC 6455: answered.
    c.send(Out::new(OP_TEXT, b"hello")).await;
    match c.message().await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::BadFrame),
        other => panic!("expected error bad_frame, got {other:?}"),
    }
    // An overlong encoding of '/' and a lone continuation byte (§8.1).
    c.send(Out::new(OP_TEXT, b"ok \xc0\xaf \x80")).await;
    assert_closed_with(c.end().await, 1007, "invalid UTF-8 in a text frame (§8.1)");
}

#[tokio::test]
async fn a_control_frame_with_more_than_125_bytes_is_closed_with_1002() {
    let server = TestServer::start().await;
    let mut c = open(server.addr).await;
    c.send(Out::new(OP_PING, &[b'p'; 126])).await;
    assert_closed_with(c.end().await, 1002, "a 126-byte ping (§5.5)");
}

#[tokio::test]
async fn other_framing_errors_are_closed_with_1002() {
    let server = TestServer::start().await;
    let ping = ping_message(1);
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "a fragmented control frame (§5.5)",
            Out::new(OP_PING, b"x").fin(false).bytes(),
        ),
        (
            "a continuation with nothing to continue (§5.4)",
            Out::new(OP_CONTINUATION, &ping).bytes(),
        ),
        (
            "RSV1 without a negotiated extension (§5.2)",
            Out::new(OP_BINARY, &ping).rsv(0x4).bytes(),
        ),
        (
            "reserved data opcode 0x3 (§5.2)",
            Out::new(0x3, &ping).bytes(),
        ),
        (
            "reserved control opcode 0xb (§5.2)",
            Out::new(0xb, b"").bytes(),
        ),
    ];
    for (what, bytes) in cases {
        let mut c = open(server.addr).await;
        c.write(&bytes).await.expect("write");
        assert_closed_with(c.end().await, 1002, what);
    }
}

#[tokio::test]
async fn every_protocol_violation_ends_only_its_own_connection() {
    // What holds today and must keep holding: each violation ends its
    // connection promptly (with or without a close frame) and the players
    // of a running game on the same server do not notice.
    let server = TestServer::start().await;
    let mut players = full_game(&server, 2, 60_000).await;
    let ping = ping_message(1);
    let violations: [(&str, Vec<u8>); 8] = [
        ("unmasked", Out::new(OP_BINARY, &ping).unmasked().bytes()),
        ("invalid UTF-8", Out::new(OP_TEXT, b"\xff\xfe").bytes()),
        ("126-byte ping", Out::new(OP_PING, &[0; 126]).bytes()),
        (
            "fragmented ping",
            Out::new(OP_PING, b"x").fin(false).bytes(),
        ),
        (
            "lone continuation",
            Out::new(OP_CONTINUATION, &ping).bytes(),
        ),
        ("RSV1", Out::new(OP_BINARY, &ping).rsv(0x4).bytes()),
        ("opcode 0x3", Out::new(0x3, &ping).bytes()),
        ("opcode 0xb", Out::new(0xb, b"").bytes()),
    ];
    for (i, (what, bytes)) in violations.iter().enumerate() {
        let mut c = open(server.addr).await;
        c.write(bytes).await.expect("write");
        match c.end().await {
            End::Close(code) => assert!(
                matches!(code, Some(1002 | 1007)),
                "{what}: closed with {code:?}"
            ),
            End::Dropped(_) => {}
        }
        // The game goes on: a capture is broadcast to both players.
        players[0].send(&capture(i as i64)).await;
        for p in players.iter_mut() {
            match p.next().await {
                ServerMessage::Captured { cell, player, .. } => {
                    assert_eq!((cell, player), (i as u8, 0), "after {what}");
                }
                other => panic!("after {what}: expected captured, got {other:?}"),
            }
        }
    }
}

// ---- what a conforming client may do ----

#[tokio::test]
async fn a_fragmented_binary_message_is_reassembled() {
    let server = TestServer::start().await;
    let mut c = open(server.addr).await;
    let message = ping_message(0xfeed);
    let (a, rest) = message.split_at(3);
    let (b, d) = rest.split_at(4);
    c.send(Out::new(OP_BINARY, a).fin(false)).await;
    c.send(Out::new(OP_CONTINUATION, b).fin(false)).await;
    // A control frame may come between the fragments (§5.4); it is
    // answered at once, and the message still reassembles.
    c.send(Out::new(OP_PING, b"mid")).await;
    c.send(Out::new(OP_CONTINUATION, d)).await;
    let pong = c.frame().await.expect("read").expect("a frame");
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OP_PONG, &b"mid"[..]),
        "the ping between fragments is answered with its payload"
    );
    match c.message().await {
        ServerMessage::Pong { ts, .. } => assert_eq!(ts, Number::Unsigned(0xfeed)),
        other => panic!("expected pong, got {other:?}"),
    }
    // The same bytes one fragment per byte.
    let message = ping_message(7);
    for (i, byte) in message.iter().enumerate() {
        let opcode = if i == 0 { OP_BINARY } else { OP_CONTINUATION };
        c.send(Out::new(opcode, std::slice::from_ref(byte)).fin(i + 1 == message.len()))
            .await;
    }
    match c.message().await {
        ServerMessage::Pong { ts, .. } => assert_eq!(ts, Number::Unsigned(7)),
        other => panic!("expected pong, got {other:?}"),
    }
}

#[tokio::test]
async fn fragments_adding_up_to_more_than_the_size_limit_are_closed_with_1009() {
    let server = TestServer::start_with(ServeOptions {
        max_message_bytes: Some(1024),
        ..options()
    })
    .await;
    let mut c = open(server.addr).await;
    // Each fragment is under the limit; the message is not. Nothing more is
    // sent, so that the server's close cannot race a write into a reset.
    let chunk = [0x90u8; 600];
    c.send(Out::new(OP_BINARY, &chunk).fin(false)).await;
    c.send(Out::new(OP_CONTINUATION, &chunk).fin(false)).await;
    assert_closed_with(c.end().await, 1009, "a reassembled message over the limit");
}

#[tokio::test]
async fn the_close_handshake_is_answered_and_the_server_ends_the_connection() {
    let server = TestServer::start().await;
    let mut c = open(server.addr).await;
    c.ping_pong(1).await;
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    c.send(Out::new(OP_CLOSE, &close)).await;
    // §5.5.1: the server answers with a close frame (echoing the code), and
    // §7.1.1: the server is the side that closes the TCP connection first.
    // `end` asserts EOF after the close frame.
    assert_closed_with(c.end().await, 1000, "the answer to a client's close 1000");
}

#[tokio::test]
async fn a_foreign_origin_gets_http_403_and_no_upgrade() {
    let server = TestServer::start_with(ServeOptions {
        allowed_origins: Some(vec!["https://play.example".into()]),
        ..options()
    })
    .await;
    let (head, mut refused) = upgrade(server.addr, "Origin: https://evil.example\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("sec-websocket-accept") && !lower.contains("upgrade: websocket"),
        "a refused handshake must not look upgraded: {head}"
    );
    refused.skip_body(&head).await;
    // Whatever the server does with the socket next (HTTP keep-alive, or
    // close), it is not a WebSocket: a frame sent anyway is at most answered
    // as a malformed HTTP request.
    let _ = refused
        .write(&Out::new(OP_BINARY, &ping_message(1)).bytes())
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), refused.fill()).await;
    assert!(
        refused.buf.is_empty() || refused.buf.starts_with(b"HTTP/1.1 4"),
        "a refused connection answered a WebSocket frame: {:02x?}",
        &refused.buf[..refused.buf.len().min(16)]
    );

    // The allowed origin, and no Origin at all (a non-browser client).
    for extra in ["Origin: https://play.example\r\n", ""] {
        let (head, mut c) = upgrade(server.addr, extra).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{extra:?}: {head}");
        c.ping_pong(3).await;
    }
}

// ---- message content that stresses the decoder ----

/// Regression test for a stack overflow found while fuzzing (SECURITY.md,
/// "Fuzzing"): one 4 KiB frame of nested MessagePack arrays needs about
/// 3 MiB of stack to decode in a debug build, more than a tokio worker (or
/// this test thread) has, and the overflow aborts the whole process. A
/// release build needs about 120 KiB for it and passes. `transport::codec::decode` now caps the depth (`MAX_DEPTH`).
#[tokio::test]
async fn a_deeply_nested_message_is_a_bad_message_not_a_crash() {
    let server = TestServer::start().await;
    let mut c = open(server.addr).await;
    // {t: "ping", ts: [[[[...]]]]}, as deep as the 4 KiB limit allows.
    let mut frame = b"\x82\xa1t\xa4ping\xa2ts".to_vec();
    frame.extend(std::iter::repeat_n(0x91u8, 4096 - 16));
    frame.push(0xc0);
    c.send(Out::new(OP_BINARY, &frame)).await;
    match c.message().await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::BadMessage),
        other => panic!("expected error bad_message, got {other:?}"),
    }
    c.ping_pong(1).await;
}

// ---- headers a client must not be able to forge ----

/// `x-gridcap-hops` marks a relay from a cluster peer, and relays are exempt
/// from the per-IP limit (they carry many players). The header comes from
/// the client's own request, so a client that sets it must not gain that
/// exemption: not in single mode, where there are no peers at all.
#[tokio::test]
async fn a_forged_relay_header_does_not_bypass_the_per_ip_limit() {
    let server = TestServer::start_with(ServeOptions {
        max_connections_per_ip: Some(1),
        ..options()
    })
    .await;
    let mut first = open(server.addr).await;
    first.ping_pong(1).await;
    let (head, _refused) = upgrade(server.addr, "").await;
    assert!(head.starts_with("HTTP/1.1 429"), "the limit holds: {head}");
    for hops in ["1", "2"] {
        let (head, _c) = upgrade(server.addr, &format!("x-gridcap-hops: {hops}\r\n")).await;
        assert!(
            head.starts_with("HTTP/1.1 429"),
            "a client claiming to be a relay ({hops} hops) got past the per-IP limit: {head}"
        );
    }
}
