//! Clients read coalesced frames: many WebSocket frames in one TCP segment,
//! and frames cut across segments, over real loopback sockets.
//!
//! The server side is [`transport::session::run`] (which writes all queued
//! frames with one flush) or, to pin the byte layout exactly, raw bytes
//! written after the handshake. The client is tokio-tungstenite's own
//! reader in its default configuration, which every test harness (the test
//! kit's client, the system tests' players) is built on. The bots' reader has the same
//! test in `crates/bots/src/conn.rs`. A browser needs none: its WebSocket API
//! hands over whole messages, one `message` event each, and never shows how
//! the bytes were segmented. The other way round, the server's session reads
//! a client's frames packed into and cut across segments (the last test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use transport::session::{self, CLOSE_NORMAL, Flow, Handler, SessionEnd, SessionLimits};
use transport::{ClientMessage, Outbox, SUBPROTOCOL, ServerMessage, codec};

const WAIT: Duration = Duration::from_secs(10);

/// A socket that counts its write calls (each one a `send()` syscall, one
/// TCP segment on loopback for up to 64 KiB).
struct CountingStream {
    inner: TcpStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(_)) = written {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A handler that ignores what the client says.
struct Quiet;

impl Handler for Quiet {
    async fn on_message(&mut self, _: ClientMessage, _: Bytes, _: &Outbox) -> Flow {
        Flow::Continue
    }

    async fn on_close(self, _: &Outbox) {}
}

/// The `captured` event number `seq`, encoded as the server sends it.
fn captured(seq: u64) -> Bytes {
    codec::encode_server(&ServerMessage::Captured {
        seq,
        cell: (seq % 81) as u8,
        player: (seq % 4) as u8,
        score: seq as u32,
    })
    .unwrap()
}

/// Accepts one WebSocket connection on `stream`, answering `gridcap.v1`.
#[allow(clippy::result_large_err)] // the callback's type is tungstenite's
async fn accept<S>(stream: S) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let echo_subprotocol = |_: &Request, mut response: Response| {
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        Ok(response)
    };
    let config = SessionLimits::default().websocket_config();
    tokio_tungstenite::accept_hdr_async_with_config(stream, echo_subprotocol, Some(config))
        .await
        .unwrap()
}

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the client read next.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // One message at a time.
enum Received {
    Message(ServerMessage),
    /// A close frame's code and reason, or `None`: the stream ended.
    Closed(Option<(u16, String)>),
}

async fn connect(url: &str) -> Client {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    let protocol = HeaderValue::from_static(SUBPROTOCOL);
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol);
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The next message or close within [`WAIT`] (pings skipped).
async fn recv(client: &mut Client) -> Received {
    loop {
        match tokio::time::timeout(WAIT, client.next()).await.unwrap() {
            Some(Ok(Message::Binary(bytes))) => {
                return Received::Message(codec::decode_server(&bytes).unwrap());
            }
            Some(Ok(Message::Close(frame))) => {
                let close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                return Received::Closed(close);
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return Received::Closed(None),
        }
    }
}

async fn next_message(client: &mut Client) -> ServerMessage {
    match recv(client).await {
        Received::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Reads `count` messages and checks they are `captured` 1..=count in order.
async fn read_captured(client: &mut Client, count: u64) {
    for want in 1..=count {
        match next_message(client).await {
            ServerMessage::Captured { seq, cell, .. } => {
                assert_eq!((seq, cell), (want, (want % 81) as u8));
            }
            other => panic!("expected captured {want}, got {other:?}"),
        }
    }
}

/// A session with a full outbox writes it in a few large writes (frames
/// coalesced into each), and the client reads every frame, then the close.
#[tokio::test]
async fn a_coalescing_session_is_read_frame_by_frame() {
    const FRAMES: u64 = 300;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let writes = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn({
        let writes = writes.clone();
        async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let ws = accept(CountingStream { inner: tcp, writes }).await;
            let outbox = Outbox::new(1, 1024);
            for seq in 1..=FRAMES {
                outbox.push(captured(seq)).unwrap();
            }
            outbox.close(CLOSE_NORMAL, "done");
            let limits = SessionLimits::default();
            session::run(ws, outbox, &limits, Quiet, std::future::pending()).await
        }
    });
    let mut client = connect(&url).await;
    read_captured(&mut client, FRAMES).await;
    let close = recv(&mut client).await;
    assert_eq!(
        close,
        Received::Closed(Some((CLOSE_NORMAL, "done".to_owned())))
    );
    // Reading on sends our close reply; the server then ends the stream.
    assert_eq!(recv(&mut client).await, Received::Closed(None));
    assert_eq!(server.await.unwrap(), SessionEnd::Closed(CLOSE_NORMAL));
    // The handshake's answer, the frames and the close: 300 frames of ~40
    // bytes fill 4 KiB write buffers about three times, so about six writes
    // in all; at least ten frames per write on average leaves room for
    // partial writes on a busy machine.
    let writes = writes.load(Ordering::Relaxed) as u64;
    assert!(writes * 10 <= FRAMES, "{writes} writes for {FRAMES} frames");
}

/// The wire bytes of one unmasked binary frame (what a server sends).
fn wire_frame(payload: Bytes) -> Vec<u8> {
    let frame = Frame::message(payload, OpCode::Data(Data::Binary), true);
    let mut out = Vec::with_capacity(frame.len());
    frame.format(&mut out).unwrap();
    out
}

/// Exact layouts, written raw after the handshake: 200 frames in one
/// segment whose end cuts the 201st frame in its header, the rest of it
/// with more frames in the next segment, then a frame cut inside its payload.
#[tokio::test]
async fn frames_packed_and_cut_across_segments_are_all_read() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (release, mut released) = tokio::sync::mpsc::channel::<()>(1);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut ws = accept(tcp).await;
        let frames: Vec<Vec<u8>> = (1..=260).map(|s| wire_frame(captured(s))).collect();
        // Segment 1 (one write): frames 1-200 and the first byte of 201's header.
        let mut packed: Vec<u8> = frames[..200].concat();
        packed.push(frames[200][0]);
        let socket = ws.get_mut();
        socket.write_all(&packed).await.unwrap();
        socket.flush().await.unwrap();
        // Let the client read the cut first, so the next bytes arrive apart.
        released.recv().await.unwrap();
        let mut rest = frames[200][1..].to_vec();
        rest.extend(frames[201..259].concat());
        let cut = frames[259].len() / 2;
        rest.extend(&frames[259][..cut]);
        socket.write_all(&rest).await.unwrap();
        socket.flush().await.unwrap();
        released.recv().await.unwrap();
        socket.write_all(&frames[259][cut..]).await.unwrap();
        socket.flush().await.unwrap();
        ws
    });
    let mut client = connect(&url).await;
    read_captured(&mut client, 200).await;
    release.send(()).await.unwrap();
    for seq in 201..=259 {
        assert!(matches!(
            next_message(&mut client).await,
            ServerMessage::Captured { seq: s, .. } if s == seq
        ));
    }
    release.send(()).await.unwrap();
    assert!(matches!(
        next_message(&mut client).await,
        ServerMessage::Captured { seq: 260, .. }
    ));
    drop(server.await.unwrap());
}

/// The wire bytes of one masked binary frame (what a client sends).
fn masked_frame(payload: Bytes) -> Vec<u8> {
    let mut frame = Frame::message(payload, OpCode::Data(Data::Binary), true);
    frame.header_mut().mask = Some([0x37, 0xfa, 0x21, 0x3d]);
    let mut out = Vec::with_capacity(frame.len());
    frame.format(&mut out).unwrap();
    out
}

/// A handler that reports the cell of every capture it is handed.
struct Cells(tokio::sync::mpsc::UnboundedSender<i64>);

impl Handler for Cells {
    async fn on_message(&mut self, message: ClientMessage, _: Bytes, _: &Outbox) -> Flow {
        if let ClientMessage::Capture { cell, .. } = message {
            self.0.send(cell).unwrap();
        }
        Flow::Continue
    }

    async fn on_close(self, _: &Outbox) {}
}

/// The server's reader: a client's frames packed many to a segment and cut
/// across segments (in a header, in a payload), read by a real session over
/// loopback: every capture decoded, in order.
#[tokio::test]
async fn the_server_reads_client_frames_packed_and_cut_across_segments() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (cells, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = accept(tcp).await;
        let limits = SessionLimits {
            rate_per_sec: 0,
            ..SessionLimits::default()
        };
        let outbox = Outbox::new(1, 8);
        session::run(ws, outbox, &limits, Cells(cells), std::future::pending()).await
    });
    let mut client = connect(&url).await;
    let frames: Vec<Vec<u8>> = (0..300)
        .map(|cell| {
            let capture = ClientMessage::Capture {
                cell,
                reference: u32::try_from(cell).ok(),
            };
            masked_frame(codec::encode(&capture).unwrap())
        })
        .collect();
    let MaybeTlsStream::Plain(socket) = client.get_mut() else {
        panic!("a plain ws:// connection");
    };
    let expect = async |seen: &mut tokio::sync::mpsc::UnboundedReceiver<i64>, cells| {
        for cell in cells {
            let got = tokio::time::timeout(WAIT, seen.recv()).await.unwrap();
            assert_eq!(got, Some(cell));
        }
    };
    // One write: frames 0-249 and the first byte of 250's header.
    let mut packed = frames[..250].concat();
    packed.push(frames[250][0]);
    socket.write_all(&packed).await.unwrap();
    expect(&mut seen, 0..250).await;
    // The rest of 250, 251-298 and half of 299.
    let mut rest = frames[250][1..].to_vec();
    rest.extend(frames[251..299].concat());
    let cut = frames[299].len() / 2;
    rest.extend(&frames[299][..cut]);
    socket.write_all(&rest).await.unwrap();
    expect(&mut seen, 250..299).await;
    socket.write_all(&frames[299][cut..]).await.unwrap();
    expect(&mut seen, 299..300).await;
    client.close(None).await.unwrap();
    let end = tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
    assert_eq!(end, SessionEnd::PeerClosed);
}
