//! Parking: what an idle session keeps instead of a WebSocket.
//!
//! A parked session holds its raw socket (off the reactor: see `idle.rs`)
//! and its [`Conn`](super::active::Conn)
//! and waits (in a slot, no task: see `crate::slot`) for the first of: bytes to
//! read, a frame queued in its outbox, its heartbeat (see `beats.rs`), the
//! shutdown. Then it builds a fresh tungstenite `WebSocketStream` on the
//! socket (its buffers are allocated then) and runs the active loop until
//! it is quiet again.
//!
//! Dropping the WebSocket is only safe between frames: [`Framed`] wraps the
//! socket and follows the frame boundaries of the bytes tungstenite reads
//! ([`Boundary`]), so that a session parks only when every byte read belongs
//! to a complete frame (which tungstenite has then returned: it reads from
//! the socket only when it holds no complete frame) and no fragmented
//! message is half received.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::IdleSockets;

/// A raw socket a session can park on. While its session is parked, the
/// socket is its [`Park::Idle`] form: for a TCP socket, off the runtime's
/// reactor and watched by the node's [`IdleSockets`] (see `idle.rs`).
pub trait Park: AsyncRead + AsyncWrite + Unpin + Send + Sized + 'static {
    /// The socket while its session is parked.
    type Idle: Send + 'static;

    /// The socket leaves the reactor for `sockets` (between two frames,
    /// with nothing of it buffered).
    fn leave(self, sockets: &IdleSockets) -> io::Result<Self::Idle>;

    /// Ready when the parked socket has bytes to read (or an error or EOF
    /// to report); until then `cx` is woken when it has.
    fn poll_idle(idle: &mut Self::Idle, sockets: &IdleSockets, cx: &mut Context<'_>) -> Poll<()>;

    /// The parked socket back on the reactor, to read and write.
    fn rejoin(idle: Self::Idle, sockets: &IdleSockets) -> io::Result<Self>;
}

/// Where the bytes read so far stand in the peer's frames (RFC 6455 §5.2).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Boundary {
    /// Header bytes of the frame being read (at most 14).
    header: [u8; 14],
    /// How many of `header` are in.
    have: u8,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// A data frame without FIN was read: a fragmented message is open.
    fragmented: bool,
}

impl Boundary {
    /// Every byte read so far belongs to a complete frame, and no message
    /// is half received.
    pub(super) fn at_rest(&self) -> bool {
        self.have == 0 && self.payload_left == 0 && !self.fragmented
    }

    /// Follows `bytes`, the next bytes read from the peer.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.payload_left -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            let have = usize::from(self.have);
            let need = header_len(&self.header[..have]);
            let take = need.saturating_sub(have).min(bytes.len());
            self.header[have..have + take].copy_from_slice(&bytes[..take]);
            self.have += take as u8;
            bytes = &bytes[take..];
            if usize::from(self.have) == header_len(&self.header[..usize::from(self.have)]) {
                self.end_header();
            }
        }
    }

    /// A complete header is in: note the payload to skip and whether a
    /// fragmented message opens or closes.
    fn end_header(&mut self) {
        let h = &self.header;
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0f;
        self.payload_left = match h[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            n => u64::from(n),
        };
        if opcode & 0x08 == 0 {
            // Data frames (continuation, text, binary); control frames
            // may come between a message's fragments and change nothing.
            self.fragmented = !fin;
        }
        self.have = 0;
    }
}

/// The length of a header whose first bytes are `start`: 2 until the
/// second byte tells the length field's size and whether a mask follows.
fn header_len(start: &[u8]) -> usize {
    let Some(&second) = start.get(1) else {
        return 2;
    };
    let length_field = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + length_field + mask
}

/// A socket whose reads are followed by a [`Boundary`]; what tungstenite
/// gets while a parking session is active.
pub(super) struct Framed<T> {
    pub(super) io: T,
    pub(super) boundary: Boundary,
}

impl<T> Framed<T> {
    pub(super) fn new(io: T) -> Self {
        Framed {
            io,
            boundary: Boundary::default(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Framed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        this.boundary.feed(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Framed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame with `payload`, FIN and opcode as given.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=65535 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn follows_frames_fed_in_any_pieces() {
        let mut bytes = frame(true, 2, b"hello");
        bytes.extend(frame(true, 9, b"")); // a ping
        bytes.extend(frame(true, 2, &[7; 300])); // 16-bit length
        bytes.extend(frame(true, 2, &[7; 70_000])); // 64-bit length
        for piece in [1, 2, 3, 7, 64, 1000, bytes.len()] {
            let mut b = Boundary::default();
            let mut rests = 0;
            for chunk in bytes.chunks(piece) {
                b.feed(chunk);
                rests += usize::from(b.at_rest());
            }
            assert!(b.at_rest(), "pieces of {piece}");
            assert!(rests <= 4, "at rest only between frames");
            let mut partial = Boundary::default();
            partial.feed(&bytes[..bytes.len() - 1]);
            assert!(!partial.at_rest(), "one byte short");
        }
        let mut mid_header = Boundary::default();
        mid_header.feed(&frame(true, 2, &[0; 300])[..3]);
        assert!(!mid_header.at_rest(), "inside a header");
    }

    #[test]
    fn a_fragmented_message_is_not_at_rest_until_its_last_fragment() {
        let mut b = Boundary::default();
        b.feed(&frame(false, 2, b"part one"));
        assert!(!b.at_rest());
        b.feed(&frame(true, 10, b"")); // a pong between the fragments
        assert!(!b.at_rest());
        b.feed(&frame(true, 0, b"part two"));
        assert!(b.at_rest());
    }
}
