//! `cacherate gate`: `run` then `compare`. By default each point is
//! measured at the baseline's load (the fixed-load plan: a warm-up phase,
//! then the samples), so throughput and TTFT are compared at the same
//! concurrency and no GPU time goes into a ramp. A point left inconclusive
//! gets extra samples, once, before the verdict is final.

use std::path::Path;

use super::compare::{CompareOptions, compare};
use crate::baseline::Baseline;
use crate::cli::GateArgs;
use crate::error::{Error, Result};
use crate::progress::Ui;
use crate::runner::Stop;
use crate::settings::{Mode, RunSettings};
use crate::store::PointStatus;

/// Extra samples at an inconclusive point when `--max-extra-samples` is
/// not given.
const DEFAULT_MAX_EXTRA_SAMPLES: u32 = 3;

/// The run's settings for a gate against `baseline`: its loads unless the
/// peak is searched, and at least the samples a verdict needs.
fn gate_settings(args: &GateArgs, min_samples: usize, cwd: &Path) -> Result<RunSettings> {
    let mut run = args.run.clone();
    let given_load = run.options.fixed_concurrency_levels.is_some()
        || run.options.concurrency_from.is_some()
        || run.options.mode.is_some();
    if args.search_peak {
        if given_load {
            return Err(Error::Usage(
                "--search-peak runs the ramp: leave out --mode, --fixed-concurrency-levels \
                 and --concurrency-from"
                    .into(),
            ));
        }
        run.options.mode = Some(Mode::Adaptive);
    } else if !given_load {
        run.options.mode = Some(Mode::Fixed);
        run.options.concurrency_from = Some(args.baseline.clone());
    }
    super::resolve_with_samples(run, min_samples, cwd)
}

/// Runs the gate; returns the exit code its verdict gives.
pub async fn command(args: &GateArgs, argv: &[String], cwd: &Path, stop: &Stop) -> Result<i32> {
    let options = CompareOptions::from_args(&args.verdict)?;
    let baseline = Baseline::read(&args.baseline)?;
    let mut settings = gate_settings(args, options.policy.min_samples, cwd)?;
    let ui = Ui::new(settings.quiet);
    let missing: Vec<String> = settings
        .context_sizes
        .iter()
        .flat_map(|&c| settings.cache_hit_rates.iter().map(move |&r| (c, r)))
        .filter(|&(c, r)| baseline.point(c, r).is_none())
        .map(|(c, r)| format!("ctx {c} at {r}%"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "the baseline {} has no {}: gate the points it has, or refresh it",
            args.baseline.display(),
            missing.join(", ")
        )));
    }
    let outcome = super::run_and_report(settings.clone(), argv, stop).await?;
    // A point the circuit breaker stopped has nothing to compare; one
    // with samples but too many errors gets its `error` verdict below.
    if let Some(point) = outcome
        .points
        .iter()
        .find(|p| p.status == PointStatus::Error && !p.has_samples())
    {
        return Err(Error::Unreachable(format!(
            "ctx {} at {}% was not measured ({}); run the same command again once the server \
             is healthy",
            point.context_size,
            point.cache_hit_rate,
            point.status_message.as_deref().unwrap_or("error")
        )));
    }
    let mut verdict = compare(&outcome.dir, &args.baseline, &options)?;
    let max_extra = args.max_extra_samples.unwrap_or(DEFAULT_MAX_EXTRA_SAMPLES);
    let targets: Vec<(u64, u32, u32)> = verdict
        .points
        .iter()
        .filter(|p| verdict.overall.needs_more_samples.contains(&p.point))
        .map(|p| {
            (
                p.context_size,
                p.cache_hit_rate,
                settings.num_retries + max_extra,
            )
        })
        .collect();
    if max_extra > 0 && !targets.is_empty() {
        ui.line(&format!(
            "inconclusive at {}: adding up to {max_extra} samples there before deciding",
            verdict.overall.needs_more_samples.join(", ")
        ));
        settings.sample_targets = targets;
        super::run_and_report(settings, argv, stop).await?;
        verdict = compare(&outcome.dir, &args.baseline, &options)?;
    }
    println!("{}", crate::report::verdict_table::render(&verdict));
    println!(
        "verdict written to {}",
        outcome.dir.join(super::compare::VERDICT_FILE).display()
    );
    Ok(verdict.overall.exit_code)
}
