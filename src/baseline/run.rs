//! What a baseline and a verdict need of a finished run directory
//! ([`RunData`]), read in one place: its workload, its points, its
//! `run.json`, and the verdict it was gated with.

use std::path::{Path, PathBuf};

use super::schema::Comparable;
use crate::error::{Error, Result};
use crate::store::{PointResult, RunDir, RunInfo, Workload};

/// What a baseline needs of one run directory.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub workload: Workload,
    pub points: Vec<PointResult>,
    /// `run.json` (all empty when the run has none).
    pub info: RunInfo,
    /// The overall verdict of `compare/verdict.json`, when the run was
    /// gated.
    pub gate_verdict: Option<String>,
}

impl RunData {
    /// The context sizes the run measured.
    pub fn context_sizes(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self.points.iter().map(|p| p.context_size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    pub fn comparable(&self) -> Comparable {
        Comparable::of(&self.workload, &self.context_sizes())
    }

    /// The server's fingerprint as baselines and verdicts carry it.
    pub fn server(&self) -> serde_json::Value {
        serde_json::to_value(&self.info.server).unwrap_or_default()
    }
}

/// Reads a finished (or unfinished: [`super::build`] refuses those) run
/// directory.
pub fn load_run(dir: &Path) -> Result<RunData> {
    let run = RunDir::existing(dir)?;
    let progress = run.load_progress()?.ok_or_else(|| {
        Error::Usage(format!(
            "{} holds no run (no progress.json); give the --output-dir of a `cacherate run`",
            dir.display()
        ))
    })?;
    let results = run.load_results()?;
    let info = RunInfo::read(&run)?.unwrap_or_default();
    let gate_verdict = run
        .read_value("compare/verdict.json")?
        .and_then(|v| v["overall"]["verdict"].as_str().map(str::to_string));
    let mut points = results.points;
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    Ok(RunData {
        dir: dir.to_path_buf(),
        workload: progress.workload,
        points,
        info,
        gate_verdict,
    })
}
