//! cacherate: measures how an OpenAI-compatible inference server performs
//! across KV-cache hit rates, and turns the measurement into a CI gate.
//!
//! The pipeline, top to bottom: command line ([`cli`]) → settings
//! ([`settings`]) → workload ([`workload`]) → client ([`client`]) → runner
//! ([`runner`]) → run directory ([`store`]) → figures ([`stats`]).

pub mod analysis;
pub mod baseline;
pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod exit;
pub mod github;
pub mod kvsize;
pub mod progress;
pub mod record;
pub mod report;
pub mod rng;
pub mod runner;
pub mod settings;
pub mod sim;
pub mod stats;
pub mod store;
pub mod workload;

use cli::{Cli, Command};
use error::{Error, Result};

/// Ends `work` with [`Error::Interrupted`] on Ctrl-C; what was measured is
/// on disk already, and the same command resumes.
async fn interruptible<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        done = work => done,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    }
}

/// Runs one parsed command line to completion; returns the exit code.
/// `argv` is the raw command line, recorded in the run directory.
pub async fn run(cli: Cli, argv: Vec<String>) -> Result<i32> {
    let cwd = std::env::current_dir().map_err(|e| Error::Internal(e.into()))?;
    match cli.command {
        Command::Run(args) => interruptible(commands::run::command(*args, &argv, &cwd)).await,
        Command::Compare(args) => commands::compare::command(&args),
        Command::Gate(args) => interruptible(commands::gate::command(&args, &argv, &cwd)).await,
        Command::Calibrate(args) => {
            interruptible(commands::calibrate::command(&args, &argv, &cwd)).await
        }
        Command::Baseline(cli::BaselineCommand::Refresh(args)) => {
            interruptible(commands::baseline::refresh(&args, &argv, &cwd)).await
        }
        Command::Report(args) => commands::report::command(&args),
        Command::Sim(config) => commands::sim::command(config).await,
        Command::KvSize(args) => commands::kv_size::command(args),
        Command::Comment(args) => commands::comment::command(&args).await,
    }
}
