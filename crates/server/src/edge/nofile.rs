//! Open files against `--max-connections`: every WebSocket is a descriptor,
//! and a process past its soft `RLIMIT_NOFILE` cannot accept, so clients
//! past it would wait in the kernel's accept backlog with no answer at all.
//!
//! At start-up the soft limit is raised to the hard one; if that is still
//! short of the connections configured plus the descriptors the node needs
//! besides (listener, Redis and peer connections, logs, the turned-away
//! connections of `--max-overload-closes`), `--max-connections` is lowered
//! to what fits and a warning says so, so that every client past it gets a
//! 1013 close or an HTTP 503 instead of silence.

use tracing::warn;

use crate::config::Config;

/// Descriptors kept for everything that is not a client connection: the
/// listener, epoll and the runtime, Redis and peer connections, log files.
pub const RESERVED_DESCRIPTORS: u64 = 128;

/// What start-up found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBudget {
    /// The soft limit after raising it.
    pub soft_limit: u64,
    /// Connections that fit under it (`None`: `--max-connections` fits).
    pub lowered_to: Option<usize>,
}

/// Descriptors `config` needs: its connections and turned-away connections,
/// plus [`RESERVED_DESCRIPTORS`].
pub fn needed(config: &Config) -> u64 {
    let connections = config.max_connections + config.max_overload_closes;
    u64::try_from(connections)
        .unwrap_or(u64::MAX)
        .saturating_add(RESERVED_DESCRIPTORS)
}

/// How many connections fit under `soft_limit` with `config`'s other needs;
/// `None` when all of `--max-connections` does.
pub fn fitting(config: &Config, soft_limit: u64) -> Option<usize> {
    if soft_limit >= needed(config) {
        return None;
    }
    let overload = u64::try_from(config.max_overload_closes).unwrap_or(u64::MAX);
    let room = soft_limit
        .saturating_sub(RESERVED_DESCRIPTORS)
        .saturating_sub(overload)
        .max(1);
    Some(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Raises the soft open-files limit to the hard one, then lowers
/// `config.max_connections` (with a warning) if it still does not fit.
pub fn fit(config: &mut Config) -> FileBudget {
    let soft_limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(e) => {
            warn!("cannot read or raise the open-files limit: {e}; --max-connections unchecked");
            return FileBudget {
                soft_limit: u64::MAX,
                lowered_to: None,
            };
        }
    };
    let lowered_to = fitting(config, soft_limit);
    if let Some(fits) = lowered_to {
        warn!(
            open_files_limit = soft_limit,
            needed = needed(config),
            max_connections = fits,
            "the open-files limit (ulimit -n, LimitNOFILE=) is below --max-connections plus \
             {RESERVED_DESCRIPTORS} for the node itself and --max-overload-closes; serving at \
             most {fits} connections. Raise the hard limit to serve more."
        );
        config.max_connections = fits;
    }
    FileBudget {
        soft_limit,
        lowered_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_connections: usize, max_overload_closes: usize) -> Config {
        Config {
            max_connections,
            max_overload_closes,
            ..Config::default()
        }
    }

    #[test]
    fn a_limit_with_room_changes_nothing() {
        let c = config(10_000, 64);
        assert_eq!(needed(&c), 10_000 + 64 + RESERVED_DESCRIPTORS);
        assert_eq!(fitting(&c, 65_536), None);
        assert_eq!(fitting(&c, needed(&c)), None);
    }

    #[test]
    fn a_short_limit_lowers_the_connections_to_what_fits() {
        let c = config(10_000, 64);
        assert_eq!(fitting(&c, 1_024), Some(1_024 - 128 - 64));
        assert_eq!(fitting(&c, needed(&c) - 1), Some(9_999));
        // Never below one: the node still answers someone.
        assert_eq!(fitting(&c, 10), Some(1));
    }
}
