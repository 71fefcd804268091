//! `gridcap-send-floor`: what one write syscall of small frames costs the
//! sender on loopback, with no server around it: the floor under issue 12's
//! CPU target (docs/benchmarks.md, "The send() floor").
//!
//! The sender accepts N loopback connections from a reader process (this
//! same binary, `read`), then writes `--frames` frames of `--frame-bytes`
//! bytes round-robin over them, K frames per `write` (one write per
//! connection per turn, like a fan-out that coalesces K frames), for each K
//! of `--frames-per-write`. The reader drains every connection in the same
//! order. The sender's own CPU time (`/proc/self/schedstat`, ns on CPU; the
//! sender is single-threaded) over the writes, divided by the frames, is the
//! CPU-seconds per million frames a server pays for the syscalls alone, the
//! receiver's loopback path included (it runs on the sender's core, as it
//! does for a gridcap node and its bots on one box).
//!
//! Pin the two processes to different cores for the figure a pinned bench
//! sees: `taskset -c 0 gridcap-send-floor --reader-cpu 1`
//! (scripts/bench/send-floor.sh).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::json;

/// The syscall floor of a loopback fan-out (one JSON report on stdout).
#[derive(Debug, Parser)]
#[command(name = "gridcap-send-floor", version)]
struct Cli {
    /// Connections written round-robin (a fan-out's recipients).
    #[arg(long, default_value_t = 800)]
    connections: usize,
    /// Frames written per K, in all.
    #[arg(long, default_value_t = 400_000)]
    frames: usize,
    /// Bytes per frame (a `captured` frame is about 40).
    #[arg(long, default_value_t = 40)]
    frame_bytes: usize,
    /// Frames per write syscall to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    frames_per_write: Vec<usize>,
    /// Runs per K (the report gives each run and their median).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print a Markdown table instead of JSON.
    #[arg(long)]
    markdown: bool,
    /// Run the reader under `taskset -c CPU` (pin the sender yourself).
    #[arg(long)]
    reader_cpu: Option<u32>,
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// The reader (started by the sender): connects and drains.
    Read {
        /// The sender's listening address.
        #[arg(long)]
        addr: SocketAddr,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.frames_per_write.contains(&0)
        || cli.connections == 0
        || cli.frame_bytes == 0
        || cli.runs == 0
    {
        bail!(
            "--connections, --frame-bytes, --runs and every --frames-per-write must be at least 1"
        );
    }
    match cli.role {
        Some(Role::Read { addr }) => read(&cli, addr),
        None => send(&cli),
    }
}

/// Bytes one connection gets for one K: `frames / K / connections` writes
/// of `K` frames (rounded down to whole turns).
fn turns(cli: &Cli, k: usize) -> usize {
    cli.frames / k / cli.connections
}

fn send(cli: &Cli) -> Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind a loopback port")?;
    let addr = listener.local_addr()?;
    let mut reader = spawn_reader(cli, addr)?;
    let mut sockets = Vec::with_capacity(cli.connections);
    for _ in 0..cli.connections {
        let (socket, _) = listener
            .accept()
            .context("accept the reader's connection")?;
        socket.set_nodelay(true)?;
        sockets.push(socket);
    }
    let mut results = Vec::new();
    for &k in &cli.frames_per_write {
        let batch = vec![0x82u8; k * cli.frame_bytes];
        let turns = turns(cli, k);
        let frames = turns * k * cli.connections;
        let mut runs = Vec::with_capacity(cli.runs);
        for _ in 0..cli.runs {
            let before = cpu_ns()?;
            for _ in 0..turns {
                for socket in &mut sockets {
                    socket.write_all(&batch)?;
                }
            }
            let spent = cpu_ns()? - before;
            runs.push(spent as f64 / 1e3 / frames as f64);
        }
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        results.push(json!({
            "frames_per_write": k,
            "frames": frames,
            "cpu_s_per_million_frames": sorted[sorted.len() / 2],
            "runs": runs,
        }));
    }
    drop(sockets);
    let status = reader.wait()?;
    if !status.success() {
        bail!("the reader failed: {status}");
    }
    let report = json!({
        "connections": cli.connections,
        "frame_bytes": cli.frame_bytes,
        "results": results,
    });
    if cli.markdown {
        println!("| frames per write | sender CPU-s per million frames: median (runs) |");
        println!("| --- | --- |");
        for r in &results {
            let runs: Vec<String> = r["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| format!("{:.2}", x.as_f64().unwrap_or(f64::NAN)))
                .collect();
            println!(
                "| {} | {:.2} ({}) |",
                r["frames_per_write"],
                r["cpu_s_per_million_frames"].as_f64().unwrap_or(f64::NAN),
                runs.join(" / ")
            );
        }
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn spawn_reader(cli: &Cli, addr: SocketAddr) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let mut command = match cli.reader_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command
        .arg("--connections")
        .arg(cli.connections.to_string())
        .arg("--frames")
        .arg(cli.frames.to_string())
        .arg("--runs")
        .arg(cli.runs.to_string())
        .arg("--frame-bytes")
        .arg(cli.frame_bytes.to_string())
        .arg("--frames-per-write")
        .arg(
            cli.frames_per_write
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        )
        .arg("read")
        .arg("--addr")
        .arg(addr.to_string())
        .stdout(Stdio::null());
    command.spawn().context("start the reader")
}

fn read(cli: &Cli, addr: SocketAddr) -> Result<()> {
    let mut sockets = (0..cli.connections)
        .map(|_| TcpStream::connect(addr))
        .collect::<std::io::Result<Vec<_>>>()
        .context("connect to the sender")?;
    for &k in &cli.frames_per_write {
        let mut batch = vec![0u8; k * cli.frame_bytes];
        for _ in 0..turns(cli, k) * cli.runs {
            for socket in &mut sockets {
                socket.read_exact(&mut batch)?;
            }
        }
    }
    Ok(())
}

/// This (single-threaded) process's time on a CPU so far, in ns.
fn cpu_ns() -> Result<u64> {
    let stat =
        std::fs::read_to_string("/proc/self/schedstat").context("read /proc/self/schedstat")?;
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .context("parse /proc/self/schedstat")
}
