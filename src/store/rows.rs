//! The flat CSV rows of the run directory: `phase_metadata_{ctx}.csv`,
//! the sustained period logs and `summary.csv`.

use serde::{Deserialize, Serialize};

use super::point::{AtPoint, PointId};
use super::schema::{PhaseKind, PhaseRecord, PlanKind, PointResult, PointStatus};

/// A flat `phase_metadata_{ctx}.csv` row, as it is written and read back
/// (by the reports). A column an older file lacks reads as its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseRow {
    pub context_size: u64,
    pub cache_hit_rate: u32,
    pub phase_index: u32,
    pub phase_id: String,
    /// `RAMP`, `RAMP_REFINE`, `RETRY`, `FIXED_WARMUP`, `FIXED` or
    /// `PERIOD`.
    pub phase_type: String,
    pub concurrency: u32,
    pub start_unix_s: f64,
    pub window_start_unix_s: f64,
    pub window_end_unix_s: f64,
    pub end_unix_s: f64,
    pub planned_duration_s: f64,
    pub launched: u64,
    pub window_requests: u64,
    pub completed: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub input_tps: f64,
    pub output_tps: f64,
    pub ttft_avg_s: f64,
    pub ttft_p50_s: f64,
    pub ttft_p95_s: f64,
    pub ttft_p99_s: f64,
    pub ttft_max_s: f64,
    pub ttlt_avg_s: f64,
    pub ttlt_p95_s: f64,
    pub itl_avg_s: f64,
    pub itl_p50_s: f64,
    pub itl_p95_s: f64,
    pub itl_p99_s: f64,
    pub req_output_tps_avg: f64,
    pub req_output_tps_p5: f64,
    pub req_output_tps_p10: f64,
    pub achieved_cache_rate: Option<f64>,
    pub server_cache_rate: Option<f64>,
    pub decision_ttft_s: f64,
    pub passed: bool,
    pub reason: Option<String>,
    /// Sustained mode: the controller's decision after the period, and
    /// the next period's concurrency.
    pub decision: Option<String>,
    pub next_concurrency: Option<u32>,
}

impl From<&PhaseRecord> for PhaseRow {
    fn from(p: &PhaseRecord) -> Self {
        let f = &p.figures;
        PhaseRow {
            context_size: p.context_size,
            cache_hit_rate: p.cache_hit_rate,
            phase_index: p.phase_index,
            phase_id: p.phase_id.clone(),
            phase_type: p.kind.label().to_string(),
            concurrency: p.concurrency,
            start_unix_s: p.start_unix_s,
            window_start_unix_s: p.window_start_unix_s,
            window_end_unix_s: p.window_end_unix_s,
            end_unix_s: p.end_unix_s,
            planned_duration_s: p.planned_duration_s,
            launched: f.launched,
            window_requests: f.counted,
            completed: f.completed,
            failed: f.failed,
            error_rate: f.error_rate,
            input_tps: f.input_tps,
            output_tps: f.output_tps,
            ttft_avg_s: f.ttft.avg,
            ttft_p50_s: f.ttft.p50,
            ttft_p95_s: f.ttft.p95,
            ttft_p99_s: f.ttft.p99,
            ttft_max_s: f.ttft.max,
            ttlt_avg_s: f.ttlt.avg,
            ttlt_p95_s: f.ttlt.p95,
            itl_avg_s: f.itl.avg,
            itl_p50_s: f.itl.p50,
            itl_p95_s: f.itl.p95,
            itl_p99_s: f.itl.p99,
            req_output_tps_avg: f.req_output_tps_avg,
            req_output_tps_p5: f.req_output_tps_p5,
            req_output_tps_p10: f.req_output_tps_p10,
            achieved_cache_rate: f.achieved_cache_rate,
            server_cache_rate: p.server_cache_rate,
            decision_ttft_s: p.decision_ttft_s,
            passed: p.passed,
            reason: p.reason.clone(),
            decision: p.period.map(|d| d.decision.name().to_string()),
            next_concurrency: p.period.map(|d| d.next_concurrency),
        }
    }
}

impl AtPoint for PhaseRow {
    fn point_id(&self) -> PointId {
        PointId::new(self.context_size, self.cache_hit_rate)
    }
}

impl PhaseRow {
    /// A phase of the peak search's ramp (not a sample, not a fixed level).
    pub fn is_ramp(&self) -> bool {
        self.phase_type == PhaseKind::Ramp.label()
            || self.phase_type == PhaseKind::Refine(0).label()
    }

    /// A phase whose figures are a sample of its point.
    pub fn is_sample(&self) -> bool {
        self.phase_type == PhaseKind::Retry(0).label()
            || self.phase_type == PhaseKind::Fixed(0).label()
    }
}

/// A row of `sustained_periods_ctx{ctx}_cache{rate}_{time}.csv`: the
/// seed's period log, one row per assessment period.
#[derive(Debug, Serialize)]
pub(super) struct PeriodRow<'a> {
    period: u32,
    start_unix_s: f64,
    window_start_unix_s: f64,
    window_end_unix_s: f64,
    end_unix_s: f64,
    duration_s: f64,
    concurrency: u32,
    launched: u64,
    completed: u64,
    failed: u64,
    window_requests: u64,
    input_tokens: u64,
    output_tokens: u64,
    input_tps: f64,
    output_tps: f64,
    ttft_avg_s: f64,
    ttft_p50_s: f64,
    ttft_p95_s: f64,
    ttft_p99_s: f64,
    ttlt_avg_s: f64,
    ttlt_p50_s: f64,
    ttlt_p95_s: f64,
    ttlt_p99_s: f64,
    itl_avg_s: f64,
    itl_p50_s: f64,
    itl_p95_s: f64,
    itl_p99_s: f64,
    req_output_tps_avg: f64,
    achieved_cache_rate: Option<f64>,
    measured_ttft_s: f64,
    passed: bool,
    reason: Option<&'a str>,
    decision: &'static str,
    next_concurrency: u32,
}

impl<'a> PeriodRow<'a> {
    pub(super) fn of(p: &'a PhaseRecord) -> Option<Self> {
        let PhaseKind::Period(period) = p.kind else {
            return None;
        };
        let decided = p.period?;
        let f = &p.figures;
        Some(PeriodRow {
            period,
            start_unix_s: p.start_unix_s,
            window_start_unix_s: p.window_start_unix_s,
            window_end_unix_s: p.window_end_unix_s,
            end_unix_s: p.end_unix_s,
            duration_s: f.duration_s,
            concurrency: p.concurrency,
            launched: f.launched,
            completed: f.completed,
            failed: f.failed,
            window_requests: f.counted,
            input_tokens: f.prompt_tokens,
            output_tokens: f.completion_tokens,
            input_tps: f.input_tps,
            output_tps: f.output_tps,
            ttft_avg_s: f.ttft.avg,
            ttft_p50_s: f.ttft.p50,
            ttft_p95_s: f.ttft.p95,
            ttft_p99_s: f.ttft.p99,
            ttlt_avg_s: f.ttlt.avg,
            ttlt_p50_s: f.ttlt.p50,
            ttlt_p95_s: f.ttlt.p95,
            ttlt_p99_s: f.ttlt.p99,
            itl_avg_s: f.itl.avg,
            itl_p50_s: f.itl.p50,
            itl_p95_s: f.itl.p95,
            itl_p99_s: f.itl.p99,
            req_output_tps_avg: f.req_output_tps_avg,
            achieved_cache_rate: f.achieved_cache_rate,
            measured_ttft_s: p.decision_ttft_s,
            passed: p.passed,
            reason: p.reason.as_deref(),
            decision: decided.decision.name(),
            next_concurrency: decided.next_concurrency,
        })
    }
}

/// The name of a sustained point's period log: the seed's, stamped with
/// the start of its first period so a resumed point rewrites the same file.
pub fn sustained_periods(context: u64, rate: u32, first_start_unix_s: f64) -> String {
    let at = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs_f64(first_start_unix_s.max(0.0).floor());
    let stamp: String = humantime::format_rfc3339_seconds(at)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("sustained_periods_ctx{context}_cache{rate}_{stamp}.csv")
}

/// A flat `summary.csv` row.
#[derive(Debug, Serialize)]
pub(super) struct SummaryRow {
    context_size: u64,
    cache_hit_rate: u32,
    plan: PlanKind,
    target_cache_rate: f64,
    achieved_cache_rate: Option<f64>,
    cache_rate_missed: bool,
    server_cache_rate: Option<f64>,
    prompt_token_drift: Option<f64>,
    peak_concurrency: u32,
    peak_passed: bool,
    status: PointStatus,
    status_message: Option<String>,
    selection_phase: Option<String>,
    samples: usize,
    input_tps: f64,
    output_tps: f64,
    ttft_avg_s: f64,
    ttft_p50_s: f64,
    ttft_p95_s: f64,
    ttft_p99_s: f64,
    ttlt_avg_s: f64,
    ttlt_p50_s: f64,
    ttlt_p95_s: f64,
    ttlt_p99_s: f64,
    itl_avg_s: f64,
    itl_p50_s: f64,
    itl_p95_s: f64,
    itl_p99_s: f64,
    req_output_tps_avg: f64,
    req_output_tps_p5: f64,
    req_output_tps_p10: f64,
    requests: u64,
    error_rate: f64,
    total_requests: u64,
    failed_requests: u64,
    duration_s: f64,
    /// Each sample's phase and figures, `;`-separated in sample order.
    sample_phases: String,
    input_tps_samples: String,
    output_tps_samples: String,
    ttft_p50_samples: String,
    ttft_p95_samples: String,
}

fn join(values: impl Iterator<Item = f64>, decimals: usize) -> String {
    values
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(";")
}

impl From<&PointResult> for SummaryRow {
    fn from(p: &PointResult) -> Self {
        SummaryRow {
            context_size: p.context_size,
            cache_hit_rate: p.cache_hit_rate,
            plan: p.plan,
            target_cache_rate: p.target_cache_rate,
            achieved_cache_rate: p.achieved_cache_rate,
            cache_rate_missed: p.cache_rate_missed,
            server_cache_rate: p.server_cache_rate,
            prompt_token_drift: p.prompt_token_drift,
            peak_concurrency: p.peak_concurrency,
            peak_passed: p.peak_passed,
            status: p.status,
            status_message: p.status_message.clone(),
            selection_phase: p.selection_phase.clone(),
            samples: p.samples.len(),
            input_tps: p.input_tps,
            output_tps: p.output_tps,
            ttft_avg_s: p.ttft.avg,
            ttft_p50_s: p.ttft.p50,
            ttft_p95_s: p.ttft.p95,
            ttft_p99_s: p.ttft.p99,
            ttlt_avg_s: p.ttlt.avg,
            ttlt_p50_s: p.ttlt.p50,
            ttlt_p95_s: p.ttlt.p95,
            ttlt_p99_s: p.ttlt.p99,
            itl_avg_s: p.itl.avg,
            itl_p50_s: p.itl.p50,
            itl_p95_s: p.itl.p95,
            itl_p99_s: p.itl.p99,
            req_output_tps_avg: p.req_output_tps_avg,
            req_output_tps_p5: p.req_output_tps_p5,
            req_output_tps_p10: p.req_output_tps_p10,
            requests: p.requests,
            error_rate: p.error_rate,
            total_requests: p.total_requests,
            failed_requests: p.failed_requests,
            duration_s: p.duration_s,
            sample_phases: p
                .samples
                .iter()
                .map(|s| s.phase_id.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            input_tps_samples: join(p.samples.iter().map(|s| s.input_tps), 3),
            output_tps_samples: join(p.samples.iter().map(|s| s.output_tps), 3),
            ttft_p50_samples: join(p.samples.iter().map(|s| s.ttft.p50), 6),
            ttft_p95_samples: join(p.samples.iter().map(|s| s.ttft.p95), 6),
        }
    }
}
