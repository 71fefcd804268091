//! The plain HTTP routes on the game port (protocol §6).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;
use uuid::Uuid;

use crate::cluster::Placement;
use crate::cluster::membership::{self, PeerState};
use crate::state::AppState;
use crate::ws;

/// Every route of one server.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/games/{id}", get(game))
        .route("/api/node", get(node))
        .route("/api/cluster", get(cluster));
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

/// 200 while this node takes games; 503 while draining, or in stateless
/// mode while Redis is unreachable.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !state.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "Redis unreachable\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

/// Prometheus text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let (waiting, active, completed) = state.game_counts();
    crate::metrics::games(waiting, active, completed);
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
/// cluster, a game owned by another node is fetched from it.
async fn game(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return (
            StatusCode::BAD_REQUEST,
            "malformed game id; expected a UUID\n",
        )
            .into_response();
    };
    if let Some(backend) = &state.stateless {
        return match backend.snapshot(&id).await {
            Ok(Some(snapshot)) => axum::Json(snapshot).into_response(),
            Ok(None) => (StatusCode::NOT_FOUND, "unknown game\n").into_response(),
            Err(e) => {
                tracing::debug!("cannot read a game from Redis: {e}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the game store is unreachable; try again in a moment\n",
                )
                    .into_response()
            }
        };
    }
    if let Some(cluster) = &state.cluster
        && let Placement::Remote(peer) = cluster.place(&id)
    {
        if cluster.state_of(&peer.id).state == PeerState::Down {
            return (StatusCode::NOT_FOUND, "unknown game (its node is down)\n").into_response();
        }
        let client = membership::http_client(cluster.peer_timeout);
        let path = format!("/api/games/{id}");
        return match membership::get(&client, &peer.addr, &path, cluster.peer_timeout).await {
            Ok((status, body)) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            Err(e) => {
                tracing::debug!(peer = %peer.id, "cannot fetch a game: {e}");
                (
                    StatusCode::NOT_FOUND,
                    "unknown game (its node is unreachable)\n",
                )
                    .into_response()
            }
        };
    }
    let Some(handle) = state.registry.get(&id) else {
        return (StatusCode::NOT_FOUND, "unknown game\n").into_response();
    };
    match handle.snapshot().await {
        Some(snapshot) => axum::Json(snapshot).into_response(),
        None => (StatusCode::NOT_FOUND, "unknown game\n").into_response(),
    }
}

/// `GET /api/node`: this node's own report (what peers probe).
async fn node(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(state.node_info()).into_response()
}

/// One member in `/api/cluster`.
#[derive(Debug, serde::Serialize)]
struct MemberView {
    id: String,
    addr: String,
    state: PeerState,
    games: u64,
}

/// `GET /api/cluster`: the ring's members as this node sees them.
async fn cluster(State(state): State<Arc<AppState>>) -> Response {
    let Some(cluster) = &state.cluster else {
        return (
            StatusCode::NOT_FOUND,
            "not a cluster: this node runs in single mode\n",
        )
            .into_response();
    };
    let me = state.node_info();
    let nodes: Vec<MemberView> = cluster
        .peers
        .iter()
        .map(|p| {
            if p.id == cluster.node_id {
                let state = if me.draining {
                    PeerState::Draining
                } else {
                    PeerState::Ready
                };
                let games = me.games.waiting + me.games.active + me.games.completed;
                MemberView {
                    id: p.id.clone(),
                    addr: p.addr.clone(),
                    state,
                    games,
                }
            } else {
                let s = cluster.state_of(&p.id);
                MemberView {
                    id: p.id.clone(),
                    addr: p.addr.clone(),
                    state: s.state,
                    games: s.games,
                }
            }
        })
        .collect();
    axum::Json(serde_json::json!({
        "self": cluster.node_id,
        "vnodes": crate::cluster::ring::VNODES,
        "nodes": nodes,
    }))
    .into_response()
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
