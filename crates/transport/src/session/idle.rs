//! Parked sockets off the runtime's reactor.
//!
//! A socket that tokio's reactor watches costs a registration of its own
//! (tokio's `ScheduledIo`: 256 bytes in a 128-byte-aligned allocation) for
//! as long as it is a `tokio::net::TcpStream`. A parked session only needs
//! to know when its socket has bytes to read, so while it is parked its
//! socket leaves the reactor: it becomes a plain `std::net::TcpStream`
//! watched by [`IdleSockets`], one epoll instance per node (through mio,
//! tokio's own I/O layer) whose descriptor is the one thing tokio watches
//! for all of them. The kernel keeps what it needs per socket; user space
//! keeps 16 bytes and a bit in a table (the waker to call; "ready").
//!
//! [`IdleSockets::run`] waits for the epoll instance to be readable, takes
//! its events and wakes the sessions whose sockets they name. A session
//! that wakes takes its socket back to the reactor (`rejoin`) before it
//! reads. Leaving and rejoining are two `epoll_ctl` calls each, once per
//! park, which happens at most once per `park_after` of quiet.
//!
//! An event may name a socket that has just rejoined, and whose entry a
//! newly parked socket took: that socket's session then wakes for nothing,
//! finds no bytes, and parks again. No wake-up is lost: a socket's entry is
//! made before it is registered, and epoll reports a socket that is
//! readable already when it is registered.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use tokio::io::unix::AsyncFd;
use tracing::debug;

/// Events taken from the epoll instance per call.
const EVENTS_PER_POLL: usize = 1024;

/// One node's parked sockets; see the module docs.
#[derive(Debug)]
pub struct IdleSockets {
    /// Registers and deregisters sockets (a handle on the epoll instance).
    registry: mio::Registry,
    /// The epoll instance, until [`IdleSockets::run`] takes it.
    poll: Mutex<Option<mio::Poll>>,
    table: Mutex<Table>,
}

/// What each watched socket waits for, by its token: 16 bytes and a bit
/// per socket, grown by an eighth at a time (a doubling `Vec` would leave
/// up to half of it unused at the peak).
#[derive(Debug, Default)]
struct Table {
    /// The waker of each socket's session, once it has registered one.
    wakers: Vec<Option<Waker>>,
    /// A bit per socket: it has something to read (or an error, or EOF).
    ready: Vec<u64>,
    /// Tokens free for reuse.
    free: Vec<u32>,
}

impl Table {
    /// A token for a newly watched socket: not ready, no waker yet.
    fn take(&mut self) -> io::Result<u32> {
        let token = match self.free.pop() {
            Some(token) => token,
            None => {
                let token = u32::try_from(self.wakers.len())
                    .map_err(|_| io::Error::other("too many idle sockets"))?;
                if self.wakers.len() == self.wakers.capacity() {
                    self.wakers.reserve_exact(self.wakers.len() / 8 + 64);
                }
                self.wakers.push(None);
                if self.ready.len() * 64 < self.wakers.len() {
                    self.ready.push(0);
                }
                token
            }
        };
        self.set_ready(token, false);
        Ok(token)
    }

    /// Gives `token` back (its socket rejoined the reactor).
    fn release(&mut self, token: u32) {
        if let Some(waker) = self.wakers.get_mut(token as usize) {
            *waker = None;
            self.free.push(token);
        }
    }

    fn is_ready(&self, token: u32) -> bool {
        let (word, bit) = (token as usize / 64, token % 64);
        self.ready.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    fn set_ready(&mut self, token: u32, ready: bool) {
        let (word, bit) = (token as usize / 64, token % 64);
        if let Some(w) = self.ready.get_mut(word) {
            if ready {
                *w |= 1 << bit;
            } else {
                *w &= !(1 << bit);
            }
        }
    }
}

/// A parked socket: off the reactor, watched by its node's [`IdleSockets`].
#[derive(Debug)]
pub struct IdleTcp {
    stream: std::net::TcpStream,
    token: u32,
}

impl IdleSockets {
    /// A new epoll instance for a node's parked sockets; spawn
    /// [`IdleSockets::run`] before the first session parks.
    pub fn new() -> io::Result<IdleSockets> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        Ok(IdleSockets {
            registry,
            poll: Mutex::new(Some(poll)),
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // Nothing panics while the lock is held; a poisoned table is as good.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the sessions whose sockets have something to read, for as
    /// long as the runtime runs. Returns only on an error of the epoll
    /// instance (or when called a second time).
    pub async fn run(&self) -> io::Result<()> {
        let poll = self
            .poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| io::Error::other("the idle sockets are watched already"))?;
        // The safe constructor is deprecated because a generic `T` may not
        // keep its descriptor open and the same; `mio::Poll` owns its epoll
        // descriptor for its whole life, and the `AsyncFd` owns the `Poll`.
        #[allow(deprecated, reason = "mio::Poll keeps its descriptor: see above")]
        let mut epoll = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE)?;
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        let mut woken = Vec::new();
        loop {
            let mut guard = epoll.readable_mut().await?;
            loop {
                match guard
                    .get_inner_mut()
                    .poll(&mut events, Some(Duration::ZERO))
                {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                if events.is_empty() {
                    // Drained: the next event makes the instance readable again.
                    guard.clear_ready();
                    break;
                }
                self.mark_ready(&events, &mut woken);
                woken.drain(..).for_each(Waker::wake);
            }
        }
    }

    /// Marks the sockets `events` name ready; their wakers into `woken`.
    /// An event for a socket that has rejoined since marks its token, which
    /// is made not ready again when it is next taken.
    fn mark_ready(&self, events: &Events, woken: &mut Vec<Waker>) {
        let mut table = self.table();
        for event in events {
            let Ok(token) = u32::try_from(event.token().0) else {
                continue;
            };
            table.set_ready(token, true);
            if let Some(waker) = table.wakers.get_mut(token as usize) {
                woken.extend(waker.take());
            }
        }
    }

    /// Watches `stream` (off the reactor already) until [`IdleSockets::rejoin`].
    fn watch(&self, stream: std::net::TcpStream) -> io::Result<IdleTcp> {
        let token = self.table().take()?;
        let fd = stream.as_raw_fd();
        let registered = self.registry.register(
            &mut SourceFd(&fd),
            Token(token as usize),
            Interest::READABLE,
        );
        if let Err(e) = registered {
            self.release(token);
            return Err(e);
        }
        Ok(IdleTcp { stream, token })
    }

    /// Ready once `idle` has something to read; until then `cx` is woken
    /// when it has.
    fn poll_ready(&self, idle: &IdleTcp, cx: &mut Context<'_>) -> Poll<()> {
        let mut table = self.table();
        if table.is_ready(idle.token) {
            return Poll::Ready(());
        }
        match table.wakers.get_mut(idle.token as usize) {
            Some(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            // Never: the token is the socket's until it rejoins.
            None => Poll::Ready(()),
        }
    }

    /// Stops watching `idle`; its stream, to give back to the reactor.
    fn unwatch(&self, idle: IdleTcp) -> std::net::TcpStream {
        let fd = idle.stream.as_raw_fd();
        if let Err(e) = self.registry.deregister(&mut SourceFd(&fd)) {
            // Only if it was never registered; an event for it is harmless.
            debug!("idle socket not deregistered: {e}");
        }
        self.release(idle.token);
        idle.stream
    }

    fn release(&self, token: u32) {
        self.table().release(token);
    }

    /// Sockets watched now.
    #[cfg(test)]
    fn watched(&self) -> usize {
        let table = self.table();
        table.wakers.len() - table.free.len()
    }
}

impl super::Park for tokio::net::TcpStream {
    type Idle = IdleTcp;

    fn leave(self, sockets: &IdleSockets) -> io::Result<IdleTcp> {
        sockets.watch(self.into_std()?)
    }

    fn poll_idle(idle: &mut IdleTcp, sockets: &IdleSockets, cx: &mut Context<'_>) -> Poll<()> {
        sockets.poll_ready(idle, cx)
    }

    fn rejoin(idle: IdleTcp, sockets: &IdleSockets) -> io::Result<Self> {
        tokio::net::TcpStream::from_std(sockets.unwatch(idle))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::super::Park;
    use super::*;

    /// A connected pair of loopback sockets: (server side, client side).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    /// Idle sockets with their watcher running.
    fn running() -> Arc<IdleSockets> {
        let sockets = Arc::new(IdleSockets::new().unwrap());
        let runner = sockets.clone();
        tokio::spawn(async move { runner.run().await });
        sockets
    }

    /// Ready once `idle` is.
    async fn readable(idle: &mut IdleTcp, sockets: &IdleSockets) {
        std::future::poll_fn(|cx| TcpStream::poll_idle(idle, sockets, cx)).await;
    }

    #[tokio::test]
    async fn a_parked_socket_wakes_when_bytes_come_and_reads_them_after_rejoining() {
        let sockets = running();
        let (server, mut client) = pair().await;
        let mut idle = server.leave(&sockets).unwrap();
        assert_eq!(sockets.watched(), 1);
        let waiting =
            std::future::poll_fn(|cx| Poll::Ready(TcpStream::poll_idle(&mut idle, &sockets, cx)));
        assert!(waiting.await.is_pending(), "nothing to read yet");

        client.write_all(b"hello").await.unwrap();
        readable(&mut idle, &sockets).await;
        let mut server = TcpStream::rejoin(idle, &sockets).unwrap();
        assert_eq!(sockets.watched(), 0, "its entry is free again");
        let mut got = [0; 5];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");

        // Parked again, its entry reused: an EOF wakes it too.
        let mut idle = server.leave(&sockets).unwrap();
        assert_eq!(idle.token, 0, "the freed entry is reused");
        drop(client);
        readable(&mut idle, &sockets).await;
        let mut server = TcpStream::rejoin(idle, &sockets).unwrap();
        assert_eq!(server.read(&mut got).await.unwrap(), 0, "EOF");
    }

    #[tokio::test]
    async fn bytes_already_waiting_when_a_socket_parks_wake_it() {
        let sockets = running();
        let (server, mut client) = pair().await;
        client.write_all(b"early").await.unwrap();
        client.flush().await.unwrap();
        // Make sure the bytes are in the server's receive queue first.
        server.readable().await.unwrap();
        let mut idle = server.leave(&sockets).unwrap();
        readable(&mut idle, &sockets).await;
        let mut server = TcpStream::rejoin(idle, &sockets).unwrap();
        let mut got = [0; 5];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"early");
    }

    #[test]
    fn the_table_reuses_tokens_and_forgets_their_readiness() {
        let mut table = Table::default();
        let tokens: Vec<u32> = (0..130).map(|_| table.take().unwrap()).collect();
        assert_eq!(tokens, (0..130).collect::<Vec<_>>());
        assert_eq!(table.ready.len(), 3, "a bit per token");
        assert!(
            table.wakers.capacity() < 130 + 130 / 8 + 64 + 1,
            "grown by an eighth"
        );
        for token in [0, 63, 64, 129] {
            table.set_ready(token, true);
        }
        assert!(table.is_ready(63) && table.is_ready(64) && !table.is_ready(65));
        table.release(64);
        assert_eq!(table.take().unwrap(), 64, "a freed token is reused");
        assert!(!table.is_ready(64), "and starts not ready");
        assert!(
            table.is_ready(63) && table.is_ready(129),
            "the others keep theirs"
        );
    }

    #[tokio::test]
    async fn the_epoll_instance_is_watched_once() {
        let sockets = IdleSockets::new().unwrap();
        let first = sockets.poll.lock().unwrap().take();
        assert!(first.is_some());
        let err = sockets.run().await.unwrap_err();
        assert!(err.to_string().contains("watched already"), "{err}");
    }
}
