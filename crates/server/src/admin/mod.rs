//! The admin listener (`--admin-listen`): what operators and cluster peers
//! read, kept off the public port.
//!
//! - `/metrics`: Prometheus text format (see [`crate::metrics`]).
//! - `/api/node`: this node's report; stateful peers probe it.
//! - `/api/cluster`: the ring as this node sees it (peer addresses, so never
//!   public).
//! - `/api/cluster/adopt`, `/api/cluster/adopted`: the stateful hand-over of
//!   waiting games during a drain ([`handover`]; cluster peers only).
//! - `/admin`: a read-only live page built by the web client (`admin.html`),
//!   with the JSON it reads under `/admin/api/`.
//!
//! Nothing here but the hand-over changes state, and nothing here shows a
//! token.
//!
//! `/healthz` and `/readyz` answer here too, for [`healthcheck`] (`gridcap
//! healthcheck`), which then needs neither the public address nor its TLS.

pub mod handover;
pub mod healthcheck;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::services::ServeDir;

use crate::games::Games;
use crate::games::ring::handoff::{ADOPT_PATH, ADOPTED_PATH};
use crate::state::AppState;

/// Every route of the admin listener.
pub fn router<G: Games>(state: Arc<AppState<G>>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::<G>))
        .route("/api/node", get(node::<G>))
        .route("/api/cluster", get(cluster::<G>))
        .route(ADOPT_PATH, post(handover::adopt::<G>))
        .route(ADOPTED_PATH, get(handover::adopted::<G>))
        .route("/healthz", get(crate::edge::http::healthz))
        .route("/readyz", get(crate::edge::http::readyz::<G>))
        .route("/admin", get(page::<G>))
        // The public games running now, cluster-wide: the lobby's view
        // (private games are found by id or code instead).
        .route("/admin/api/games", get(crate::edge::http::lobby::<G>))
        .route("/admin/api/games/{id}", get(crate::edge::http::game::<G>))
        .nest_service(
            "/assets",
            ServeDir::new(state.config.web_root.join("assets")),
        )
        .with_state(state)
}

/// `GET /admin`: the page built by the web client (`admin.html`), or a note
/// saying how to build it.
async fn page<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
    let path = state.config.web_root.join("admin.html");
    match tokio::fs::read_to_string(&path).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            format!(
                "the admin page is not built ({}: {e}); run `make web` and restart, or read \
                 /metrics, /api/node and /api/cluster here directly\n",
                path.display()
            ),
        )
            .into_response(),
    }
}

/// Prometheus text format.
async fn metrics<G: Games>(State(state): State<Arc<AppState<G>>>) -> Response {
    let peers = state
        .games
        .cluster_view(&state.node_info())
        .map(|view| peer_states(&view))
        .unwrap_or_default();
    crate::metrics::scrape(
        crate::metrics::NodeState {
            mode: G::MODE,
            ready: state.is_ready() && !state.is_draining(),
            draining: state.is_draining(),
            games: state.games.counts(),
        },
        &peers,
    );
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

/// (id, state) of every other member in an `/api/cluster` view.
fn peer_states(view: &serde_json::Value) -> Vec<(String, String)> {
    let me = view.get("self").and_then(serde_json::Value::as_str);
    let nodes = view.get("nodes").and_then(serde_json::Value::as_array);
    nodes
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let id = n.get("id")?.as_str()?;
            let state = n.get("state")?.as_str()?;
            (Some(id) != me).then(|| (id.to_owned(), state.to_owned()))
        })
        .collect()
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
