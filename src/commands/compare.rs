//! `cacherate compare RUN_DIR --baseline FILE`: reads the run and the
//! baseline, judges ([`crate::analysis::judge`]), writes
//! `RUN_DIR/compare/verdict.json` with its reports, prints the table; the
//! exit code follows from the verdict and `--fail-on-inconclusive`.

use std::path::Path;

use crate::analysis::document::VerdictFile;
use crate::analysis::{GatePolicy, Policy, Tolerances};
use crate::baseline::{Baseline, load_run};
use crate::cli::CompareArgs;
use crate::error::{Error, Result};
use crate::settings::{CompareSettings, VerdictSettings};
use crate::store::RunDir;

/// Where `verdict.json` goes inside a run directory.
pub const VERDICT_FILE: &str = "compare/verdict.json";

/// The analysis' policy of the resolved verdict options.
pub fn gate_policy(settings: &VerdictSettings) -> GatePolicy {
    GatePolicy {
        policy: Policy {
            tolerances: Tolerances {
                throughput: settings.tolerances.throughput,
                ttft_p50: settings.tolerances.ttft_p50,
                ttft_p95: settings.tolerances.ttft_p95,
            },
            confidence: settings.confidence,
            min_samples: settings.min_samples,
            run_noise_floor: settings.run_noise_floor,
            ..Policy::default()
        },
        gated: settings.gate_metrics.clone(),
        fail_on_inconclusive: settings.fail_on_inconclusive,
    }
}

/// Now, as documents date themselves.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// `cacherate compare`: judges, writes `verdict.json`, prints the table;
/// returns the exit code.
pub fn command(args: &CompareArgs, cwd: &Path) -> Result<i32> {
    let settings = CompareSettings::resolve(args, cwd)?;
    let policy = gate_policy(&settings.verdict);
    let baseline = Baseline::read(&settings.baseline)?;
    let run = load_run(&settings.run_dir)?;
    let verdict = crate::analysis::judge(&baseline, &settings.baseline, &run, &policy, &now())?;
    write(&settings.run_dir, &verdict)?;
    print(&settings.run_dir, &verdict);
    Ok(crate::analysis::exit_code(
        verdict.overall.verdict,
        policy.fail_on_inconclusive,
    ))
}

/// The verdict's table, and where the verdict is.
pub fn print(run_dir: &Path, verdict: &VerdictFile) {
    println!("{}", crate::report::verdict_table::render(verdict));
    println!(
        "verdict written to {}",
        run_dir.join(VERDICT_FILE).display()
    );
}

/// Writes `verdict.json` and its reports next to it —
/// `compare/junit.xml`, `compare/comment.md`, `compare/diff.html` — and,
/// in GitHub Actions, the comment's text as the step summary
/// (`$GITHUB_STEP_SUMMARY`; written again, it replaces itself).
pub fn write(run_dir: &Path, verdict: &VerdictFile) -> Result<()> {
    use crate::report::{diff_html, junit, markdown};
    let dir = RunDir::existing(run_dir)?;
    dir.write_json(VERDICT_FILE, verdict)?;
    let internal = |what: &str, e: String| Error::Internal(anyhow::anyhow!("{what}: {e}"));
    let junit = junit::render(verdict).map_err(|e| internal("junit.xml", e.to_string()))?;
    dir.write_atomic("compare/junit.xml", &junit)?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let comment = markdown::render(verdict, &markdown::Links::from_actions_env(env));
    dir.write_atomic("compare/comment.md", comment.as_bytes())?;
    let html = diff_html::render(verdict).map_err(|e| internal("diff.html", e.to_string()))?;
    dir.write_atomic("compare/diff.html", html.as_bytes())?;
    if let Some(path) = env("GITHUB_STEP_SUMMARY")
        && let Err(e) = crate::github::summary::write_section(Path::new(&path), "verdict", &comment)
    {
        eprintln!("warning: cannot write the step summary {path}: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// The verdict's defaults are in `default-config.toml` (where profiles
    /// override them); the analysis' own defaults must be the same.
    #[test]
    fn the_built_in_verdict_defaults_are_the_analysis_defaults() {
        let Command::Compare(args) =
            Cli::try_parse_from(["cacherate", "compare", "run", "--baseline", "b.json"])
                .unwrap()
                .command
        else {
            unreachable!()
        };
        let no_profiles = tempfile::tempdir().unwrap();
        let settings = CompareSettings::resolve(&args, no_profiles.path()).unwrap();
        assert_eq!(gate_policy(&settings.verdict), GatePolicy::default());
        assert_eq!(
            crate::settings::DEFAULT_RUNS as usize,
            crate::analysis::RECOMMENDED_BASELINE_RUNS
        );
    }
}
