//! [`Workload`]: the options that decide what is measured, which a run
//! directory stores and a resume must match, and fixed mode's load.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::options::{Mode, PromptMode, ReinitStrategy, TokensPerReqMetric, TtftMetric};

/// The options that decide what is measured: a run directory resumes only
/// when these match. Context sizes are not among them, so a run can be
/// resumed with fewer or more of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The endpoints, or the embedded simulator and its time scale: another
    /// server is another measurement.
    pub target: Vec<String>,
    pub model: String,
    pub prompt_mode: PromptMode,
    pub tokenizer: Option<String>,
    pub working_set_size: u64,
    pub output_tokens: u32,
    pub max_ttft: f64,
    pub ttft_metric: TtftMetric,
    pub test_duration: f64,
    pub ramp_duration: f64,
    pub num_retries: u32,
    pub start_concurrency: u32,
    pub concurrency_increment: u32,
    pub max_concurrency: u32,
    pub init_concurrency: u32,
    pub cache_hit_rates: Vec<u32>,
    pub chunk_size: u64,
    pub reinit_strategy: ReinitStrategy,
    pub random_working_set_selection: bool,
    pub seed: u64,
    pub strict_time_window: bool,
    pub min_tokens_per_req: Option<f64>,
    pub tokens_per_req_metric: TokensPerReqMetric,
    pub max_error_rate: f64,
    pub mode: Mode,
    /// The load of each point in fixed mode: the levels, or per point from
    /// --concurrency-from.
    pub fixed_load: Option<FixedLoadSpec>,
    pub warmup_fraction: f64,
    pub sample_duration: f64,
    /// Sustained mode's assessment period, seconds (absent in the other
    /// modes, so their stored workloads are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_period: Option<f64>,
}

/// Where fixed mode takes its levels from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixedLoadSpec {
    /// The same levels at every point, lowest first.
    Levels(Vec<u32>),
    /// One level per point, `(context, rate, concurrency)`, read from an
    /// earlier run's results.json or a baseline.
    PerPoint(Vec<(u64, u32, u32)>),
}

impl FixedLoadSpec {
    /// The levels to measure at a point.
    pub fn levels(&self, context: u64, rate: u32) -> Option<Vec<u32>> {
        match self {
            FixedLoadSpec::Levels(levels) => Some(levels.clone()),
            FixedLoadSpec::PerPoint(points) => points
                .iter()
                .find(|(c, r, _)| *c == context && *r == rate)
                .map(|(_, _, n)| vec![*n]),
        }
    }
}

impl Workload {
    /// The options that differ from `other`, as `name: old -> new`.
    pub fn differences(&self, other: &Workload) -> Vec<String> {
        let (serde_json::Value::Object(old), serde_json::Value::Object(new)) = (
            serde_json::to_value(other).expect("workload serializes"),
            serde_json::to_value(self).expect("workload serializes"),
        ) else {
            unreachable!("a struct serializes to an object");
        };
        new.iter()
            .filter(|(key, value)| old.get(*key) != Some(value))
            .map(|(key, value)| {
                let before = old.get(key).cloned().unwrap_or(serde_json::Value::Null);
                format!("--{}: {before} -> {value}", key.replace('_', "-"))
            })
            .collect()
    }
}

/// The `(context, rate, concurrency)` of every point of an earlier run's
/// `results.json` or of a baseline: any JSON file with a `points` list
/// whose entries carry `context_size`, `cache_hit_rate` and
/// `peak_concurrency`.
pub fn concurrency_from(path: &Path) -> Result<Vec<(u64, u32, u32)>> {
    #[derive(Deserialize)]
    struct Point {
        context_size: u64,
        cache_hit_rate: u32,
        peak_concurrency: u32,
    }
    #[derive(Deserialize)]
    struct File {
        points: Vec<Point>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read --concurrency-from {}: {e}",
            path.display()
        ))
    })?;
    let file: File = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "--concurrency-from {} is not a results.json or baseline with points \
             (context_size, cache_hit_rate, peak_concurrency): {e}",
            path.display()
        ))
    })?;
    if let Some(bad) = file.points.iter().find(|p| p.peak_concurrency == 0) {
        return Err(Error::Usage(format!(
            "--concurrency-from {}: ctx {} at {}% has concurrency 0",
            path.display(),
            bad.context_size,
            bad.cache_hit_rate
        )));
    }
    Ok(file
        .points
        .into_iter()
        .map(|p| (p.context_size, p.cache_hit_rate, p.peak_concurrency))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::resolve::tests::resolve;

    #[test]
    fn workload_differences_name_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(&["--profile", "quick"], dir.path()).unwrap();
        let a = s.workload("m", 1);
        let mut b = a.clone();
        b.max_ttft = 2.0;
        assert_eq!(b.differences(&a), vec!["--max-ttft: 1.0 -> 2.0"]);
    }
}
