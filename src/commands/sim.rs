//! `cacherate sim`: the embedded simulator as a server of its own.

use std::io::Write;

use crate::error::{Error, Result};
use crate::sim::SimConfig;

/// `cacherate sim`: serves until SIGINT or SIGTERM.
pub async fn command(config: SimConfig) -> Result<i32> {
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
    // Handlers first: a script may signal as soon as it reads the address.
    let signalled = crate::sim::shutdown_signal().map_err(|e| Error::Internal(e.into()))?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        signalled.await;
        on_signal.cancel();
    });
    {
        // Scripts read the bound address from the first line, so the run
        // slowdown goes on a line of its own; both leave in one write, before a
        // script that read only the first line can close the pipe.
        let cold_start = if config.cold_start_seconds > 0.0 && config.cold_start_slowdown > 1.0 {
            format!(
                "cold start {}x fading over {} simulated seconds",
                config.cold_start_slowdown, config.cold_start_seconds
            )
        } else {
            "no cold start".to_string()
        };
        let lines = format!(
            "listening on http://{addr}\nrun slowdown {:.4} (--run-noise {}, --seed {}), {cold_start}\n",
            config.run_slowdown(),
            config.run_noise,
            config.seed,
        );
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(lines.as_bytes())
            .map_err(anyhow::Error::from)?;
        stdout.flush().map_err(anyhow::Error::from)?;
    }
    crate::sim::serve(listener, config, shutdown)
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(crate::exit::PASS)
}
