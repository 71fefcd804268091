//! `--redis-wait-replicas N`: no event goes out before `N` replicas have it,
//! so that a failover to one of them undoes nothing a player saw.
//!
//! Redis replicates asynchronously: a script's writes reach the replicas
//! after it answered, and its `PUBLISH` reaches the subscribers at once. So
//! with the option the scripts do not publish: they push their events to
//! the game's queue (`layout::QUEUE_SUFFIX`) and answer how far each game's
//! queue goes. The node sends each script call and a `WAIT N timeout` in one
//! pipeline on the same connection (`WAIT` covers that connection's writes,
//! hence everything written before them), then runs `flush.lua`, which
//! publishes the game's queued events up to that point, in queue order,
//! whichever node queued them. A script that queued nothing still writes a
//! short-lived key, so that the `WAIT` covers what it read too (a `joined`
//! snapshot shows nothing the replicas lack).
//!
//! When `WAIT` times out with fewer replicas (a replica down or lagging), the
//! events go out anyway, counted in
//! `gridcap_redis_replica_wait_timeouts_total` and logged once per episode:
//! the node stays available, and the guarantee holds again as soon as the
//! replicas answer. Redis's own `min-replicas-to-write` refuses writes
//! instead (players then get `overloaded`). If the node dies between its
//! `WAIT` and its flush, the events stay queued until the game's next
//! script call flushes them (at the latest its finish timer's).

use std::sync::atomic::{AtomicBool, Ordering};

use redis::{Script, ScriptInvocation, Value};
use tracing::{info, warn};

use super::StoreError;
use super::store::Connection;
use crate::config::ReplicaWait;

/// What a node needs to wait for replicas and then publish.
#[derive(Debug)]
pub struct Waiter {
    /// How many replicas, how long.
    wait: ReplicaWait,
    /// `flush.lua`.
    flush: Script,
    /// `PUBLISH`, or `SPUBLISH` on a cluster.
    publish: &'static str,
    /// The last `WAIT` timed out (to log once per episode).
    short: AtomicBool,
}

impl Waiter {
    /// A waiter publishing with `publish` through `flush`.
    pub fn new(wait: ReplicaWait, flush: Script, publish: &'static str) -> Waiter {
        Waiter {
            wait,
            flush,
            publish,
            short: AtomicBool::new(false),
        }
    }

    /// Runs `invocation` (built with [`QUEUE_MODE`](super::layout::QUEUE_MODE)
    /// as its first argument), waits for the replicas, publishes what it
    /// queued; answers the script's own reply.
    pub async fn invoke(
        &self,
        conn: &mut Connection,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Value, StoreError> {
        let (reply, acked) = conn
            .invoke_then_wait(invocation, self.wait.replicas, self.wait.timeout)
            .await?;
        self.note(acked);
        let (reply, queued) = split_queued(reply)?;
        if queued.is_empty() {
            return Ok(reply);
        }
        let mut flush = self.flush.prepare_invoke();
        for (game, _) in &queued {
            flush.key(game.as_bytes());
        }
        flush.arg(self.publish).arg(0);
        for (_, upto) in &queued {
            flush.arg(*upto);
        }
        conn.invoke(&flush).await?;
        Ok(reply)
    }

    /// Counts and logs a `WAIT` that ended with fewer replicas than asked.
    fn note(&self, acked: i64) {
        let short = acked < i64::from(self.wait.replicas);
        if short {
            metrics::counter!("gridcap_redis_replica_wait_timeouts_total").increment(1);
        }
        match (self.short.swap(short, Ordering::Relaxed), short) {
            (false, true) => warn!(
                acked,
                wanted = self.wait.replicas,
                "Redis replicas did not acknowledge within the wait: events go out anyway \
                 until they do (a failover now may undo them)"
            ),
            (true, false) => info!("Redis replicas acknowledge again"),
            _ => {}
        }
    }
}

/// Splits a queuing script's answer (see `answer` in `common.lua`) into its
/// own reply and, per game whose events it queued, the game's key and its
/// queued count.
pub fn split_queued(reply: Value) -> Result<(Value, Vec<(String, i64)>), StoreError> {
    let bad = || StoreError::Reply("a queuing script's answer lacks its queue counts".to_owned());
    let Value::Array(mut items) = reply else {
        return Err(bad());
    };
    let Some(Value::Int(n)) = items.pop() else {
        return Err(bad());
    };
    let pairs = usize::try_from(n).map_err(|_| bad())?;
    let start = items
        .len()
        .checked_sub(pairs.checked_mul(2).ok_or_else(bad)?)
        .ok_or_else(bad)?;
    let mut queued = Vec::with_capacity(pairs);
    for pair in items.split_off(start).chunks_exact(2) {
        let (Value::BulkString(game), Value::Int(upto)) = (&pair[0], &pair[1]) else {
            return Err(bad());
        };
        let game = String::from_utf8(game.clone()).map_err(|_| bad())?;
        queued.push((game, *upto));
    }
    Ok((Value::Array(items), queued))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_queuing_answer_splits_into_the_reply_and_the_queue_counts() {
        let reply = Value::Array(vec![
            text("ok"),
            Value::Int(5),
            text("gridcap:{a}"),
            Value::Int(7),
            text("gridcap:{b}"),
            Value::Int(2),
            Value::Int(2),
        ]);
        let (own, queued) = split_queued(reply).unwrap();
        assert_eq!(own, Value::Array(vec![text("ok"), Value::Int(5)]));
        assert_eq!(
            queued,
            vec![("gridcap:{a}".to_owned(), 7), ("gridcap:{b}".to_owned(), 2)]
        );
        let nothing = Value::Array(vec![text("ok"), Value::Int(0)]);
        assert_eq!(split_queued(nothing).unwrap().1, vec![]);
        for bad in [
            Value::Int(1),
            Value::Array(vec![]),
            Value::Array(vec![text("ok"), Value::Int(1)]),
            Value::Array(vec![Value::Int(3), text("k"), Value::Int(1)]),
            Value::Array(vec![text("ok"), Value::Int(-1)]),
        ] {
            assert!(split_queued(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
