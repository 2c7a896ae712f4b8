//! `cacherate calibrate --baseline FILE`: A/A. Runs the baseline's
//! configuration again at its loads (or reads finished runs), holds each
//! run against the baseline with the tolerances in force — every failure
//! is a false alarm — and stores the run-to-run noise the runs show in the
//! baseline, where comparisons use it as their noise floor
//! ([`crate::analysis::calibrate`]).

use std::path::{Path, PathBuf};

use super::compare::{gate_policy, now};
use super::run::run_and_report;
use crate::baseline::{Baseline, load_run};
use crate::cli::CalibrateArgs;
use crate::error::Result;
use crate::progress::Ui;
use crate::runner::Stop;
use crate::settings::{AaPlan, CalibrateSettings, Runs};

/// `cacherate calibrate`.
pub async fn command(
    args: &CalibrateArgs,
    argv: &[String],
    cwd: &Path,
    stop: &Stop,
) -> Result<i32> {
    let mut baseline = Baseline::read(&args.baseline)?;
    let loads = |_: &Path| Ok(baseline.loads());
    let settings = CalibrateSettings::resolve(args, cwd, &loads)?;
    let ui = Ui::new(settings.quiet);
    let dirs: Vec<PathBuf> = match &settings.runs {
        Runs::Given(dirs) => dirs.clone(),
        Runs::Measured { count, plan } => measure(*count, plan, &ui, argv, stop).await?,
    };
    let runs = dirs
        .iter()
        .map(|d| load_run(d))
        .collect::<Result<Vec<_>>>()?;
    let policy = gate_policy(&settings.verdict);
    let report = crate::analysis::calibrate(&baseline, &args.baseline, &runs, &policy, &now())?;
    for run in &report.runs {
        ui.line(&format!("{}: {}", run.dir, run.summary));
    }
    print!(
        "{}",
        crate::report::calibration::render(&baseline.name, &report)
    );
    baseline.calibration = Some(report.calibration);
    baseline.write(&args.baseline)?;
    println!(
        "the run noise is stored in {}: comparisons against it use it as their floor",
        args.baseline.display()
    );
    Ok(crate::exit::PASS)
}

/// A/A runs 1 to `count`, at the baseline's loads.
async fn measure(
    count: u32,
    plan: &AaPlan,
    ui: &Ui,
    argv: &[String],
    stop: &Stop,
) -> Result<Vec<PathBuf>> {
    super::run::warn_if_runs_share_a_server(&plan.run(1), count, ui);
    let mut dirs = Vec::new();
    for k in 1..=count {
        let run = plan.run(k);
        let dir = run.output_dir.display().to_string();
        ui.line(&format!("calibrate: A/A run {k} of {count} in {dir}"));
        dirs.push(run_and_report(run, argv, stop).await?.dir);
    }
    Ok(dirs)
}
