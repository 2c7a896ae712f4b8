//! The run directory's schema: phases, samples and points as they land in
//! `progress.json` and `results.json`, and how those files are read back.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::point::{AtPoint, PointId};
use super::rows::sustained_periods;
use super::workload::Workload;
use crate::error::{Error, Result};
use crate::stats::{ErrorCount, Latency, PhaseFigures, PointFigures, PointRequests, Sample};

/// Version of the files' layout; bumped when a field changes meaning.
/// 2: steady-state windows, samples that exclude the phase that chose the
/// peak, per-sample records in `results.json`, fixed-load phases.
pub const SCHEMA_VERSION: u32 = 2;

/// What kind of phase, as named in the run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "n", rename_all = "snake_case")]
pub enum PhaseKind {
    /// A level of the peak search's ramp.
    Ramp,
    /// A bisection step between the last good and the first bad level.
    Refine(u32),
    /// A sample at the peak the search chose.
    Retry(u32),
    /// Load at a fixed level before its samples, not counted.
    FixedWarmup,
    /// A sample at a fixed level.
    Fixed(u32),
    /// An assessment period of sustained mode's continuous load.
    Period(u32),
}

impl PhaseKind {
    /// `RAMP_c8`, `RAMP_REFINE_c12_1`, `RETRY_2`, `FIXED_c8_warmup`,
    /// `FIXED_c8_run1`.
    pub fn id(&self, concurrency: u32) -> String {
        match self {
            PhaseKind::Ramp => format!("RAMP_c{concurrency}"),
            PhaseKind::Refine(n) => format!("RAMP_REFINE_c{concurrency}_{n}"),
            PhaseKind::Retry(n) => format!("RETRY_{n}"),
            PhaseKind::FixedWarmup => format!("FIXED_c{concurrency}_warmup"),
            PhaseKind::Fixed(n) => format!("FIXED_c{concurrency}_run{n}"),
            PhaseKind::Period(n) => format!("PERIOD_{n}"),
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            PhaseKind::Ramp => "RAMP",
            PhaseKind::Refine(_) => "RAMP_REFINE",
            PhaseKind::Retry(_) => "RETRY",
            PhaseKind::FixedWarmup => "FIXED_WARMUP",
            PhaseKind::Fixed(_) => "FIXED",
            PhaseKind::Period(_) => "PERIOD",
        }
    }

    /// A phase whose figures are a sample of its point.
    pub fn is_sample(&self) -> bool {
        matches!(self, PhaseKind::Retry(_) | PhaseKind::Fixed(_))
    }
}

crate::names::named_enum! {
    "SCREAMING_SNAKE_CASE",
    /// What sustained mode's controller decided after a period, as the seed
    /// names it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Decision {
        /// Under the thresholds: up by the increment scaled by the headroom.
        RampUp,
        /// Over the thresholds: down by one increment.
        RampDown,
        /// Input throughput fell more than 15 % below the best period, two
        /// or more periods after it: down by one to four increments.
        PlateauRampDown,
        /// Nothing to judge (no request of the period completed).
        Stay,
        /// A step down from the start concurrency: held there.
        MinReached,
        /// A step up from --max-concurrency: held there.
        MaxReached,
    }
}

impl Decision {
    /// The seed's name (its serde name).
    pub fn name(&self) -> &'static str {
        (*self).into()
    }
}

/// The controller's decision after a sustained period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodDecision {
    pub decision: Decision,
    /// The concurrency of the next period.
    pub next_concurrency: u32,
}

/// One phase: a row of `phase_metadata_{ctx}.csv`, and what a resumed run
/// replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    pub context_size: u64,
    pub cache_hit_rate: u32,
    pub phase_index: u32,
    pub phase_id: String,
    pub kind: PhaseKind,
    pub concurrency: u32,
    pub start_unix_s: f64,
    /// Start of the steady-state window: the phase's start plus its
    /// warm-up part, which is not counted.
    pub window_start_unix_s: f64,
    /// End of the window and of the launches; requests in flight then
    /// still finish, but only what happened before this counts.
    pub window_end_unix_s: f64,
    pub end_unix_s: f64,
    pub planned_duration_s: f64,
    pub passed: bool,
    /// Why the phase failed its thresholds.
    pub reason: Option<String>,
    /// The TTFT statistic held against --max-ttft.
    pub decision_ttft_s: f64,
    /// The server's own prefix-cache hit rate over the phase (from its
    /// counters, with --metrics-url).
    #[serde(default)]
    pub server_cache_rate: Option<f64>,
    pub figures: PhaseFigures,
    /// Sustained mode: what the controller decided after this period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<PeriodDecision>,
}

impl PhaseRecord {
    /// The phase as one of its point's samples.
    pub fn sample(&self) -> Sample {
        let f = &self.figures;
        Sample {
            phase_id: self.phase_id.clone(),
            concurrency: self.concurrency,
            window_start_unix_s: self.window_start_unix_s,
            window_end_unix_s: self.window_end_unix_s,
            launched: f.launched,
            completed: f.completed,
            failed: f.failed,
            error_rate: f.error_rate,
            input_tps: f.input_tps,
            output_tps: f.output_tps,
            ttft: f.ttft,
            ttft_histogram: f.ttft_histogram.clone(),
            ttlt: f.ttlt,
            itl: f.itl,
            achieved_cache_rate: f.achieved_cache_rate,
            passed: self.passed,
            counted: f.counted,
            counted_prompt_tokens: f.counted_prompt_tokens,
            cached_tokens: f.cached_tokens,
            req_output_tps_avg: f.req_output_tps_avg,
            req_output_tps_p5: f.req_output_tps_p5,
            req_output_tps_p10: f.req_output_tps_p10,
            server_cache_rate: self.server_cache_rate,
            prompt_token_drift: f.prompt_token_drift,
        }
    }
}

crate::names::named_enum! {
    "snake_case",
    /// How a point's load was chosen.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PlanKind {
        /// The seed's ramp found the peak; the samples are phases at it.
        PeakSearch,
        /// Levels given by --fixed-concurrency-levels, lowest first.
        FixedLevels,
        /// The level an earlier run or a baseline found (--concurrency-from).
        FixedFrom,
        /// Sustained mode: one continuous load whose controller settled; the
        /// samples are the passing periods at the level it settled on.
        Sustained,
    }
}

impl PlanKind {
    /// The kind of sample phase `n` added to a finished point of this plan
    /// (the gate's extra samples at the point's load).
    pub fn extra_sample(self, n: u32) -> PhaseKind {
        match self {
            PlanKind::PeakSearch => PhaseKind::Retry(n),
            PlanKind::FixedLevels | PlanKind::FixedFrom | PlanKind::Sustained => {
                PhaseKind::Fixed(n)
            }
        }
    }
}

crate::names::named_enum! {
    "snake_case",
    /// Whether a point's figures are a measurement.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum PointStatus {
        #[default]
        Ok,
        /// The circuit breaker stopped the point, or its samples failed more
        /// often than --max-error-rate allows: its figures are what was
        /// measured, not a throughput, and running the same command again
        /// measures the point again.
        Error,
    }
}

/// One measured point, as `summary.csv` and the comparison read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    pub context_size: u64,
    /// The cache hit rate asked for, percent.
    pub cache_hit_rate: u32,
    #[serde(default)]
    pub status: PointStatus,
    /// Why the status is `error`.
    #[serde(default)]
    pub status_message: Option<String>,
    pub plan: PlanKind,
    /// Tokens of every prompt (the context rounded up to the chunk).
    pub prompt_tokens_per_request: u64,
    pub target_cached_tokens: u64,
    /// The load the point reports: the peak the search found, the best
    /// passing fixed level, or the level given.
    pub peak_concurrency: u32,
    /// False when no level held the thresholds (the best compromise, or
    /// the given level measured whatever its TTFT).
    pub peak_passed: bool,
    /// The ramp phase that chose the peak. It is not a sample: its own
    /// noise chose it.
    pub selection_phase: Option<String>,
    /// The point's samples: equal phases at `peak_concurrency`. Empty
    /// with --num-retries 0, and then the figures below come from the
    /// selection phase and the point cannot be compared.
    pub samples: Vec<Sample>,
    /// Samples of the other fixed levels measured.
    #[serde(default)]
    pub other_level_samples: Vec<Sample>,
    /// Means over the samples.
    pub input_tps: f64,
    pub output_tps: f64,
    /// From the merged TTFT histogram of the samples.
    pub ttft: Latency,
    /// Means over the samples.
    pub ttlt: Latency,
    pub itl: Latency,
    pub req_output_tps_avg: f64,
    pub req_output_tps_p5: f64,
    pub req_output_tps_p10: f64,
    /// Requests of the samples, and of those the failed share.
    pub requests: u64,
    pub error_rate: f64,
    /// Requests of every phase of the point, and the failed ones.
    pub total_requests: u64,
    pub failed_requests: u64,
    pub errors: BTreeMap<String, u64>,
    /// The cached share every request aimed at: the block-aligned prefix
    /// over the prompt (the effective target; see `cache_hit_rate` for the
    /// one asked for).
    pub target_cache_rate: f64,
    /// Σ cached / Σ prompt tokens over the samples, when reported.
    pub achieved_cache_rate: Option<f64>,
    /// Percentage points the achieved rate may miss the target by.
    pub max_cache_rate_gap: f64,
    /// The achieved rate missed the target by more than that: the working
    /// set does not stay in the server's cache (or prompts are re-tokenised).
    pub cache_rate_missed: bool,
    /// The server's own hit rate over the samples (with --metrics-url).
    pub server_cache_rate: Option<f64>,
    /// Mean server prompt-token count minus the target, over the samples.
    pub prompt_token_drift: Option<f64>,
    /// Seconds from the point's first phase start to its last phase end.
    pub duration_s: f64,
    pub ttft_histogram: String,
    /// Phases the point ran (warm-ups of the working set not included).
    #[serde(default)]
    pub phases: u32,
}

impl AtPoint for PointResult {
    fn point_id(&self) -> PointId {
        PointId::new(self.context_size, self.cache_hit_rate)
    }
}

impl AtPoint for PhaseRecord {
    fn point_id(&self) -> PointId {
        PointId::new(self.context_size, self.cache_hit_rate)
    }
}

impl AtPoint for CurrentPoint {
    fn point_id(&self) -> PointId {
        PointId::new(self.context_size, self.cache_hit_rate)
    }
}

impl PointResult {
    /// Keeps `figures` (computed by [`PointFigures::of`]) as the point's.
    pub fn set_figures(&mut self, figures: PointFigures) {
        let PointFigures {
            input_tps,
            output_tps,
            ttft,
            ttft_histogram,
            ttlt,
            itl,
            req_output_tps_avg,
            req_output_tps_p5,
            req_output_tps_p10,
            requests,
            error_rate,
            achieved_cache_rate,
            server_cache_rate,
            prompt_token_drift,
        } = figures;
        self.input_tps = input_tps;
        self.output_tps = output_tps;
        self.ttft = ttft;
        self.ttft_histogram = ttft_histogram;
        self.ttlt = ttlt;
        self.itl = itl;
        self.req_output_tps_avg = req_output_tps_avg;
        self.req_output_tps_p5 = req_output_tps_p5;
        self.req_output_tps_p10 = req_output_tps_p10;
        self.requests = requests;
        self.error_rate = error_rate;
        self.achieved_cache_rate = achieved_cache_rate;
        self.server_cache_rate = server_cache_rate;
        self.prompt_token_drift = prompt_token_drift;
    }

    /// Every request of the point's phases, as counted so far.
    pub fn requests(&self) -> PointRequests {
        PointRequests {
            total: self.total_requests,
            failed: self.failed_requests,
            errors: self.errors.clone(),
        }
    }

    /// The samples' requests and how many of them failed (`error_rate` is
    /// that count over `requests`, so rounding recovers it exactly).
    pub fn sample_errors(&self) -> ErrorCount {
        let failed = (self.error_rate * self.requests as f64).round() as u64;
        ErrorCount::new(failed.min(self.requests), self.requests)
    }

    /// Keeps `requests` as the point's count.
    pub fn set_requests(&mut self, requests: PointRequests) {
        self.total_requests = requests.total;
        self.failed_requests = requests.failed;
        self.errors = requests.errors;
    }

    /// Whether the point has independent samples a comparison can use.
    pub fn has_samples(&self) -> bool {
        !self.samples.is_empty()
    }

    /// The effective target rate differs from the one asked for: the
    /// chunk size cannot express it.
    pub fn target_differs(&self) -> bool {
        (self.target_cache_rate * 100.0 - f64::from(self.cache_hit_rate)).abs() >= 0.05
    }
}

/// Resume state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub schema_version: u32,
    pub tool_version: String,
    pub workload: Workload,
    /// 0 for a fresh run, +1 at every resume: mixed with the seed into
    /// every suffix head, so a resume never repeats a suffix.
    pub attempt: u64,
    pub next_request_id: u64,
    /// `(context, rate)` of the measured points.
    pub completed: Vec<(u64, u32)>,
    /// The phases done of the point in flight.
    pub current: Option<CurrentPoint>,
    /// Points left unfinished by an earlier attempt that measured other
    /// points first (a reordered or shortened context list); they resume
    /// from their phases when their turn comes.
    #[serde(default)]
    pub parked: Vec<CurrentPoint>,
    /// Committed byte length of each appended CSV.
    pub files: BTreeMap<String, u64>,
}

impl Progress {
    /// Records `id` as measured (once).
    pub fn mark_completed(&mut self, id: PointId) {
        let pair = (id.context_size, id.cache_hit_rate);
        if !self.completed.contains(&pair) {
            self.completed.push(pair);
        }
    }

    /// The name of the period log of `period`'s point: the one its first
    /// period started, so a resumed point appends to the same file.
    pub fn period_log(&self, period: &PhaseRecord) -> String {
        let prefix = format!(
            "sustained_periods_ctx{}_cache{}_",
            period.context_size, period.cache_hit_rate
        );
        self.files
            .keys()
            .find(|name| name.starts_with(&prefix))
            .cloned()
            .unwrap_or_else(|| {
                sustained_periods(
                    period.context_size,
                    period.cache_hit_rate,
                    period.start_unix_s,
                )
            })
    }

    /// Parses `progress.json`; `path` is for messages. Its schema version
    /// is read first, so a file of another version says so rather than
    /// failing on a field it lacks.
    pub fn parse(text: &str, path: &Path) -> Result<Progress> {
        parse_versioned(text, path, |other| {
            Error::Usage(format!(
                "{} has schema version {}, this cacherate writes {SCHEMA_VERSION}: it cannot \
                 resume that run. Use --force-restart to move it aside and start over, or \
                 the cacherate version that wrote it",
                path.display(),
                other.map_or("(none)".to_string(), |v| v.to_string())
            ))
        })
    }
}

/// Parses a run file whose schema version is read first, so a file of
/// another version is `other_version`'s error rather than a failure on a
/// field it lacks; `path` is for messages.
fn parse_versioned<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    other_version: impl FnOnce(Option<u32>) -> Error,
) -> Result<T> {
    #[derive(Deserialize)]
    struct Version {
        schema_version: Option<u32>,
    }
    let damaged = |e: serde_json::Error| {
        Error::Usage(format!(
            "{} is damaged ({e}); run with --force-restart to move this run aside and \
             start over, or choose another --output-dir",
            path.display()
        ))
    };
    let version: Version = serde_json::from_str(text).map_err(damaged)?;
    match version.schema_version {
        Some(SCHEMA_VERSION) => serde_json::from_str(text).map_err(damaged),
        other => Err(other_version(other)),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrentPoint {
    pub context_size: u64,
    pub cache_hit_rate: u32,
    pub start_concurrency: u32,
    pub phases: Vec<PhaseRecord>,
}

/// `results.json`: the measured points.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub points: Vec<PointResult>,
}

impl Results {
    /// The measured point at `id`.
    pub fn point(&self, id: PointId) -> Option<&PointResult> {
        super::point::find(&self.points, id)
    }

    /// Reads `results.json` text, refusing other schema versions with a
    /// message that says what to do.
    pub fn parse(text: &str, path: &Path) -> Result<Results> {
        parse_versioned(text, path, |version| match version {
            Some(newer) if newer > SCHEMA_VERSION => Error::Usage(format!(
                "{} has schema version {newer}, written by a newer cacherate than this one \
                 (which reads {SCHEMA_VERSION}); upgrade cacherate to read it",
                path.display()
            )),
            older => Error::Usage(format!(
                "{} has schema version {}, written by an earlier cacherate whose samples \
                 included the phase that chose the peak and whose figures were not taken \
                 over a steady-state window; its numbers cannot be compared with this \
                 version's. Re-run with this version (--force-restart moves the old run \
                 aside)",
                path.display(),
                older.map_or("(none)".to_string(), |v| v.to_string())
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_of_another_schema_are_refused_with_what_to_do() {
        let path = Path::new("out/results.json");
        let old = r#"{"schema_version": 1, "points": [{"context_size": 512}]}"#;
        let error = Results::parse(old, path).unwrap_err();
        assert_eq!(error.exit_code(), crate::exit::USAGE);
        let message = error.to_string();
        assert!(
            message.contains("schema version 1") && message.contains("Re-run with this version"),
            "{message}"
        );
        let newer = r#"{"schema_version": 99, "points": []}"#;
        let message = Results::parse(newer, path).unwrap_err().to_string();
        assert!(message.contains("newer cacherate"), "{message}");
        let current = format!(r#"{{"schema_version": {SCHEMA_VERSION}, "points": []}}"#);
        assert!(Results::parse(&current, path).unwrap().points.is_empty());
        let cut = &current[..10];
        assert!(
            Results::parse(cut, path)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
    }

    #[test]
    fn progress_of_another_version_or_cut_short_says_what_to_do() {
        let path = Path::new("out/progress.json");
        for (text, expected) in [
            (
                r#"{"schema_version": 99, "new_field": 1}"#,
                "schema version 99",
            ),
            (r#"{"schema_version": 1}"#, "schema version 1"),
            (r#"{"attempt": 3}"#, "schema version (none)"),
            (r#"{"schema_version": 2, "attempt": "#, "damaged"),
            ("", "damaged"),
            ("\u{0}\u{1}garbage", "damaged"),
            (r#"{"schema_version": 2, "attempt": 1}"#, "damaged"),
        ] {
            let error = Progress::parse(text, path).unwrap_err();
            assert_eq!(error.exit_code(), crate::exit::USAGE, "{text}");
            let message = error.to_string();
            assert!(
                message.contains(expected)
                    && message.contains("out/progress.json")
                    && message.contains("--force-restart"),
                "{text}: {message}"
            );
        }
    }
}
