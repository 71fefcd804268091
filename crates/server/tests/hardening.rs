//! Issue 8's limits, each shown holding while other players keep playing,
//! and native TLS with a certificate made by the test (rcgen).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gridcap::config::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_tungstenite::Connector;
use transport::protocol::{ErrorCode, GameStatus, ServerMessage};

/// A game of two already playing on `server`, to show it is not disturbed.
async fn bystanders(server: &TestServer) -> Vec<TestClient> {
    full_game(server, 2, 60_000).await
}

/// The bystanders still play: a capture each, seen by both.
async fn still_playing(players: &mut [TestClient], cells: [i64; 2]) {
    players[0].send(&capture(cells[0])).await;
    players[1].send(&capture(cells[1])).await;
    let target = players[0].seq() + 2;
    sync_all(players, target).await;
}

/// [`still_playing`], then the graceful shutdown.
async fn still_playing_until_shutdown(
    server: TestServer,
    mut players: Vec<TestClient>,
    cells: [i64; 2],
) {
    still_playing(&mut players, cells).await;
    drop(players);
    server.shutdown().await;
}

#[tokio::test]
async fn per_ip_limit_refuses_the_extra_connection_only() {
    let server = TestServer::start_with(ServeOptions {
        max_connections_per_ip: Some(3),
        ..options()
    })
    .await;
    let mut players = bystanders(&server).await; // two connections from 127.0.0.1
    let third = server.connect().await;
    assert_eq!(
        refused_status(ws_request(server.addr)).await,
        429,
        "the fourth is refused"
    );
    still_playing(&mut players, [0, 1]).await;
    third.close().await;
    // A slot freed is a slot available again.
    // The server releases the slot as the session ends, soon but not at once.
    let deadline = tokio::time::Instant::now() + WAIT;
    let again = loop {
        match handshake(ws_request(server.addr)).await {
            Ok((c, _)) => break c,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "the slot did not come back within {WAIT:?} of a close: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(again);
    drop(players);
    server.shutdown().await;
}

#[tokio::test]
async fn trusted_proxy_forwarded_for_counts_per_client() {
    let server = TestServer::start_with(ServeOptions {
        max_connections_per_ip: Some(1),
        trusted_proxies: Some(vec!["127.0.0.1".parse().unwrap()]),
        ..options()
    })
    .await;
    let from = |ip: &str| {
        let mut r = ws_request(server.addr);
        r.headers_mut()
            .insert("x-forwarded-for", ip.parse().unwrap());
        r
    };
    let (_a, _) = handshake(from("203.0.113.1")).await.expect("first client");
    let (_b, _) = handshake(from("203.0.113.2"))
        .await
        .expect("another client behind the same proxy");
    assert_eq!(refused_status(from("203.0.113.1")).await, 429);
    server.shutdown().await;
}

#[tokio::test]
async fn slowloris_head_is_cut_off_while_games_go_on() {
    let server = TestServer::start_with(ServeOptions {
        handshake_timeout_ms: Some(300),
        ..options()
    })
    .await;
    let players = bystanders(&server).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finish the head: the server must hang up on its own.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server closed a connection whose head never ended"
    );
    still_playing_until_shutdown(server, players, [2, 3]).await;
}

#[tokio::test]
async fn oversized_request_head_is_refused() {
    let server = TestServer::start_with(ServeOptions {
        max_head_bytes: Some(8192),
        ..options()
    })
    .await;
    let mut big = TcpStream::connect(server.addr).await.unwrap();
    let filler = "a".repeat(20_000);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n");
    // The server may hang up mid-write (a reset), which is a fine answer.
    let wrote = big.write_all(request.as_bytes()).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, big.read_to_end(&mut buf)).await;
    let head = String::from_utf8_lossy(&buf);
    assert!(
        read.is_ok(),
        "an oversized head neither answered nor hung up within {WAIT:?} (write: {wrote:?}); got {head:?}"
    );
    // Either refused with 431 (hyper's answer to a head over its buffer) or
    // hung up before any answer; never served, never another status.
    assert!(
        buf.is_empty() || head.starts_with("HTTP/1.1 431"),
        "an oversized head must be refused with 431 or cut: {head}"
    );
    let ok = common::http::get(server.addr, "/healthz").await;
    assert_eq!(ok.status, 200, "normal requests still work");
    server.shutdown().await;
}

#[tokio::test]
async fn silent_connection_is_closed_but_talkers_stay() {
    let server = TestServer::start_with(ServeOptions {
        first_message_timeout_ms: Some(300),
        ..options()
    })
    .await;
    let players = bystanders(&server).await; // they spoke (create/join)
    let mut silent = server.connect().await;
    assert_eq!(
        silent.closed().await,
        Some(1008),
        "no message within the limit"
    );
    still_playing_until_shutdown(server, players, [4, 5]).await;
}

#[tokio::test]
async fn max_games_answers_overloaded_and_keeps_the_others() {
    let server = TestServer::start_with(ServeOptions {
        max_games: Some(1),
        ..options()
    })
    .await;
    let players = bystanders(&server).await;
    let mut extra = server.connect().await;
    extra.send(&create("extra", None, None)).await;
    extra.error(ErrorCode::Overloaded).await;
    still_playing_until_shutdown(server, players, [6, 7]).await;
}

/// A self-signed certificate for 127.0.0.1/localhost, as PEM files, and a
/// client config that trusts exactly it.
fn self_signed(dir: &std::path::Path) -> (ServeOptions, Arc<rustls::ClientConfig>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let options = ServeOptions {
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..options()
    };
    (options, Arc::new(client))
}

/// A `wss://` client of `server` trusting `client`'s roots.
async fn wss_client(server: &TestServer, client: Arc<rustls::ClientConfig>) -> TestClient {
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "gridcap.v1".parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        true,
        Some(Connector::Rustls(client)),
    )
    .await
    .expect("wss handshake");
    TestClient::new(ws)
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate_plays_a_game() {
    let dir = std::env::temp_dir().join(format!("gridcap-tls-{}", std::process::id()));
    let (options, client) = self_signed(&dir);
    let server = TestServer::start_with(options).await;
    let connect = |client: Arc<rustls::ClientConfig>| wss_client(&server, client);
    let mut host = connect(client.clone()).await;
    host.send(&create("tls-host", Some(2), Some(30_000))).await;
    let game = host.joined().await;
    let mut guest = connect(client.clone()).await;
    guest.send(&join(&game.id, "tls-guest")).await;
    let snap = guest.joined().await;
    assert_eq!(snap.status, GameStatus::Waiting, "taken before the start");
    guest.sync_to(snap.seq + 1).await;
    assert_eq!(
        guest.replica.as_ref().map(|g| g.status),
        Some(GameStatus::Active)
    );
    guest.send(&capture(40)).await;
    let seen = host
        .until(|m| matches!(m, ServerMessage::Captured { cell: 40, .. }))
        .await;
    assert!(matches!(seen, ServerMessage::Captured { .. }));
    // Plain ws:// to a TLS port fails: nothing is served unencrypted.
    assert!(handshake(ws_request(server.addr)).await.is_err());
    host.close().await;
    guest.close().await;
    server.shutdown().await;
}

/// A TLS handshake that never finishes (a record header, then silence) is
/// cut off at `--handshake-timeout-ms`, as a slow request head is, while a
/// TLS player who connects meanwhile plays.
#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off_while_tls_players_go_on() {
    let dir = std::env::temp_dir().join(format!("gridcap-tls-slow-{}", std::process::id()));
    let (options, client) = self_signed(&dir);
    let server = TestServer::start_with(ServeOptions {
        handshake_timeout_ms: Some(300),
        ..options
    })
    .await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    // A handshake record that promises 512 bytes and sends none of them.
    slow.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    let mut host = wss_client(&server, client.clone()).await;
    host.send(&create("tls-host", Some(2), Some(30_000))).await;
    let game = host.joined().await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, slow.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a TLS handshake that never finished was still open after {WAIT:?}"
    );
    assert!(
        buf.is_empty() || buf[0] == 0x15,
        "only a TLS alert: {buf:?}"
    );
    let mut guest = wss_client(&server, client).await;
    guest.send(&join(&game.id, "tls-guest")).await;
    guest.joined().await;
    host.until(|m| matches!(m, ServerMessage::PlayerJoined { .. }))
        .await;
    host.close().await;
    guest.close().await;
    server.shutdown().await;
}
