//! `gridcap bots` as a child process, and the parts of its JSON report the
//! tests check.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::paths::{TestDir, gridcap_bin};
use crate::process::Proc;

/// The fields of the bots' `--json` report that the tests read (the
/// report has more; unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct BotsReport {
    /// Bots started.
    pub bots: u64,
    /// WebSocket connections established, reconnects included.
    pub connections: u64,
    /// Seats taken (create, join and resume answered with `joined`).
    pub joins: u64,
    /// Games started (counted by their hosts).
    pub games_started: u64,
    /// Games played to `game_over`.
    pub games_completed: u64,
    /// Own captures confirmed.
    pub captures: u64,
    /// Server `error`s plus client-side problems.
    pub errors: u64,
    /// Errors by code (`client_*` for the bots' own problems).
    pub errors_by_code: serde_json::Map<String, serde_json::Value>,
    /// Connections lost while the run was going on.
    pub disconnects: u64,
}

impl BotsReport {
    /// Panics unless a run through node restarts went clean: no error,
    /// games completed, and bots disconnected (the restarts touched them).
    /// `json` is the report's file, named in the message.
    pub fn assert_clean_through_restarts(&self, json: &std::path::Path) {
        eprintln!("bots: {self:?}");
        assert_eq!(
            self.errors,
            0,
            "bots saw errors during the rolling restart: {:?} (report: {})",
            self.errors_by_code,
            json.display()
        );
        assert!(self.games_completed > 0, "{self:?}");
        assert!(
            self.disconnects > 0,
            "no bot was ever disconnected: the restart did not touch them? {self:?}"
        );
    }
}

/// A running `gridcap bots`; dropping it kills it.
#[derive(Debug)]
pub struct Bots {
    /// The process.
    proc: Proc,
    /// Where it writes its report.
    json: PathBuf,
    /// The run length asked for, to bound the wait for its end.
    duration: Duration,
}

impl Bots {
    /// Starts `gridcap bots` with `args` (besides `--json` and `--quiet`,
    /// which this adds); `duration` must match its `--duration`.
    pub fn start(dir: &TestDir, name: &str, args: &[&str], duration: Duration) -> Bots {
        let json = dir.join(&format!("{name}.json"));
        let mut command = Command::new(gridcap_bin());
        command
            .arg("bots")
            .args(args)
            .arg("--json")
            .arg(&json)
            .arg("--quiet");
        Bots {
            proc: Proc::spawn(name, command, &dir.path),
            json,
            duration,
        }
    }

    /// Waits for the run to end (its duration plus a margin for the drain
    /// and the close handshakes), checks it exited 0, and reads the report.
    pub async fn finish(mut self) -> BotsReport {
        let limit = self.duration + Duration::from_secs(30);
        let status = self.proc.wait_exit(limit).await;
        assert!(
            status.success(),
            "gridcap bots exited with {status}\n{}",
            self.proc.log_tail()
        );
        let text = std::fs::read_to_string(&self.json)
            .unwrap_or_else(|e| panic!("no bots report at {}: {e}", self.json.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("bad bots report {}: {e}\n{text}", self.json.display()))
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.exited().is_none()
    }

    /// The tail of its logs.
    pub fn log_tail(&self) -> String {
        self.proc.log_tail()
    }
}
