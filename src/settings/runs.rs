//! The settings of the commands that make several runs of one
//! configuration: `baseline refresh` (run 1 as configured, the others at
//! its loads) and `calibrate` (A/A runs at a baseline's loads). Each run
//! gets a directory of its own under the resolved `--output-dir` (which a
//! profile may set): `baseline-NAME/run-K`, `calibrate-NAME/run-K`.

use std::path::{Path, PathBuf};

use crate::cli::{CalibrateArgs, RefreshArgs, RunArgs};
use crate::error::{Error, Result};

use super::layers;
use super::load::ReadLoads;
use super::options::Mode;
use super::profile::{self, Options};
use super::resolve::RunSettings;
use super::verdict::VerdictSettings;

/// Runs a baseline is made of, and A/A runs, when `--runs` is not given:
/// what the verdict Monte-Carlo needs for ≤ 1 % false alarms and ≥ 95 %
/// detection of a 10 % slowdown at 99 % confidence.
pub const DEFAULT_RUNS: u32 = 5;

/// The runs of one of these commands.
#[derive(Debug, Clone)]
pub enum Runs<T> {
    /// Finished run directories (`--from-run`): nothing to measure.
    Given(Vec<PathBuf>),
    /// `count` runs to measure.
    Measured { count: u32, plan: T },
}

/// How `calibrate` measures its A/A runs.
#[derive(Debug, Clone)]
pub struct AaPlan {
    /// Every run's settings but the directory.
    run: RunSettings,
    /// `--output-dir/calibrate-NAME`.
    dir: PathBuf,
}

impl AaPlan {
    /// The settings of A/A run `k` (from 1).
    pub fn run(&self, k: u32) -> RunSettings {
        let mut run = self.run.clone();
        run.output_dir = self.dir.join(format!("run-{k}"));
        run
    }
}

/// `cacherate calibrate`'s settings.
#[derive(Debug, Clone)]
pub struct CalibrateSettings {
    pub baseline: PathBuf,
    pub verdict: VerdictSettings,
    pub quiet: bool,
    pub runs: Runs<AaPlan>,
}

/// The name a baseline file gives the directories of its runs.
fn stem(baseline: &Path) -> String {
    baseline
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "baseline".into())
}

impl CalibrateSettings {
    /// `args` over the environment, the profile and the defaults; `read`
    /// gives the baseline's loads, which every A/A run measures at.
    pub fn resolve(
        args: &CalibrateArgs,
        config_dir: &Path,
        read: ReadLoads,
    ) -> Result<CalibrateSettings> {
        let profiles = profile::load(&args.run.profiles, config_dir)?;
        let verdict = VerdictSettings::of(&profiles.clone().over(layers::verdict(&args.verdict)))?;
        let runs = if args.from_run.is_empty() {
            let count = args.runs.unwrap_or(DEFAULT_RUNS);
            if count < 2 {
                return Err(Error::Usage(
                    "--runs must be at least 2: one run shows no run-to-run noise".into(),
                ));
            }
            let mut at_baseline = args.run.clone();
            at_baseline.options.mode = Some(Mode::Fixed);
            at_baseline.options.fixed_concurrency_levels = None;
            at_baseline.options.concurrency_from = Some(args.baseline.clone());
            let run = RunSettings::from_layers(&profiles, at_baseline, verdict.min_samples, read)?;
            let dir = run
                .output_dir
                .join(format!("calibrate-{}", stem(&args.baseline)));
            Runs::Measured {
                count,
                plan: AaPlan { run, dir },
            }
        } else {
            Runs::Given(args.from_run.clone())
        };
        Ok(CalibrateSettings {
            baseline: args.baseline.clone(),
            verdict,
            quiet: args.run.quiet,
            runs,
        })
    }
}

/// How `baseline refresh` measures its runs.
#[derive(Debug, Clone)]
pub struct RefreshPlan {
    profiles: Options,
    args: RunArgs,
    /// Run 1's settings, as configured.
    first: RunSettings,
    /// `--output-dir/baseline-NAME`.
    dir: PathBuf,
}

impl RefreshPlan {
    /// Run 1's settings, as configured.
    pub fn first(&self) -> RunSettings {
        self.first.clone()
    }

    /// The settings of run `k` (from 2): run 1's configuration at the
    /// `loads` run 1 measured, `(context, rate, concurrency)`, which its
    /// results file `from` holds.
    pub fn later(&self, k: u32, from: &Path, loads: &[(u64, u32, u32)]) -> Result<RunSettings> {
        let mut args = self.args.clone();
        args.options.output_dir = Some(self.dir.join(format!("run-{k}")));
        args.options.mode = Some(Mode::Fixed);
        args.options.fixed_concurrency_levels = None;
        args.options.concurrency_from = Some(from.to_path_buf());
        RunSettings::from_layers(&self.profiles, args, 0, &|_| Ok(loads.to_vec()))
    }
}

/// `cacherate baseline refresh`'s settings.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    pub name: String,
    pub baselines_dir: PathBuf,
    pub commit: bool,
    pub force: bool,
    pub quiet: bool,
    pub runs: Runs<RefreshPlan>,
}

impl RefreshSettings {
    /// `args` over the environment, the profile and the defaults; `read`
    /// gives the loads of a file run 1's `--concurrency-from` names.
    pub fn resolve(
        args: &RefreshArgs,
        config_dir: &Path,
        read: ReadLoads,
    ) -> Result<RefreshSettings> {
        let runs = if args.from_run.is_empty() {
            let count = args.runs.unwrap_or(DEFAULT_RUNS);
            if count == 0 {
                return Err(Error::Usage("--runs must be at least 1".into()));
            }
            let profiles = profile::load(&args.run.profiles, config_dir)?;
            let mut first = RunSettings::from_layers(&profiles, args.run.clone(), 0, read)?;
            let dir = first.output_dir.join(format!("baseline-{}", args.name));
            first.output_dir = dir.join("run-1");
            Runs::Measured {
                count,
                plan: RefreshPlan {
                    profiles,
                    args: args.run.clone(),
                    first,
                    dir,
                },
            }
        } else {
            Runs::Given(args.from_run.clone())
        };
        Ok(RefreshSettings {
            name: args.name.clone(),
            baselines_dir: args.baselines_dir.clone(),
            commit: args.commit,
            force: args.force,
            quiet: args.run.quiet,
            runs,
        })
    }
}
