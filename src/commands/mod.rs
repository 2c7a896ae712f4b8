//! The commands: each reads its arguments, drives the pipeline, and
//! returns the exit code.

pub mod baseline;
pub mod calibrate;
pub mod comment;
pub mod compare;
pub mod gate;
pub mod kv_size;
pub mod report;
pub mod run;
pub mod sim;

use crate::error::Result;
use crate::progress::Ui;
use crate::runner::{RunOutcome, Stop};
use crate::settings::RunSettings;

/// The run's settings with at least `min_samples` samples a point: a
/// comparison refuses fewer, so a gate or a calibration takes them.
pub fn resolve_with_samples(
    mut run: crate::cli::RunArgs,
    min_samples: usize,
    cwd: &std::path::Path,
) -> Result<RunSettings> {
    let settings = RunSettings::resolve(run.clone(), cwd)?;
    if (settings.num_retries as usize) >= min_samples {
        return Ok(settings);
    }
    run.options.num_retries = Some(min_samples as u32);
    RunSettings::resolve(run, cwd)
}

/// A sweep, then its HTML reports unless `--skip-graphs` (a report that
/// fails to render is a warning: the run is kept whatever happens).
/// `stop` ends the sweep early, everything measured saved.
pub async fn run_and_report(
    settings: RunSettings,
    argv: &[String],
    stop: &Stop,
) -> Result<RunOutcome> {
    let ui = Ui::new(settings.quiet);
    let skip_graphs = settings.skip_graphs;
    let outcome = crate::runner::run_until(settings, argv, stop).await?;
    if !skip_graphs {
        report::after_run(&outcome.dir, &ui);
    }
    Ok(outcome)
}
