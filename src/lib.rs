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

use std::io::Write;

use cli::{Cli, Command, KvSizeArgs};
use error::{Error, Result};

/// Runs one parsed command line to completion; returns the exit code.
/// `argv` is the raw command line, recorded in the run directory.
pub async fn run(cli: Cli, argv: Vec<String>) -> Result<i32> {
    let cwd = || std::env::current_dir().map_err(|e| Error::Internal(e.into()));
    match cli.command {
        Command::Run(args) => {
            let settings = settings::RunSettings::resolve(*args, &cwd()?)?;
            let outcome = tokio::select! {
                outcome = commands::run_and_report(settings, &argv) => outcome?,
                _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted),
            };
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "\n{}", report::table::render_table(&outcome.points));
            let _ = writeln!(stdout, "results in {}", outcome.dir.display());
            Ok(exit::PASS)
        }
        Command::Compare(args) => commands::compare::command(&args),
        Command::Gate(args) => {
            let cwd = cwd()?;
            tokio::select! {
                code = commands::gate::command(&args, &argv, &cwd) => code,
                _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
            }
        }
        Command::Calibrate(args) => {
            let cwd = cwd()?;
            tokio::select! {
                code = commands::calibrate::command(&args, &argv, &cwd) => code,
                _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
            }
        }
        Command::Baseline(cli::BaselineCommand::Refresh(args)) => {
            let cwd = cwd()?;
            tokio::select! {
                code = commands::baseline::refresh(&args, &argv, &cwd) => code,
                _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
            }
        }
        Command::Report(args) => commands::report::command(&args),
        Command::Sim(config) => run_sim(config).await.map(|()| exit::PASS),
        Command::KvSize(args) => kv_size(args).map(|()| exit::PASS),
        Command::Comment(args) => commands::comment::command(&args).await,
    }
}

fn kv_size(args: KvSizeArgs) -> Result<()> {
    let shape = kvsize::ModelShape::resolve(
        args.model.as_deref(),
        args.num_layers,
        args.num_kv_heads,
        args.head_dim,
    )
    .ok_or_else(|| {
        Error::Usage(format!(
            "the model shape is unknown{}: give --num-layers, --num-kv-heads and --head-dim, or \
             a --model from the built-in table (Llama 3.x, Qwen 2.5/3, Mistral, Mixtral, \
             gpt-oss, SmolLM2)",
            args.model
                .as_deref()
                .map(|m| format!(" for {m}"))
                .unwrap_or_default()
        ))
    })?;
    let estimate = kvsize::Estimate::new(
        shape,
        args.kv_cache_quantization,
        &args.context_sizes,
        args.working_set_size,
        args.chunk_size,
    )?;
    print!("{}", estimate.render());
    Ok(())
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
    // Handlers first: a script may signal as soon as it reads the address.
    let signalled = sim::shutdown_signal().map_err(|e| Error::Internal(e.into()))?;
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
    sim::serve(listener, config, shutdown)
        .await
        .map_err(|e| Error::Internal(e.into()))
}
