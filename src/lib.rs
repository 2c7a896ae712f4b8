//! cacherate: measures how an OpenAI-compatible inference server performs
//! across KV-cache hit rates, and turns the measurement into a CI gate.

pub mod cli;
pub mod error;
pub mod exit;
pub mod sim;

use std::io::Write;

use cli::{Cli, Command};
use error::{Error, Result};

/// Runs one parsed command line to completion.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sim(config) => run_sim(config).await,
    }
}

async fn run_sim(config: sim::SimConfig) -> Result<()> {
    config.validate().map_err(Error::Usage)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            Error::Usage(format!(
                "cannot listen on {}: {e}; pick another address with --listen (port 0 \
                 takes a free one)",
                config.listen
            ))
        })?;
    let addr = listener.local_addr().map_err(anyhow::Error::from)?;
    {
        // Scripts read the bound address from this line.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}").map_err(anyhow::Error::from)?;
        stdout.flush().map_err(anyhow::Error::from)?;
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        sim::shutdown_signal().await;
        on_signal.cancel();
    });
    sim::serve(listener, config, shutdown)
        .await
        .map_err(|e| Error::Internal(e.into()))
}
