//! `cacherate gate`'s settings: the verdict's, the gate's extra samples,
//! and the run's — by default each point at the baseline's load (fixed
//! mode from the baseline), the ramp with `--search-peak`, or the load the
//! command line gives.

use std::path::{Path, PathBuf};

use crate::cli::GateArgs;
use crate::error::{Error, Result};

use super::layers;
use super::load::ReadLoads;
use super::options::Mode;
use super::profile;
use super::resolve::{RunSettings, required};
use super::verdict::VerdictSettings;

/// `cacherate gate`'s settings.
#[derive(Debug, Clone)]
pub struct GateSettings {
    pub baseline: PathBuf,
    pub verdict: VerdictSettings,
    /// Samples added at an inconclusive point before deciding.
    pub max_extra_samples: u32,
    /// With at least the samples a verdict needs.
    pub run: RunSettings,
}

impl GateSettings {
    /// `args` over the environment, the profile and the defaults; `read`
    /// gives the loads of the file the run measures at (the baseline's,
    /// unless the command line names another).
    pub fn resolve(args: &GateArgs, config_dir: &Path, read: ReadLoads) -> Result<GateSettings> {
        let profiles = profile::load(&args.run.profiles, config_dir)?;
        let o = profiles
            .clone()
            .over(layers::verdict(&args.verdict))
            .over(layers::gate(args));
        let verdict = VerdictSettings::of(&o)?;
        let run = RunSettings::from_layers(&profiles, gate_load(args)?, verdict.min_samples, read)?;
        Ok(GateSettings {
            baseline: args.baseline.clone(),
            max_extra_samples: required(o.max_extra_samples, "--max-extra-samples")?,
            verdict,
            run,
        })
    }
}

/// The run's arguments with the gate's load: the ramp for
/// `--search-peak`, the load given on the command line (or in the
/// environment), else fixed mode at the baseline's loads.
fn gate_load(args: &GateArgs) -> Result<crate::cli::RunArgs> {
    let mut run = args.run.clone();
    let given = &run.options;
    let given_load = given.fixed_concurrency_levels.is_some()
        || given.concurrency_from.is_some()
        || given.mode.is_some();
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
    Ok(run)
}
