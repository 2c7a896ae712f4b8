//! `cacherate run`: the sweep over context sizes and cache rates, top to
//! bottom — target, resume decision, provenance, KV estimate, token pool,
//! then for each point: warm-up, peak search phase by phase (each written
//! to the run directory as it ends), point result.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::phase::{PhaseLabel, Shared, run_phase, run_warmup};
use super::ramp::{Peak, PeakSearch, RampParams};
use crate::client::prometheus::rate_between;
use crate::client::{Client, Clock};
use crate::error::{Error, Result};
use crate::kvsize::{Estimate, ModelShape};
use crate::progress::{Live, Ui};
use crate::record::RequestRecord;
use crate::settings::{PromptMode, ReinitStrategy, RunSettings, Workload};
use crate::sim::{SimConfig, SimServer};
use crate::stats::{Latency, PhaseFigures, Thresholds, merge_histograms};
use crate::store::{
    self, CurrentPoint, PhaseRecord, PointResult, Progress, Results, RunDir, SCHEMA_VERSION,
    detailed_results, phase_metadata,
};
use crate::workload::text::synthetic_text;
use crate::workload::tokenizer::Tokenizer;
use crate::workload::{Content, FactoryOptions, PromptFactory, TextPool, TokenPool};

/// Words of synthetic content tokenised into the pool (a few tens of
/// thousands of tokens), in pieces of this many lines.
const POOL_WORDS: usize = 24_000;
const POOL_PIECE_LINES: usize = 40;

/// What a finished run leaves.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub points: Vec<PointResult>,
}

#[derive(Debug, Serialize)]
struct GitInfo {
    commit: String,
    branch: Option<String>,
    dirty: bool,
}

fn git_info() -> Option<GitInfo> {
    let repo = git2::Repository::discover(".").ok()?;
    let head = repo.head().ok()?;
    let commit = head.peel_to_commit().ok()?.id().to_string();
    let branch = head
        .is_branch()
        .then(|| head.shorthand().ok().map(str::to_string))
        .flatten();
    let mut options = git2::StatusOptions::new();
    options.include_untracked(false).include_ignored(false);
    let dirty = repo
        .statuses(Some(&mut options))
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    Some(GitInfo {
        commit,
        branch,
        dirty,
    })
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// `run.json`.
#[derive(Debug, Serialize)]
struct RunInfo<'a> {
    tool: &'static str,
    version: &'static str,
    status: &'static str,
    started_at: &'a str,
    finished_at: Option<String>,
    attempt: u64,
    command: Vec<String>,
    model: &'a str,
    endpoints: &'a [String],
    embedded_simulator: bool,
    server: super::target::Fingerprint,
    tokenizer: String,
    /// How the prefix cache was emptied before warm-ups, if it was.
    flush_cache: Option<String>,
    /// Where the server's prefix-cache counters were read.
    metrics_url: Option<String>,
    /// The same prompt sent twice came back with cached tokens.
    server_reports_cached_tokens: bool,
    seed: u64,
    git: Option<GitInfo>,
    host: Option<String>,
    settings: &'a RunSettings,
}

/// The command line with secrets blanked, for `run.json`.
fn redacted(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for arg in argv {
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
        } else if arg == "--api-key" {
            out.push(arg.clone());
            hide_next = true;
        } else if arg.starts_with("--api-key=") {
            out.push("--api-key=***".to_string());
        } else {
            out.push(arg.clone());
        }
    }
    out
}

fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Every option of the run, explicit, so the script does not depend on a
/// profile file or the environment.
fn reproduce_args(settings: &RunSettings, model: &str, seed: u64, embedded: bool) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into()];
    let mut push = |name: &str, values: Vec<String>| {
        args.push(format!("--{name}"));
        args.extend(values);
    };
    let one = |value: &dyn ToString| vec![value.to_string()];
    if embedded {
        push("sim-time-scale", one(&settings.sim_time_scale));
    } else {
        push("api-endpoint", settings.endpoints.clone());
    }
    push("model", one(&model));
    push(
        "context-sizes",
        settings.context_sizes.iter().map(u64::to_string).collect(),
    );
    push("working-set-size", one(&settings.working_set_size));
    push("output-tokens", one(&settings.output_tokens));
    push("max-ttft", one(&settings.max_ttft));
    push(
        "ttft-metric",
        one(&format!("{:?}", settings.ttft_metric).to_lowercase()),
    );
    push("test-duration", one(&settings.test_duration));
    push("ramp-duration", one(&settings.ramp_duration));
    push("num-retries", one(&settings.num_retries));
    push("start-concurrency", one(&settings.start_concurrency));
    push(
        "concurrency-increment",
        one(&settings.concurrency_increment),
    );
    push("max-concurrency", one(&settings.max_concurrency));
    push("init-concurrency", one(&settings.init_concurrency));
    push(
        "cache-hit-rates",
        settings
            .cache_hit_rates
            .iter()
            .map(u32::to_string)
            .collect(),
    );
    push("chunk-size", one(&settings.chunk_size));
    let strategy = match settings.reinit_strategy {
        ReinitStrategy::Once => "once",
        ReinitStrategy::PerCacheRate => "per_cache_rate",
        ReinitStrategy::PerTest => "per_test",
    };
    push("reinit-strategy", one(&strategy));
    push("output-dir", one(&settings.output_dir.display()));
    push("seed", one(&seed));
    push(
        "kv-cache-quantization",
        one(&settings.kv_cache_quantization),
    );
    push(
        "tokens-per-req-metric",
        one(&format!("{:?}", settings.tokens_per_req_metric).to_lowercase()),
    );
    if let Some(min) = settings.min_tokens_per_req {
        push("min-tokens-per-req", one(&min));
    }
    push("request-timeout", one(&settings.request_timeout));
    push("max-error-rate", one(&settings.max_error_rate));
    push(
        "prompt-mode",
        one(&format!("{:?}", settings.prompt_mode).to_lowercase()),
    );
    if let Some(tokenizer) = &settings.tokenizer {
        push("tokenizer", one(tokenizer));
    }
    push(
        "flush-cache",
        one(&match &settings.flush_cache {
            crate::settings::FlushCache::None => "none".to_string(),
            crate::settings::FlushCache::Auto => "auto".to_string(),
            crate::settings::FlushCache::Url(url) => url.clone(),
        }),
    );
    if let Some(url) = &settings.metrics_url {
        push("metrics-url", one(url));
    }
    if let Some(gap) = settings.max_cache_rate_gap {
        push("max-cache-rate-gap", one(&gap));
    }
    for (flag, set) in [
        (
            "random-working-set-selection",
            settings.random_working_set_selection,
        ),
        ("strict-time-window", settings.strict_time_window),
        ("skip-graphs", settings.skip_graphs),
    ] {
        // Explicit either way, so no profile can change it.
        args.push(if set {
            format!("--{flag}")
        } else {
            format!("--no-{flag}")
        });
    }
    args
}

fn write_run_command(dir: &RunDir, args: &[String]) -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "cacherate".to_string());
    let stamp = now_rfc3339().replace([':', '-'], "");
    let name = format!("run_command_{stamp}.sh");
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let script = format!(
        "#!/bin/sh\n\
         # Reproduces the cacherate run started {}.\n\
         # Extra arguments are passed on, and later ones win: e.g.\n\
         #   ./{name} --force-restart     or     ./{name} --output-dir other\n\
         # A server key is read from OPENAI_API_KEY.\n\
         exec {} {} \"$@\"\n",
        now_rfc3339(),
        shell_quote(&exe),
        quoted.join(" ")
    );
    dir.write_atomic(&name, script.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.file(&name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::Internal(anyhow::anyhow!("chmod {}: {e}", path.display())))?;
    }
    Ok(dir.file(&name))
}

/// First-tier KV capacity in tokens from vLLM's `vllm:cache_config_info`.
fn kv_capacity_from_metrics(metrics: &str) -> Option<u64> {
    let line = metrics
        .lines()
        .find(|line| line.starts_with("vllm:cache_config_info{"))?;
    let label = |name: &str| -> Option<u64> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + line[start..].find('"')?;
        line[start..end].parse().ok()
    };
    Some(label("block_size")? * label("num_gpu_blocks")?)
}

/// Starts the embedded simulator sized for the run's contexts.
async fn start_simulator(settings: &RunSettings) -> Result<SimServer> {
    let longest = settings
        .context_sizes
        .iter()
        .map(|&c| crate::kvsize::round_up(c, settings.chunk_size))
        .max()
        .unwrap_or(0) as usize;
    let defaults = SimConfig::default();
    let max_model_len = defaults
        .max_model_len
        .max(longest + settings.output_tokens as usize + 16);
    let config = SimConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        time_scale: settings.sim_time_scale,
        seed: settings.seed.unwrap_or(0),
        max_model_len,
        kv_capacity_tokens: defaults.kv_capacity_tokens.max(max_model_len),
        ..defaults
    };
    SimServer::start(config)
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot start the embedded simulator: {e}")))
}

/// Decides between resuming `stored` (the run directory's progress, if
/// any) and starting fresh.
fn open_progress(
    dir: &RunDir,
    stored: Option<Progress>,
    workload: Workload,
    ui: &Ui,
) -> Result<(Progress, Results)> {
    let fresh = |workload: Workload| Progress {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        workload,
        attempt: 0,
        next_request_id: 0,
        completed: Vec::new(),
        current: None,
        parked: Vec::new(),
        files: Default::default(),
    };
    let empty = Results {
        schema_version: SCHEMA_VERSION,
        points: Vec::new(),
    };
    let where_ = dir.path().display();
    match stored {
        Some(existing) => {
            let differences = workload.differences(&existing.workload);
            if !differences.is_empty() {
                let moved = dir.archive()?.expect("the progress file is a run file");
                ui.warn(&format!(
                    "the options differ from the run in {where_} ({}), so it cannot be \
                     resumed; its files were moved to {} and a new run starts",
                    differences.join(", "),
                    moved.display()
                ));
                return Ok((fresh(workload), empty));
            }
            dir.truncate_to(&existing.files)?;
            let results = dir.load_results()?;
            let mut progress = existing;
            progress.attempt += 1;
            let in_flight = progress
                .current
                .as_ref()
                .map(|c| {
                    format!(
                        ", and {} phases of ctx {} at {}%",
                        c.phases.len(),
                        c.context_size,
                        c.cache_hit_rate
                    )
                })
                .unwrap_or_default();
            ui.line(&format!(
                "resuming the run in {where_}: {} points done{in_flight}",
                results.points.len()
            ));
            Ok((progress, results))
        }
        None => {
            if let Some(moved) = dir.archive()? {
                ui.warn(&format!(
                    "{where_} held files of a run without progress.json; moved them to {}",
                    moved.display()
                ));
            }
            Ok((fresh(workload), empty))
        }
    }
}

/// Tokenises the synthetic content once, in pieces.
async fn token_pool(
    client: &Client,
    tokenizer: &Tokenizer,
    model: &str,
    seed: u64,
) -> Result<TokenPool> {
    let text = synthetic_text(seed, POOL_WORDS);
    let lines: Vec<&str> = text.lines().collect();
    let mut tokens = Vec::new();
    for piece in lines.chunks(POOL_PIECE_LINES) {
        tokens.extend(tokenizer.encode(client, model, &piece.join("\n")).await?);
    }
    TokenPool::new(&tokens)
}

/// Builds what prompts are made of, in the prompt mode asked for; `auto`
/// tries token ids first and falls back to text when the server refuses
/// them.
async fn prompt_content(
    client: &Client,
    tokenizer: &Tokenizer,
    model: &str,
    seed: u64,
    settings: &RunSettings,
    ui: &Ui,
) -> Result<(Content, PromptMode)> {
    match settings.prompt_mode {
        PromptMode::Text | PromptMode::Chat => {
            let pool = Arc::new(text_pool(client, tokenizer, model, seed).await?);
            return Ok(if settings.prompt_mode == PromptMode::Text {
                (Content::Text(pool), PromptMode::Text)
            } else {
                (Content::Chat(pool), PromptMode::Chat)
            });
        }
        PromptMode::Tokens | PromptMode::Auto => {}
    }
    let tokens = Content::Tokens(Arc::new(token_pool(client, tokenizer, model, seed).await?));
    if settings.prompt_mode == PromptMode::Tokens {
        return Ok((tokens, PromptMode::Tokens));
    }
    let probe = PromptFactory::new(
        tokens.clone(),
        &FactoryOptions {
            model,
            context_size: 64,
            chunk_size: 16,
            working_set_size: 1,
            output_tokens: 1,
            seed,
            nonce: crate::workload::suffix_nonce(seed) ^ 0x70_6b,
            random_selection: false,
        },
    );
    let measured = client
        .stream(
            probe.request(0, u64::MAX).body,
            std::time::Instant::now(),
            None,
        )
        .await;
    if (400..500).contains(&measured.status) && measured.status != 429 {
        ui.warn(&format!(
            "the server refused a token-ID prompt ({}); sending text prompts instead \
             (--prompt-mode auto): the server re-tokenises them, and the drift from the \
             target length is reported",
            measured.error.unwrap_or_default()
        ));
        let pool = Arc::new(text_pool(client, tokenizer, model, seed).await?);
        return Ok((Content::Text(pool), PromptMode::Text));
    }
    Ok((tokens, PromptMode::Tokens))
}

/// Distinct words whose token counts are measured for the text modes.
const TEXT_WORDS: usize = 1500;

/// The synthetic content as words with their token counts, each distinct
/// word tokenised once.
async fn text_pool(
    client: &Client,
    tokenizer: &Tokenizer,
    model: &str,
    seed: u64,
) -> Result<TextPool> {
    let text = synthetic_text(seed, POOL_WORDS);
    let words: Vec<String> = text.split_whitespace().map(|w| format!(" {w}")).collect();
    let mut distinct: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for word in &words {
        if distinct.len() < TEXT_WORDS && seen.insert(word.as_str()) {
            distinct.push(word);
        }
    }
    let mut counts = std::collections::HashMap::new();
    for batch in distinct.chunks(16) {
        let encoded = futures_util::future::join_all(
            batch
                .iter()
                .map(|word| tokenizer.encode(client, model, word)),
        )
        .await;
        for (word, ids) in batch.iter().zip(encoded) {
            counts.insert(*word, ids?.len() as u32);
        }
    }
    let sequence: Vec<(String, u32)> = words
        .iter()
        .filter_map(|w| counts.get(w.as_str()).map(|&count| (w.clone(), count)))
        .collect();
    TextPool::new(&sequence)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn mean_latency(latencies: &[&Latency]) -> Latency {
    Latency {
        avg: mean(latencies.iter().map(|l| l.avg)),
        p50: mean(latencies.iter().map(|l| l.p50)),
        p95: mean(latencies.iter().map(|l| l.p95)),
        p99: mean(latencies.iter().map(|l| l.p99)),
        max: latencies.iter().map(|l| l.max).fold(0.0, f64::max),
    }
}

/// The point's figures: means over the peak's phases, TTFT from their
/// merged histogram.
fn point_result(
    factory: &PromptFactory,
    rate: u32,
    context: u64,
    phases: &[PhaseRecord],
    peak: &Peak,
    max_cache_rate_gap: f64,
) -> PointResult {
    let samples: Vec<&PhaseRecord> = peak.samples.iter().map(|&i| &phases[i]).collect();
    let figures: Vec<&PhaseFigures> = samples.iter().map(|p| &p.figures).collect();
    let merged = merge_histograms(figures.iter().map(|f| f.ttft_histogram.as_str()));
    let requests: u64 = figures.iter().map(|f| f.launched).sum();
    let failed: u64 = figures.iter().map(|f| f.failed).sum();
    let reported = figures.iter().any(|f| f.achieved_cache_rate.is_some());
    let prompt: u64 = figures.iter().map(|f| f.prompt_tokens).sum();
    let cached: u64 = figures.iter().map(|f| f.cached_tokens).sum();
    let mut errors = std::collections::BTreeMap::new();
    for phase in phases {
        for (kind, count) in &phase.figures.errors {
            *errors.entry(kind.clone()).or_insert(0) += count;
        }
    }
    PointResult {
        context_size: context,
        cache_hit_rate: rate,
        prompt_tokens_per_request: factory.context,
        target_cached_tokens: factory.cached_tokens(rate),
        peak_concurrency: peak.concurrency,
        peak_passed: peak.passed,
        sample_phases: samples.iter().map(|p| p.phase_id.clone()).collect(),
        input_tps_samples: figures.iter().map(|f| f.input_tps).collect(),
        output_tps_samples: figures.iter().map(|f| f.output_tps).collect(),
        input_tps: mean(figures.iter().map(|f| f.input_tps)),
        output_tps: mean(figures.iter().map(|f| f.output_tps)),
        ttft: Latency::from_histogram(&merged),
        ttlt: mean_latency(&figures.iter().map(|f| &f.ttlt).collect::<Vec<_>>()),
        itl: mean_latency(&figures.iter().map(|f| &f.itl).collect::<Vec<_>>()),
        req_output_tps_avg: mean(figures.iter().map(|f| f.req_output_tps_avg)),
        req_output_tps_p5: mean(figures.iter().map(|f| f.req_output_tps_p5)),
        req_output_tps_p10: mean(figures.iter().map(|f| f.req_output_tps_p10)),
        requests,
        error_rate: if requests == 0 {
            0.0
        } else {
            failed as f64 / requests as f64
        },
        total_requests: phases.iter().map(|p| p.figures.launched).sum(),
        failed_requests: phases.iter().map(|p| p.figures.failed).sum(),
        errors,
        target_cache_rate: factory.cached_tokens(rate) as f64 / factory.context as f64,
        achieved_cache_rate: (reported && prompt > 0).then(|| cached as f64 / prompt as f64),
        max_cache_rate_gap,
        cache_rate_missed: false,
        server_cache_rate: {
            let rates: Vec<f64> = samples.iter().filter_map(|p| p.server_cache_rate).collect();
            (!rates.is_empty()).then(|| mean(rates.into_iter()))
        },
        prompt_token_drift: {
            let drifts: Vec<f64> = figures
                .iter()
                .filter_map(|f| f.prompt_token_drift)
                .collect();
            (!drifts.is_empty()).then(|| mean(drifts.into_iter()))
        },
        duration_s: match (phases.first(), phases.last()) {
            (Some(first), Some(last)) => last.end_unix_s - first.start_unix_s,
            _ => 0.0,
        },
        ttft_histogram: crate::stats::encode_histogram(&merged),
    }
}

/// vLLM reports cached tokens only when there are some: once the server
/// has reported them for any point of the run, a point where it never did
/// had none cached.
fn settle_cache_rates(points: &mut [PointResult]) {
    if points.iter().any(|p| p.achieved_cache_rate.is_some()) {
        for point in points.iter_mut() {
            point.achieved_cache_rate.get_or_insert(0.0);
        }
    }
    for point in points.iter_mut() {
        point.cache_rate_missed = point.achieved_cache_rate.is_some_and(|achieved| {
            (achieved - point.target_cache_rate).abs() * 100.0 > point.max_cache_rate_gap
        });
    }
}

/// Everything the point loop needs.
struct Sweep<'a> {
    settings: &'a RunSettings,
    ui: Ui,
    dir: RunDir,
    shared: Arc<Shared>,
    progress: Progress,
    results: Results,
    thresholds: Thresholds,
    params: RampParams,
    metrics_url: Option<String>,
    /// How the prefix cache was emptied, once it was.
    flushed_with: Option<String>,
    /// The server reports cached tokens (a missing count means none).
    reports_cached: bool,
}

impl Sweep<'_> {
    /// Appends rows, then records the new lengths in progress.json: the
    /// commit point of everything measured so far.
    fn commit(
        &mut self,
        context: u64,
        records: &[RequestRecord],
        phase: Option<&PhaseRecord>,
    ) -> Result<()> {
        let name = detailed_results(context);
        let length = self.dir.append_csv(&name, records)?;
        self.progress.files.insert(name, length);
        if let Some(phase) = phase {
            let length = self.dir.append_phase(phase)?;
            self.progress.files.insert(phase_metadata(context), length);
            if let Some(current) = &mut self.progress.current {
                current.phases.push(phase.clone());
            }
        }
        self.progress.next_request_id = self.shared.request_ids.load(Ordering::Relaxed);
        self.dir.write_json(store::PROGRESS, &self.progress)
    }

    async fn warm_up(
        &mut self,
        factory: &Arc<PromptFactory>,
        context: u64,
        rate: u32,
    ) -> Result<()> {
        if let Some(how) =
            super::target::flush(&self.shared.client, &self.settings.flush_cache).await?
        {
            self.flushed_with = Some(how);
        }
        let label = PhaseLabel {
            context_size: context,
            cache_hit_rate: rate,
            phase_id: "WARMUP".into(),
            phase_index: 0,
            concurrency: self.settings.init_concurrency,
        };
        let records = run_warmup(
            Arc::clone(&self.shared),
            Arc::clone(factory),
            label,
            &self.ui,
        )
        .await;
        self.commit(context, &records, None)?;
        let failed: Vec<&RequestRecord> = records.iter().filter(|r| !r.ok()).collect();
        if !records.is_empty() && failed.len() == records.len() {
            return Err(Error::Unreachable(format!(
                "every warm-up request of context {context} failed; the first: {}",
                failed[0].error.as_deref().unwrap_or("unknown error")
            )));
        }
        if !failed.is_empty() {
            self.ui.warn(&format!(
                "{} of {} warm-up requests of context {context} failed (first: {}); those \
                 prompts are not cached",
                failed.len(),
                records.len(),
                failed[0].error.as_deref().unwrap_or("unknown error")
            ));
        }
        self.ui.line(&format!(
            "ctx {context}: warmed {} working-set prompts of {} tokens",
            records.len() - failed.len(),
            factory.context
        ));
        Ok(())
    }

    async fn point(
        &mut self,
        factory: &Arc<PromptFactory>,
        context: u64,
        rate: u32,
        start: u32,
        warm_first: bool,
    ) -> Result<PointResult> {
        let this = |c: &CurrentPoint| c.context_size == context && c.cache_hit_rate == rate;
        let mut other: Vec<CurrentPoint> = self.progress.current.take().into_iter().collect();
        let resumed = if let Some(i) = other.iter().position(this) {
            other.remove(i)
        } else if let Some(i) = self.progress.parked.iter().position(this) {
            self.progress.parked.remove(i)
        } else {
            CurrentPoint {
                context_size: context,
                cache_hit_rate: rate,
                start_concurrency: start,
                phases: Vec::new(),
            }
        };
        self.progress.parked.extend(other);
        let outcomes: Vec<_> = resumed.phases.iter().map(PhaseRecord::outcome).collect();
        let mut search = PeakSearch::replay(self.params, resumed.start_concurrency, &outcomes);
        self.progress.current = Some(resumed);
        if warm_first {
            self.warm_up(factory, context, rate).await?;
        }
        while let Some(plan) = search.next() {
            if self.settings.reinit_strategy == ReinitStrategy::PerTest {
                self.warm_up(factory, context, rate).await?;
            }
            let phase_index = self
                .progress
                .current
                .as_ref()
                .map_or(0, |c| c.phases.len() as u32);
            let phase_id = plan.kind.id(plan.concurrency);
            tracing::debug!(
                context,
                rate,
                phase = %phase_id,
                seconds = plan.duration,
                "starting phase"
            );
            let counters_before =
                super::target::counters(&self.shared.client, self.metrics_url.as_deref()).await;
            let live = Arc::new(Live::new());
            let bar = self.ui.phase(
                format!("ctx {context} {rate:>3}% {phase_id}"),
                plan.duration,
                &live,
            );
            let run = run_phase(
                Arc::clone(&self.shared),
                Arc::clone(factory),
                PhaseLabel {
                    context_size: context,
                    cache_hit_rate: rate,
                    phase_id: phase_id.clone(),
                    phase_index,
                    concurrency: plan.concurrency,
                },
                Duration::from_secs_f64(plan.duration),
                live,
            )
            .await;
            bar.finish();
            let counters_after =
                super::target::counters(&self.shared.client, self.metrics_url.as_deref()).await;
            let server_cache_rate = counters_before
                .zip(counters_after)
                .and_then(|(before, after)| rate_between(before, after));
            let figures = PhaseFigures::from_records(
                &run.records,
                self.settings.strict_time_window,
                self.reports_cached,
            );
            let verdict = self.thresholds.check(&figures);
            let clock = self.shared.clock;
            let phase = PhaseRecord {
                context_size: context,
                cache_hit_rate: rate,
                phase_index,
                phase_id: phase_id.clone(),
                kind: plan.kind,
                concurrency: plan.concurrency,
                start_unix_s: clock.unix(run.start),
                window_end_unix_s: clock.unix(run.window_end),
                end_unix_s: clock.unix(run.end),
                planned_duration_s: plan.duration,
                passed: verdict.is_ok(),
                reason: verdict.as_ref().err().cloned(),
                decision_ttft_s: figures.ttft_metric(self.settings.ttft_metric),
                server_cache_rate,
                figures,
            };
            self.commit(context, &run.records, Some(&phase))?;
            let f = &phase.figures;
            if f.completed == 0 && f.errors.keys().all(|kind| kind == "connect") && f.failed > 0 {
                let first = run.records.iter().find_map(|r| r.error.clone());
                return Err(Error::Unreachable(format!(
                    "the server stopped answering during {phase_id} (ctx {context}, {rate}%): \
                     {}; what was measured is saved, so run the same command again to resume \
                     once it is back",
                    first.unwrap_or_default()
                )));
            }
            self.ui.line(&format!(
                "ctx {context} {rate:>3}% {phase_id:<20} {:>6} ok {:>4} failed  input \
                 {:>9.0} tok/s  TTFT p95 {:.3}s  {}",
                f.completed,
                f.failed,
                f.input_tps,
                f.ttft.p95,
                match &verdict {
                    Ok(()) => "pass".to_string(),
                    Err(reason) => format!("over: {reason}"),
                }
            ));
            search.record(phase.outcome());
        }
        let phases = self
            .progress
            .current
            .take()
            .map(|c| c.phases)
            .unwrap_or_default();
        let peak = search.peak().ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("the peak search ended without a peak"))
        })?;
        let gap = self.settings.cache_rate_gap(context);
        let point = point_result(factory, rate, context, &phases, &peak, gap);
        self.results.points.push(point.clone());
        settle_cache_rates(&mut self.results.points);
        let point = self.results.points.last().cloned().unwrap_or(point);
        if let Some(drift) = point.prompt_token_drift
            && drift.abs() >= 0.5
        {
            self.ui.warn(&format!(
                "ctx {context} at {rate}%: the server counted {drift:+.1} tokens per prompt \
                 against the target of {} (prompts were re-tokenised, or the chat template \
                 added tokens)",
                factory.context
            ));
        }
        if point.cache_rate_missed {
            let achieved = point.achieved_cache_rate.unwrap_or(0.0);
            let why = if achieved > point.target_cache_rate {
                "its unique suffixes were already in the server's cache, as when a run with \
                 the same --seed went before against a server that still holds it (flush it \
                 with --flush-cache auto, or change the seed)"
                    .to_string()
            } else {
                format!(
                    "the working set ({} prompts of {} tokens) does not stay in the server's \
                     prefix cache",
                    factory.working_set, factory.context
                )
            };
            self.ui.warn(&format!(
                "ctx {context} at {rate}%: the achieved cache-hit rate {:.1}% misses the \
                 target {:.1}% by more than {gap:.1} percentage points: {why}",
                achieved * 100.0,
                point.target_cache_rate * 100.0,
            ));
        }
        self.dir.write_json(store::RESULTS, &self.results)?;
        self.dir.write_summaries(&self.results.points)?;
        self.progress.completed.push((context, rate));
        self.dir.write_json(store::PROGRESS, &self.progress)?;
        self.ui.line(&format!(
            "ctx {context} {rate:>3}%: peak concurrency {}{}, input {:.0} tok/s, output {:.0} \
             tok/s, TTFT p95 {:.3}s, achieved cache rate {}",
            point.peak_concurrency,
            if point.peak_passed {
                ""
            } else {
                " (no level held the thresholds)"
            },
            point.input_tps,
            point.output_tps,
            point.ttft.p95,
            point
                .achieved_cache_rate
                .map_or("not reported".to_string(), |r| format!("{:.1}%", r * 100.0))
        ));
        Ok(point)
    }
}

/// The final table of all points.
pub fn render_table(points: &[PointResult]) -> String {
    let mut out = format!(
        "{:>8} {:>6} {:>9} {:>6} {:>12} {:>11} {:>9} {:>9} {:>8} {:>6}\n",
        "context",
        "cache%",
        "achieved%",
        "peak",
        "input tok/s",
        "output tok/s",
        "TTFT p50",
        "TTFT p95",
        "ITL avg",
        "err%"
    );
    for p in points {
        out.push_str(&format!(
            "{:>8} {:>6} {:>9} {:>5}{} {:>12.0} {:>11.0} {:>8.3}s {:>8.3}s {:>7.1}ms {:>6.2}\n",
            p.context_size,
            p.cache_hit_rate,
            p.achieved_cache_rate.map_or("-".to_string(), |r| format!(
                "{:.1}{}",
                r * 100.0,
                if p.cache_rate_missed { "*" } else { "" }
            )),
            p.peak_concurrency,
            if p.peak_passed { " " } else { "!" },
            p.input_tps,
            p.output_tps,
            p.ttft.p50,
            p.ttft.p95,
            p.itl.avg * 1e3,
            p.error_rate * 100.0
        ));
    }
    if points.iter().any(|p| p.cache_rate_missed) {
        out.push_str(
            "* the achieved cache-hit rate missed the target: the working set does not stay \
             in the server's cache\n",
        );
    }
    if points.iter().any(|p| !p.peak_passed) {
        out.push_str("! no concurrency level held the thresholds; the best compromise is shown\n");
    }
    out
}

/// Runs the sweep. `argv` is recorded in `run.json`.
pub async fn run(settings: RunSettings, argv: &[String]) -> Result<RunOutcome> {
    let ui = Ui::new(settings.quiet);
    let simulator = if settings.endpoints.is_empty() {
        let server = start_simulator(&settings).await?;
        ui.line(&format!(
            "no --api-endpoint given: started the embedded simulator at {} \
             (--sim-time-scale {})",
            server.url(),
            settings.sim_time_scale
        ));
        Some(server)
    } else {
        None
    };
    let endpoints = match &simulator {
        Some(server) => vec![server.url()],
        None => settings.endpoints.clone(),
    };
    let outcome = sweep(&settings, argv, &ui, endpoints, simulator.is_some()).await;
    if let Some(server) = simulator {
        let _ = server.stop().await;
    }
    outcome
}

async fn sweep(
    settings: &RunSettings,
    argv: &[String],
    ui: &Ui,
    endpoints: Vec<String>,
    embedded: bool,
) -> Result<RunOutcome> {
    let client = Client::new(
        endpoints.clone(),
        settings.api_key.as_deref(),
        Duration::from_secs_f64(settings.request_timeout),
    )?
    .expecting_chunks(settings.output_tokens);
    let served = client.models().await?;
    let model = match &settings.model {
        Some(model) => {
            for (endpoint, models) in endpoints.iter().zip(&served) {
                if !models.contains(model) {
                    return Err(Error::Usage(format!(
                        "{endpoint} does not serve --model {model}; it serves: {}",
                        models.join(", ")
                    )));
                }
            }
            model.clone()
        }
        None => served[0].first().cloned().ok_or_else(|| {
            Error::Unreachable(format!("{} lists no model on /v1/models", endpoints[0]))
        })?,
    };
    let dir = RunDir::open(&settings.output_dir)?;
    // Before anything is read: a damaged progress.json must not stop the
    // restart that its error message suggests.
    if settings.force_restart
        && let Some(moved) = dir.archive()?
    {
        ui.line(&format!(
            "--force-restart: moved the earlier run to {}",
            moved.display()
        ));
    }
    let stored = dir.load_progress()?;
    let seed = settings
        .seed
        .or(stored.as_ref().map(|p| p.workload.seed))
        .unwrap_or_else(|| u64::from(rand::random::<u32>()));
    let workload = settings.workload(&model, seed);
    let (progress, results) = open_progress(&dir, stored, workload, ui)?;
    // The attempt (and so the suffix nonce) is on disk before any request
    // goes out: a crash before the first phase ends must not let the next
    // resume send the same suffixes again.
    dir.write_json(store::PROGRESS, &progress)?;

    let started_at = now_rfc3339();
    let server = super::target::fingerprint(&client, &model).await;
    let metrics_url = match settings.metrics_url.as_deref() {
        Some("auto") => Some(format!("{}/metrics", endpoints[0])),
        other => other.map(str::to_string),
    };
    if let Some(url) = &metrics_url
        && super::target::counters(&client, Some(url)).await.is_none()
    {
        return Err(Error::Usage(format!(
            "--metrics-url {url}: no prefix-cache counters there (vLLM's \
             vllm:prefix_cache_queries_total and _hits_total, or llama.cpp's \
             llamacpp:prompt_tokens_total with --metrics); leave the option out to skip them"
        )));
    }
    let tokenizer_source = Tokenizer::resolve(settings.tokenizer.as_deref()).await?;
    let (content, mode) =
        prompt_content(&client, &tokenizer_source, &model, seed, settings, ui).await?;
    let client = if mode == PromptMode::Chat {
        client.with_path("/v1/chat/completions")
    } else {
        client
    };
    let tokenizer = format!(
        "{}, {} prompts",
        tokenizer_source.describe(),
        format!("{mode:?}").to_lowercase()
    );
    let mut info = RunInfo {
        tool: "cacherate",
        version: env!("CARGO_PKG_VERSION"),
        status: "running",
        started_at: &started_at,
        finished_at: None,
        attempt: progress.attempt,
        command: redacted(argv),
        model: &model,
        endpoints: &endpoints,
        embedded_simulator: embedded,
        server,
        tokenizer: tokenizer.clone(),
        flush_cache: None,
        metrics_url: metrics_url.clone(),
        server_reports_cached_tokens: false,
        seed,
        git: git_info(),
        host: hostname(),
        settings,
    };
    dir.write_json(store::RUN, &info)?;
    let script = write_run_command(&dir, &reproduce_args(settings, &model, seed, embedded))?;
    ui.line(&format!(
        "model {model}, seed {seed}, tokens from {tokenizer}; run directory {} (reproduce: {})",
        dir.path().display(),
        script.display()
    ));

    match ModelShape::resolve(
        Some(&model),
        settings.num_layers,
        settings.num_kv_heads,
        settings.head_dim,
    ) {
        Some(shape) => {
            let estimate = Estimate::new(
                shape,
                settings.kv_cache_quantization,
                &settings.context_sizes,
                Some(settings.working_set_size),
                settings.chunk_size,
            )?;
            ui.line(estimate.render().trim_end());
        }
        None => ui.line(&format!(
            "KV cache estimate: {model} is not in the built-in table; give --num-layers, \
             --num-kv-heads and --head-dim for one"
        )),
    }
    if let Some(capacity) = client
        .metrics()
        .await
        .as_deref()
        .and_then(kv_capacity_from_metrics)
    {
        for &context in &settings.context_sizes {
            let rounded = crate::kvsize::round_up(context, settings.chunk_size);
            let tokens = crate::kvsize::working_set_prompts(
                settings.working_set_size,
                context,
                settings.chunk_size,
            ) * rounded;
            if tokens > capacity {
                ui.warn(&format!(
                    "the working set of context {context} is {tokens} tokens, more than the \
                     server's KV cache of {capacity} tokens: cached prefixes will be evicted \
                     and high cache rates will miss"
                ));
            }
        }
    }

    let shared = Arc::new(Shared {
        client,
        clock: Clock::new(),
        request_ids: AtomicU64::new(progress.next_request_id),
    });
    let suffix_nonce =
        crate::workload::suffix_nonce(seed) ^ progress.attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut sweep = Sweep {
        settings,
        ui: *ui,
        dir: dir.clone(),
        shared,
        progress,
        results,
        thresholds: Thresholds {
            max_ttft: settings.max_ttft,
            ttft_metric: settings.ttft_metric,
            min_tokens_per_req: settings.min_tokens_per_req,
            tokens_per_req_metric: settings.tokens_per_req_metric,
            max_error_rate: settings.max_error_rate,
        },
        params: RampParams {
            start_concurrency: settings.start_concurrency,
            increment: settings.concurrency_increment,
            max_concurrency: settings.max_concurrency,
            max_ttft: settings.max_ttft,
            num_retries: settings.num_retries,
            test_duration: settings.test_duration,
            ramp_duration: settings.ramp_duration,
        },
        metrics_url,
        flushed_with: None,
        reports_cached: false,
    };
    if let Some(&first) = settings.context_sizes.first() {
        let probe = PromptFactory::new(
            content.clone(),
            &FactoryOptions {
                model: &model,
                context_size: first.min(1024),
                chunk_size: settings.chunk_size,
                working_set_size: 1,
                output_tokens: 1,
                seed,
                nonce: suffix_nonce ^ 0x9_40be,
                random_selection: false,
            },
        );
        let id = sweep.shared.request_ids.fetch_add(1, Ordering::Relaxed);
        let body = probe.request(0, id).body;
        sweep.reports_cached =
            super::target::reports_cached_tokens(&sweep.shared.client, body).await;
        if !sweep.reports_cached {
            ui.warn(
                "the server does not report cached prompt tokens \
                 (usage.prompt_tokens_details.cached_tokens), so achieved cache-hit rates \
                 are unknown; vLLM reports them with --enable-prompt-tokens-details",
            );
        }
        info.server_reports_cached_tokens = sweep.reports_cached;
    }
    for &context in &settings.context_sizes {
        let factory = Arc::new(PromptFactory::new(
            content.clone(),
            &FactoryOptions {
                model: &model,
                context_size: context,
                chunk_size: settings.chunk_size,
                working_set_size: settings.working_set_size,
                output_tokens: settings.output_tokens,
                seed,
                nonce: suffix_nonce,
                random_selection: settings.random_working_set_selection,
            },
        ));
        let mut warmed = false;
        let mut previous_peak = None;
        for &rate in &settings.cache_hit_rates {
            let done = sweep
                .results
                .points
                .iter()
                .find(|p| p.context_size == context && p.cache_hit_rate == rate);
            if let Some(done) = done {
                previous_peak = Some(done.peak_concurrency);
                continue;
            }
            let warm = match settings.reinit_strategy {
                ReinitStrategy::Once => !warmed,
                ReinitStrategy::PerCacheRate => true,
                ReinitStrategy::PerTest => false,
            };
            let start = previous_peak.unwrap_or(settings.start_concurrency);
            let point = sweep.point(&factory, context, rate, start, warm).await?;
            warmed = true;
            previous_peak = Some(point.peak_concurrency);
        }
    }
    info.flush_cache = sweep.flushed_with.clone();
    info.status = "complete";
    info.finished_at = Some(now_rfc3339());
    dir.write_json(store::RUN, &info)?;
    let mut points = sweep.results.points.clone();
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    Ok(RunOutcome {
        dir: dir.path().to_path_buf(),
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_comes_from_vllm_cache_config_labels() {
        let metrics = "# HELP x\nvllm:cache_config_info{block_size=\"16\",engine=\"0\",\
                       num_gpu_blocks=\"1000\"} 1.0\n";
        assert_eq!(kv_capacity_from_metrics(metrics), Some(16_000));
        assert_eq!(kv_capacity_from_metrics("vllm:other 1\n"), None);
    }

    #[test]
    fn api_keys_never_reach_run_json() {
        let argv: Vec<String> = ["cacherate", "run", "--api-key", "sk-1", "--api-key=sk-2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            redacted(&argv),
            ["cacherate", "run", "--api-key", "***", "--api-key=***"]
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
