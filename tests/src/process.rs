//! A child process that cannot outlive its test.
//!
//! [`Proc`] starts a command with stdout and stderr going to files in the
//! test's directory, and kills it (SIGKILL, then reaps it) when dropped — so
//! a panicking test leaves no process behind. Signals go through `kill(1)`
//! because this workspace forbids `unsafe` (no `libc::kill`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::POLL;

/// A running (or exited, not yet dropped) child process.
#[derive(Debug)]
pub struct Proc {
    /// A short name for messages and log file names (`node-a.1`, `haproxy`).
    name: String,
    /// `None` once the process was killed and reaped.
    child: Option<Child>,
    /// Its exit status, once seen (a status can be read only once from the OS).
    status: Option<ExitStatus>,
    /// Where its stdout goes, for post-mortems.
    stdout: PathBuf,
    /// Where its stderr goes.
    stderr: PathBuf,
}

impl Proc {
    /// Starts `command` with stdin closed and its output in
    /// `<dir>/<name>.stdout` and `<dir>/<name>.stderr`.
    pub fn spawn(name: &str, mut command: Command, dir: &Path) -> Proc {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let out = File::create(&stdout)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stdout.display()));
        let err = File::create(&stderr)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr.display()));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            status: None,
            stdout,
            stderr,
        }
    }

    /// The process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pid (while it has not been reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (a name such as `TERM`) with `kill -SIGNAL pid`.
    pub fn signal(&mut self, signal: &str) {
        if self.exited().is_some() {
            panic!("cannot send SIG{signal} to {}: it has exited", self.name);
        }
        let pid = self.pid().expect("a running process has a pid");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill(1): {e}"));
        assert!(
            status.success(),
            "kill -{signal} {pid} ({}) failed",
            self.name
        );
    }

    /// SIGTERM: a graceful stop (a gridcap node drains).
    pub fn terminate(&mut self) {
        self.signal("TERM");
    }

    /// SIGKILL, then reap: the process is gone when this returns.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if self.status.is_none() {
                // An error means it already exited; `wait` below reaps it.
                let _already_exited = child.kill();
            }
            match child.wait() {
                Ok(status) => self.status = Some(status),
                Err(e) => panic!("cannot reap {}: {e}", self.name),
            }
            self.child = None;
        }
    }

    /// The exit status if the process has exited (does not block).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
        {
            self.status = child
                .try_wait()
                .unwrap_or_else(|e| panic!("cannot poll {}: {e}", self.name));
        }
        self.status
    }

    /// Waits (bounded by `limit`) for the process to exit; panics with its
    /// log tail if it does not.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last lines of its stdout and stderr, for panic messages.
    pub fn log_tail(&self) -> String {
        format!(
            "--- {} stdout ({}) ---\n{}--- {} stderr ({}) ---\n{}",
            self.name,
            self.stdout.display(),
            tail(&self.stdout, 15),
            self.name,
            self.stderr.display(),
            tail(&self.stderr, 30)
        )
    }

    /// Where its stdout goes.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout
    }

    /// Where its stderr goes.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of the file at `path` (empty if unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = String::new();
    for line in &lines[start..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The program `name` if it is on `PATH` or in `/usr/sbin` or `/sbin`
/// (Debian installs haproxy and nginx there, outside a normal user's PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
