//! The baseline file's schema, one struct per level, versioned; reading it
//! with checks that say what is wrong and how to fix it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cli::values::PromptMode;
use crate::error::{Error, Result};
pub use crate::store::GitState;
use crate::store::{AtPoint, PointId, RunDir, Sample, Workload};

/// Version of the baseline layout; bumped when a field changes meaning.
pub const BASELINE_SCHEMA_VERSION: u32 = 1;

/// `baselines/NAME.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub schema_version: u32,
    pub name: String,
    pub provenance: Provenance,
    /// What a run must share with the baseline to be compared with it.
    pub workload: Comparable,
    /// The runs the samples come from, in order.
    pub runs: Vec<BaselineRun>,
    pub points: Vec<BaselinePoint>,
    /// What `cacherate calibrate` measured of this configuration's
    /// run-to-run noise; comparisons use it as their noise floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// A/A runs of the baseline's configuration at its loads, held against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub created_at: String,
    /// The A/A runs' directories.
    pub runs: Vec<String>,
    /// Per metric (`input_throughput`, `output_throughput`, `ttft_p50`,
    /// `ttft_p95`): the run-to-run noise, as the standard deviation of the
    /// log of a run's mean at a point (≈ CV), the largest over the points,
    /// from the A/A runs and the baseline's own. `compare` uses it as the
    /// floor of that metric's run noise when it is above `--run-noise-floor`.
    pub run_noise: std::collections::BTreeMap<String, f64>,
    /// A/A runs whose comparison with the baseline failed at the tolerances
    /// in force when calibrating, out of `runs`.
    pub false_alarms: usize,
    /// Per metric: the tolerance (a fraction) under which the noise seen
    /// would still pass ≥ 99 % of single comparisons.
    pub recommended_tolerances: std::collections::BTreeMap<String, f64>,
    /// The tolerances in force when calibrating.
    pub tolerances: std::collections::BTreeMap<String, f64>,
}

/// Where, when and by whom the baseline was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// cacherate's version that wrote the baseline.
    pub tool_version: String,
    pub created_at: String,
    /// `user@host` from the command line, or the CI run (e.g. `GitHub
    /// Actions run 1234 of owner/repo`).
    pub refreshed_by: String,
    /// The git state of the repository the baseline was refreshed in.
    pub git: Option<GitState>,
    pub model: String,
    /// The server's base URLs, or the embedded simulator.
    pub target: Vec<String>,
    /// The server's fingerprint from the first run's `run.json` (kind,
    /// version, context length, llama.cpp's /props).
    pub server: serde_json::Value,
    /// The command `--serve` started the first run's server with
    /// (secrets masked); absent when the runs measured a server cacherate
    /// did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve: Option<String>,
}

/// The workload options that decide what a figure means: a run that
/// differs in any of them is not comparable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparable {
    pub model: String,
    pub prompt_mode: PromptMode,
    pub tokenizer: Option<String>,
    pub output_tokens: u32,
    pub chunk_size: u64,
    pub working_set_size: u64,
    pub context_sizes: Vec<u64>,
    pub cache_hit_rates: Vec<u32>,
    /// These change how long a sample is and how much of it counts; the
    /// figures should not depend on them, so a difference is a warning.
    pub sample_duration: f64,
    pub warmup_fraction: f64,
}

impl Comparable {
    pub fn of(workload: &Workload, context_sizes: &[u64]) -> Comparable {
        let mut context_sizes = context_sizes.to_vec();
        context_sizes.sort_unstable();
        context_sizes.dedup();
        Comparable {
            model: workload.model.clone(),
            prompt_mode: workload.prompt_mode,
            tokenizer: workload.tokenizer.clone(),
            output_tokens: workload.output_tokens,
            chunk_size: workload.chunk_size,
            working_set_size: workload.working_set_size,
            context_sizes,
            cache_hit_rates: workload.cache_hit_rates.clone(),
            sample_duration: workload.sample_duration,
            warmup_fraction: workload.warmup_fraction,
        }
    }

    /// The fields in which `run` differs from `self` so that no comparison
    /// is valid, as `name: baseline → run`.
    pub fn differences(&self, run: &Comparable) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |name: &str, baseline: String, current: String| {
            if baseline != current {
                out.push(format!("{name}: baseline {baseline}, run {current}"));
            }
        };
        differ("model", self.model.clone(), run.model.clone());
        differ(
            "--prompt-mode",
            self.prompt_mode.to_string(),
            run.prompt_mode.to_string(),
        );
        let tokenizer =
            |t: &Option<String>| t.clone().unwrap_or_else(|| "the server's /tokenize".into());
        differ(
            "--tokenizer",
            tokenizer(&self.tokenizer),
            tokenizer(&run.tokenizer),
        );
        differ(
            "--output-tokens",
            self.output_tokens.to_string(),
            run.output_tokens.to_string(),
        );
        differ(
            "--chunk-size",
            self.chunk_size.to_string(),
            run.chunk_size.to_string(),
        );
        differ(
            "--working-set-size",
            self.working_set_size.to_string(),
            run.working_set_size.to_string(),
        );
        out
    }

    /// Differences that do not invalidate a comparison but are worth a
    /// warning.
    pub fn soft_differences(&self, run: &Comparable) -> Vec<String> {
        let mut out = Vec::new();
        if self.sample_duration != run.sample_duration {
            out.push(format!(
                "--sample-duration: baseline {} s, run {} s",
                self.sample_duration, run.sample_duration
            ));
        }
        if self.warmup_fraction != run.warmup_fraction {
            out.push(format!(
                "--warmup-fraction: baseline {}, run {}",
                self.warmup_fraction, run.warmup_fraction
            ));
        }
        out
    }
}

/// One run a baseline was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRun {
    /// The run directory as given when the baseline was made.
    pub dir: String,
    pub started_at: Option<String>,
    pub seed: Option<u64>,
    /// The server `--serve` started for the run: its pid and start (a
    /// fresh server per run has its own); absent without `--serve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_started_at: Option<String>,
}

/// One point of the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselinePoint {
    pub context_size: u64,
    pub cache_hit_rate: u32,
    /// The load every run measured the point at; `gate` measures there.
    pub peak_concurrency: u32,
    pub target_cache_rate: f64,
    /// The samples of each run, in the order of `runs`.
    pub runs: Vec<RunSamples>,
    /// Means over the runs.
    pub input_tps: f64,
    pub output_tps: f64,
    pub ttft_p50_s: f64,
    pub ttft_p95_s: f64,
    pub error_rate: f64,
    pub achieved_cache_rate: Option<f64>,
    /// Per metric (`input_tps`, `output_tps`, `ttft_p50`, `ttft_p95`): the
    /// noise the runs show.
    pub noise: std::collections::BTreeMap<String, NoiseEstimate>,
}

/// The samples one run measured at a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSamples {
    pub samples: Vec<Sample>,
    pub error_rate: f64,
    pub achieved_cache_rate: Option<f64>,
}

/// Noise of one metric at one point, in natural-log units (≈ coefficient
/// of variation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseEstimate {
    /// Standard deviation of samples around their run's mean, pooled.
    pub within_run: Option<f64>,
    /// Standard deviation of the run means; `None` with one run. It
    /// includes the within-run part divided by the samples of a run.
    pub between_runs: Option<f64>,
    pub runs: usize,
}

/// A baseline name is a file name: letters, digits, `.`, `_`, `-`, not
/// starting with a dot — nothing that escapes `baselines/`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "baseline name {name:?} must be letters, digits, '.', '_' or '-' (at most 100, \
             not starting with '.'), e.g. sim-quick; it names baselines/NAME.json"
        )))
    }
}

impl Baseline {
    /// Reads and checks a baseline file.
    pub fn read(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Usage(format!(
                "cannot read the baseline {}: {e}; make one with `cacherate baseline refresh \
                 NAME`",
                path.display()
            ))
        })?;
        Baseline::parse(&text, path)
    }

    /// Parses baseline text; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Baseline> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: Option<u32>,
        }
        let damaged = |e: String| {
            Error::Usage(format!(
                "the baseline {} is damaged or not a baseline ({e}); restore it from git or \
                 make it again with `cacherate baseline refresh`",
                path.display()
            ))
        };
        let version: Version = serde_json::from_str(text).map_err(|e| damaged(e.to_string()))?;
        match version.schema_version {
            Some(BASELINE_SCHEMA_VERSION) => {}
            Some(v) if v > BASELINE_SCHEMA_VERSION => {
                return Err(Error::Usage(format!(
                    "the baseline {} has schema version {v}, written by a newer cacherate than \
                     this one (which reads {BASELINE_SCHEMA_VERSION}); upgrade cacherate",
                    path.display()
                )));
            }
            other => {
                return Err(damaged(format!(
                    "schema_version {}",
                    other.map_or("missing".to_string(), |v| v.to_string())
                )));
            }
        }
        let baseline: Baseline = serde_json::from_str(text).map_err(|e| damaged(e.to_string()))?;
        baseline.validate().map_err(damaged)?;
        Ok(baseline)
    }

    /// The invariants a hand-edited or truncated file may break.
    fn validate(&self) -> Result<(), String> {
        if self.runs.is_empty() {
            return Err("it holds no runs".into());
        }
        if self.points.is_empty() {
            return Err("it holds no points".into());
        }
        for point in &self.points {
            let name = point.point_id();
            if point.runs.len() != self.runs.len() {
                return Err(format!(
                    "{name} has samples of {} runs, the baseline lists {}",
                    point.runs.len(),
                    self.runs.len()
                ));
            }
            if point.peak_concurrency == 0 {
                return Err(format!("{name} has concurrency 0"));
            }
            for run in &point.runs {
                if run.samples.is_empty() {
                    return Err(format!("{name} has a run without samples"));
                }
                for sample in &run.samples {
                    let values = [
                        sample.input_tps,
                        sample.output_tps,
                        sample.ttft.p50,
                        sample.ttft.p95,
                    ];
                    if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
                        return Err(format!(
                            "{name}: sample {} has a figure that is not a number >= 0",
                            sample.phase_id
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn point(&self, id: PointId) -> Option<&BaselinePoint> {
        crate::store::find(&self.points, id)
    }

    /// Refuses to gate `points` the baseline does not hold.
    pub fn require_points(&self, path: &Path, points: &[PointId]) -> Result<()> {
        let missing: Vec<String> = points
            .iter()
            .filter(|id| self.point(**id).is_none())
            .map(PointId::to_string)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "the baseline {} has no {}: gate the points it has, or refresh it",
            path.display(),
            missing.join(", ")
        )))
    }

    /// `(context, rate, concurrency)` of every point: the loads a gate or
    /// an A/A run measures at (`--concurrency-from` the baseline).
    pub fn loads(&self) -> Vec<(u64, u32, u32)> {
        self.points
            .iter()
            .map(|p| (p.context_size, p.cache_hit_rate, p.peak_concurrency))
            .collect()
    }

    /// The file's bytes: pretty JSON with a final newline, so a refresh
    /// makes a readable diff.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(anyhow::Error::from)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Writes the file at `path` whole (a temporary file, then a rename),
    /// creating its directory.
    pub fn write(&self, path: &Path) -> Result<()> {
        let file = path.file_name().ok_or_else(|| {
            Error::Usage(format!(
                "the baseline {} is not a file path; give one such as baselines/NAME.json",
                path.display()
            ))
        })?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        RunDir::open(dir)?.write_atomic(&file.to_string_lossy(), &self.to_bytes()?)
    }
}

impl AtPoint for BaselinePoint {
    fn point_id(&self) -> PointId {
        PointId::new(self.context_size, self.cache_hit_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_baselines_directory() {
        for good in ["sim-quick", "vllm_0.11.h100", "A1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["../x", "a/b", ".hidden", "", "x y", "a\\b", "é"] {
            let error = check_name(bad).unwrap_err();
            assert_eq!(error.exit_code(), crate::exit::USAGE, "{bad}");
        }
    }

    #[test]
    fn other_schemas_and_damage_are_clear_errors() {
        let path = Path::new("baselines/x.json");
        let newer = r#"{"schema_version": 7}"#;
        let message = Baseline::parse(newer, path).unwrap_err().to_string();
        assert!(message.contains("newer cacherate"), "{message}");
        for damaged in ["", "{", r#"{"points": []}"#, r#"{"schema_version": 1}"#] {
            let error = Baseline::parse(damaged, path).unwrap_err();
            assert_eq!(error.exit_code(), crate::exit::USAGE);
            assert!(
                error.to_string().contains("baseline refresh"),
                "{damaged}: {error}"
            );
        }
    }
}
