//! `verdict.json`: everything `compare` decided, for the reports and for
//! machines — the run and the baseline it was held against, the policy,
//! every point's figures on both sides, each curve's verdicts, and the
//! overall verdict with the exit code it gives.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::policy::{Metric, Policy};
use super::verdict::{CurveVerdict, Verdict};

/// Version of the `verdict.json` layout.
pub const VERDICT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictFile {
    pub schema_version: u32,
    pub tool_version: String,
    pub created_at: String,
    pub run: RunSide,
    pub baseline: BaselineSide,
    pub policy: Policy,
    /// The metrics whose verdicts fail the gate; the others are shown.
    pub gated_metrics: Vec<Metric>,
    pub overall: Overall,
    /// One entry per context size and metric.
    pub curves: Vec<ContextCurve>,
    /// Both sides' figures, one entry per point.
    pub points: Vec<PointFigures>,
    /// Things worth knowing that do not change the verdict.
    pub warnings: Vec<String>,
}

/// The run that was judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSide {
    pub dir: String,
    pub model: String,
    pub started_at: Option<String>,
    pub seed: Option<u64>,
    pub target: Vec<String>,
    /// `run.json`'s `git` and `server`, as recorded.
    pub git: serde_json::Value,
    pub server: serde_json::Value,
}

/// The baseline it was held against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineSide {
    pub name: String,
    pub path: String,
    pub runs: usize,
    pub created_at: String,
    pub refreshed_by: String,
    pub tool_version: String,
    pub git: serde_json::Value,
    pub server: serde_json::Value,
}

/// The verdict of the whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overall {
    /// `regressed` when any gated point or curve regressed, else `error`
    /// when a point broke a health limit, else `inconclusive` when any
    /// gated verdict is, else `improved` when any is, else `pass`.
    pub verdict: Verdict,
    /// The process exit code this verdict gives (0, 1, or 4 with
    /// `--fail-on-inconclusive`).
    pub exit_code: i32,
    /// One line, e.g. "regressed: 2 of 12 verdicts (ctx512/cache100 input
    /// throughput -12.1 %)".
    pub summary: String,
    /// Gated point verdicts by kind (`pass`, `regressed`, …).
    pub counts: BTreeMap<String, usize>,
    /// `ctx512/cache100/input_throughput`-style names.
    pub regressed: Vec<String>,
    pub improved: Vec<String>,
    pub inconclusive: Vec<String>,
    pub errors: Vec<String>,
    /// Points (`ctx512/cache50`) where more samples could decide an
    /// inconclusive verdict.
    pub needs_more_samples: Vec<String>,
}

/// The verdicts of one metric over the points of one context size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextCurve {
    pub context_size: u64,
    pub gated: bool,
    pub verdict: CurveVerdict,
}

/// One side's figures at a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SideFigures {
    pub concurrency: u32,
    pub samples: usize,
    pub input_tps: f64,
    pub output_tps: f64,
    pub ttft_p50_s: f64,
    pub ttft_p95_s: f64,
    /// Shown, never gated: one sample's p99 rests on a few requests.
    pub ttft_p99_s: f64,
    pub error_rate: f64,
    pub achieved_cache_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointFigures {
    /// `ctx512/cache50`.
    pub point: String,
    pub context_size: u64,
    pub cache_hit_rate: u32,
    pub target_cache_rate: f64,
    pub baseline: SideFigures,
    pub current: SideFigures,
}

/// How verdicts name a point and a (point, metric).
pub fn point_name(context: u64, rate: u32) -> String {
    crate::store::PointId::new(context, rate).key()
}
