//! `cacherate run`: the sweep, its reports, and the final table; and the
//! sweep-and-reports step every measuring command shares.

use std::io::Write;
use std::path::Path;

use crate::cli::RunArgs;
use crate::error::Result;
use crate::progress::Ui;
use crate::runner::{RunOutcome, Stop};
use crate::settings::RunSettings;

/// `args` resolved, the loads of a `--concurrency-from` file read (an
/// earlier run's results.json or a baseline).
pub fn settings(args: RunArgs, cwd: &Path) -> Result<RunSettings> {
    RunSettings::resolve_with(args, cwd, &crate::baseline::read_loads)
}

pub async fn command(args: RunArgs, argv: &[String], cwd: &Path, stop: &Stop) -> Result<i32> {
    let settings = settings(args, cwd)?;
    let outcome = run_and_report(settings, argv, stop).await?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "\n{}",
        crate::report::table::render_table(&outcome.points)
    );
    let _ = writeln!(stdout, "results in {}", outcome.dir.display());
    Ok(exit_code(&outcome.points))
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
        super::report::after_run(&outcome.dir, &ui);
    }
    Ok(outcome)
}

/// Exit 3 (target unhealthy) when a point errored: the run is saved, and
/// running the same command again measures those points again.
pub fn exit_code(points: &[crate::store::PointResult]) -> i32 {
    let errored = points
        .iter()
        .filter(|p| p.status == crate::store::PointStatus::Error)
        .count();
    if errored == 0 {
        return crate::exit::PASS;
    }
    eprintln!(
        "error: {errored} of {} points errored (see status_message in results.json); run the \
         same command again to measure them again",
        points.len()
    );
    crate::exit::UNREACHABLE
}
