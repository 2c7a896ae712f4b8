//! The embedded simulator that `run` starts when no `--api-endpoint` is
//! given. It runs on threads of its own (its own tokio runtime), so the
//! load generator's timings do not include the simulator's work and the two
//! do not queue behind each other on the same workers.

use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::settings::RunSettings;
use crate::sim::{SimConfig, SimServer};

/// Worker threads of the simulator's runtime.
const SIM_WORKERS: usize = 2;

/// A running embedded simulator.
pub struct EmbeddedSim {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The simulator's configuration for a run: its defaults, on a free
/// loopback port, sized for the run's longest context.
fn config(settings: &RunSettings) -> SimConfig {
    let longest = settings
        .context_sizes
        .iter()
        .map(|&c| crate::kvsize::round_up(c, settings.chunk_size))
        .max()
        .unwrap_or(0) as usize;
    let defaults = SimConfig::default();
    let max_model_len = defaults
        .max_model_len
        .max(longest.saturating_add(settings.output_tokens as usize + 16));
    SimConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        time_scale: settings.sim_time_scale,
        // The simulator's own draws (its run-to-run speed among them) follow
        // --seed; without one every run gets a fresh simulator, as a real
        // server restarted between runs would be.
        seed: settings.seed.unwrap_or_else(rand::random),
        max_model_len,
        kv_capacity_tokens: defaults.kv_capacity_tokens.max(max_model_len),
        ..defaults
    }
}

impl EmbeddedSim {
    /// Starts the simulator on its own runtime and waits until it listens.
    pub async fn start(settings: &RunSettings) -> Result<EmbeddedSim> {
        let config = config(settings);
        let failed = |e: String| {
            Error::Internal(anyhow::anyhow!("cannot start the embedded simulator: {e}"))
        };
        let (ready_tx, ready_rx) = oneshot::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cacherate-sim".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(SIM_WORKERS)
                    .thread_name("cacherate-sim")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match SimServer::start(config).await {
                        Ok(server) => {
                            let _ = ready_tx.send(Ok(server.url()));
                            // Ends on stop() and when the handle is dropped.
                            let _ = stop_rx.await;
                            if let Err(e) = server.stop().await {
                                tracing::warn!("the embedded simulator stopped with: {e}");
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                        }
                    }
                });
            })
            .map_err(|e| failed(e.to_string()))?;
        let url = ready_rx
            .await
            .map_err(|_| failed("its thread ended before it listened".into()))?
            .map_err(failed)?;
        Ok(EmbeddedSim {
            url,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Stops the simulator and waits for its thread.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for EmbeddedSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
