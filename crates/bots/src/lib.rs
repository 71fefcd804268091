//! Load-test bots (work in progress).

use clap::Args;

/// Options of `gridcap bots`.
#[derive(Debug, Clone, Args)]
pub struct BotArgs {
    /// Server WebSocket URL (repeatable).
    #[arg(long = "url", default_value = "ws://127.0.0.1:8080/ws")]
    pub urls: Vec<String>,
}

/// Runs the bots; returns the process exit code.
pub async fn run(args: BotArgs) -> anyhow::Result<i32> {
    anyhow::bail!("bots are not implemented yet: {args:?}")
}
