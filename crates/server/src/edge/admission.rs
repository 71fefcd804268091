//! A connection's place in its node's connection limits: one of
//! `--max-connections` and, for a player's own connection (not a cluster
//! peer's relay), one of its address's `--max-connections-per-ip`.
//!
//! Every connection keeps its admission for its whole life, parked or not,
//! so it is kept small: the node it is counted by and the address counted,
//! 32 bytes, where tokio's owned semaphore permit and a per-address permit
//! held three pointers and the address between them (48), which took a
//! parked session's slot past jemalloc's 256-byte size class.

use std::net::IpAddr;
use std::sync::Arc;

use crate::state::AppState;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address holds `--max-connections-per-ip` connections already.
    Address,
    /// The node holds `--max-connections` connections already.
    Node,
}

/// An admitted connection's counts in its node's limits, given back when
/// it is dropped.
#[derive(Debug)]
pub struct Admission<G> {
    state: Arc<AppState<G>>,
    /// The address counted against the per-address limit (`None` for a
    /// relay from a cluster peer, which carries many players).
    ip: Option<IpAddr>,
}

impl<G> Admission<G> {
    /// Counts a connection from `ip` (`None`: a relay, not counted by
    /// address), or says which limit it is past; counts nothing then.
    pub fn try_new(state: &Arc<AppState<G>>, ip: Option<IpAddr>) -> Result<Self, Refused> {
        if let Some(ip) = ip
            && !state.per_ip.try_count(ip)
        {
            return Err(Refused::Address);
        }
        match state.connections.try_acquire() {
            // Given back by hand, on drop: the permit would hold a pointer
            // to a semaphore the state holds already.
            Ok(permit) => permit.forget(),
            Err(_) => {
                if let Some(ip) = ip {
                    state.per_ip.uncount(ip);
                }
                return Err(Refused::Node);
            }
        }
        Ok(Admission {
            state: state.clone(),
            ip,
        })
    }

    /// The node that admitted the connection.
    pub fn state(&self) -> &Arc<AppState<G>> {
        &self.state
    }
}

impl<G> Drop for Admission<G> {
    fn drop(&mut self) {
        self.state.connections.add_permits(1);
        if let Some(ip) = self.ip {
            self.state.per_ip.uncount(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::games::local::LocalGames;

    fn node(max_connections: usize, max_connections_per_ip: usize) -> Arc<AppState<LocalGames>> {
        let config = Config {
            max_connections,
            max_connections_per_ip,
            ..Config::default()
        };
        let games = LocalGames::new(
            "a".to_owned(),
            Clock::new(),
            config.capacity(),
            config.bounds,
            CancellationToken::new(),
        );
        AppState::new(config, games).unwrap()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_admission_is_a_pointer_and_an_address() {
        assert_eq!(size_of::<Admission<LocalGames>>(), 32);
    }

    #[test]
    fn each_limit_refuses_past_it_and_counts_again_once_given_back() {
        let state = node(3, 2);
        let a = Admission::try_new(&state, ip("10.0.0.1")).unwrap();
        let _b = Admission::try_new(&state, ip("10.0.0.1")).unwrap();
        let refused = Admission::try_new(&state, ip("10.0.0.1")).err();
        assert_eq!(refused, Some(Refused::Address), "third from one address");
        let _c = Admission::try_new(&state, ip("10.0.0.2")).unwrap();
        let refused = Admission::try_new(&state, ip("10.0.0.3")).err();
        assert_eq!(refused, Some(Refused::Node), "fourth on the node");
        drop(a);
        assert!(
            Admission::try_new(&state, ip("10.0.0.1")).is_ok(),
            "both counts were given back"
        );
        assert_eq!(state.connections.available_permits(), 1);
    }

    #[test]
    fn a_refusal_by_the_node_gives_the_address_its_count_back() {
        let state = node(1, 1);
        let _held = Admission::try_new(&state, ip("10.0.0.1")).unwrap();
        let refused = Admission::try_new(&state, ip("10.0.0.2")).err();
        assert_eq!(refused, Some(Refused::Node));
        drop(_held);
        assert!(
            Admission::try_new(&state, ip("10.0.0.2")).is_ok(),
            "10.0.0.2 was not left counted by the refusal"
        );
    }

    #[test]
    fn relays_are_not_counted_by_address() {
        let state = node(3, 1);
        let _a = Admission::try_new(&state, None).unwrap();
        let _b = Admission::try_new(&state, None).unwrap();
        assert!(Admission::try_new(&state, ip("10.0.0.1")).is_ok());
    }
}
