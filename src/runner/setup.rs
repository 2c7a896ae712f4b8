//! Everything before the first point of a run: the client and the model,
//! the run directory and the resume decision, the checks that refuse a
//! run the server cannot serve, the prompt content, the reproduce script,
//! the KV-cache estimate and warnings, what `cacherate doctor` finds (its
//! problems warned of, its cached-token probe the run's), and `run.json`
//! once those facts are known. What the point loop needs of
//! them, [`Setup`] answers.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::commit::RunFiles;
use super::phase::{Breaker, Judging, Shared};
use super::plan::{ControllerParams, Plan, PlanOptions, RampParams, SustainedParams};
use super::provenance::run_info;
use super::reproduce::{reproduce_args, write_run_command};
use super::stop::Stop;
use super::target::{kv_block_size_from_metrics, kv_capacity_from_metrics};
use crate::client::{Client, Clock};
use crate::error::{Error, Result};
use crate::kvsize::{Estimate, ModelShape};
use crate::progress::Ui;
use crate::serve::Server;
use crate::settings::{ChunkTimes, FlushCache, Mode, PromptMode, RunSettings};
use crate::stats::Thresholds;
use crate::store::{
    self, AtPoint, Fingerprint, Journal, PointId, Progress, Results, RunDir, RunInfo,
    SCHEMA_VERSION, ServedServer, Workload,
};
use crate::workload::content::prompt_content;
use crate::workload::tokenizer::Tokenizer;
use crate::workload::{Content, FactoryOptions, PromptFactory};

/// A server block when the server does not say (vLLM's default).
const DEFAULT_SERVER_BLOCK: u64 = 16;

/// Where a run's requests go.
pub enum Target<'a> {
    /// The embedded simulator, started for the run.
    Embedded,
    /// The endpoints given, to servers cacherate does not manage.
    Given,
    /// The server `--serve` started (at the one endpoint).
    Served(&'a Server),
}

/// What the point loop needs of everything decided before the first point.
pub struct Setup<'a> {
    pub settings: &'a RunSettings,
    pub ui: Ui,
    /// What every phase shares: the client, the clock, the request ids, the
    /// breaker, the stop, the journal.
    pub shared: Arc<Shared>,
    model: String,
    seed: u64,
    content: Content,
    /// Mixed into every suffix head, so no attempt repeats a suffix.
    suffix_nonce: u64,
    metrics_url: Option<String>,
    /// The server reports cached tokens (a missing count means none).
    reports_cached: bool,
    /// The server's KV block, in tokens: the default achieved-vs-target
    /// tolerance is one block as a share of the context.
    server_block_tokens: u64,
    plans: PlanOptions,
}

/// What `cacherate doctor` would say of the first endpoint, its problems
/// as warnings (no flush: a resumed run keeps what it warmed), and the
/// server's fingerprint from its facts.
async fn examine(
    settings: &RunSettings,
    client: &Client,
    model: &str,
    ui: &Ui,
) -> (crate::doctor::Findings, store::Fingerprint) {
    let findings = crate::doctor::examine(
        client,
        &crate::doctor::Options {
            model: Some(model),
            tokenizer: settings.tokenizer.as_deref(),
            try_flush: false,
            text_prompts: matches!(settings.prompt_mode, PromptMode::Text | PromptMode::Chat),
        },
    )
    .await;
    for problem in findings.problems() {
        ui.warn(&problem.warning());
    }
    let server = match findings.server.clone() {
        Some(info) => super::target::fingerprint_of(info, model),
        None => super::target::fingerprint(client, model).await,
    };
    (findings, server)
}

/// The prompts' content and the client that sends them (chat prompts go to
/// `/v1/chat/completions`), and the tokenizer as `run.json` names it.
async fn prompts(
    settings: &RunSettings,
    client: Client,
    model: &str,
    seed: u64,
    ui: &Ui,
) -> Result<(Client, Content, String)> {
    let tokenizer_source = Tokenizer::resolve(settings.tokenizer.as_deref()).await?;
    let (content, mode) = prompt_content(
        &client,
        &tokenizer_source,
        model,
        seed,
        settings.prompt_mode,
        |text| ui.warn(text),
    )
    .await?;
    let client = if mode == PromptMode::Chat {
        client.with_path("/v1/chat/completions")
    } else {
        client
    };
    let tokenizer = format!("{}, {} prompts", tokenizer_source.describe(), mode);
    Ok((client, content, tokenizer))
}

impl<'a> Setup<'a> {
    /// Does everything before the first point: on success the run
    /// directory holds `progress.json` and `run.json`, and the server
    /// serves what the run needs.
    pub async fn prepare(
        settings: &'a RunSettings,
        argv: &[String],
        ui: &Ui,
        endpoints: Vec<String>,
        target: Target<'_>,
        stop: &Stop,
    ) -> Result<(Setup<'a>, RunFiles)> {
        let embedded = matches!(target, Target::Embedded);
        let (client, endpoints, metrics_url) = connect(settings, endpoints)?;
        let model = choose_model(settings, &client, &endpoints).await?;
        let (dir, progress, results) = open_run_dir(settings, &model, ui)?;
        // From here on the server's output goes to the run directory (an
        // earlier run's log was moved aside with it, if it was).
        if let Target::Served(server) = target {
            server.attach_log(&dir.file(store::SERVER_LOG))?;
        }
        let seed = progress.workload.seed;
        let run = run_info(settings, argv)?;
        let (findings, server) = examine(settings, &client, &model, ui).await;
        check_context_fits(settings, &server, &endpoints[0])?;
        check_metrics_url(&client, metrics_url.as_deref()).await?;
        let (client, content, tokenizer) = prompts(settings, client, &model, seed, ui).await?;
        let script = write_run_command(&dir, &reproduce_args(settings, &model, seed, embedded))?;
        ui.line(&format!(
            "model {model}, seed {seed}, tokens from {tokenizer}; run directory {} (reproduce: \
             {})",
            dir.path().display(),
            script.display()
        ));
        print_estimate(settings, &model, ui)?;
        let server_block_tokens = check_kv_capacity(settings, &client, ui).await;
        let mut setup = Setup {
            settings,
            ui: *ui,
            shared: shared(settings, client, &progress, stop),
            model,
            seed,
            content,
            suffix_nonce: crate::workload::suffix_nonce(seed)
                ^ progress.attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            metrics_url,
            reports_cached: false,
            server_block_tokens,
            plans: plan_options(settings),
        };
        setup.reports_cached = findings.reports_cached_tokens();
        // Written once the probe says what the server reports, so a run
        // still going (or interrupted) says it too.
        let serve = match target {
            Target::Served(served) => Some(served_server(served, &server)),
            Target::Embedded | Target::Given => None,
        };
        let info = RunInfo {
            serve,
            attempt: Some(progress.attempt),
            model: Some(setup.model.clone()),
            endpoints,
            embedded_simulator: embedded,
            server: Some(server),
            tokenizer: Some(tokenizer),
            metrics_url: setup.metrics_url.clone(),
            server_reports_cached_tokens: Some(setup.reports_cached),
            seed: Some(seed),
            ..run
        };
        let summary_rows = settings.chunk_times == ChunkTimes::Summary;
        let mut files = RunFiles::new(dir, progress, results, RunInfo::default(), summary_rows);
        files.write_info(info)?;
        Ok((setup, files))
    }

    /// The thresholds every phase is held against.
    pub fn thresholds(&self) -> Thresholds {
        let s = self.settings;
        Thresholds {
            max_ttft: s.max_ttft,
            ttft_metric: s.ttft_metric,
            min_tokens_per_req: s.min_tokens_per_req,
            tokens_per_req_metric: s.tokens_per_req_metric,
            max_error_rate: s.max_error_rate,
        }
    }

    /// How a finished load is judged.
    pub fn judging(&self) -> Judging {
        Judging {
            clock: self.shared.clock,
            thresholds: self.thresholds(),
            strict_time_window: self.settings.strict_time_window,
            reports_cached: self.reports_cached,
        }
    }

    /// The plan of point `id`; a peak search starts at `start`.
    pub fn plan(&self, id: PointId, start: u32) -> Result<Plan> {
        Plan::for_point(&self.plans, id, start)
    }

    /// The prompts of `context`'s points.
    pub fn factory(&self, context: u64) -> Arc<PromptFactory> {
        let s = self.settings;
        Arc::new(PromptFactory::new(
            self.content.clone(),
            &FactoryOptions {
                model: &self.model,
                context_size: context,
                chunk_size: s.chunk_size,
                working_set_size: s.working_set_size,
                output_tokens: s.output_tokens,
                seed: self.seed,
                nonce: self.suffix_nonce,
                random_selection: s.random_working_set_selection,
            },
        ))
    }

    /// Percentage points a point of `context` may miss its target cache
    /// rate by.
    pub fn cache_rate_gap(&self, context: u64) -> f64 {
        self.settings
            .cache_rate_gap(context, self.server_block_tokens)
    }

    /// Where the server's prefix-cache counters are read, if anywhere.
    pub fn metrics_url(&self) -> Option<&str> {
        self.metrics_url.as_deref()
    }

    /// The samples a finished point is to have (the gate's extra samples).
    pub fn sample_target(&self, id: PointId) -> Option<u32> {
        self.settings
            .sample_targets
            .iter()
            .find(|&&(context, rate, _)| PointId::new(context, rate) == id)
            .map(|&(_, _, target)| target)
    }
}

/// `run.json`'s record of the server `--serve` started, with what it says
/// it is.
fn served_server(server: &Server, fingerprint: &Fingerprint) -> ServedServer {
    ServedServer {
        command: server.command().to_string(),
        pid: Some(server.pid()),
        started_at: Some(humantime::format_rfc3339_seconds(server.started_at()).to_string()),
        ready_after_s: Some(server.ready_after().as_secs_f64()),
        kind: Some(fingerprint.kind.clone()),
        version: fingerprint.version.clone(),
        log: Some(store::SERVER_LOG.to_string()),
    }
}

/// The client of `endpoints` (the settings' or the embedded simulator's),
/// the endpoints as it names them (without credentials) and the metrics
/// URL.
fn connect(
    settings: &RunSettings,
    endpoints: Vec<String>,
) -> Result<(Client, Vec<String>, Option<String>)> {
    let mut client = Client::new(
        endpoints,
        settings.api_key.as_deref(),
        Duration::from_secs_f64(settings.request_timeout),
    )?
    .expecting_chunks(settings.output_tokens);
    // From here on the endpoints are named without their credentials.
    let endpoints = client.endpoints().to_vec();
    if let FlushCache::Url(url) = &settings.flush_cache {
        client.keep_credentials(url);
    }
    let metrics_url = match settings.metrics_url.as_deref() {
        Some("auto") => Some(format!("{}/metrics", endpoints[0])),
        other => other.map(|url| client.keep_credentials(url)),
    };
    Ok((client, endpoints, metrics_url))
}

/// `--model`, which every endpoint must serve, else the first model the
/// first endpoint lists.
async fn choose_model(
    settings: &RunSettings,
    client: &Client,
    endpoints: &[String],
) -> Result<String> {
    let served = client.models().await?;
    match &settings.model {
        Some(model) => {
            for (endpoint, models) in endpoints.iter().zip(&served) {
                if !models.contains(model) {
                    return Err(Error::Usage(format!(
                        "{endpoint} does not serve --model {model}; it serves: {}",
                        models.join(", ")
                    )));
                }
            }
            Ok(model.clone())
        }
        None => served[0].first().cloned().ok_or_else(|| {
            Error::Unreachable(format!("{} lists no model on /v1/models", endpoints[0]))
        }),
    }
}

/// The run directory, resumed or fresh; `progress.json` is written before
/// any request goes out.
fn open_run_dir(
    settings: &RunSettings,
    model: &str,
    ui: &Ui,
) -> Result<(RunDir, Progress, Results)> {
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
    let (progress, results) = open_progress(&dir, stored, workload(settings, model, seed), ui)?;
    // The attempt (and so the suffix nonce) is on disk before any request
    // goes out: a crash before the first phase ends must not let the next
    // resume send the same suffixes again.
    dir.write_json(store::PROGRESS, &progress)?;
    dir.remove_journals()?;
    Ok((dir, progress, results))
}

/// Refuses a context the server cannot hold, before building prompts it
/// would refuse.
fn check_context_fits(settings: &RunSettings, server: &Fingerprint, endpoint: &str) -> Result<()> {
    let Some(limit) = server.max_model_len else {
        return Ok(());
    };
    let needed = |context: u64| {
        crate::kvsize::round_up(context, settings.chunk_size) + u64::from(settings.output_tokens)
    };
    match settings
        .context_sizes
        .iter()
        .find(|&&context| needed(context) > limit)
    {
        Some(&context) => Err(Error::Usage(format!(
            "--context-sizes {context} needs {} tokens (the prompt rounded up to --chunk-size \
             {}, plus --output-tokens {}), more than the {limit} tokens {endpoint} accepts per \
             request; use a smaller context or start the server with a longer one",
            needed(context),
            settings.chunk_size,
            settings.output_tokens,
        ))),
        None => Ok(()),
    }
}

/// Refuses a `--metrics-url` without prefix-cache counters.
async fn check_metrics_url(client: &Client, url: Option<&str>) -> Result<()> {
    match url {
        Some(url) if super::target::counters(client, Some(url)).await.is_none() => {
            Err(Error::Usage(format!(
                "--metrics-url {}: no prefix-cache counters there (vLLM's \
                 vllm:prefix_cache_queries_total and _hits_total, or llama.cpp's \
                 llamacpp:prompt_tokens_total with --metrics); leave the option out to skip them",
                crate::settings::mask_password(url)
            )))
        }
        _ => Ok(()),
    }
}

/// Prints the KV-cache estimate (SPEC §2.4) and the rates the chunk size
/// cannot express.
fn print_estimate(settings: &RunSettings, model: &str, ui: &Ui) -> Result<()> {
    match ModelShape::resolve(
        Some(model),
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
    for warning in effective_target_warnings(settings) {
        ui.warn(&warning);
    }
    Ok(())
}

/// Warns of a working set larger than the server's KV cache (when its
/// metrics say how large that is); returns the server's KV block in
/// tokens.
async fn check_kv_capacity(settings: &RunSettings, client: &Client, ui: &Ui) -> u64 {
    let metrics = client.metrics().await;
    if let Some(capacity) = metrics.as_deref().and_then(kv_capacity_from_metrics) {
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
    metrics
        .as_deref()
        .and_then(kv_block_size_from_metrics)
        .unwrap_or(DEFAULT_SERVER_BLOCK)
}

/// What every phase shares; request ids go on from the stored counter.
fn shared(settings: &RunSettings, client: Client, progress: &Progress, stop: &Stop) -> Arc<Shared> {
    Arc::new(Shared {
        client,
        clock: Clock::new(),
        request_ids: AtomicU64::new(progress.next_request_id),
        breaker: Breaker::new(
            settings.circuit_breaker_failures,
            Duration::from_secs_f64(settings.circuit_breaker_window),
        ),
        stop: stop.clone(),
        journal: Journal::new(settings.chunk_times == ChunkTimes::Summary),
    })
}

/// The parameters of every plan a point may follow.
fn plan_options(settings: &RunSettings) -> PlanOptions {
    let s = settings;
    PlanOptions {
        mode: s.mode,
        fixed_load: s.fixed_load.clone(),
        ramp: RampParams {
            start_concurrency: s.start_concurrency,
            increment: s.concurrency_increment,
            max_concurrency: s.max_concurrency,
            max_ttft: s.max_ttft,
            num_retries: s.num_retries,
            test_duration: s.test_duration,
            ramp_duration: s.ramp_duration,
            sample_duration: s.sample_duration,
        },
        sustained: SustainedParams::new(
            ControllerParams {
                start_concurrency: s.start_concurrency,
                increment: s.concurrency_increment,
                max_concurrency: s.max_concurrency,
                max_ttft: s.max_ttft,
                min_tokens_per_req: s.min_tokens_per_req,
            },
            s.test_duration,
            s.assessment_period,
        ),
    }
}

/// Requested rates the chunk size cannot express: the prefix a rate gives
/// is rounded down to the chunk, so e.g. 25 % of 512 tokens with
/// `--chunk-size 256` sends 0 %. One message per (context, rate), with the
/// largest chunk size (halving) that would send the rate within 0.5 pp.
pub fn effective_target_warnings(settings: &RunSettings) -> Vec<String> {
    let effective = |context: u64, rate: u32, chunk: u64| {
        let rounded = crate::kvsize::round_up(context, chunk);
        let cached = rounded * u64::from(rate) / 100 / chunk * chunk;
        100.0 * cached as f64 / rounded as f64
    };
    let mut warnings = Vec::new();
    for &context in &settings.context_sizes {
        for &rate in &settings.cache_hit_rates {
            let sent = effective(context, rate, settings.chunk_size);
            if (sent - f64::from(rate)).abs() < 0.5 {
                continue;
            }
            let mut chunk = settings.chunk_size;
            while chunk > 1 && (effective(context, rate, chunk) - f64::from(rate)).abs() >= 0.5 {
                chunk /= 2;
            }
            warnings.push(format!(
                "{rate} % of {context} tokens with --chunk-size {} sends {sent:.1} %: use \
                 --chunk-size {chunk} or less to send {rate} % (the table and files show the \
                 effective target)",
                settings.chunk_size
            ));
        }
    }
    warnings
}

/// Decides between resuming `stored` (the run directory's progress, if
/// any) and starting fresh; a run of other options is moved aside.
fn open_progress(
    dir: &RunDir,
    stored: Option<Progress>,
    workload: Workload,
    ui: &Ui,
) -> Result<(Progress, Results)> {
    let where_ = dir.path().display();
    let Some(existing) = stored else {
        if let Some(moved) = dir.archive()? {
            ui.warn(&format!(
                "{where_} held files of a run without progress.json; moved them to {}",
                moved.display()
            ));
        }
        return Ok(fresh(workload));
    };
    let differences = workload.differences(&existing.workload);
    if differences.is_empty() {
        return resume(dir, existing, ui);
    }
    let moved = dir.archive()?.ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "{where_} had a progress.json but nothing to move aside"
        ))
    })?;
    ui.warn(&format!(
        "the options differ from the run in {where_} ({}), so it cannot be resumed; its files \
         were moved to {} and a new run starts",
        differences.join(", "),
        moved.display()
    ));
    Ok(fresh(workload))
}

/// A run of `workload` with nothing measured yet.
fn fresh(workload: Workload) -> (Progress, Results) {
    let progress = Progress {
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
    let results = Results {
        schema_version: SCHEMA_VERSION,
        points: Vec::new(),
    };
    (progress, results)
}

/// Resumes the run `progress` describes: its files cut back to what it
/// committed, the requests a killed run completed in its last phase kept
/// (their ids are not given out again).
fn resume(dir: &RunDir, mut progress: Progress, ui: &Ui) -> Result<(Progress, Results)> {
    dir.truncate_to(&progress.files)?;
    let recovered = dir.recover_requests(&mut progress.files)?;
    if let Some(id) = recovered.max_request_id {
        progress.next_request_id = progress.next_request_id.max(id + 1);
    }
    let results = dir.load_results()?;
    progress.attempt += 1;
    let in_flight = progress
        .current
        .as_ref()
        .map(|c| format!(", and {} phases of {}", c.phases.len(), c.point_id()))
        .unwrap_or_default();
    let kept = if recovered.requests > 0 {
        format!(
            "; kept the {} completed requests of the phase it did not finish (phase ids ending \
             in {})",
            recovered.requests,
            store::UNFINISHED_SUFFIX
        )
    } else {
        String::new()
    };
    ui.line(&format!(
        "resuming the run in {}: {} points done{in_flight}{kept}",
        dir.path().display(),
        results.points.len()
    ));
    Ok((progress, results))
}

/// The options a resumed run must share with the stored one.
pub fn workload(settings: &RunSettings, model: &str, seed: u64) -> Workload {
    let target = if settings.endpoints.is_empty() {
        vec![format!(
            "embedded simulator, --sim-time-scale {}",
            settings.sim_time_scale
        )]
    } else {
        settings
            .endpoints
            .iter()
            .map(|url| crate::settings::mask_password(url))
            .collect()
    };
    Workload {
        target,
        model: model.to_string(),
        prompt_mode: settings.prompt_mode,
        tokenizer: settings.tokenizer.clone(),
        working_set_size: settings.working_set_size,
        output_tokens: settings.output_tokens,
        max_ttft: settings.max_ttft,
        ttft_metric: settings.ttft_metric,
        test_duration: settings.test_duration,
        ramp_duration: settings.ramp_duration,
        num_retries: settings.num_retries,
        start_concurrency: settings.start_concurrency,
        concurrency_increment: settings.concurrency_increment,
        max_concurrency: settings.max_concurrency,
        init_concurrency: settings.init_concurrency,
        cache_hit_rates: settings.cache_hit_rates.clone(),
        chunk_size: settings.chunk_size,
        reinit_strategy: settings.reinit_strategy,
        random_working_set_selection: settings.random_working_set_selection,
        seed,
        strict_time_window: settings.strict_time_window,
        min_tokens_per_req: settings.min_tokens_per_req,
        tokens_per_req_metric: settings.tokens_per_req_metric,
        max_error_rate: settings.max_error_rate,
        mode: settings.mode,
        fixed_load: settings.fixed_load.clone(),
        warmup_fraction: settings.warmup_fraction,
        sample_duration: settings.sample_duration,
        assessment_period: (settings.mode == Mode::Sustained).then_some(settings.assessment_period),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn quick(extra: &[&str]) -> RunSettings {
        let mut argv = vec!["cacherate", "run", "--profile", "quick"];
        argv.extend_from_slice(extra);
        let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("run command");
        };
        let dir = tempfile::tempdir().unwrap();
        RunSettings::resolve(*args, dir.path()).unwrap()
    }

    #[test]
    fn only_sustained_mode_stores_its_assessment_period() {
        let s = quick(&["--mode", "sustained", "--assessment-period", "5"]);
        assert_eq!(workload(&s, "m", 1).assessment_period, Some(5.0));
        assert_eq!(workload(&quick(&[]), "m", 1).assessment_period, None);
    }
}
