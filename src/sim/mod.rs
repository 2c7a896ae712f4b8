//! The embedded inference-server simulator (`cacherate sim`): a real HTTP
//! server that speaks vLLM's OpenAI-compatible protocol, with a KV
//! prefix-cache model and a continuous-batching cost model inside.

pub mod config;
pub mod engine;
pub mod faults;
mod http;
pub mod kv;
pub mod metrics;
pub mod speed;
pub mod tokenizer;
pub mod wire;

pub use config::SimConfig;
pub use http::{SimServer, serve, shutdown_signal};
