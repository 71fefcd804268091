//! HAProxy and NGINX from the system's packages, run with the configurations
//! of `deploy/` so that the tests exercise what operators deploy.
//!
//! - HAProxy runs `deploy/haproxy/haproxy.cfg` unchanged; its addresses come
//!   from the `GRIDCAP_*` environment variables that file reads.
//! - NGINX gets `deploy/nginx/gridcap.conf` with its `server` and `listen`
//!   lines replaced by loopback addresses, included from a generated main
//!   configuration that keeps the pid file, logs and temp paths in the
//!   test's directory (`daemon off; master_process off;`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::paths::{TestDir, deploy_dir};
use crate::ports::free_addr;
use crate::process::{Proc, find_program};
use crate::{POLL, WAIT, http};

/// Which balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalancerKind {
    /// HAProxy, with active health checks on `/readyz`.
    Haproxy,
    /// Open-source NGINX, with passive health (`max_fails`).
    Nginx,
}

impl BalancerKind {
    /// The program's name (also its Debian package's name).
    pub fn program(self) -> &'static str {
        match self {
            BalancerKind::Haproxy => "haproxy",
            BalancerKind::Nginx => "nginx",
        }
    }
}

impl fmt::Display for BalancerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

/// Set (to anything but `0` or empty) by `make test`: a missing balancer is
/// then a failure, not a skip.
pub const REQUIRE_ENV: &str = "GRIDCAP_REQUIRE_SYSTEM_DEPS";

/// Whether the test `test` may run: true when every balancer in `kinds` is
/// installed. When one is missing, prints why and returns false — unless
/// [`REQUIRE_ENV`] is set, in which case it panics.
pub fn available(test: &str, kinds: &[BalancerKind]) -> bool {
    let missing: Vec<&str> = kinds
        .iter()
        .filter(|k| find_program(k.program()).is_none())
        .map(|k| k.program())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
    let what = missing.join(" and ");
    assert!(
        !required,
        "{test}: {what} not installed, and {REQUIRE_ENV} is set \
         (Debian: apt-get install {})",
        missing.join(" ")
    );
    eprintln!(
        "SKIPPED {test}: {what} not installed (Debian: apt-get install {}); \
         set {REQUIRE_ENV}=1 to make this a failure",
        missing.join(" ")
    );
    false
}

/// A running balancer; dropping it kills it.
#[derive(Debug)]
pub struct Balancer {
    /// Which one.
    pub kind: BalancerKind,
    /// Where players connect.
    pub addr: SocketAddr,
    /// HAProxy's status page (HAProxy only).
    pub stats: Option<SocketAddr>,
    /// The process.
    proc: Proc,
}

impl Balancer {
    /// Starts `kind` in front of `backends` and waits until a request to
    /// `/readyz` goes through it.
    pub async fn start(kind: BalancerKind, dir: &TestDir, backends: &[SocketAddr]) -> Balancer {
        let balancer = match kind {
            BalancerKind::Haproxy => Balancer::haproxy(dir, backends),
            BalancerKind::Nginx => Balancer::nginx(dir, backends),
        };
        balancer.wait_ready().await
    }

    /// HAProxy with `deploy/haproxy/haproxy.cfg`. The file names three
    /// nodes; fewer backends are repeated to fill them.
    fn haproxy(dir: &TestDir, backends: &[SocketAddr]) -> Balancer {
        assert!(!backends.is_empty(), "a balancer needs backends");
        let program = find_program("haproxy").expect("haproxy is installed (checked by the test)");
        let config = deploy_dir().join("haproxy").join("haproxy.cfg");
        let addr = free_addr();
        let stats = free_addr();
        let mut command = Command::new(program);
        command
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .env("GRIDCAP_LB_BIND", addr.to_string())
            .env("GRIDCAP_LB_STATS", stats.to_string())
            // Short checks: tests watch nodes come and go within seconds.
            .env("GRIDCAP_CHECK_INTER", "200ms");
        for (i, var) in ["GRIDCAP_NODE_A", "GRIDCAP_NODE_B", "GRIDCAP_NODE_C"]
            .iter()
            .enumerate()
        {
            command.env(var, backends[i % backends.len()].to_string());
        }
        assert!(
            backends.len() <= 3,
            "deploy/haproxy/haproxy.cfg names three nodes"
        );
        Balancer {
            kind: BalancerKind::Haproxy,
            addr,
            stats: Some(stats),
            proc: Proc::spawn("haproxy", command, &dir.path),
        }
    }

    /// NGINX with `deploy/nginx/gridcap.conf`, rendered for `backends`.
    fn nginx(dir: &TestDir, backends: &[SocketAddr]) -> Balancer {
        let program = find_program("nginx").expect("nginx is installed (checked by the test)");
        let addr = free_addr();
        let prefix = dir.join("nginx");
        for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(prefix.join("temp").join(sub))
                .unwrap_or_else(|e| panic!("cannot create nginx temp dirs: {e}"));
        }
        let site_path = deploy_dir().join("nginx").join("gridcap.conf");
        let site = std::fs::read_to_string(&site_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", site_path.display()));
        let site = render_nginx_site(&site, addr, backends);
        std::fs::write(prefix.join("gridcap.conf"), site).expect("write nginx site");
        let p = prefix.display();
        let main = format!(
            "# Generated by the system tests around deploy/nginx/gridcap.conf.\n\
             daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {p}/nginx.pid;\n\
             error_log stderr notice;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
             \x20   access_log {p}/access.log;\n\
             \x20   client_body_temp_path {p}/temp/client_body;\n\
             \x20   proxy_temp_path {p}/temp/proxy;\n\
             \x20   fastcgi_temp_path {p}/temp/fastcgi;\n\
             \x20   uwsgi_temp_path {p}/temp/uwsgi;\n\
             \x20   scgi_temp_path {p}/temp/scgi;\n\
             \x20   include {p}/gridcap.conf;\n\
             }}\n"
        );
        let main_path = prefix.join("nginx.conf");
        std::fs::write(&main_path, main).expect("write nginx.conf");
        let mut command = Command::new(program);
        command
            .arg("-p")
            .arg(format!("{p}/"))
            .arg("-c")
            .arg(&main_path)
            .arg("-e")
            .arg("stderr");
        Balancer {
            kind: BalancerKind::Nginx,
            addr,
            stats: None,
            proc: Proc::spawn("nginx", command, &dir.path),
        }
    }

    /// Polls `/readyz` through the balancer until it answers 200.
    async fn wait_ready(mut self) -> Balancer {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.proc.exited() {
                panic!(
                    "{} exited ({status}) at start\n{}",
                    self.kind,
                    self.proc.log_tail()
                );
            }
            if matches!(http::try_get(self.addr, "/readyz").await, Ok(r) if r.status == 200) {
                return self;
            }
            assert!(
                Instant::now() < deadline,
                "{} on {} did not pass /readyz within {WAIT:?}\n{}",
                self.kind,
                self.addr,
                self.proc.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// `ws://addr/ws` through the balancer.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// HAProxy's view of each server (`a`, `b`, `c`): `UP`, `DOWN`, `MAINT`,
    /// possibly with a transition such as `UP 1/2`, from its CSV status page.
    pub async fn haproxy_states(&self) -> Vec<(String, String)> {
        let stats = self.stats.expect("only HAProxy has a status page");
        let csv = http::get(stats, "/;csv").await.text();
        csv.lines()
            .filter(|l| l.starts_with("gridcap_nodes,"))
            .filter_map(|l| {
                let fields: Vec<&str> = l.split(',').collect();
                let name = *fields.get(1)?;
                let status = *fields.get(17)?;
                (name != "BACKEND").then(|| (name.to_owned(), status.to_owned()))
            })
            .collect()
    }

    /// Waits until HAProxy reports server `name` with a status starting
    /// with `status` (`UP` or `DOWN`).
    pub async fn wait_haproxy_state(&self, name: &str, status: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let states = self.haproxy_states().await;
            if states
                .iter()
                .any(|(n, s)| n == name && s.starts_with(status))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy does not report {name} {status} within {WAIT:?}: {states:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The tail of its logs.
    pub fn log_tail(&self) -> String {
        self.proc.log_tail()
    }

    /// Where its logs are.
    pub fn log_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.proc.stdout_path().to_path_buf(),
            self.proc.stderr_path().to_path_buf(),
        )
    }
}

/// `deploy/nginx/gridcap.conf` with its upstream `server` lines replaced by
/// `backends` and its `listen` by `listen`. Panics when the file no longer
/// has the lines this relies on (one directive per line).
pub fn render_nginx_site(site: &str, listen: SocketAddr, backends: &[SocketAddr]) -> String {
    let mut out = String::new();
    let (mut servers, mut listens) = (0, 0);
    for line in site.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("server ") && trimmed.contains("max_fails") {
            if servers == 0 {
                let options = trimmed
                    .trim_end_matches(';')
                    .split_whitespace()
                    .skip(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                for backend in backends {
                    out.push_str(&format!("{indent}server {backend} {options};\n"));
                }
            }
            servers += 1;
        } else if trimmed.starts_with("listen ") {
            out.push_str(&format!("{indent}listen {listen};\n"));
            listens += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        servers > 0 && listens == 1,
        "deploy/nginx/gridcap.conf must keep its upstream `server ... max_fails=...;` lines \
         and one `listen` line, one directive per line (found {servers} and {listens})"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_deployed_nginx_site() {
        let path = deploy_dir().join("nginx").join("gridcap.conf");
        let site = std::fs::read_to_string(path).unwrap();
        let listen: SocketAddr = "127.0.0.1:15000".parse().unwrap();
        let backends: Vec<SocketAddr> = vec![
            "127.0.0.1:15001".parse().unwrap(),
            "127.0.0.1:15002".parse().unwrap(),
        ];
        let out = render_nginx_site(&site, listen, &backends);
        assert!(out.contains("    listen 127.0.0.1:15000;\n"));
        assert!(out.contains("server 127.0.0.1:15001 max_fails="));
        assert!(out.contains("server 127.0.0.1:15002 max_fails="));
        assert!(
            !out.contains("10.0.0."),
            "an example address is left: {out}"
        );
        assert!(out.contains("proxy_set_header Upgrade $http_upgrade;"));
    }
}
