//! `cacherate run`: the sweep over context sizes and cache rates, top to
//! bottom — target, resume decision, provenance, KV estimate, prompt
//! content, then each point in turn ([`super::point`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::embedded::EmbeddedSim;
use super::phase::{Breaker, Shared};
use super::plan::RampParams;
use super::point::Sweep;
use super::provenance::{git_info, hostname, now_rfc3339, redacted};
use super::reproduce::{reproduce_args, write_run_command};
use super::stop::Stop;
use super::target::{kv_block_size_from_metrics, kv_capacity_from_metrics};
use crate::client::{Client, Clock};
use crate::error::{Error, Result};
use crate::kvsize::{Estimate, ModelShape};
use crate::progress::Ui;
use crate::settings::{ChunkTimes, FlushCache, PromptMode, ReinitStrategy, RunSettings};
use crate::stats::Thresholds;
use crate::store::{
    self, Journal, PointResult, PointStatus, Progress, Results, RunDir, RunInfo, RunStatus,
    SCHEMA_VERSION, Workload,
};
use crate::workload::content::prompt_content;
use crate::workload::tokenizer::Tokenizer;
use crate::workload::{FactoryOptions, PromptFactory};

/// A server block when the server does not say (vLLM's default).
const DEFAULT_SERVER_BLOCK: u64 = 16;

/// What a finished run leaves.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub points: Vec<PointResult>,
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
                let moved = dir.archive()?.ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!(
                        "{where_} had a progress.json but nothing to move aside"
                    ))
                })?;
                ui.warn(&format!(
                    "the options differ from the run in {where_} ({}), so it cannot be \
                     resumed; its files were moved to {} and a new run starts",
                    differences.join(", "),
                    moved.display()
                ));
                return Ok((fresh(workload), empty));
            }
            let mut progress = existing;
            // Requests a killed run completed in its last phase are kept;
            // their ids are not given out again.
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
                .map(|c| {
                    format!(
                        ", and {} phases of ctx {} at {}%",
                        c.phases.len(),
                        c.context_size,
                        c.cache_hit_rate
                    )
                })
                .unwrap_or_default();
            let kept = if recovered.requests > 0 {
                format!(
                    "; kept the {} completed requests of the phase it did not finish (phase \
                     ids ending in {})",
                    recovered.requests,
                    store::UNFINISHED_SUFFIX
                )
            } else {
                String::new()
            };
            ui.line(&format!(
                "resuming the run in {where_}: {} points done{in_flight}{kept}",
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

/// Runs the sweep. `argv` is recorded in `run.json`.
pub async fn run(settings: RunSettings, argv: &[String]) -> Result<RunOutcome> {
    run_until(settings, argv, &Stop::new()).await
}

/// Runs the sweep until it is done or `stop` ends it
/// ([`Error::Interrupted`], with everything measured saved).
pub async fn run_until(settings: RunSettings, argv: &[String], stop: &Stop) -> Result<RunOutcome> {
    let ui = Ui::new(settings.quiet);
    let simulator = if settings.endpoints.is_empty() {
        let server = EmbeddedSim::start(&settings).await?;
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
    let outcome = sweep(&settings, argv, &ui, endpoints, simulator.is_some(), stop).await;
    if let Some(server) = simulator {
        server.stop().await;
    }
    outcome
}

async fn sweep(
    settings: &RunSettings,
    argv: &[String],
    ui: &Ui,
    endpoints: Vec<String>,
    embedded: bool,
    stop: &Stop,
) -> Result<RunOutcome> {
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
    let workload = super::setup::workload(settings, &model, seed);
    let (progress, results) = open_progress(&dir, stored, workload, ui)?;
    // The attempt (and so the suffix nonce) is on disk before any request
    // goes out: a crash before the first phase ends must not let the next
    // resume send the same suffixes again.
    dir.write_json(store::PROGRESS, &progress)?;
    dir.remove_journals()?;

    let started_at = now_rfc3339();
    let server = super::target::fingerprint(&client, &model).await;
    // Ask before building prompts the server would refuse.
    if let Some(limit) = server.max_model_len {
        let needed = |context: u64| {
            crate::kvsize::round_up(context, settings.chunk_size)
                + u64::from(settings.output_tokens)
        };
        if let Some(&context) = settings
            .context_sizes
            .iter()
            .find(|&&context| needed(context) > limit)
        {
            return Err(Error::Usage(format!(
                "--context-sizes {context} needs {} tokens (the prompt rounded up to \
                 --chunk-size {}, plus --output-tokens {}), more than the {limit} tokens \
                 {} accepts per request; use a smaller context or start the server with a \
                 longer one",
                needed(context),
                settings.chunk_size,
                settings.output_tokens,
                endpoints[0]
            )));
        }
    }
    if let Some(url) = &metrics_url
        && super::target::counters(&client, Some(url)).await.is_none()
    {
        return Err(Error::Usage(format!(
            "--metrics-url {}: no prefix-cache counters there (vLLM's \
             vllm:prefix_cache_queries_total and _hits_total, or llama.cpp's \
             llamacpp:prompt_tokens_total with --metrics); leave the option out to skip them",
            crate::settings::mask_password(url)
        )));
    }
    let tokenizer_source = Tokenizer::resolve(settings.tokenizer.as_deref()).await?;
    let (content, mode) = prompt_content(
        &client,
        &tokenizer_source,
        &model,
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
    let mut info = RunInfo {
        schema_version: None,
        tool: Some("cacherate".into()),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        status: Some(RunStatus::Running),
        started_at: Some(started_at),
        finished_at: None,
        attempt: Some(progress.attempt),
        command: redacted(argv),
        model: Some(model.clone()),
        endpoints: endpoints.clone(),
        embedded_simulator: embedded,
        server: Some(server),
        tokenizer: Some(tokenizer.clone()),
        flush_cache: None,
        metrics_url: metrics_url.clone(),
        server_reports_cached_tokens: Some(false),
        seed: Some(seed),
        git: git_info(),
        host: hostname(),
        settings: serde_json::to_value(settings).map_err(anyhow::Error::from)?,
    };
    info.write(&dir)?;
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
    for warning in effective_target_warnings(settings) {
        ui.warn(&warning);
    }
    let metrics = client.metrics().await;
    let server_block_tokens = metrics
        .as_deref()
        .and_then(kv_block_size_from_metrics)
        .unwrap_or(DEFAULT_SERVER_BLOCK);
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

    let shared = Arc::new(Shared {
        client,
        clock: Clock::new(),
        request_ids: AtomicU64::new(progress.next_request_id),
        breaker: Breaker::new(
            settings.circuit_breaker_failures,
            Duration::from_secs_f64(settings.circuit_breaker_window),
        ),
        stop: stop.clone(),
        journal: Journal::new(settings.chunk_times == ChunkTimes::Summary),
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
            sample_duration: settings.sample_duration,
        },
        metrics_url,
        flushed_with: None,
        reports_cached: false,
        server_block_tokens,
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
        info.server_reports_cached_tokens = Some(sweep.reports_cached);
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
        // A gate adding samples (`sample_targets`) changes nothing else: a
        // point that errored keeps its error verdict.
        let extending = !settings.sample_targets.is_empty();
        for &rate in &settings.cache_hit_rates {
            // A point that errored is measured again.
            let done = sweep
                .results
                .points
                .iter()
                .find(|p| {
                    p.context_size == context
                        && p.cache_hit_rate == rate
                        && (p.status == PointStatus::Ok || extending)
                })
                .map(|p| p.peak_concurrency);
            if let Some(done) = done {
                previous_peak = Some(done);
                if let Some(&(_, _, target)) = settings
                    .sample_targets
                    .iter()
                    .find(|(c, r, _)| *c == context && *r == rate)
                {
                    sweep.extend_point(&factory, context, rate, target).await?;
                    warmed = true;
                }
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
            if point.status == PointStatus::Ok {
                previous_peak = Some(point.peak_concurrency);
            }
            // The breaker stopped the point: go on if the server still
            // answers, else stop here (the same command resumes).
            if sweep.shared.breaker.tripped().is_some()
                && let Err(e) = sweep.shared.client.models().await
            {
                return Err(Error::Unreachable(format!(
                    "the circuit breaker stopped ctx {context} at {rate}% and the server no \
                     longer answers ({e}); what was measured is saved, so run the same \
                     command again to resume once it is back"
                )));
            }
        }
    }
    info.flush_cache = sweep.flushed_with.clone();
    // Errored points are measured again by the same command: the run is
    // not finished until they are.
    let errored = sweep
        .results
        .points
        .iter()
        .filter(|p| p.status == PointStatus::Error)
        .count();
    info.status = Some(if errored == 0 {
        RunStatus::Complete
    } else {
        RunStatus::CompleteWithErrors
    });
    info.finished_at = Some(now_rfc3339());
    info.write(&dir)?;
    let mut points = sweep.results.points.clone();
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    Ok(RunOutcome {
        dir: dir.path().to_path_buf(),
        points,
    })
}
