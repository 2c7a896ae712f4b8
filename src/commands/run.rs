//! `cacherate run`: the sweep, its reports, and the final table.

use std::io::Write;
use std::path::Path;

use crate::cli::RunArgs;
use crate::error::Result;
use crate::runner::Stop;
use crate::settings::RunSettings;

pub async fn command(args: RunArgs, argv: &[String], cwd: &Path, stop: &Stop) -> Result<i32> {
    let settings = RunSettings::resolve(args, cwd)?;
    let outcome = super::run_and_report(settings, argv, stop).await?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "\n{}",
        crate::report::table::render_table(&outcome.points)
    );
    let _ = writeln!(stdout, "results in {}", outcome.dir.display());
    Ok(exit_code(&outcome.points))
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
