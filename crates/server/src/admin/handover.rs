//! The stateful hand-over (issue 17), on the admin listener: a draining
//! node moves its waiting games to a ready peer with `POST
//! /api/cluster/adopt`, and peers read which games a node adopted with `GET
//! /api/cluster/adopted`. Only cluster peers (by TCP address) may call them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::games::{Games, WaitingGame};
use crate::state::AppState;

/// Whether `request` comes from a stateful peer's address: only peers may
/// hand over games or read which games moved (ids of private games).
fn from_peer<G: Games>(state: &AppState<G>, request: &axum::extract::Request) -> bool {
    request
        .extensions()
        .get::<crate::edge::accept::Peer>()
        .is_some_and(|peer| state.games.is_peer(peer.0.ip()))
}

/// `POST /api/cluster/adopt` (peers only): a draining peer hands over one
/// of its waiting games (JSON [`WaitingGame`]). 200 once this node has it;
/// 503 when it cannot take it (draining, full), so the peer tries another.
pub async fn adopt<G: Games>(
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
pub async fn adopted<G: Games>(
    State(state): State<Arc<AppState<G>>>,
    request: axum::extract::Request,
) -> Response {
    if !from_peer(&state, &request) {
        return (StatusCode::FORBIDDEN, "peers only\n").into_response();
    }
    axum::Json(state.games.adopted()).into_response()
}
