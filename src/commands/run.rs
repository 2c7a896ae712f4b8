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
    Ok(crate::exit::PASS)
}
