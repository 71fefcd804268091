//! Protocol §1, the handshake: subprotocol, Origin allow-list, capacity.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gridcap::config::ServeOptions;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use transport::protocol::{ClientMessage, Number, ServerMessage};

fn offered(response: &tokio_tungstenite::tungstenite::handshake::client::Response) -> Option<&str> {
    response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().expect("ASCII header"))
}

#[tokio::test]
async fn an_offered_gridcap_v1_is_echoed() {
    let server = TestServer::start().await;
    let (mut c, response) = handshake(ws_request(server.addr)).await.expect("accepted");
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(offered(&response), Some("gridcap.v1"));
    c.ping_pong(1).await;

    // Among others, ours is picked.
    let mut request = ws_request(server.addr);
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("chat, gridcap.v1"),
    );
    let (mut c, response) = handshake(request).await.expect("accepted");
    assert_eq!(offered(&response), Some("gridcap.v1"));
    c.ping_pong(2).await;
}

#[tokio::test]
async fn no_subprotocol_is_accepted_without_one() {
    let server = TestServer::start().await;
    let mut request = ws_request(server.addr);
    request.headers_mut().remove("Sec-WebSocket-Protocol");
    let (mut c, response) = handshake(request).await.expect("accepted");
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(offered(&response), None);
    c.ping_pong(1).await;
}

#[tokio::test]
async fn only_other_subprotocols_get_400() {
    let server = TestServer::start().await;
    for others in ["chat", "chat, superchat", "gridcap.v2"] {
        let mut request = ws_request(server.addr);
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(others));
        assert_eq!(refused_status(request).await, 400, "{others}");
    }
}

#[tokio::test]
async fn a_foreign_origin_gets_403_when_an_allow_list_is_set() {
    let server = TestServer::start_with(ServeOptions {
        allowed_origins: Some(vec!["https://play.example".into()]),
        ..options()
    })
    .await;
    let with_origin = |origin: &'static str| {
        let mut request = ws_request(server.addr);
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_static(origin));
        request
    };
    for foreign in [
        "https://evil.example",
        "http://play.example",
        "https://play.example.evil.example",
        "null",
    ] {
        assert_eq!(refused_status(with_origin(foreign)).await, 403, "{foreign}");
    }
    // On the list (a trailing slash is the same origin).
    for allowed in ["https://play.example", "https://play.example/"] {
        let (mut c, _) = handshake(with_origin(allowed)).await.expect(allowed);
        c.ping_pong(1).await;
    }
    // No Origin at all: a non-browser client.
    let (mut c, _) = handshake(ws_request(server.addr)).await.expect("no Origin");
    c.ping_pong(2).await;
}

#[tokio::test]
async fn without_an_allow_list_every_origin_is_accepted() {
    let server = TestServer::start().await;
    let mut request = ws_request(server.addr);
    request.headers_mut().insert(
        "Origin",
        HeaderValue::from_static("https://anywhere.example"),
    );
    let (mut c, _) = handshake(request).await.expect("accepted");
    c.ping_pong(1).await;
}

/// Handshakes until one is upgraded (a permit freed by a session that has
/// just ended comes back a moment after its socket closes).
async fn admitted(server: &TestServer) -> TestClient {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match handshake(ws_request(server.addr)).await {
            Ok((c, _)) => break c,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never upgraded: {e}"
                );
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Protocol §1: past `--max-connections` the server upgrades and closes at
/// once with 1013 (a browser cannot read a refused handshake's status),
/// `--max-overload-closes` at a time; past those too, HTTP 503.
#[tokio::test]
async fn connections_beyond_max_connections_are_closed_1013_until_one_closes() {
    let server = TestServer::start_with(ServeOptions {
        max_connections: Some(2),
        max_overload_closes: Some(1),
        // The turned-away connection keeps its slot until it answers the
        // close: long enough that only the client decides when.
        close_timeout_ms: Some(120_000),
        ..options()
    })
    .await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;

    // Upgraded, but only to be told why it cannot stay.
    let (mut turned_away, response) = handshake(ws_request(server.addr)).await.expect("101");
    assert_eq!(response.status().as_u16(), 101);
    // While it has not answered the close, the one overload slot is taken.
    assert_eq!(refused_status(ws_request(server.addr)).await, 503);
    match turned_away.recv().await {
        Frame::Closed(Some((code, reason))) => {
            assert_eq!(code, 1013);
            assert_eq!(reason, "too many connections; try again later");
        }
        other => panic!("expected a 1013 close, got {other:?}"),
    }
    turned_away.ended().await;
    // The slot is back once the close handshake is over.
    let mut again = admitted(&server).await;
    assert_eq!(again.closed_now().await, Some(1013));
    again.ended().await;

    // The two admitted connections were never disturbed.
    first.ping_pong(1).await;
    second.ping_pong(2).await;

    // When one ends, its permit is returned. The server drops the socket
    // (EOF here) only after the session has ended.
    first.send(&LEAVE).await;
    assert_eq!(first.closed_now().await, Some(1000));
    first.ended().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut third = loop {
        let mut c = admitted(&server).await;
        // A 1013 close would come at once; a seat answers the ping.
        c.send(&ClientMessage::Ping {
            ts: Number::Unsigned(3),
        })
        .await;
        match c.recv().await {
            Frame::Message(ServerMessage::Pong { .. }) => break c,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "never readmitted: {other:?}"
            ),
        }
    };
    third.ping_pong(4).await;
    let mut fourth = admitted(&server).await;
    assert_eq!(fourth.closed_now().await, Some(1013));
}

/// With `--max-overload-closes 0` the node answers HTTP 503 at once.
#[tokio::test]
async fn without_overload_closes_past_the_limit_is_503() {
    let server = TestServer::start_with(ServeOptions {
        max_connections: Some(1),
        max_overload_closes: Some(0),
        ..options()
    })
    .await;
    let mut first = server.connect().await;
    assert_eq!(refused_status(ws_request(server.addr)).await, 503);
    first.ping_pong(1).await;
}

#[tokio::test]
async fn plain_http_on_ws_is_not_an_upgrade() {
    let server = TestServer::start().await;
    let reply = common::http::get(server.addr, "/ws").await;
    assert_eq!(reply.status, 400);
    let reply = common::http::get_with(
        server.addr,
        "/ws",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n",
    )
    .await;
    assert_eq!(reply.status, 426, "only version 13");
    assert_eq!(reply.header("sec-websocket-version"), Some("13"));
}
