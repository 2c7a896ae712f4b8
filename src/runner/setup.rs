//! Everything before the first point of a run, in order: the client and
//! the model, the run directory (opened or resumed: `resume.rs`), the
//! checks of the server (`checks.rs`), the prompt content, the reproduce
//! script, and `run.json` once those facts are known. What the point loop
//! needs of them, [`Setup`] answers.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::checks::{
    check_context_fits, check_kv_capacity, check_metrics_url, examine, print_estimate,
};
use super::commit::RunFiles;
use super::phase::{Breaker, Judging, Shared};
use super::plan::{ControllerParams, Lengthening, Plan, PlanOptions, RampParams, SustainedParams};
use super::provenance::run_info;
use super::reproduce::{reproduce_args, write_run_command};
use super::resume::open_run_dir;
use super::stop::Stop;
use crate::client::{Client, Clock};
use crate::error::{Error, Result};
use crate::progress::Ui;
use crate::serve::Server;
use crate::settings::{ChunkTimes, FlushCache, PromptMode, RunSettings};
use crate::stats::{SampleSizing, Thresholds};
use crate::store::{self, Fingerprint, Journal, PointId, Progress, RunInfo, ServedServer};
use crate::workload::content::prompt_content;
use crate::workload::tokenizer::Tokenizer;
use crate::workload::{Content, FactoryOptions, PromptFactory};

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

/// What a run's samples must span and count.
pub(super) fn sample_sizing(settings: &RunSettings) -> SampleSizing {
    SampleSizing {
        min_cycles: settings.min_sample_cycles,
        min_requests: settings.min_sample_requests,
    }
}

/// How sample phases are lengthened, if they are (`--lengthen-samples`).
pub(super) fn lengthening(settings: &RunSettings) -> Option<Lengthening> {
    settings.lengthen_samples.then(|| Lengthening {
        sizing: sample_sizing(settings),
        warmup_fraction: settings.warmup_fraction,
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
            lengthening: lengthening(s),
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
