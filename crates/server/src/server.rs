//! Running one server: serve until told to stop, then drain gracefully.
//!
//! Shutdown order: mark draining (`/readyz` 503, no new games or
//! connections), let active games finish for up to the drain timeout, close
//! every session with 1001, stop the listener, stop the game tasks.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::{Instant, interval};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::http;
use crate::state::AppState;

/// Serves on `listener` until `shutdown` completes, then drains and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let stop_games = CancellationToken::new();
    let state = AppState::new(config, stop_games.clone());
    let stop_listening = CancellationToken::new();
    let app = http::router(state.clone());
    let tls = match &state.config.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key).map_err(std::io::Error::other)?),
        None => None,
    };
    let serve = crate::accept::serve(
        listener,
        app,
        tls,
        state.config.accept.clone(),
        stop_listening.clone(),
        Duration::from_secs(5),
    );
    let mut serve = tokio::spawn(serve);
    if let Some(cluster) = &state.cluster {
        let probes = crate::cluster::membership::probe_loop(cluster.clone(), stop_games.clone());
        tokio::spawn(probes);
    }

    tokio::select! {
        () = shutdown => {}
        result = &mut serve => {
            stop_games.cancel();
            return match result {
                Ok(()) => Err(std::io::Error::other("the accept loop ended unexpectedly")),
                Err(e) => Err(std::io::Error::other(e)),
            };
        }
    }
    drain(&state).await;
    stop_listening.cancel();
    let _served = tokio::time::timeout(Duration::from_secs(5), serve).await;
    stop_games.cancel();
    info!("stopped");
    Ok(())
}

async fn drain(state: &Arc<AppState>) {
    state.set_draining();
    let deadline = Instant::now() + state.config.drain_timeout;
    info!(timeout = ?state.config.drain_timeout, "draining: waiting for active games to finish");
    let mut tick = interval(Duration::from_millis(100));
    loop {
        let (_, active, _) = state.game_counts();
        if active == 0 {
            break;
        }
        if Instant::now() >= deadline {
            warn!(
                active,
                "drain timeout: closing sessions of games still running"
            );
            break;
        }
        tick.tick().await;
    }
    state.close_sessions.cancel();
    state.sessions.close();
    let limits = &state.config.limits;
    let grace = limits.write_timeout + limits.close_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, state.sessions.wait())
        .await
        .is_err()
    {
        warn!("some sessions did not close in time");
    }
}
