//! What a verdict is judged against: the metrics and their direction, the
//! tolerances, the confidence level and the run-to-run noise assumed when a
//! baseline cannot show its own (SPEC §5).

use serde::{Deserialize, Serialize};

crate::names::named_enum! {
    "snake_case",
    /// Which way is good for a metric.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Direction {
        /// Throughput: a smaller value is a regression.
        HigherIsBetter,
        /// Latency (TTFT): a larger value is a regression.
        LowerIsBetter,
    }
}

impl Direction {
    /// +1 when a positive log ratio (current above baseline) is worse, −1
    /// when it is better: `badness = sign × log ratio` is positive when the
    /// current run is worse, whatever the metric.
    pub fn worse_sign(self) -> f64 {
        match self {
            Direction::HigherIsBetter => -1.0,
            Direction::LowerIsBetter => 1.0,
        }
    }
}

pub use crate::cli::values::Metric;

/// A metric's direction is the analysis' knowledge; the metric itself is a
/// plain option value (`cli::values`), so the command line, profiles and
/// verdicts name it with one type.
impl Metric {
    pub fn direction(self) -> Direction {
        match self {
            Metric::InputThroughput | Metric::OutputThroughput => Direction::HigherIsBetter,
            Metric::TtftP50 | Metric::TtftP95 => Direction::LowerIsBetter,
        }
    }
}

/// How much worse a metric may get before it counts as a regression, as a
/// fraction: 0.05 means "worse by a factor of 1.05". The same factor bounds
/// an improvement, so a verdict is symmetric in log space: the threshold on
/// the log ratio is `ln(1 + tolerance)` either way (for throughput, 5 %
/// tolerance flags a drop below 1/1.05 = 95.2 % of the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    pub throughput: f64,
    pub ttft_p50: f64,
    pub ttft_p95: f64,
}

impl Default for Tolerances {
    /// 5 % throughput, 10 % TTFT p50, 15 % TTFT p95 (SPEC §5): tail latency
    /// moves more between runs than medians and throughput do.
    fn default() -> Self {
        Tolerances {
            throughput: 0.05,
            ttft_p50: 0.10,
            ttft_p95: 0.15,
        }
    }
}

impl Tolerances {
    pub fn for_metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::InputThroughput | Metric::OutputThroughput => self.throughput,
            Metric::TtftP50 => self.ttft_p50,
            Metric::TtftP95 => self.ttft_p95,
        }
    }
}

/// Limits past which a point gets the `error` verdict whatever its speed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthLimits {
    /// Largest share of failed requests in the current run's samples.
    pub max_error_rate: f64,
    /// Largest gap, in hit-rate points (0.05 = 5 points), between the cache
    /// hit rate a point asked for and the one the server reported.
    pub max_cache_hit_gap: f64,
}

impl Default for HealthLimits {
    fn default() -> Self {
        HealthLimits {
            max_error_rate: 0.01,
            max_cache_hit_gap: 0.10,
        }
    }
}

/// Baseline runs the Monte-Carlo says a baseline should have (see
/// [`Policy`]); the baseline tooling should warn below it.
pub const RECOMMENDED_BASELINE_RUNS: usize = 5;

/// Everything a verdict depends on besides the samples.
///
/// The defaults are what the Monte-Carlo in `benches/verdict_mc.rs` supports
/// (2 % run-to-run noise, 1 % sample noise, 3 points × 4 metrics a gate,
/// the gate's second look included, 10 000 gates a cell; the README has
/// the table with counts and Clopper–Pearson intervals). At 95 % confidence
/// a gate raises false alarms in 1.7–5.8 % of A/A comparisons; at 99 % in
/// 0.6–1.2 % (0.84 % with five runs and three samples). At 99 %, a 10 %
/// slowdown is caught in 96 % of gates with a 5-run baseline, but only 92 %
/// with 1 run and 91 % with 3 (whose run-noise estimate, on 2 df, costs as
/// much as it brings). Samples beyond 3 a point change little, because the
/// run-to-run noise dominates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub tolerances: Tolerances,
    /// Confidence of the one-sided tests: α = 1 − confidence, Holm-adjusted
    /// across the points of a curve.
    pub confidence: f64,
    /// Samples the gate measures per point at least; the analysis refuses
    /// fewer (and never works with fewer than 2, which give no variance).
    pub min_samples: usize,
    /// The run-to-run noise assumed at least, as a standard deviation of the
    /// log of a metric between two runs of the same configuration: 0.02 is
    /// a 2 % coefficient of variation. Samples from one run cannot show how
    /// much a restarted server on another runner differs; this floor can.
    /// A baseline of ≥ 2 runs can raise it (never lower it) for its points.
    pub run_noise_floor: f64,
    /// Degrees of freedom given to the floor in the Welch–Satterthwaite
    /// approximation. The floor is a setting, not an estimate, so it has no
    /// sampling error of its own; a finite value hedges against its being a
    /// guess. 50 makes it count as much as a noise estimate from 51 runs:
    /// t quantiles stay within ~6 % of the normal ones at the Holm level
    /// of 3 points at 99 %.
    pub run_noise_floor_df: f64,
    pub health: HealthLimits,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            tolerances: Tolerances::default(),
            confidence: 0.99,
            min_samples: 3,
            run_noise_floor: 0.02,
            run_noise_floor_df: 50.0,
            health: HealthLimits::default(),
        }
    }
}

impl Policy {
    /// α of the one-sided tests.
    pub fn alpha(&self) -> f64 {
        1.0 - self.confidence
    }

    /// Rejects settings under which no verdict means anything.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return Err(format!(
                "confidence {} must lie strictly between 0.5 and 1 (e.g. 0.99)",
                self.confidence
            ));
        }
        if !(self.run_noise_floor.is_finite() && self.run_noise_floor > 0.0) {
            return Err(format!(
                "run-noise floor {} must be positive: zero would claim that two runs never differ",
                self.run_noise_floor
            ));
        }
        if !self.run_noise_floor_df.is_finite() || self.run_noise_floor_df < 1.0 {
            return Err(format!(
                "run-noise floor degrees of freedom {} must be a finite number, at least 1",
                self.run_noise_floor_df
            ));
        }
        for (name, tolerance) in [
            ("throughput", self.tolerances.throughput),
            ("TTFT p50", self.tolerances.ttft_p50),
            ("TTFT p95", self.tolerances.ttft_p95),
        ] {
            if !(tolerance.is_finite() && tolerance >= 0.0) {
                return Err(format!(
                    "{name} tolerance {tolerance} must be a non-negative fraction (0.05 = 5 %)"
                ));
            }
        }
        Ok(())
    }
}
