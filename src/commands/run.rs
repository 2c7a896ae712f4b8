//! `cacherate run`: the sweep, its reports, and the final table; and the
//! sweep-and-reports step every measuring command shares.

use std::io::Write;
use std::path::Path;

use crate::cli::RunArgs;
use crate::error::Result;
use crate::progress::Ui;
use crate::runner::{RunOutcome, Stop};
use crate::serve::Server;
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
/// A `--serve` server is started for it and stopped after it.
pub async fn run_and_report(
    settings: RunSettings,
    argv: &[String],
    stop: &Stop,
) -> Result<RunOutcome> {
    let ui = Ui::new(settings.quiet);
    let mut server = None;
    let outcome = run_and_report_on(settings, argv, stop, &mut server).await;
    if let Some(server) = server {
        crate::runner::stop_server(server, &ui).await;
    }
    outcome
}

/// [`run_and_report`], against the `--serve` server `server` holds (or
/// one started there and left running for the caller).
pub async fn run_and_report_on(
    settings: RunSettings,
    argv: &[String],
    stop: &Stop,
    server: &mut Option<Server>,
) -> Result<RunOutcome> {
    let ui = Ui::new(settings.quiet);
    let skip_graphs = settings.skip_graphs;
    let outcome = crate::runner::run_on(settings, argv, stop, server).await?;
    if !skip_graphs {
        super::report::after_run(&outcome.dir, &ui);
    }
    Ok(outcome)
}

/// Said once before the runs of a refresh or a calibration that all go to
/// one server process cacherate does not restart (SPEC §5: σ_run is the
/// spread between freshly started servers).
pub fn warn_if_runs_share_a_server(settings: &RunSettings, runs: u32, ui: &Ui) {
    if runs < 2 || settings.serve.is_some() || settings.endpoints.is_empty() {
        return;
    }
    ui.warn(&format!(
        "all {runs} runs go to the one server process at {}: the run-to-run noise (σ_run) they \
         measure leaves out what restarting the server changes, so it will be understated, \
         and every gate (which meets a freshly started server) will raise more false alarms. \
         Let cacherate start a fresh server for every run: --serve \"CMD\" (see the README)",
        crate::settings::mask_password(&settings.endpoints.join(", "))
    ));
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
