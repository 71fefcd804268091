//! The plain HTTP routes on the game port (protocol §6). Operators' and
//! peers' routes (`/metrics`, `/api/node`, `/api/cluster`, `/admin`) are on
//! the admin listener instead ([`crate::admin`]); here they answer 404.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

use super::ws;
use crate::games::lobby::LISTINGS_PATH;
use crate::games::{GameRef, Games, Lookup};
use crate::state::AppState;

/// Every route of one server.
pub fn router<G: Games>(state: Arc<AppState<G>>) -> Router {
    let api = Router::new()
        .route("/ws", get(ws::upgrade::<G>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<G>))
        .route("/api/games/{id}", get(game::<G>))
        .route("/api/lobby", get(lobby::<G>))
        .route(LISTINGS_PATH, get(listings::<G>))
        // The admin page's file is in the same build as the game's; it is
        // served on the admin listener only.
        .route("/admin.html", get(not_here))
        .route("/admin", get(not_here))
        .route("/admin/{*rest}", get(not_here));
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
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 while this node takes games; 503 while draining, or while its
/// backend cannot take games (Redis unreachable in stateless mode).
pub(crate) async fn readyz<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
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

/// `GET /api/games/{id}`: the snapshot as JSON (cells as 81 numbers). In a
/// stateful cluster, a game owned by another node is fetched from it.
pub(crate) async fn game<G: Games>(
    State(state): State<Arc<AppState<G>>>,
    Path(id): Path<String>,
) -> Response {
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
pub(crate) async fn lobby<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
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

/// 404 for what lives on the admin listener only.
async fn not_here() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
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
