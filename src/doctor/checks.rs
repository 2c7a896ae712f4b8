//! The checks themselves, through the client's side calls and one
//! streamed probe prompt sent twice: what a sweep needs of a server, asked
//! in the order a run asks it.

use std::time::Instant;

use serde_json::json;

use crate::client::prometheus::{parse, prefix_counters};
use crate::client::{Client, Measured, ServerKind};
use crate::error::Error;
use crate::workload::text::synthetic_text;
use crate::workload::tokenizer::Tokenizer;

use super::finding::{Check, Finding, Findings, Status};
use super::fixes::fix;

/// Tokens of the probe prompt: a few hundred, so that it fills whole
/// cache blocks of every server (vLLM 16, SGLang 1, the simulator 16,
/// llama.cpp any), yet costs a CPU server under a second or two.
const PROBE_TOKENS: usize = 256;

/// Prefix-cache series by server, as each names them. The pairs of
/// counters are what a run's `--metrics-url` reads
/// (`client::prometheus::prefix_counters`); the gauges are listed so the
/// row says they are there.
/// - vLLM V1: `vllm:prefix_cache_queries_total` / `vllm:prefix_cache_hits_total`
///   (counters, tokens); vLLM 0.8: `vllm:gpu_prefix_cache_queries_total` /
///   `_hits_total`; vLLM V0: the `vllm:gpu_prefix_cache_hit_rate` gauge
///   (vllm-project/vllm docs/source/design/v1/metrics.md, "v0 Metrics").
/// - SGLang: the `sglang:cache_hit_rate` gauge, with `--enable-metrics`
///   (sgl-project/sglang docs/references/production_metrics.md).
/// - llama.cpp: `llamacpp:prompt_tokens_total` (uncached) and
///   `llamacpp:prompt_tokens_cached_total`, with `--metrics`
///   (tools/server/server.cpp, seen on b11434).
const PREFIX_CACHE_SERIES: [&str; 8] = [
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_hit_rate",
    "sglang:cache_hit_rate",
    "llamacpp:prompt_tokens_total",
    "llamacpp:prompt_tokens_cached_total",
];

/// What to ask besides the server itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// `--model`; else the first model listed, as a run chooses.
    pub model: Option<&'a str>,
    /// `--tokenizer`; else the server's `/tokenize`.
    pub tokenizer: Option<&'a str>,
    /// Empty the prefix cache once, the way `--flush-cache auto` does.
    /// `cacherate doctor` does; a run about to start does not (a resumed
    /// run relies on what it warmed).
    pub try_flush: bool,
    /// Ask with a text prompt, and leave token-id prompts unasked: a run
    /// that sends text (`--prompt-mode text` or `chat`) does not need them.
    pub text_prompts: bool,
}

/// Asks the first endpoint of `client` everything a sweep needs. Never
/// fails: what went wrong is in the rows, and a server that does not
/// answer its model list gets that row alone.
pub async fn examine(client: &Client, options: &Options<'_>) -> Findings {
    let endpoint = client.endpoints()[0].clone();
    let mut findings = Findings {
        endpoint,
        server: None,
        model: None,
        rows: Vec::new(),
    };
    let Some(model) = choose_model(client, options, &mut findings.rows).await else {
        return findings;
    };
    let (server, metrics) = server_rows(client, &model, &mut findings.rows).await;
    let kind = server.kind;
    if probe_rows(client, options, &model, kind, &mut findings.rows).await {
        findings.rows.push(metrics_row(metrics.as_deref(), kind));
        if options.try_flush {
            let row = flush_row(client, &findings.endpoint, kind).await;
            findings.rows.push(row);
        }
    }
    finish(findings, server, model)
}

/// The model list's row and the model's, and the model a run would use;
/// `None` when there is none to ask about.
async fn choose_model(
    client: &Client,
    options: &Options<'_>,
    rows: &mut Vec<Finding>,
) -> Option<String> {
    let unknown = ServerKind::Unknown;
    let served = match client.models().await {
        Ok(mut served) => served.swap_remove(0),
        Err(e) => {
            let seen = match e {
                Error::Unreachable(message) if message.starts_with("cannot reach") => {
                    format!("unreachable: {message}")
                }
                other => other.to_string(),
            };
            rows.push(Finding::not_ok(
                Check::Models,
                Status::Wrong,
                true,
                seen,
                fix(Check::Models, unknown, false),
            ));
            return None;
        }
    };
    rows.push(Finding::ok(Check::Models, served.join(", ")));
    let model = match options.model {
        Some(model) if served.iter().any(|m| m == model) => model.to_string(),
        Some(model) => {
            rows.push(Finding::not_ok(
                Check::Model,
                Status::Wrong,
                true,
                format!("--model {model} is not served"),
                fix(Check::Model, unknown, false),
            ));
            return None;
        }
        None => {
            let Some(first) = served.first() else {
                rows.push(Finding::not_ok(
                    Check::Model,
                    Status::Missing,
                    true,
                    "/v1/models lists no model",
                    fix(Check::Model, unknown, false),
                ));
                return None;
            };
            first.clone()
        }
    };
    let how = if options.model.is_some() {
        "--model"
    } else {
        "the first listed"
    };
    rows.push(Finding::ok(Check::Model, format!("{model} ({how})")));
    Some(model)
}

/// Which server it is and its longest request (rows), and its metrics
/// page.
async fn server_rows(
    client: &Client,
    model: &str,
    rows: &mut Vec<Finding>,
) -> (crate::client::ServerInfo, Option<String>) {
    let mut server = client.identify(model).await;
    let metrics = client.metrics().await;
    if server.kind == ServerKind::Unknown {
        server.kind = kind_from_metrics(metrics.as_deref());
    }
    rows.push(server_row(&server));
    rows.push(match (server.max_model_len, server.max_model_len_from) {
        (Some(n), from) => Finding::ok(
            Check::MaxModelLen,
            format!("{n} tokens (from {})", from.unwrap_or("the server")),
        ),
        (None, _) => Finding::not_ok(
            Check::MaxModelLen,
            Status::Missing,
            false,
            "neither /v1/models nor /props says",
            fix(Check::MaxModelLen, server.kind, false),
        ),
    });
    (server, metrics)
}

/// The tokenizer, token-id prompts, usage in the stream and cached tokens,
/// from the probe prompt sent twice; `false` when the probe failed and the
/// rest cannot be asked.
async fn probe_rows(
    client: &Client,
    options: &Options<'_>,
    model: &str,
    kind: ServerKind,
    rows: &mut Vec<Finding>,
) -> bool {
    let probe_text = probe_text();
    let (tokenizer_row, ids) = tokenizer(client, model, options.tokenizer, &probe_text).await;
    let have_ids = ids.is_some();
    rows.push(tokenizer_row);
    // Without a tokenizer the ids are made up (all inside any vocabulary):
    // the server's answer to them still says whether it takes ids.
    let ids = ids.unwrap_or_else(|| (1000..1000 + PROBE_TOKENS as u32).collect());
    let body = |prompt: serde_json::Value| {
        serde_json::to_vec(&json!({
            "model": model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0,
            "stream": true,
            "stream_options": {"include_usage": true},
        }))
        .expect("json serializes")
    };
    let mut prompt_body = body(if options.text_prompts {
        json!(probe_text)
    } else {
        json!(ids)
    });
    let first = client
        .stream(prompt_body.clone(), Instant::now(), Some(0))
        .await;
    let first = if options.text_prompts {
        first
    } else if refused(&first) {
        rows.push(Finding::not_ok(
            Check::TokenPrompts,
            Status::Wrong,
            true,
            format!(
                "a prompt of token ids was refused: {}",
                first.error.as_deref().unwrap_or("no reason given")
            ),
            fix(Check::TokenPrompts, kind, false),
        ));
        // The rest is asked of a text prompt, as a run would then send.
        prompt_body = body(json!(probe_text));
        client
            .stream(prompt_body.clone(), Instant::now(), Some(0))
            .await
    } else {
        if let Some(error) = &first.error {
            rows.push(Finding::not_ok(
                Check::TokenPrompts,
                Status::Wrong,
                true,
                format!("a streamed completion failed: {error}"),
                fix(Check::TokenPrompts, kind, false),
            ));
            return false;
        }
        let made_up = if have_ids {
            ""
        } else {
            " (made-up ids: no tokenizer)"
        };
        rows.push(Finding::ok(
            Check::TokenPrompts,
            format!("{} token ids accepted{made_up}", ids.len()),
        ));
        first
    };
    let Some(prompt_tokens) = usage_row(&first, kind, rows) else {
        return false;
    };
    let second = client.stream(prompt_body, Instant::now(), Some(0)).await;
    rows.push(cached_row(&second, prompt_tokens, kind));
    true
}

/// The usage row of the first probe, and its prompt tokens when it has
/// them.
fn usage_row(first: &Measured, kind: ServerKind, rows: &mut Vec<Finding>) -> Option<u64> {
    if let Some(error) = &first.error {
        rows.push(Finding::not_ok(
            Check::StreamUsage,
            Status::Wrong,
            true,
            format!("a streamed completion failed: {error}"),
            fix(Check::StreamUsage, kind, false),
        ));
        return None;
    }
    let Some(prompt_tokens) = first.prompt_tokens else {
        rows.push(Finding::not_ok(
            Check::StreamUsage,
            Status::Missing,
            true,
            "no usage in the stream (stream_options.include_usage was asked)",
            fix(Check::StreamUsage, kind, false),
        ));
        return None;
    };
    rows.push(Finding::ok(
        Check::StreamUsage,
        format!("usage in the stream: {prompt_tokens} prompt tokens"),
    ));
    Some(prompt_tokens)
}

/// What `--flush-cache auto` would use, tried once.
async fn flush_row(client: &Client, endpoint: &str, kind: ServerKind) -> Finding {
    match client.flush_prefix_cache(endpoint).await {
        Ok(how) => Finding::ok(Check::Flush, format!("{how} (as --flush-cache auto)")),
        Err(tried) => Finding::not_ok(
            Check::Flush,
            Status::Missing,
            false,
            format!("no way to empty the prefix cache: {}", tried.join(", ")),
            fix(Check::Flush, kind, false),
        ),
    }
}

fn finish(mut findings: Findings, server: crate::client::ServerInfo, model: String) -> Findings {
    findings.server = Some(server);
    findings.model = Some(model);
    findings
}

/// The probe prompt's text: its own marker first, so it shares no cache
/// block with a run's prompts (each starts with a marker of its own) nor
/// with an earlier doctor's.
fn probe_text() -> String {
    format!(
        "cacherate doctor probe {:016x}\n{}",
        rand::random::<u64>(),
        synthetic_text(rand::random(), PROBE_TOKENS)
    )
}

/// Refused as a request (4xx but 429), not failed in transport.
fn refused(measured: &Measured) -> bool {
    (400..500).contains(&measured.status) && measured.status != 429
}

fn kind_from_metrics(metrics: Option<&str>) -> ServerKind {
    let Some(text) = metrics else {
        return ServerKind::Unknown;
    };
    let exposition = parse(text);
    let has = |prefix: &str| {
        exposition
            .samples
            .iter()
            .any(|s| s.name.starts_with(prefix))
    };
    if has("vllm:") {
        ServerKind::Vllm
    } else if has("sglang:") {
        ServerKind::Sglang
    } else if has("llamacpp:") {
        ServerKind::LlamaCpp
    } else {
        ServerKind::Unknown
    }
}

fn server_row(server: &crate::client::ServerInfo) -> Finding {
    let version = server.version.as_deref().unwrap_or("version not said");
    match server.kind {
        ServerKind::Unknown => Finding::not_ok(
            Check::Server,
            Status::Missing,
            false,
            "not recognised (no /sim/info, /props, /get_server_info or /version)",
            fix(Check::Server, server.kind, false),
        ),
        kind => Finding::ok(Check::Server, format!("{} {version}", kind.as_str())),
    }
}

/// The tokenizer row, and the probe text's first token ids when one
/// works.
async fn tokenizer(
    client: &Client,
    model: &str,
    spec: Option<&str>,
    text: &str,
) -> (Finding, Option<Vec<u32>>) {
    let failed = |status, seen: String| {
        (
            Finding::not_ok(
                Check::Tokenizer,
                status,
                true,
                seen,
                fix(Check::Tokenizer, ServerKind::Unknown, false),
            ),
            None,
        )
    };
    let tokenizer = match Tokenizer::resolve(spec).await {
        Ok(tokenizer) => tokenizer,
        Err(e) => return failed(Status::Wrong, e.to_string()),
    };
    match tokenizer.encode(client, model, text).await {
        Ok(mut ids) => {
            ids.truncate(PROBE_TOKENS);
            let seen = match spec {
                Some(_) => format!("{} loads", tokenizer.describe()),
                None => "the server's /tokenize answers".to_string(),
            };
            (Finding::ok(Check::Tokenizer, seen), Some(ids))
        }
        Err(e) if spec.is_none() => failed(Status::Missing, e.to_string()),
        Err(e) => failed(Status::Wrong, e.to_string()),
    }
}

/// The second send of the probe: how many of its prompt tokens the
/// server says it had cached. No count at all is `missing` (a sweep runs,
/// but cannot tell the achieved cache-hit rate, nor check it against the
/// target); a count of 0 is `wrong`: the server does not cache a repeated
/// prompt, so every point above 0 % would miss its target.
fn cached_row(second: &Measured, prompt_tokens: u64, kind: ServerKind) -> Finding {
    if let Some(error) = &second.error {
        return Finding::not_ok(
            Check::CachedTokens,
            Status::Wrong,
            true,
            format!("the repeated prompt failed: {error}"),
            fix(Check::StreamUsage, kind, false),
        );
    }
    match second.cached_tokens {
        Some(cached) if cached > 0 => Finding::ok(
            Check::CachedTokens,
            format!("the same prompt again: {cached} of {prompt_tokens} prompt tokens cached"),
        ),
        Some(_) => Finding::not_ok(
            Check::CachedTokens,
            Status::Wrong,
            true,
            format!(
                "reported, but 0 of {prompt_tokens} prompt tokens cached when the same prompt \
                 came again: the prefix cache is off"
            ),
            fix(Check::CachedTokens, kind, true),
        ),
        None => Finding::not_ok(
            Check::CachedTokens,
            Status::Missing,
            false,
            "usage has no prompt_tokens_details.cached_tokens, even for a repeated prompt: \
             achieved cache-hit rates will be unknown",
            fix(Check::CachedTokens, kind, false),
        ),
    }
}

fn metrics_row(metrics: Option<&str>, kind: ServerKind) -> Finding {
    let Some(text) = metrics else {
        return Finding::not_ok(
            Check::Metrics,
            Status::Missing,
            false,
            "GET /metrics is not served",
            fix(Check::Metrics, kind, false),
        );
    };
    let exposition = parse(text);
    let found: Vec<&str> = PREFIX_CACHE_SERIES
        .into_iter()
        .filter(|name| exposition.samples_of(name).next().is_some())
        .collect();
    if prefix_counters(text).is_some() {
        return Finding::ok(
            Check::Metrics,
            format!("prefix-cache counters: {}", found.join(", ")),
        );
    }
    let seen = if found.is_empty() {
        "served, but without prefix-cache counters".to_string()
    } else {
        format!(
            "served, with {} only (a gauge; --metrics-url reads counters)",
            found.join(", ")
        )
    };
    Finding::not_ok(
        Check::Metrics,
        Status::Missing,
        false,
        seen,
        fix(Check::Metrics, kind, false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_rows_name_the_series_each_server_has() {
        let vllm = "vllm:prefix_cache_queries_total{engine=\"0\"} 10\n\
                    vllm:prefix_cache_hits_total{engine=\"0\"} 4\n";
        let row = metrics_row(Some(vllm), ServerKind::Vllm);
        assert_eq!(row.status, Status::Ok);
        assert!(
            row.seen.contains("vllm:prefix_cache_hits_total"),
            "{}",
            row.seen
        );
        assert_eq!(kind_from_metrics(Some(vllm)), ServerKind::Vllm);

        // SGLang's gauge is seen, but a run's --metrics-url cannot read it.
        let sglang = "sglang:cache_hit_rate{model_name=\"m\"} 0.5\n";
        let row = metrics_row(Some(sglang), ServerKind::Sglang);
        assert_eq!(row.status, Status::Missing);
        assert!(!row.blocks_sweep);
        assert!(
            row.seen.contains("sglang:cache_hit_rate only"),
            "{}",
            row.seen
        );
        assert_eq!(kind_from_metrics(Some(sglang)), ServerKind::Sglang);

        let llama = "llamacpp:prompt_tokens_total 88\nllamacpp:prompt_tokens_cached_total 512\n";
        assert_eq!(
            metrics_row(Some(llama), ServerKind::LlamaCpp).status,
            Status::Ok
        );
        assert_eq!(kind_from_metrics(Some(llama)), ServerKind::LlamaCpp);

        let row = metrics_row(None, ServerKind::LlamaCpp);
        assert_eq!(row.status, Status::Missing);
        assert_eq!(
            row.fix.as_deref(),
            Some("start llama-server with --metrics")
        );
        assert_eq!(
            metrics_row(None, ServerKind::Sglang).fix.as_deref(),
            Some("start SGLang with --enable-metrics")
        );
        assert_eq!(
            kind_from_metrics(Some("other_metric 1\n")),
            ServerKind::Unknown
        );
    }

    #[test]
    fn cached_tokens_not_reported_is_missing_and_none_cached_is_wrong() {
        let measured = |cached| {
            let mut measured = Measured::default();
            measured.prompt_tokens = Some(256);
            measured.cached_tokens = cached;
            measured
        };
        let missing = cached_row(&measured(None), 256, ServerKind::Vllm);
        assert_eq!(
            (missing.status, missing.blocks_sweep),
            (Status::Missing, false)
        );
        assert!(
            missing
                .fix
                .unwrap()
                .contains("--enable-prompt-tokens-details")
        );
        let wrong = cached_row(&measured(Some(0)), 256, ServerKind::Vllm);
        assert_eq!((wrong.status, wrong.blocks_sweep), (Status::Wrong, true));
        assert!(wrong.fix.unwrap().contains("--enable-prefix-caching"));
        let sglang = cached_row(&measured(None), 256, ServerKind::Sglang);
        assert_eq!(
            sglang.fix.as_deref(),
            Some("start SGLang with --enable-cache-report")
        );
        let ok = cached_row(&measured(Some(240)), 256, ServerKind::Sim);
        assert_eq!(ok.status, Status::Ok);
        assert!(ok.seen.contains("240 of 256"), "{}", ok.seen);
    }
}
