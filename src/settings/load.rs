//! How a point's load is chosen: the mode, and fixed mode's load from
//! `--fixed-concurrency-levels` or from the per-point loads of the file
//! `--concurrency-from` names. Either load implies `--mode fixed`. The file
//! is read by the caller ([`ReadLoads`]): settings read no results file and
//! no baseline.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::options::{FixedLoadSpec, Mode};

/// Reads the `(context, rate, concurrency)` loads of the file
/// `--concurrency-from` names: a command passes `baseline::read_loads`,
/// or the loads of a baseline it has already read.
pub type ReadLoads<'a> = &'a dyn Fn(&Path) -> Result<Vec<(u64, u32, u32)>>;

/// For callers that read no file of loads: a `--concurrency-from` (from
/// the command line or a profile) is refused.
pub(super) fn no_file_of_loads(path: &Path) -> Result<Vec<(u64, u32, u32)>> {
    Err(Error::Usage(format!(
        "--concurrency-from {}: its loads are read by the command (`cacherate run`, \
         `commands::run::settings`), not by RunSettings::resolve; leave it out here",
        path.display()
    )))
}

/// What the options say about the load, before any file is read.
pub(super) struct LoadOptions {
    /// `--mode` as given (command line, environment or profile).
    pub mode: Option<Mode>,
    pub levels: Option<Vec<u32>>,
    pub concurrency_from: Option<PathBuf>,
}

/// The mode and fixed mode's load at `points` (`(context, rate)`).
pub(super) fn mode_and_load(
    given: LoadOptions,
    points: &[(u64, u32)],
    read: ReadLoads,
) -> Result<(Mode, Option<FixedLoadSpec>)> {
    let has_load = given.levels.is_some() || given.concurrency_from.is_some();
    let mode = given.mode.unwrap_or(if has_load {
        Mode::Fixed
    } else {
        Mode::Adaptive
    });
    let load = match (mode, given.levels, given.concurrency_from) {
        (Mode::Adaptive | Mode::Sustained, None, None) => None,
        (Mode::Adaptive | Mode::Sustained, _, _) => {
            return Err(Error::Usage(format!(
                "--fixed-concurrency-levels and --concurrency-from go with --mode fixed, which \
                 they imply; --mode {mode} chooses its own load: leave out --mode, or the load"
            )));
        }
        (Mode::Fixed, Some(_), Some(_)) => {
            return Err(Error::Usage(
                "--mode fixed takes --fixed-concurrency-levels or --concurrency-from, not both"
                    .into(),
            ));
        }
        (Mode::Fixed, None, None) => {
            return Err(Error::Usage(
                "--mode fixed needs the load: --fixed-concurrency-levels 8 16 32, or \
                 --concurrency-from an earlier run's results.json (or a baseline)"
                    .into(),
            ));
        }
        (Mode::Fixed, Some(levels), None) => Some(fixed_levels(levels)?),
        (Mode::Fixed, None, Some(path)) => Some(per_point(&path, read(&path)?, points)?),
    };
    Ok((mode, load))
}

fn fixed_levels(mut levels: Vec<u32>) -> Result<FixedLoadSpec> {
    if levels.is_empty() || levels.contains(&0) {
        return Err(Error::Usage(
            "--fixed-concurrency-levels needs one or more levels above 0, e.g. 8 16 32".into(),
        ));
    }
    levels.sort_unstable();
    levels.dedup();
    Ok(FixedLoadSpec::Levels(levels))
}

/// The loads read from `path`, refused unless every point has one.
fn per_point(
    path: &Path,
    loads: Vec<(u64, u32, u32)>,
    points: &[(u64, u32)],
) -> Result<FixedLoadSpec> {
    let missing: Vec<String> = points
        .iter()
        .filter(|(c, r)| !loads.iter().any(|(lc, lr, _)| lc == c && lr == r))
        .map(|(c, r)| format!("ctx {c} at {r}%"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "--concurrency-from {} has no load for {}; measure those points in adaptive mode \
             first, or leave them out of --context-sizes and --cache-hit-rates",
            path.display(),
            missing.join(", ")
        )));
    }
    Ok(FixedLoadSpec::PerPoint(loads))
}
