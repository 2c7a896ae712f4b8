//! `cacherate baseline refresh NAME`: runs the sweep several times — the
//! first run finds each point's peak, the others measure at those peaks —
//! or takes finished runs (`--from-run`), and writes `baselines/NAME.json`
//! with every run's samples ([`crate::baseline::build`]), optionally
//! committing it.

use std::path::{Path, PathBuf};

use super::run::run_and_report;
use crate::baseline::{Baseline, build, check_name, commit, difference, load_run, read_loads};
use crate::cli::RefreshArgs;
use crate::error::Result;
use crate::progress::Ui;
use crate::runner::Stop;
use crate::settings::{RefreshPlan, RefreshSettings, Runs};

/// `cacherate baseline refresh`.
pub async fn refresh(args: &RefreshArgs, argv: &[String], cwd: &Path, stop: &Stop) -> Result<i32> {
    check_name(&args.name)?;
    let settings = RefreshSettings::resolve(args, cwd, &read_loads)?;
    let ui = Ui::new(settings.quiet);
    let dirs = match &settings.runs {
        Runs::Given(dirs) => dirs.clone(),
        Runs::Measured { count, plan } => measure(&settings.name, *count, plan, argv, stop).await?,
    };
    let runs = dirs
        .iter()
        .map(|d| load_run(d))
        .collect::<Result<Vec<_>>>()?;
    let git = crate::store::git_state(&settings.baselines_dir);
    let baseline = build(&settings.name, &runs, git, settings.force)?;
    if baseline.runs.len() < crate::analysis::RECOMMENDED_BASELINE_RUNS {
        ui.warn(&format!(
            "a baseline of {} run(s): comparisons against it raise more false alarms or miss \
             more slowdowns than one of {} (see the README)",
            baseline.runs.len(),
            crate::analysis::RECOMMENDED_BASELINE_RUNS
        ));
    }
    let file = settings
        .baselines_dir
        .join(format!("{}.json", settings.name));
    replace(&file, &baseline, &ui)?;
    if settings.commit {
        let id = commit(&file, &commit_message(&baseline))?;
        println!("committed as {id}");
    }
    Ok(crate::exit::PASS)
}

/// Runs 1 to `count`: the first as configured, the others at its loads.
async fn measure(
    name: &str,
    count: u32,
    plan: &RefreshPlan,
    argv: &[String],
    stop: &Stop,
) -> Result<Vec<PathBuf>> {
    let first = plan.first();
    let ui = Ui::new(first.quiet);
    super::run::warn_if_runs_share_a_server(&first, count, &ui);
    ui.line(&format!(
        "baseline {name}: run 1 of {count} in {}",
        first.output_dir.display()
    ));
    let outcome = run_and_report(first, argv, stop).await?;
    let from = outcome.dir.join(crate::store::RESULTS);
    let loads: Vec<(u64, u32, u32)> = outcome
        .points
        .iter()
        .map(|p| (p.context_size, p.cache_hit_rate, p.peak_concurrency))
        .collect();
    let mut dirs = vec![outcome.dir];
    for k in 2..=count {
        let settings = plan.later(k, &from, &loads)?;
        ui.line(&format!(
            "baseline {name}: run {k} of {count} in {} at the first run's loads",
            settings.output_dir.display()
        ));
        dirs.push(run_and_report(settings, argv, stop).await?.dir);
    }
    Ok(dirs)
}

/// Writes `baseline` to `file`, saying what changed from the one it
/// replaces.
fn replace(file: &Path, baseline: &Baseline, ui: &Ui) -> Result<()> {
    let old = file
        .exists()
        .then(|| Baseline::read(file))
        .transpose()
        .unwrap_or_else(|e| {
            ui.warn(&format!(
                "the old baseline cannot be read ({e}); replacing it"
            ));
            None
        });
    baseline.write(file)?;
    match &old {
        Some(old) => println!(
            "baseline {} rewritten: {}\nchanges from the old one:\n{}",
            baseline.name,
            file.display(),
            difference(old, baseline)
        ),
        None => println!("baseline {} written: {}", baseline.name, file.display()),
    }
    Ok(())
}

fn commit_message(baseline: &Baseline) -> String {
    let provenance = &baseline.provenance;
    format!(
        "Refresh baseline {}\n\n{} run(s) of {} on {} by {} with cacherate {}\n",
        baseline.name,
        baseline.runs.len(),
        provenance.model,
        provenance.target.join(", "),
        provenance.refreshed_by,
        provenance.tool_version
    )
}
