//! Running one server: serve until told to stop, then drain gracefully.
//!
//! Shutdown order: mark draining (`/readyz` 503, no new games or
//! connections); then, with games in memory, move the waiting ones to ready
//! peers (stateful) and let active games finish for up to the drain timeout,
//! or, with games in Redis, wait `--drain-notice-ms` for the balancer; close
//! every session with 1001, stop the listeners, stop the game tasks.
//!
//! A node serves on two sockets ([`Listeners`]): the public one (players,
//! the client, health) and the admin one (metrics, node and cluster
//! reports, `/admin`, the stateful hand-over; see [`crate::admin`]), which
//! stays up while draining so that operators and peers see the drain.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::{Instant, interval};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin;
use crate::clock::Clock;
use crate::config::{Config, Topology};
use crate::edge::{accept, http, tls};
use crate::games::Games;
use crate::games::local::LocalGames;
use crate::games::redis::{Quota, RedisGames};
use crate::games::ring::RingGames;
use crate::state::AppState;

/// The two sockets of one node.
#[derive(Debug)]
pub struct Listeners {
    /// `--listen`: the game, the browser client, `/healthz`, `/readyz`.
    pub public: TcpListener,
    /// `--admin-listen`: `/metrics`, `/api/node`, `/api/cluster`, `/admin`.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds `config.listen` and `config.admin_listen`; the error names the
    /// address that could not be bound.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let bind = |addr: std::net::SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
            })
        };
        Ok(Listeners {
            public: bind(config.listen, "--listen").await?,
            admin: bind(config.admin_listen, "--admin-listen").await?,
        })
    }
}

/// Serves on `listeners` until `shutdown` completes, then drains and
/// returns. The configured topology picks where games are kept; from there
/// on, nothing depends on the mode.
pub async fn run(
    listener: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let stop_games = CancellationToken::new();
    let clock = Clock::new();
    let node_id = config.topology.node_id().to_owned();
    let local = LocalGames::new(
        node_id.clone(),
        clock,
        config.capacity(),
        config.bounds,
        stop_games.clone(),
    );
    match &config.topology {
        Topology::Single => serve(listener, config, local, shutdown, stop_games).await,
        Topology::Stateful(cluster) => {
            let limits = config.limits.clone();
            let games = RingGames::launch(cluster, local, limits, stop_games.clone());
            serve(listener, config, games, shutdown, stop_games).await
        }
        Topology::Stateless(stateless) => {
            let target = stateless.redis.clone();
            let bounds = config.bounds;
            let quota = Quota {
                capacity: config.capacity(),
                game_lease: config.game_lease,
            };
            let wait = stateless.replica_wait();
            let games = RedisGames::launch(
                target,
                wait,
                node_id,
                clock,
                quota,
                bounds,
                stop_games.clone(),
            );
            serve(listener, config, games, shutdown, stop_games).await
        }
    }
}

/// [`run`] with the backend chosen.
async fn serve<G: Games>(
    listener: Listeners,
    config: Config,
    games: G,
    shutdown: impl Future<Output = ()>,
    stop_games: CancellationToken,
) -> std::io::Result<()> {
    let state = AppState::new(config, games)?;
    tokio::spawn(state.clone().sweep_beats());
    tokio::spawn(state.clone().watch_idle_sockets());
    let stop_listening = CancellationToken::new();
    let app = http::router(state.clone());
    let tls = match &state.config.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key).map_err(std::io::Error::other)?),
        None => None,
    };
    let serve = accept::serve(
        listener.public,
        app,
        tls,
        state.config.accept.clone(),
        stop_listening.clone(),
        Duration::from_secs(5),
    );
    // Plain HTTP: the admin listener belongs on loopback or a private network.
    let serve_admin = accept::serve(
        listener.admin,
        admin::router(state.clone()),
        None,
        state.config.accept.clone(),
        stop_listening.clone(),
        Duration::from_secs(5),
    );
    let serve = async move { tokio::join!(serve, serve_admin) };
    let mut serve = tokio::spawn(serve);

    tokio::select! {
        () = shutdown => {}
        result = &mut serve => {
            stop_games.cancel();
            return match result {
                Ok(_) => Err(std::io::Error::other("the accept loops ended unexpectedly")),
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

/// Drains this node before it stops, the way its mode allows.
///
/// Where the games live in this process (single, stateful), rounds already
/// running finish, for up to the drain timeout; a stateful node first moves
/// its waiting games to ready peers (see [`Games::hand_off_waiting`]), so it
/// starts no round it could not finish. Where they live in Redis
/// (stateless), the node only waits for the balancer to notice `/readyz`
/// saying 503: its players resume on other nodes.
async fn drain<G: Games>(state: &Arc<AppState<G>>) {
    state.set_draining();
    let timeout = state.config.drain_timeout;
    if G::GAMES_OUTLIVE_NODE {
        let notice = state.config.drain_notice.min(timeout);
        info!(
            ?notice,
            "draining: /readyz says 503, then sessions move to other nodes"
        );
        tokio::time::sleep(notice).await;
    } else {
        finish_rounds(state, Instant::now() + timeout).await;
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

/// Moves waiting games away (again on every tick: a create may have raced
/// the drain, a peer may have refused) and waits until no round runs here
/// and the peers have learned where the moved games went, or `deadline`.
async fn finish_rounds<G: Games>(state: &Arc<AppState<G>>, deadline: Instant) {
    info!(timeout = ?state.config.drain_timeout, "draining: moving waiting games, letting rounds finish");
    let mut stay_until = Instant::now();
    let mut tick = interval(Duration::from_millis(100));
    // A round's status turns completed just before its `game_over` is
    // queued to the players: one more tick with none running lets it out.
    let mut none_running = false;
    loop {
        let linger = state.games.hand_off_waiting().await;
        if !linger.is_zero() {
            stay_until = stay_until.max(Instant::now() + linger);
        }
        let active = state.games.counts().active;
        if active == 0 {
            if none_running && Instant::now() >= stay_until {
                break;
            }
            none_running = true;
        } else if Instant::now() >= deadline {
            warn!(
                active,
                "drain timeout: closing sessions of games still running"
            );
            break;
        } else {
            none_running = false;
        }
        tick.tick().await;
    }
}
