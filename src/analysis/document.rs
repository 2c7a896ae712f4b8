//! `verdict.json`: everything `compare` decided, for the reports and for
//! machines — the run and the baseline it was held against, the policy,
//! every point's figures on both sides, each curve's verdicts, and the
//! overall verdict. It records the verdict, not the process's exit code:
//! that follows from the verdict and the options ([`super::exit_code`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::policy::{Metric, Policy};
use super::verdict::{CurveVerdict, Verdict};
use crate::baseline::{Baseline, BaselinePoint, RunData};
use crate::store::{AtPoint, PointId, PointResult, Sample};

/// Version of the `verdict.json` layout. 2: `overall.exit_code` left (the
/// exit code is the command's, not the verdict's); `overall.insufficient`
/// and `fail_on_inconclusive` came.
pub const VERDICT_SCHEMA_VERSION: u32 = 2;

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
    /// Whether an inconclusive gated verdict fails the gate
    /// (`--fail-on-inconclusive`).
    pub fail_on_inconclusive: bool,
    pub overall: Overall,
    /// One entry per context size and metric.
    pub curves: Vec<ContextCurve>,
    /// Both sides' figures, one entry per point.
    pub points: Vec<PointFigures>,
    /// Things worth knowing that do not change the verdict.
    pub warnings: Vec<String>,
    /// Where a gate's time went (`cacherate gate` writes it; `compare`
    /// does not run anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<GateTime>,
}

/// Where a gate's wall-clock time went, and the samples each point took.
/// The parts add up to `wall_s`: `other_s` is what the others leave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateTime {
    /// From the gate's start to its verdict.
    pub wall_s: f64,
    /// Starting the `--serve` server until it answered.
    pub server_start_s: f64,
    /// Sending each point's working set before its load.
    pub working_set_warmup_s: f64,
    /// Fixed-load warm-up phases (load not counted as samples).
    pub warmup_phases_s: f64,
    /// The samples' phases.
    pub sample_phases_s: f64,
    /// A peak search's ramp and refine phases.
    pub search_phases_s: f64,
    /// The rest: probes before the first point, cache flushes, comparing,
    /// writing reports, and the moments between phases.
    pub other_s: f64,
    pub points: Vec<SamplesTaken>,
}

/// The samples a point took and why it stopped there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplesTaken {
    /// `ctx512/cache50`.
    pub point: String,
    pub samples: usize,
    /// `planned` (the plan's samples), `extended` (inconclusive at the
    /// first look, so it got the extra samples), `stopped` (the circuit
    /// breaker or an error ended it early).
    pub stopped_because: String,
}

impl GateTime {
    /// The parts of `wall_s`; `other_s` is the remainder.
    pub fn new(
        wall_s: f64,
        server_start_s: f64,
        load: &crate::store::LoadTime,
        points: Vec<SamplesTaken>,
    ) -> GateTime {
        GateTime {
            wall_s,
            server_start_s,
            working_set_warmup_s: load.working_set_warmup_s,
            warmup_phases_s: load.warmup_phases_s,
            sample_phases_s: load.sample_phases_s,
            search_phases_s: load.search_phases_s,
            other_s: wall_s - server_start_s - load.total(),
            points,
        }
    }

    /// `52.1 s: server start 0.0 s, working-set warm-up 3.2 s, …`.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        for (what, seconds) in [
            ("server start", self.server_start_s),
            ("working-set warm-up", self.working_set_warmup_s),
            ("warm-up phases", self.warmup_phases_s),
            ("samples", self.sample_phases_s),
            ("peak search", self.search_phases_s),
            ("other", self.other_s),
        ] {
            if seconds > 0.0005 || what == "samples" {
                parts.push(format!("{what} {seconds:.1} s"));
            }
        }
        format!("{:.1} s: {}", self.wall_s, parts.join(", "))
    }

    /// `ctx512/cache0 3 (planned), ctx512/cache50 5 (extended)`.
    pub fn samples_line(&self) -> String {
        self.points
            .iter()
            .map(|p| format!("{} {} ({})", p.point, p.samples, p.stopped_because))
            .collect::<Vec<_>>()
            .join(", ")
    }
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
    /// when a point broke a health limit, else `insufficient` when a gated
    /// point's samples cannot support a verdict, else `inconclusive` when
    /// any gated verdict is, else `improved` when any is, else `pass`.
    pub verdict: Verdict,
    /// One line, e.g. "regressed: 2 of 12 verdicts (ctx512/cache100 input
    /// throughput -12.1 %)".
    pub summary: String,
    /// Gated point verdicts by kind (`pass`, `regressed`, …).
    pub counts: BTreeMap<String, usize>,
    /// `ctx512/cache100/input_throughput`-style names.
    pub regressed: Vec<String>,
    pub improved: Vec<String>,
    pub inconclusive: Vec<String>,
    /// `name: the limit it crossed`.
    pub errors: Vec<String>,
    /// `name: why the samples support no verdict`.
    pub insufficient: Vec<String>,
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

impl AtPoint for PointFigures {
    fn point_id(&self) -> PointId {
        PointId::new(self.context_size, self.cache_hit_rate)
    }
}

impl VerdictFile {
    /// The points where more samples of this run could decide an
    /// inconclusive verdict (`overall.needs_more_samples`).
    pub fn needs_more_samples(&self) -> Vec<PointId> {
        self.points
            .iter()
            .filter(|p| self.overall.needs_more_samples.contains(&p.point))
            .map(AtPoint::point_id)
            .collect()
    }
}

impl RunSide {
    pub fn of(run: &RunData) -> RunSide {
        RunSide {
            dir: run.dir.display().to_string(),
            model: run.workload.model.clone(),
            started_at: run.info.started_at.clone(),
            seed: run.info.seed,
            target: run.workload.target.clone(),
            git: serde_json::to_value(&run.info.git).unwrap_or_default(),
            server: run.server(),
        }
    }
}

impl BaselineSide {
    pub fn of(baseline: &Baseline, path: &Path) -> BaselineSide {
        let provenance = &baseline.provenance;
        BaselineSide {
            name: baseline.name.clone(),
            path: path.display().to_string(),
            runs: baseline.runs.len(),
            created_at: provenance.created_at.clone(),
            refreshed_by: provenance.refreshed_by.clone(),
            tool_version: provenance.tool_version.clone(),
            git: serde_json::to_value(&provenance.git).unwrap_or_default(),
            server: provenance.server.clone(),
        }
    }
}

impl PointFigures {
    /// Both sides' figures at a point.
    pub fn of(point: &PointResult, base: &BaselinePoint) -> PointFigures {
        PointFigures {
            point: point.point_id().key(),
            context_size: point.context_size,
            cache_hit_rate: point.cache_hit_rate,
            target_cache_rate: point.target_cache_rate,
            baseline: SideFigures::of_baseline(base),
            current: SideFigures::of_run(point),
        }
    }
}

impl SideFigures {
    fn of_run(point: &PointResult) -> SideFigures {
        SideFigures {
            concurrency: point.peak_concurrency,
            samples: point.samples.len(),
            input_tps: point.input_tps,
            output_tps: point.output_tps,
            ttft_p50_s: point.ttft.p50,
            ttft_p95_s: point.ttft.p95,
            ttft_p99_s: point.ttft.p99,
            error_rate: point.error_rate,
            achieved_cache_rate: point.achieved_cache_rate,
        }
    }

    fn of_baseline(point: &BaselinePoint) -> SideFigures {
        let samples: Vec<&Sample> = point.runs.iter().flat_map(|r| &r.samples).collect();
        let p99 = samples.iter().map(|s| s.ttft.p99).sum::<f64>() / samples.len().max(1) as f64;
        SideFigures {
            concurrency: point.peak_concurrency,
            samples: samples.len(),
            input_tps: point.input_tps,
            output_tps: point.output_tps,
            ttft_p50_s: point.ttft_p50_s,
            ttft_p95_s: point.ttft_p95_s,
            ttft_p99_s: p99,
            error_rate: point.error_rate,
            achieved_cache_rate: point.achieved_cache_rate,
        }
    }
}
