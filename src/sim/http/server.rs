//! Starting and stopping the simulator: `serve`, the in-process `SimServer`,
//! and the shutdown signal.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sim::config::SimConfig;
use crate::sim::engine;
use crate::sim::faults::FaultDraw;

use super::{App, router, unix_now};

/// Runs the simulator on `listener` until `shutdown` is cancelled, then
/// finishes open responses (stalled ones end at once) and returns.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    tracing::info!(
        run_slowdown = config.run_slowdown(),
        run_noise = config.run_noise,
        seed = config.seed,
        cold_start_slowdown = config.cold_start_slowdown,
        cold_start_seconds = config.cold_start_seconds,
        "simulator speed"
    );
    let engine = engine::spawn(&config, shutdown.clone());
    let app = Arc::new(App {
        faults: Mutex::new(FaultDraw::new(&config)),
        config,
        engine,
        requests: AtomicU64::new(0),
        started: unix_now(),
        shutdown: shutdown.clone(),
    });
    // Small SSE writes must leave at once, as uvicorn sends them: without
    // TCP_NODELAY, Nagle's algorithm holds a token until the client's
    // delayed ACK, adding tens of milliseconds to every TTFT.
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// A simulator running in this process, for tests and for `cacherate run`
/// without an endpoint.
pub struct SimServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<io::Result<()>>,
}

impl SimServer {
    /// Binds `config.listen` and serves in a background task.
    pub async fn start(config: SimConfig) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, config, shutdown.clone()));
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(self) -> io::Result<()> {
        self.shutdown.cancel();
        self.task.await.map_err(io::Error::other)?
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when it is first awaited, so a signal that arrives right
/// after the caller announced itself is not missed.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
