//! The plain HTTP routes on the game port (protocol §6).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::services::ServeDir;

use super::ws;
use crate::games::lobby::LISTINGS_PATH;
use crate::games::ring::handoff::{ADOPT_PATH, ADOPTED_PATH};
use crate::games::{GameRef, Games, Lookup, WaitingGame};
use crate::state::AppState;

/// Every route of one server.
pub fn router<G: Games>(state: Arc<AppState<G>>) -> Router {
    let api = Router::new()
        .route("/ws", get(ws::upgrade::<G>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<G>))
        .route("/metrics", get(metrics::<G>))
        .route("/api/games/{id}", get(game::<G>))
        .route("/api/lobby", get(lobby::<G>))
        .route(LISTINGS_PATH, get(listings::<G>))
        .route("/api/node", get(node::<G>))
        .route("/api/cluster", get(cluster::<G>))
        .route(ADOPT_PATH, post(adopt::<G>))
        .route(ADOPTED_PATH, get(adopted::<G>));
    let web_root = state.config.web_root.clone();
    let api = api.with_state(state);
    if web_root.join("index.html").is_file() {
        api.fallback_service(ServeDir::new(web_root))
    } else {
        tracing::warn!(
            web_root = %web_root.display(),
            "no built browser client there (index.html missing); serving a placeholder page"
        );
        api.fallback(placeholder)
    }
}

/// 200 while the process is up.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 while this node takes games; 503 while draining, or while its
/// backend cannot take games (Redis unreachable in stateless mode).
async fn readyz<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
    if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !state.is_ready() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the game store is unreachable\n",
        )
            .into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

/// Prometheus text format.
async fn metrics<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
    crate::metrics::games(state.games.counts());
    match &state.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable\n",
        )
            .into_response(),
    }
}

/// `GET /api/games/{id}`: the snapshot as JSON (cells as 81 numbers). In a
/// stateful cluster, a game owned by another node is fetched from it.
async fn game<G: Games>(State(state): State<Arc<AppState<G>>>, Path(id): Path<String>) -> Response {
    let Ok(game) = GameRef::parse(&id) else {
        return (
            StatusCode::BAD_REQUEST,
            "malformed game id; expected a UUID or a 6-character code\n",
        )
            .into_response();
    };
    match state.games.lookup(game).await {
        Lookup::Found(snapshot) => axum::Json(snapshot).into_response(),
        Lookup::Forwarded { status, body } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Lookup::Unknown(why) => (StatusCode::NOT_FOUND, format!("{why}\n")).into_response(),
        Lookup::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the game store is unreachable; try again in a moment\n",
        )
            .into_response(),
    }
}

/// `GET /api/lobby`: the public games, cluster-wide (protocol §7).
async fn lobby<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
    match state.games.lobby().await {
        Ok(view) => axum::Json(view).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the game store is unreachable; try again in a moment\n",
        )
            .into_response(),
    }
}

/// `GET /api/lobby/node`: this node's own lobby listings, which its
/// stateful peers merge into theirs.
async fn listings<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
    axum::Json(state.games.own_listings()).into_response()
}

/// `GET /api/node`: this node's own report (what peers probe).
async fn node<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
    axum::Json(state.node_info()).into_response()
}

/// `GET /api/cluster`: the ring's members as this node sees them.
async fn cluster<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
    match state.games.cluster_view(&state.node_info()) {
        Some(view) => axum::Json(view).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "not a stateful cluster: this node runs in {} mode\n",
                G::MODE
            ),
        )
            .into_response(),
    }
}

/// Whether `request` comes from a stateful peer's address: only peers may
/// hand over games or read which games moved (ids of private games).
fn from_peer<G: Games>(state: &AppState<G>, request: &axum::extract::Request) -> bool {
    request
        .extensions()
        .get::<super::accept::Peer>()
        .is_some_and(|peer| state.games.is_peer(peer.0.ip()))
}

/// `POST /api/cluster/adopt` (peers only): a draining peer hands over one
/// of its waiting games (JSON [`WaitingGame`]). 200 once this node has it;
/// 503 when it cannot take it (draining, full), so the peer tries another.
async fn adopt<G: Games>(
    State(state): State<Arc<AppState<G>>>,
    request: axum::extract::Request,
) -> Response {
    if !from_peer(&state, &request) {
        return (StatusCode::FORBIDDEN, "peers only\n").into_response();
    }
    if state.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_ADOPT_BYTES).await {
        Ok(body) => body,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let game: WaitingGame = match serde_json::from_slice(&body) {
        Ok(game) => game,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    match state.games.adopt(game) {
        Ok(()) => (StatusCode::OK, "adopted\n").into_response(),
        Err(crate::error::ServerError::Overloaded) => {
            (StatusCode::SERVICE_UNAVAILABLE, "full\n").into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

/// A handed-over game is a few hundred bytes; anything near this is not one.
const MAX_ADOPT_BYTES: usize = 64 * 1024;

/// `GET /api/cluster/adopted` (peers only): the games this node holds that
/// the ring places elsewhere, which its peers then route here.
async fn adopted<G: Games>(
    State(state): State<Arc<AppState<G>>>,
    request: axum::extract::Request,
) -> Response {
    if !from_peer(&state, &request) {
        return (StatusCode::FORBIDDEN, "peers only\n").into_response();
    }
    axum::Json(state.games.adopted()).into_response()
}

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gridcap</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>gridcap is running</h1>
<p>The browser client has not been built, so there is nothing to play here yet.</p>
<p>Build it with <code>make web</code> (or <code>cd web-client &amp;&amp; npm ci &amp;&amp; npm run build</code>)
and restart the server, or point <code>--web-root</code> at a built client.</p>
<p>The WebSocket endpoint is live at <code>/ws</code>; see docs/protocol.md.</p>
</body></html>
"#;

async fn placeholder(uri: axum::http::Uri) -> Response {
    if uri.path() == "/" || uri.path() == "/index.html" {
        Html(PLACEHOLDER).into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}
