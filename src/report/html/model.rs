//! What the run reports are drawn from: a finished value assembled from a
//! run directory's files (`results.json`, `phase_metadata_{ctx}.csv`,
//! `progress.json`, `run.json`) by `cacherate report`, so the renderers
//! only read it.

pub use crate::store::PhaseRow;
use crate::store::{AtPoint, PointId, PointResult, RunInfo};

/// Everything the HTML reports of one run show.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// The finished points of `results.json`.
    pub points: Vec<PointResult>,
    /// Every committed row of the `phase_metadata_{ctx}.csv` files, the
    /// phases of a point still being measured included.
    pub phases: Vec<PhaseRow>,
    /// The thresholds every phase was held against.
    pub thresholds: Thresholds,
    /// The options that decided what was measured (`progress.json`'s
    /// workload), as `name = value` lines for the index.
    pub options: Vec<(String, String)>,
    /// Where and how the run was made (`run.json`; empty when it is
    /// missing or does not read).
    pub provenance: RunInfo,
    /// The point in flight when the files were read, if any.
    pub in_flight: Option<PointId>,
    /// The cacherate version that renders the reports.
    pub renderer_version: String,
}

/// The thresholds of the run (`--max-ttft` by `--ttft-metric`, and the
/// others a phase must hold).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Seconds.
    pub max_ttft: f64,
    /// `max`, `avg` or `p95`: which TTFT statistic the limit applies to.
    pub ttft_metric: String,
    pub min_tokens_per_req: Option<f64>,
    pub max_error_rate: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_ttft: 2.0,
            ttft_metric: "p95".into(),
            min_tokens_per_req: None,
            max_error_rate: 0.01,
        }
    }
}

impl RunReport {
    /// Context sizes with a point or a phase, ascending.
    pub fn contexts(&self) -> Vec<u64> {
        let mut contexts: Vec<u64> = self
            .points
            .iter()
            .map(|p| p.context_size)
            .chain(self.phases.iter().map(|p| p.context_size))
            .collect();
        contexts.sort_unstable();
        contexts.dedup();
        contexts
    }

    /// The finished points of a context, by cache rate.
    pub fn points_of(&self, context: u64) -> Vec<&PointResult> {
        let mut points: Vec<&PointResult> = self
            .points
            .iter()
            .filter(|p| p.context_size == context)
            .collect();
        points.sort_by_key(|p| p.cache_hit_rate);
        points
    }

    /// Every point with phases (finished or not), in sweep order.
    pub fn measured_points(&self) -> Vec<PointId> {
        let mut keys: Vec<PointId> = self
            .points
            .iter()
            .map(AtPoint::point_id)
            .chain(self.phases.iter().map(AtPoint::point_id))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The phases of one point, in the order they ran.
    pub fn phases_of(&self, id: PointId) -> Vec<&PhaseRow> {
        let mut phases: Vec<&PhaseRow> =
            self.phases.iter().filter(|p| p.point_id() == id).collect();
        phases.sort_by(|a, b| a.start_unix_s.total_cmp(&b.start_unix_s));
        phases
    }

    pub fn point(&self, id: PointId) -> Option<&PointResult> {
        crate::store::find(&self.points, id)
    }
}

/// The file names of the reports, as the seed names them.
pub mod names {
    pub const INDEX: &str = "index.html";
    pub const INPUT_COMPARISON: &str = "input_throughput_comparison.html";
    pub const OUTPUT_COMPARISON: &str = "output_throughput_comparison.html";
    pub const OUTPUT_METRICS: &str = "output_metrics_comparison.html";
    pub const HEATMAP: &str = "ttft_heatmap.html";

    pub fn performance(context: u64) -> String {
        format!("performance_vs_cache_rate_{context}.html")
    }

    pub fn ramp(context: u64, rate: u32) -> String {
        format!("ramp_ctx{context}_cache{rate}.html")
    }

    pub fn sustained_comparison(rate: u32) -> String {
        format!("sustained_cache{rate}_comparison.html")
    }
}
