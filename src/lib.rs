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
pub mod doctor;
pub mod error;
pub mod exit;
pub mod github;
pub mod kvsize;
mod names;
pub mod progress;
pub mod record;
pub mod report;
pub mod rng;
pub mod runner;
pub mod serve;
pub mod settings;
pub mod sim;
pub mod stats;
pub mod store;
pub mod workload;

use cli::{Cli, Command};
use error::{Error, Result};

/// How long a stop now waits for the run to save its completed requests
/// before the command is dropped where it stands.
const STOP_NOW_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `work` (a command that measures) with SIGINT and SIGTERM handled:
/// the first finishes the phase in flight, saves it and ends the command
/// with [`Error::Interrupted`]; the second stops now, abandoning the
/// requests in flight but saving those completed. What was saved is what
/// the same command resumes from.
async fn interruptible<T, F>(work: impl FnOnce(runner::Stop) -> F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    let stop = runner::Stop::new();
    let listener = tokio::spawn(listen_for_stop(stop.clone()));
    let result = tokio::select! {
        done = work(stop.clone()) => done,
        () = async {
            stop.until_now().await;
            tokio::time::sleep(STOP_NOW_GRACE).await;
        } => Err(Error::Interrupted),
    };
    listener.abort();
    result
}

/// Turns the first SIGINT or SIGTERM into a stop after the phase, the
/// second into a stop now.
async fn listen_for_stop(stop: runner::Stop) {
    let mut signals = match StopSignals::new() {
        Ok(signals) => signals,
        Err(e) => {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            return;
        }
    };
    signals.next().await;
    eprintln!(
        "\ninterrupted: finishing the phase in flight and saving it, then stopping; run the \
         same command again to resume. Press Ctrl-C again to stop now (requests in flight are \
         abandoned, completed ones are kept)."
    );
    stop.after_phase();
    signals.next().await;
    eprintln!("\nstopping now: saving the completed requests");
    stop.now();
}

/// SIGINT and SIGTERM (what CI runners send on cancel) as one stream.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    #[cfg(unix)]
    fn new() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<StopSignals> {
        Ok(StopSignals {})
    }

    #[cfg(unix)]
    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs one parsed command line to completion; returns the exit code.
/// `argv` is the raw command line, recorded in the run directory.
pub async fn run(cli: Cli, argv: Vec<String>) -> Result<i32> {
    let cwd = std::env::current_dir().map_err(|e| Error::Internal(e.into()))?;
    match cli.command {
        Command::Run(args) => {
            interruptible(
                |stop| async move { commands::run::command(*args, &argv, &cwd, &stop).await },
            )
            .await
        }
        Command::Compare(args) => commands::compare::command(&args, &cwd),
        Command::Gate(args) => {
            interruptible(
                |stop| async move { commands::gate::command(&args, &argv, &cwd, &stop).await },
            )
            .await
        }
        Command::Calibrate(args) => {
            interruptible(|stop| async move {
                commands::calibrate::command(&args, &argv, &cwd, &stop).await
            })
            .await
        }
        Command::Baseline(cli::BaselineCommand::Refresh(args)) => {
            interruptible(|stop| async move {
                commands::baseline::refresh(&args, &argv, &cwd, &stop).await
            })
            .await
        }
        Command::Report(args) => commands::report::command(&args),
        Command::Sim(config) => commands::sim::command(config).await,
        Command::KvSize(args) => commands::kv_size::command(args),
        Command::Comment(args) => commands::comment::command(&args).await,
        Command::Doctor(args) => commands::doctor::command(&args).await,
    }
}
