//! The run directory (SPEC §4): every file a later look needs, written as
//! the run goes. JSON and summary files are replaced by atomic rename; the
//! per-request and per-phase CSVs are appended after each phase and their
//! committed lengths recorded in `progress.json`, so a killed run loses at
//! most the phase in flight and a resumed run cuts off its partial rows.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::RequestRecord;
use crate::settings::Workload;
use crate::stats::{Latency, PhaseFigures, encode_histogram, merge_histograms};

/// Version of the files' layout; bumped when a field changes meaning.
/// 2: steady-state windows, samples that exclude the phase that chose the
/// peak, per-sample records in `results.json`, fixed-load phases.
pub const SCHEMA_VERSION: u32 = 2;

pub const PROGRESS: &str = "progress.json";
pub const RESULTS: &str = "results.json";
pub const RUN: &str = "run.json";

/// A file of the run directory that cannot be read or written: the path,
/// the system's reason, and what to do about it. What was saved before
/// stays saved, so the same command resumes once the cause is gone.
fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    use std::io::ErrorKind;
    let what_to_do = match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            "free space there (or raise the file size limit) or choose another --output-dir"
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            "make the directory writable or choose another --output-dir"
        }
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => {
            "a file stands where a directory is needed: choose another --output-dir"
        }
        _ => "check the disk, or choose another --output-dir",
    };
    Error::Usage(format!(
        "cannot {action} {}: {e}; {what_to_do}. What was saved before is kept: run the same \
         command again to resume",
        path.display()
    ))
}

/// The git state of a repository: in `run.json` (the repository the run
/// was started in) and in a baseline (the one it was refreshed in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitState {
    pub commit: String,
    pub branch: Option<String>,
    /// Uncommitted changes to tracked files; `None` when git could not
    /// tell (never reported as clean then).
    pub dirty: Option<bool>,
}

/// The git state of the repository holding `dir`, if it is in one.
pub fn git_state(dir: &Path) -> Option<GitState> {
    let repo = git2::Repository::discover(dir).ok()?;
    let head = repo.head().ok()?;
    let commit = head.peel_to_commit().ok()?.id().to_string();
    let branch = head
        .is_branch()
        .then(|| head.shorthand().ok().map(str::to_string))
        .flatten();
    let mut options = git2::StatusOptions::new();
    options.include_untracked(false).include_ignored(false);
    let dirty = match repo.statuses(Some(&mut options)) {
        Ok(statuses) => Some(!statuses.is_empty()),
        Err(e) => {
            tracing::warn!("cannot read the git status of {commit}: {e}");
            None
        }
    };
    Some(GitState {
        commit,
        branch,
        dirty,
    })
}

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

/// What sustained mode's controller decided after a period, as the seed
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::RampUp => "RAMP_UP",
            Decision::RampDown => "RAMP_DOWN",
            Decision::PlateauRampDown => "PLATEAU_RAMP_DOWN",
            Decision::Stay => "STAY",
            Decision::MinReached => "MIN_REACHED",
            Decision::MaxReached => "MAX_REACHED",
        }
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

/// One sample of a point: a phase of equal length at the point's load,
/// measured over its steady-state window. The statistics of a comparison
/// rest on these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub phase_id: String,
    pub concurrency: u32,
    pub window_start_unix_s: f64,
    pub window_end_unix_s: f64,
    /// Requests launched in the phase, and of those the completed and the
    /// failed ones.
    pub launched: u64,
    pub completed: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub input_tps: f64,
    pub output_tps: f64,
    /// Over the requests launched inside the window.
    pub ttft: Latency,
    /// The TTFT histogram (µs, HDR V2, base64) the quantiles come from.
    pub ttft_histogram: String,
    pub ttlt: Latency,
    /// Over the individual gaps between streamed chunks, per token.
    pub itl: Latency,
    pub achieved_cache_rate: Option<f64>,
    /// The phase held every threshold.
    pub passed: bool,
    /// Requests the latency figures are over, their prompt tokens and the
    /// cached share of those (for the point's achieved rate).
    #[serde(default)]
    pub counted: u64,
    #[serde(default)]
    pub counted_prompt_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub req_output_tps_avg: f64,
    #[serde(default)]
    pub req_output_tps_p5: f64,
    #[serde(default)]
    pub req_output_tps_p10: f64,
    #[serde(default)]
    pub server_cache_rate: Option<f64>,
    #[serde(default)]
    pub prompt_token_drift: Option<f64>,
}

impl Sample {
    pub fn from_phase(phase: &PhaseRecord) -> Sample {
        let f = &phase.figures;
        Sample {
            phase_id: phase.phase_id.clone(),
            concurrency: phase.concurrency,
            window_start_unix_s: phase.window_start_unix_s,
            window_end_unix_s: phase.window_end_unix_s,
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
            passed: phase.passed,
            counted: f.counted,
            counted_prompt_tokens: f.counted_prompt_tokens,
            cached_tokens: f.cached_tokens,
            req_output_tps_avg: f.req_output_tps_avg,
            req_output_tps_p5: f.req_output_tps_p5,
            req_output_tps_p10: f.req_output_tps_p10,
            server_cache_rate: phase.server_cache_rate,
            prompt_token_drift: f.prompt_token_drift,
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn mean_latency(latencies: &[Latency]) -> Latency {
    Latency {
        avg: mean(latencies.iter().map(|l| l.avg)),
        p50: mean(latencies.iter().map(|l| l.p50)),
        p95: mean(latencies.iter().map(|l| l.p95)),
        p99: mean(latencies.iter().map(|l| l.p99)),
        max: latencies.iter().map(|l| l.max).fold(0.0, f64::max),
    }
}

/// How a point's load was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// Whether a point's figures are a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointStatus {
    #[default]
    Ok,
    /// The circuit breaker stopped the point, or its samples failed more
    /// often than --max-error-rate allows: its figures are what was
    /// measured, not a throughput, and running the same command again
    /// measures the point again.
    Error,
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

impl PointResult {
    /// Sets the point's figures from `source` — its samples, or the phase
    /// that chose the peak when it has none: means over them, TTFT from
    /// their merged histogram, the achieved cache rate as Σ cached ÷ Σ
    /// prompt. Fails when a stored histogram does not decode.
    pub fn set_figures(&mut self, source: &[Sample]) -> Result<(), String> {
        let merged = merge_histograms(source.iter().map(|s| s.ttft_histogram.as_str()))?;
        let requests: u64 = source.iter().map(|s| s.launched).sum();
        let failed: u64 = source.iter().map(|s| s.failed).sum();
        let reported = source.iter().any(|s| s.achieved_cache_rate.is_some());
        let prompt: u64 = source.iter().map(|s| s.counted_prompt_tokens).sum();
        let cached: u64 = source.iter().map(|s| s.cached_tokens).sum();
        let some_mean = |values: Vec<f64>| (!values.is_empty()).then(|| mean(values.into_iter()));
        self.input_tps = mean(source.iter().map(|s| s.input_tps));
        self.output_tps = mean(source.iter().map(|s| s.output_tps));
        self.ttft = Latency::from_histogram(&merged);
        self.ttft_histogram = encode_histogram(&merged);
        self.ttlt = mean_latency(&source.iter().map(|s| s.ttlt).collect::<Vec<_>>());
        self.itl = mean_latency(&source.iter().map(|s| s.itl).collect::<Vec<_>>());
        self.req_output_tps_avg = mean(source.iter().map(|s| s.req_output_tps_avg));
        self.req_output_tps_p5 = mean(source.iter().map(|s| s.req_output_tps_p5));
        self.req_output_tps_p10 = mean(source.iter().map(|s| s.req_output_tps_p10));
        self.requests = requests;
        self.error_rate = if requests == 0 {
            0.0
        } else {
            failed as f64 / requests as f64
        };
        // vLLM leaves a zero count out, so a sample without one counts 0.
        self.achieved_cache_rate = (reported && prompt > 0).then(|| cached as f64 / prompt as f64);
        self.server_cache_rate =
            some_mean(source.iter().filter_map(|s| s.server_cache_rate).collect());
        self.prompt_token_drift =
            some_mean(source.iter().filter_map(|s| s.prompt_token_drift).collect());
        Ok(())
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
    /// Parses `progress.json`; `path` is for messages. Its schema version
    /// is read first, so a file of another version says so rather than
    /// failing on a field it lacks.
    pub fn parse(text: &str, path: &Path) -> Result<Progress> {
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
            other => Err(Error::Usage(format!(
                "{} has schema version {}, this cacherate writes {SCHEMA_VERSION}: it cannot \
                 resume that run. Use --force-restart to move it aside and start over, or \
                 the cacherate version that wrote it",
                path.display(),
                other.map_or("(none)".to_string(), |v| v.to_string())
            ))),
        }
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
    /// Reads `results.json` text, refusing other schema versions with a
    /// message that says what to do.
    pub fn parse(text: &str, path: &Path) -> Result<Results> {
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
            Some(newer) if newer > SCHEMA_VERSION => Err(Error::Usage(format!(
                "{} has schema version {newer}, written by a newer cacherate than this one \
                 (which reads {SCHEMA_VERSION}); upgrade cacherate to read it",
                path.display()
            ))),
            older => Err(Error::Usage(format!(
                "{} has schema version {}, written by an earlier cacherate whose samples \
                 included the phase that chose the peak and whose figures were not taken \
                 over a steady-state window; its numbers cannot be compared with this \
                 version's. Re-run with this version (--force-restart moves the old run \
                 aside)",
                path.display(),
                older.map_or("(none)".to_string(), |v| v.to_string())
            ))),
        }
    }
}

/// A flat `phase_metadata_{ctx}.csv` row.
#[derive(Debug, Serialize)]
struct PhaseRow<'a> {
    context_size: u64,
    cache_hit_rate: u32,
    phase_index: u32,
    phase_id: &'a str,
    phase_type: &'static str,
    concurrency: u32,
    start_unix_s: f64,
    window_start_unix_s: f64,
    window_end_unix_s: f64,
    end_unix_s: f64,
    planned_duration_s: f64,
    launched: u64,
    window_requests: u64,
    completed: u64,
    failed: u64,
    error_rate: f64,
    input_tps: f64,
    output_tps: f64,
    ttft_avg_s: f64,
    ttft_p50_s: f64,
    ttft_p95_s: f64,
    ttft_p99_s: f64,
    ttft_max_s: f64,
    ttlt_avg_s: f64,
    ttlt_p95_s: f64,
    itl_avg_s: f64,
    itl_p50_s: f64,
    itl_p95_s: f64,
    itl_p99_s: f64,
    req_output_tps_avg: f64,
    req_output_tps_p5: f64,
    req_output_tps_p10: f64,
    achieved_cache_rate: Option<f64>,
    server_cache_rate: Option<f64>,
    decision_ttft_s: f64,
    passed: bool,
    reason: Option<&'a str>,
    /// Sustained mode: the controller's decision after the period, and
    /// the next period's concurrency.
    decision: Option<&'static str>,
    next_concurrency: Option<u32>,
}

impl<'a> From<&'a PhaseRecord> for PhaseRow<'a> {
    fn from(p: &'a PhaseRecord) -> Self {
        let f = &p.figures;
        PhaseRow {
            context_size: p.context_size,
            cache_hit_rate: p.cache_hit_rate,
            phase_index: p.phase_index,
            phase_id: &p.phase_id,
            phase_type: p.kind.label(),
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
            reason: p.reason.as_deref(),
            decision: p.period.map(|d| d.decision.name()),
            next_concurrency: p.period.map(|d| d.next_concurrency),
        }
    }
}

/// A row of `sustained_periods_ctx{ctx}_cache{rate}_{time}.csv`: the
/// seed's period log, one row per assessment period.
#[derive(Debug, Serialize)]
struct PeriodRow<'a> {
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
    fn of(p: &'a PhaseRecord) -> Option<Self> {
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
struct SummaryRow {
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

/// Appended to the phase id of requests whose phase did not finish: cut
/// short by a stop now, or by a killed run (kept on resume).
pub const UNFINISHED_SUFFIX: &str = "_STOPPED";

/// Request rows written one at a time to `unfinished_phase_{ctx}.csv` as
/// requests complete, ahead of their phase's commit (which appends the
/// phase's final rows to `detailed_results_{ctx}.csv`). A killed run
/// leaves the file behind, and a resume keeps its whole rows that were not
/// committed ([`RunDir::recover_requests`]): a kill loses only the
/// requests in flight.
#[derive(Debug, Default)]
pub struct Journal {
    file: std::sync::Mutex<Option<JournalFile>>,
}

#[derive(Debug)]
struct JournalFile {
    path: PathBuf,
    file: File,
    needs_header: bool,
}

impl Journal {
    /// Journals the requests of context `context` that complete from now
    /// on, in a fresh file (one a killed run left was recovered and
    /// committed before).
    pub fn open(&self, dir: &RunDir, context: u64) -> Result<()> {
        let path = dir.file(&unfinished_phase(context));
        let file = File::create(&path).map_err(|e| io_error("create", &path, e))?;
        if let Ok(mut journal) = self.file.lock() {
            *journal = Some(JournalFile {
                path,
                file,
                needs_header: true,
            });
        }
        Ok(())
    }

    /// Appends one completed request. Best effort: a row that cannot be
    /// written stops the journal with a warning, and the phase's commit
    /// writes every row (or fails with the reason) all the same.
    pub fn record(&self, row: &RequestRecord) {
        let Ok(mut journal) = self.file.lock() else {
            return;
        };
        let Some(open) = journal.as_mut() else {
            return;
        };
        let mut writer = csv::WriterBuilder::new()
            .has_headers(open.needs_header)
            .from_writer(Vec::new());
        let written = writer
            .serialize(row)
            .map_err(|e| e.to_string())
            .and_then(|()| writer.into_inner().map_err(|e| e.to_string()))
            .and_then(|bytes| open.file.write_all(&bytes).map_err(|e| e.to_string()));
        match written {
            Ok(()) => open.needs_header = false,
            Err(e) => {
                tracing::warn!(
                    "cannot journal a request into {}: {e}; its phase's rows are written when \
                     it ends",
                    open.path.display()
                );
                *journal = None;
            }
        }
    }

    /// Stops journaling (the phase's rows are being committed).
    pub fn close(&self) {
        if let Ok(mut journal) = self.file.lock() {
            *journal = None;
        }
    }
}

/// What a resume kept of the requests an earlier run completed but did not
/// commit.
#[derive(Debug, Default, PartialEq)]
pub struct Recovered {
    pub requests: usize,
    /// The highest request id among them: ids go on from above it.
    pub max_request_id: Option<u64>,
}

pub fn detailed_results(context: u64) -> String {
    format!("detailed_results_{context}.csv")
}

/// The journal of the phase in flight ([`Journal`]).
pub fn unfinished_phase(context: u64) -> String {
    format!("unfinished_phase_{context}.csv")
}

pub fn phase_metadata(context: u64) -> String {
    format!("phase_metadata_{context}.csv")
}

/// Does this file name belong to a run (and so move aside on a restart)?
fn is_run_file(name: &str) -> bool {
    name == PROGRESS
        || name == RESULTS
        || name == RUN
        || name == "summary.csv"
        || name == "index.html"
        || (name.starts_with("detailed_results_")
            || name.starts_with("phase_metadata_")
            || name.starts_with("unfinished_phase_")
            || name.starts_with("sustained_periods_")
            || name.starts_with("summary_")
            || name.starts_with("run_command_")
            || name.starts_with("performance_vs_cache_rate_")
            || name.starts_with("ramp_ctx")
            || name.ends_with("_comparison.html")
            || name == "ttft_heatmap.html")
}

/// The run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn open(path: &Path) -> Result<RunDir> {
        fs::create_dir_all(path).map_err(|e| {
            Error::Usage(format!(
                "cannot create --output-dir {}: {e}",
                path.display()
            ))
        })?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// A run directory that must already exist (for reading).
    pub fn existing(path: &Path) -> Result<RunDir> {
        if !path.is_dir() {
            return Err(Error::Usage(format!(
                "{} is not a run directory (give the --output-dir of a `cacherate run`)",
                path.display()
            )));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A JSON file of the run as a value, `None` when it is not there.
    pub fn read_value(&self, name: &str) -> Result<Option<serde_json::Value>> {
        self.read_json(name)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let path = self.file(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Usage(format!(
                "{} is damaged or from an incompatible version ({e}); run with \
                 --force-restart to move this run aside and start over, or choose another \
                 --output-dir",
                path.display()
            ))
        })
    }

    pub fn load_progress(&self) -> Result<Option<Progress>> {
        let path = self.file(PROGRESS);
        match fs::read_to_string(&path) {
            Ok(text) => Progress::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", &path, e)),
        }
    }

    pub fn load_results(&self) -> Result<Results> {
        let path = self.file(RESULTS);
        match fs::read_to_string(&path) {
            Ok(text) => Results::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Results {
                schema_version: SCHEMA_VERSION,
                points: Vec::new(),
            }),
            Err(e) => Err(io_error("read", &path, e)),
        }
    }

    /// Whether any file of a run is here.
    pub fn has_run_files(&self) -> Result<bool> {
        Ok(!self.run_files()?.is_empty())
    }

    fn run_files(&self) -> Result<Vec<PathBuf>> {
        let entries = fs::read_dir(&self.path).map_err(|e| io_error("list", &self.path, e))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.path, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_compare = name == "compare" && entry.path().is_dir();
            if is_compare || (entry.path().is_file() && is_run_file(&name)) {
                files.push(entry.path());
            }
        }
        Ok(files)
    }

    /// Moves an earlier run's files into `previous-<time>/`; returns it.
    pub fn archive(&self) -> Result<Option<PathBuf>> {
        let files = self.run_files()?;
        if files.is_empty() {
            return Ok(None);
        }
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace(':', "");
        let mut target = self.path.join(format!("previous-{stamp}"));
        let mut n = 1;
        while target.exists() {
            target = self.path.join(format!("previous-{stamp}-{n}"));
            n += 1;
        }
        fs::create_dir_all(&target).map_err(|e| io_error("create", &target, e))?;
        for file in files {
            let Some(name) = file.file_name() else {
                continue;
            };
            let to = target.join(name);
            fs::rename(&file, &to).map_err(|e| io_error("move", &file, e))?;
        }
        Ok(Some(target))
    }

    /// Writes `bytes` to `name` through a temporary file in the same
    /// directory, synced, then renamed over it: a reader (or a later run)
    /// sees the old file or the new one, never part of one. A failed write
    /// removes its temporary file and leaves the old file as it was.
    /// `name` may lie in a subdirectory (`compare/verdict.json`), which is
    /// made when missing. Every file the crate writes into a run or
    /// baseline directory goes through here, except the appended CSVs.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.file(name);
        let parent = path.parent().unwrap_or(&self.path).to_path_buf();
        fs::create_dir_all(&parent).map_err(|e| io_error("create", &parent, e))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = parent.join(format!(".{file_name}.tmp"));
        let written = File::create(&temporary)
            .map_err(|e| io_error("create", &temporary, e))
            .and_then(|mut file| {
                file.write_all(bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io_error("write", &path, e))
            })
            .and_then(|()| {
                fs::rename(&temporary, &path).map_err(|e| io_error("replace", &path, e))
            });
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written?;
        // The rename itself is durable once the directory is synced; a
        // filesystem that cannot sync a directory still renamed atomically.
        if let Ok(directory) = File::open(&parent) {
            let _ = directory.sync_all();
        }
        Ok(())
    }

    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(anyhow::Error::from)?;
        bytes.push(b'\n');
        self.write_atomic(name, &bytes)
    }

    /// Appends rows to a CSV (with a header if it is new); returns its
    /// length after the append, once it is on disk. An append that fails
    /// part way is cut off again, so the file ends at its last whole row.
    pub fn append_csv<T: Serialize>(&self, name: &str, rows: &[T]) -> Result<u64> {
        let path = self.file(name);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        // Only a file known to be empty gets the header: one whose length
        // cannot be read must not get a header in the middle of its rows.
        let before = file
            .metadata()
            .map_err(|e| io_error("read the length of", &path, e))?
            .len();
        let mut writer = csv::WriterBuilder::new()
            .has_headers(before == 0)
            .from_writer(Vec::new());
        for row in rows {
            writer.serialize(row).map_err(anyhow::Error::from)?;
        }
        let bytes = writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Err(e) = file.write_all(&bytes).and_then(|()| file.sync_data()) {
            let _ = file.set_len(before);
            return Err(io_error("append to", &path, e));
        }
        Ok(before + bytes.len() as u64)
    }

    /// Appends a phase's rows to the phase metadata CSV.
    pub fn append_phase(&self, phase: &PhaseRecord) -> Result<u64> {
        self.append_csv(
            &phase_metadata(phase.context_size),
            &[PhaseRow::from(phase)],
        )
    }

    /// Removes `name` if it is there.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.file(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &path, e)),
        }
    }

    /// Appends the requests a killed run completed and did not commit:
    /// each row of an `unfinished_phase_{ctx}.csv` journal whose request id
    /// is not in `detailed_results_{ctx}.csv` already (a kill between a
    /// commit and the journal's removal leaves committed rows there; in
    /// sustained mode the journal holds the next period's requests, whose
    /// ids are below the committed counter), once, marked with
    /// [`UNFINISHED_SUFFIX`]; `files` gets the new lengths. The journals stay
    /// until [`RunDir::remove_journals`]. A torn last row is left out. Call
    /// after [`RunDir::truncate_to`].
    pub fn recover_requests(&self, files: &mut BTreeMap<String, u64>) -> Result<Recovered> {
        let mut recovered = Recovered::default();
        let entries = fs::read_dir(&self.path).map_err(|e| io_error("list", &self.path, e))?;
        let mut journals: Vec<(String, u64)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let context = name
                .strip_prefix("unfinished_phase_")
                .and_then(|rest| rest.strip_suffix(".csv"))
                .and_then(|context| context.parse().ok());
            if let Some(context) = context {
                journals.push((name, context));
            }
        }
        journals.sort();
        for (journal, context) in journals {
            let path = self.file(&journal);
            let bytes = fs::read(&path).map_err(|e| io_error("read", &path, e))?;
            // Only rows that end in a newline were written whole.
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let journaled: Vec<RequestRecord> = csv::Reader::from_reader(&bytes[..whole])
                .deserialize::<RequestRecord>()
                .map_while(std::result::Result::ok)
                .collect();
            if journaled.is_empty() {
                continue;
            }
            let name = detailed_results(context);
            let mut seen = self.request_ids(&name)?;
            let rows: Vec<RequestRecord> = journaled
                .into_iter()
                .filter(|row| seen.insert(row.request_id))
                .map(|mut row| {
                    if !row.phase_id.ends_with(UNFINISHED_SUFFIX) {
                        row.phase_id.push_str(UNFINISHED_SUFFIX);
                    }
                    row
                })
                .collect();
            if !rows.is_empty() {
                let length = self.append_csv(&name, &rows)?;
                files.insert(name, length);
                recovered.requests += rows.len();
                recovered.max_request_id = rows
                    .iter()
                    .map(|r| r.request_id)
                    .chain(recovered.max_request_id)
                    .max();
            }
        }
        Ok(recovered)
    }

    /// The request ids of a `detailed_results` file (none when it is not
    /// there).
    fn request_ids(&self, name: &str) -> Result<std::collections::HashSet<u64>> {
        #[derive(Deserialize)]
        struct Id {
            request_id: u64,
        }
        let path = self.file(name);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        csv::Reader::from_reader(std::io::BufReader::new(file))
            .deserialize::<Id>()
            .map(|row| {
                row.map(|row| row.request_id).map_err(|e| {
                    Error::Usage(format!(
                        "{} has a row that does not read ({e}); put the file back as it was, \
                         or start over with --force-restart",
                        path.display()
                    ))
                })
            })
            .collect()
    }

    /// Removes every `unfinished_phase_*.csv`: once `progress.json` records
    /// what [`RunDir::recover_requests`] kept (until then a kill must find
    /// them again).
    pub fn remove_journals(&self) -> Result<()> {
        let entries = fs::read_dir(&self.path).map_err(|e| io_error("list", &self.path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("unfinished_phase_") {
                self.remove(&name)?;
            }
        }
        Ok(())
    }

    /// Cuts appended CSVs back to their committed lengths, and removes ones
    /// never committed: the rows of a phase that was in flight. A file
    /// shorter than its committed length (or gone) lost measured rows: that
    /// is an error, never a silent fresh start.
    pub fn truncate_to(&self, committed: &BTreeMap<String, u64>) -> Result<()> {
        for (name, &length) in committed {
            let path = self.file(name);
            let on_disk = match fs::metadata(&path) {
                Ok(metadata) => metadata.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(io_error("read the length of", &path, e)),
            };
            if on_disk < length {
                return Err(Error::Usage(format!(
                    "{} holds {on_disk} bytes but {} records {length} written: {} bytes of \
                     measured rows are missing (the file was cut, replaced or removed). Put \
                     the whole file back to resume, or run with --force-restart to move this \
                     run aside and start over",
                    path.display(),
                    PROGRESS,
                    length - on_disk
                )));
            }
        }
        let entries = fs::read_dir(&self.path).map_err(|e| io_error("list", &self.path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("detailed_results_")
                || name.starts_with("phase_metadata_")
                || name.starts_with("sustained_periods_"))
            {
                continue;
            }
            let path = entry.path();
            match committed.get(&name) {
                Some(&length) => {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| io_error("open", &path, e))?;
                    let on_disk = file
                        .metadata()
                        .map_err(|e| io_error("read the length of", &path, e))?
                        .len();
                    if on_disk > length {
                        file.set_len(length)
                            .map_err(|e| io_error("truncate", &path, e))?;
                    }
                }
                None => fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?,
            }
        }
        Ok(())
    }

    /// Appends a sustained period's row to its point's period log, named
    /// `name` (see [`sustained_periods`]); returns the file's new length.
    pub fn append_period(&self, name: &str, period: &PhaseRecord) -> Result<u64> {
        let rows: Vec<PeriodRow> = PeriodRow::of(period).into_iter().collect();
        self.append_csv(name, &rows)
    }

    /// Rewrites `summary_{ctx}.csv` and `summary.csv` from the points.
    pub fn write_summaries(&self, points: &[PointResult]) -> Result<()> {
        let render = |points: &mut dyn Iterator<Item = &PointResult>| -> Result<Vec<u8>> {
            let mut writer = csv::Writer::from_writer(Vec::new());
            for point in points {
                writer
                    .serialize(SummaryRow::from(point))
                    .map_err(anyhow::Error::from)?;
            }
            Ok(writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)
        };
        let mut contexts: Vec<u64> = points.iter().map(|p| p.context_size).collect();
        contexts.sort_unstable();
        contexts.dedup();
        for context in contexts {
            let bytes = render(&mut points.iter().filter(|p| p.context_size == context))?;
            self.write_atomic(&format!("summary_{context}.csv"), &bytes)?;
        }
        self.write_atomic("summary.csv", &render(&mut points.iter())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        a: u32,
        b: Option<String>,
    }

    #[test]
    fn appended_rows_beyond_the_committed_length_are_cut_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let name = detailed_results(1000);
        let committed = run.append_csv(&name, &[Row { a: 1, b: None }]).unwrap();
        run.append_csv(
            &name,
            &[Row {
                a: 2,
                b: Some("x".into()),
            }],
        )
        .unwrap();
        fs::write(run.file(&phase_metadata(1000)), "partial").unwrap();
        run.truncate_to(&BTreeMap::from([(name.clone(), committed)]))
            .unwrap();
        assert_eq!(fs::read_to_string(run.file(&name)).unwrap(), "a,b\n1,\n");
        assert!(!run.file(&phase_metadata(1000)).exists());
    }

    #[test]
    fn archive_moves_only_run_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        run.write_atomic(PROGRESS, b"{}").unwrap();
        run.write_atomic("summary_8000.csv", b"x").unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let moved = run.archive().unwrap().unwrap();
        assert!(moved.join(PROGRESS).exists() && moved.join("summary_8000.csv").exists());
        assert!(dir.path().join("notes.txt").exists());
        assert!(!run.has_run_files().unwrap());
        assert_eq!(run.archive().unwrap(), None);
    }

    #[test]
    fn a_damaged_progress_file_is_a_usage_error_with_a_fix() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        fs::write(run.file(PROGRESS), "{ not json").unwrap();
        let error = run.load_progress().unwrap_err();
        assert!(error.to_string().contains("--force-restart"), "{error}");
        assert_eq!(error.exit_code(), crate::exit::USAGE);
    }

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
    fn a_request_file_shorter_than_committed_is_an_error_naming_the_missing_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let name = detailed_results(512);
        let rows = [Row { a: 1, b: None }, Row { a: 2, b: None }];
        let committed = run.append_csv(&name, &rows).unwrap();
        let cut = committed - 3;
        OpenOptions::new()
            .write(true)
            .open(run.file(&name))
            .unwrap()
            .set_len(cut)
            .unwrap();
        let files = BTreeMap::from([(name.clone(), committed)]);
        let error = run.truncate_to(&files).unwrap_err();
        assert_eq!(error.exit_code(), crate::exit::USAGE);
        let message = error.to_string();
        assert!(
            message.contains(&name)
                && message.contains(&format!("holds {cut} bytes"))
                && message.contains("3 bytes of measured rows are missing")
                && message.contains("--force-restart"),
            "{message}"
        );
        // Nothing was cut or removed on the way.
        assert_eq!(fs::metadata(run.file(&name)).unwrap().len(), cut);

        fs::remove_file(run.file(&name)).unwrap();
        let message = run.truncate_to(&files).unwrap_err().to_string();
        assert!(message.contains("holds 0 bytes"), "{message}");
    }

    #[test]
    fn rows_appended_to_a_file_with_rows_get_no_second_header() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let name = detailed_results(512);
        let first = run.append_csv(&name, &[Row { a: 1, b: None }]).unwrap();
        let second = run.append_csv(&name, &[Row { a: 2, b: None }]).unwrap();
        let text = fs::read_to_string(run.file(&name)).unwrap();
        assert_eq!(text, "a,b\n1,\n2,\n");
        assert_eq!((first, second), (7, text.len() as u64));
    }

    #[test]
    fn a_write_that_cannot_land_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        run.write_atomic(RESULTS, b"old").unwrap();
        // A directory where the file goes: the rename over it fails.
        fs::create_dir_all(run.file("compare/verdict.json/x")).unwrap();
        let error = run
            .write_atomic("compare/verdict.json", b"new")
            .unwrap_err();
        assert_eq!(error.exit_code(), crate::exit::USAGE);
        let message = error.to_string();
        assert!(
            message.contains("verdict.json") && message.contains("run the same command again"),
            "{message}"
        );
        assert!(!run.file("compare/.verdict.json.tmp").exists());
        assert_eq!(fs::read(run.file(RESULTS)).unwrap(), b"old");
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

    fn request(id: u64, phase: &str) -> RequestRecord {
        RequestRecord {
            context_size: 512,
            cache_hit_rate: 50,
            phase_id: phase.into(),
            phase_index: 1,
            concurrency: 2,
            request_id: id,
            endpoint: 0,
            working_set_prompt: 3,
            launch_unix_s: 1.5,
            dispatch_delay_s: None,
            ttft_s: Some(0.01),
            ttlt_s: Some(0.02),
            finish_s: 0.021,
            chunks: 2,
            max_chunk_gap_s: Some(0.01),
            chunk_times_us: vec![10_000, 20_000],
            tokens_per_chunk: vec![1],
            expected_prompt_tokens: 512,
            target_cached_tokens: 256,
            prompt_tokens: Some(512),
            completion_tokens: Some(2),
            cached_tokens: Some(256),
            status: 200,
            resent: false,
            error_kind: None,
            error: Some("a, \"quoted\"\nmessage".into()),
            in_window: true,
        }
    }

    #[test]
    fn a_killed_phase_keeps_its_whole_uncommitted_requests_marked_and_leaves_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let name = detailed_results(512);
        // Request 4 was committed with its phase (so the next id is 5);
        // the journal of the next phase holds 5, 7 and a torn row.
        let committed = run.append_csv(&name, &[request(4, "WARMUP")]).unwrap();
        let journal = Journal::default();
        journal.open(&run, 512).unwrap();
        journal.record(&request(4, "WARMUP"));
        journal.record(&request(7, "RAMP_c2"));
        journal.record(&request(5, "RAMP_c2"));
        journal.close();
        let journal_path = run.file(&unfinished_phase(512));
        let mut torn = fs::read(&journal_path).unwrap();
        torn.extend_from_slice(b"512,50,RAMP_c2,1,2,9,0,3,1.5,,0.01");
        fs::write(&journal_path, &torn).unwrap();

        let mut files = BTreeMap::from([(name.clone(), committed)]);
        run.truncate_to(&files).unwrap();
        let recovered = run.recover_requests(&mut files).unwrap();
        assert_eq!(
            recovered,
            Recovered {
                requests: 2,
                max_request_id: Some(7)
            }
        );
        let bytes = fs::read(run.file(&name)).unwrap();
        assert_eq!(files[&name], bytes.len() as u64);
        let rows: Vec<RequestRecord> = csv::Reader::from_reader(&bytes[..])
            .deserialize()
            .map(|r| r.unwrap())
            .collect();
        let stopped = |id| RequestRecord {
            phase_id: format!("RAMP_c2{UNFINISHED_SUFFIX}"),
            ..request(id, "")
        };
        assert_eq!(rows, [request(4, "WARMUP"), stopped(7), stopped(5)]);
        // Killed again before progress.json recorded them: the same rows
        // come back once, from the journal still there.
        let mut again = BTreeMap::from([(name.clone(), committed)]);
        run.truncate_to(&again).unwrap();
        assert_eq!(run.recover_requests(&mut again).unwrap().requests, 2);
        assert_eq!(fs::read(run.file(&name)).unwrap(), bytes);
        // Once recorded and the journal removed, nothing more.
        run.remove_journals().unwrap();
        assert!(!journal_path.exists());
        assert_eq!(
            run.recover_requests(&mut again).unwrap(),
            Recovered::default()
        );
    }

    #[test]
    fn journaled_rows_of_a_context_never_committed_start_its_request_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let journal = Journal::default();
        journal.open(&run, 1024).unwrap();
        journal.record(&request(3, "WARMUP"));
        journal.close();
        let mut files = BTreeMap::new();
        run.truncate_to(&files).unwrap();
        let recovered = run.recover_requests(&mut files).unwrap();
        assert_eq!(recovered.requests, 1);
        let name = detailed_results(1024);
        let rows: Vec<RequestRecord> = csv::Reader::from_path(run.file(&name))
            .unwrap()
            .deserialize()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].phase_id, format!("WARMUP{UNFINISHED_SUFFIX}"));
        assert_eq!(files[&name], fs::metadata(run.file(&name)).unwrap().len());
    }
}
