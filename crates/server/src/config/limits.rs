//! What clients may ask for and how much each connection may cost: game
//! bounds, per-session limits and the accept loop's limits, checked.

use std::time::Duration;

use game_logic::SettingsBounds;
use transport::SessionLimits;

use super::defaults::Defaults;
use super::{ConfigError, ServeOptions};
use crate::edge::accept::AcceptLimits;

fn invalid<T>(message: &str) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(message.to_owned()))
}

fn ms(value: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(value.unwrap_or(default))
}

/// The bounds of the games clients may create.
pub(super) fn bounds(o: &ServeOptions, d: &Defaults) -> Result<SettingsBounds, ConfigError> {
    let bounds = SettingsBounds {
        min_duration: ms(o.min_duration_ms, d.min_duration_ms),
        max_duration: ms(o.max_duration_ms, d.max_duration_ms),
        min_players: o.min_players.unwrap_or(d.min_players),
        lobby_start: ms(o.lobby_start_ms, d.lobby_start_ms),
    };
    bounds.validate().or_else(|_| {
        invalid(
            "min-players must be 2..=8 and 1000 <= min-duration-ms <= max-duration-ms <= 300000",
        )
    })
}

/// The limits of every WebSocket session.
pub(super) fn session(o: &ServeOptions, d: &Defaults) -> Result<SessionLimits, ConfigError> {
    let limits = SessionLimits {
        max_message_bytes: o.max_message_bytes.unwrap_or(d.max_message_bytes),
        rate_per_sec: o.rate_limit.unwrap_or(d.rate_limit),
        rate_burst: o.rate_burst.unwrap_or(d.rate_burst),
        max_rate_strikes: o.rate_strikes.unwrap_or(d.rate_strikes),
        max_bad_messages: o.max_bad_messages.unwrap_or(d.max_bad_messages),
        ping_interval: ms(o.ping_interval_ms, d.ping_interval_ms),
        idle_timeout: ms(o.idle_timeout_ms, d.idle_timeout_ms),
        outbox_capacity: o.outbox_capacity.unwrap_or(d.outbox_capacity),
        write_timeout: ms(o.write_timeout_ms, d.write_timeout_ms),
        close_timeout: ms(o.close_timeout_ms, d.close_timeout_ms),
        first_message_timeout: ms(o.first_message_timeout_ms, d.first_message_timeout_ms),
        read_buffer_bytes: o.ws_read_buffer.unwrap_or(d.ws_read_buffer),
        write_buffer_bytes: o.ws_write_buffer.unwrap_or(d.ws_write_buffer),
        write_hold_max: ms(o.write_hold_max_ms, d.write_hold_max_ms),
        park_after: ms(o.ws_park_after_ms, d.ws_park_after_ms),
    };
    if limits.max_message_bytes < 64 {
        return invalid("max-message-bytes must be at least 64");
    }
    if limits.rate_burst == 0 || limits.max_rate_strikes == 0 || limits.max_bad_messages == 0 {
        return invalid("rate-burst, rate-strikes and max-bad-messages must be at least 1");
    }
    if limits.ping_interval.is_zero() || limits.idle_timeout < limits.ping_interval {
        return invalid("ping-interval-ms must be > 0 and idle-timeout-ms >= ping-interval-ms");
    }
    if limits.outbox_capacity == 0 || limits.write_timeout.is_zero() {
        return invalid("outbox-capacity and write-timeout-ms must be at least 1");
    }
    if limits.read_buffer_bytes < 128 {
        return invalid("ws-read-buffer must be at least 128");
    }
    Ok(limits)
}

/// Most WebSocket connections at once.
pub(super) fn max_connections(o: &ServeOptions, d: &Defaults) -> Result<usize, ConfigError> {
    match o.max_connections.unwrap_or(d.max_connections) {
        0 => invalid("max-connections must be at least 1"),
        n => Ok(n),
    }
}

/// The handshake and request-head limits of every accepted connection.
pub(super) fn accept(o: &ServeOptions, d: &Defaults) -> AcceptLimits {
    AcceptLimits {
        handshake_timeout: ms(o.handshake_timeout_ms, d.handshake_timeout_ms),
        max_head_bytes: o.max_head_bytes.unwrap_or(d.max_head_bytes).max(8192),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_protocol() {
        let (o, d) = (ServeOptions::default(), Defaults::default());
        let limits = session(&o, &d).unwrap();
        assert_eq!(limits.max_message_bytes, 4096);
        assert_eq!((limits.rate_per_sec, limits.rate_burst), (20, 40));
        assert_eq!(limits.ping_interval, Duration::from_secs(15));
        assert_eq!(limits.idle_timeout, Duration::from_secs(45));
        assert_eq!(bounds(&o, &d).unwrap().min_players, 2);
        assert_eq!(accept(&o, &d).max_head_bytes, 16 * 1024);
        assert_eq!(max_connections(&o, &d).unwrap(), 10_000);
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let d = Defaults::default();
        let options = |toml: &str| toml::from_str::<ServeOptions>(toml).unwrap();
        assert!(bounds(&options("min_players = 9"), &d).is_err());
        for bad in [
            "idle_timeout_ms = 10",
            "max_message_bytes = 63",
            "rate_burst = 0",
            "outbox_capacity = 0",
            "ws_read_buffer = 127",
        ] {
            let result = session(&options(bad), &d);
            assert!(matches!(result, Err(ConfigError::Invalid(_))), "{bad}");
        }
        assert!(max_connections(&options("max_connections = 0"), &d).is_err());
    }

    #[test]
    fn the_head_limit_never_drops_below_8_kib() {
        let small = ServeOptions {
            max_head_bytes: Some(100),
            ..Default::default()
        };
        assert_eq!(accept(&small, &Defaults::default()).max_head_bytes, 8192);
    }
}
