//! What a run checks of the server before its first point: what
//! `cacherate doctor` finds, a context the server cannot hold, a
//! `--metrics-url` without counters, the KV-cache estimate and the
//! working set against the server's KV cache.

use super::target::{kv_block_size_from_metrics, kv_capacity_from_metrics};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::kvsize::{Estimate, ModelShape};
use crate::progress::Ui;
use crate::settings::{PromptMode, RunSettings};
use crate::store::{self, Fingerprint};

/// A server block when the server does not say (vLLM's default).
const DEFAULT_SERVER_BLOCK: u64 = 16;

/// What `cacherate doctor` would say of the first endpoint, its problems
/// as warnings (no flush: a resumed run keeps what it warmed), and the
/// server's fingerprint from its facts.
pub(super) async fn examine(
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

/// Refuses a context the server cannot hold, before building prompts it
/// would refuse.
pub(super) fn check_context_fits(
    settings: &RunSettings,
    server: &Fingerprint,
    endpoint: &str,
) -> Result<()> {
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
pub(super) async fn check_metrics_url(client: &Client, url: Option<&str>) -> Result<()> {
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
pub(super) fn print_estimate(settings: &RunSettings, model: &str, ui: &Ui) -> Result<()> {
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
pub(super) async fn check_kv_capacity(settings: &RunSettings, client: &Client, ui: &Ui) -> u64 {
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
