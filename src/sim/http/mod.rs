//! The simulator's HTTP server: vLLM's OpenAI-compatible routes over axum,
//! streaming as vLLM streams, with faults injected per request.

mod error;
mod generation;
mod routes;
mod server;
mod stream;

pub use server::{SimServer, serve, shutdown_signal};

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::sim::config::SimConfig;
use crate::sim::engine::EngineHandle;
use crate::sim::faults::FaultDraw;

use routes::{
    chat_completions, completions, detokenize, health, info, method_not_allowed, models, not_found,
    prometheus, reset_prefix_cache, tokenize, version,
};

struct App {
    config: SimConfig,
    engine: EngineHandle,
    faults: Mutex<FaultDraw>,
    requests: AtomicU64,
    started: u64,
    shutdown: CancellationToken,
}

type Shared = Arc<App>;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Builds the router; `serve` and tests share it.
fn router(app: Shared) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/reset_prefix_cache", post(reset_prefix_cache))
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/metrics", get(prometheus))
        .route("/sim/info", get(info))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}
