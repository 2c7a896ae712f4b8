//! The command line: clap structures that only parse.

use clap::{Parser, Subcommand};

use crate::sim::SimConfig;

/// Benchmark OpenAI-compatible LLM inference servers across KV-cache hit
/// rates, and gate changes in CI.
#[derive(Debug, Parser)]
#[command(name = "cacherate", version, after_help = crate::exit::HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded simulated inference server (vLLM's OpenAI-compatible
    /// protocol with a KV prefix-cache model).
    Sim(SimConfig),
}
