//! The simulator over real HTTP: wire format, prefix caching, timing, faults
//! and errors.

mod common;

use std::time::{Duration, Instant};

use cacherate::sim::SimConfig;
use cacherate::sim::speed;
use common::{Streamed, metric, start, stream, stream_with, token_request, tokens};
use serde_json::{Value, json};

/// Time scale for tests: the modelled server runs this much slower than
/// wall time would need (smaller is faster).
const FAST: f64 = 0.2;

/// The simulated seconds the engine spent on `body`, sent alone: its
/// modelled time, which a busy host does not change (wall-clock TTFTs
/// would).
async fn modelled(url: &str, body: Value) -> (common::Streamed, f64) {
    let busy = "cacherate_sim:busy_seconds_total";
    let finished = "cacherate_sim:finished_requests_total";
    let (before, done) = (metric(url, busy).await, metric(url, finished).await);
    let streamed = stream(url, "/v1/completions", body).await;
    // The counters are published right after the step that ended the
    // stream.
    while metric(url, finished).await < done + 1.0 {
        tokio::task::yield_now().await;
    }
    let seconds = metric(url, busy).await - before;
    (streamed, seconds)
}

async fn post(base: &str, path: &str, body: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = common::client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn token_id_prompts_are_counted_as_sent() {
    let server = start(SimConfig::for_tests(0.0)).await;
    let prompt = tokens(0, 300);
    let streamed = stream(&server.url(), "/v1/completions", token_request(&prompt, 5)).await;
    assert_eq!(streamed.status, 200);
    let usage = streamed.usage();
    assert_eq!(usage["prompt_tokens"], 300);
    assert_eq!(usage["completion_tokens"], 5);
    assert_eq!(usage["total_tokens"], 305);
    assert_eq!(streamed.texts().len(), 5, "exactly max_tokens tokens");
    assert_eq!(streamed.events.last().unwrap().1, "[DONE]");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn repeated_prompt_hits_the_block_aligned_prefix_and_is_faster() {
    let server = start(SimConfig {
        cold_start_seconds: 0.0,
        ..SimConfig::for_tests(0.0)
    })
    .await;
    let url = server.url();
    let prompt = tokens(0, 4000);
    let (cold, cold_seconds) = modelled(&url, token_request(&prompt, 4)).await;
    let (warm, warm_seconds) = modelled(&url, token_request(&prompt, 4)).await;
    assert_eq!(cold.cached_tokens(), 0);
    // The last prompt token is always computed: 3999 rounded down to 16.
    assert_eq!(warm.cached_tokens(), 3984);
    // A cold 4000-token prefill is modelled at 328 ms.
    assert!(
        warm_seconds * 3.0 < cold_seconds && cold_seconds > 0.3,
        "warm {warm_seconds} s should be far below cold {cold_seconds} s"
    );

    // A prompt sharing its first 1000 tokens: 62 whole blocks are reused.
    let mut shared = prompt[..1000].to_vec();
    shared.extend(tokens(20_000, 500));
    let partial = stream(&url, "/v1/completions", token_request(&shared, 4)).await;
    assert_eq!(partial.cached_tokens(), 992);

    assert_eq!(
        metric(&url, "vllm:prefix_cache_hits_total").await,
        3984.0 + 992.0
    );
    assert_eq!(
        metric(&url, "vllm:prefix_cache_queries_total").await,
        4000.0 + 4000.0 + 1500.0
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn text_prompts_and_chat_share_the_cache_through_the_tokenizer() {
    let server = start(SimConfig::for_tests(0.0)).await;
    let url = server.url();
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(40);
    let text = text.trim_end();
    let body = json!({"prompt": text, "max_tokens": 2, "stream": true,
                      "stream_options": {"include_usage": true}});
    let first = stream(&url, "/v1/completions", body.clone()).await;
    let second = stream(&url, "/v1/completions", body).await;
    let prompt_tokens = first.usage()["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        prompt_tokens,
        40 * 10,
        "one token per word, space and period"
    );
    assert_eq!(second.cached_tokens(), (prompt_tokens - 1) / 16 * 16);

    let (status, _, body) = post(&url, "/tokenize", &json!({"prompt": text}).to_string()).await;
    assert_eq!(status, 200);
    let tokenized: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tokenized["count"], prompt_tokens);
    assert_eq!(tokenized["max_model_len"], 32_768);

    let chat = json!({"messages": [{"role": "user", "content": text}], "max_tokens": 3,
                      "stream": true, "stream_options": {"include_usage": true}});
    let chat_first = stream(&url, "/v1/chat/completions", chat.clone()).await;
    let chat_second = stream(&url, "/v1/chat/completions", chat).await;
    // Role marker + text + end marker + assistant marker.
    assert_eq!(chat_first.usage()["prompt_tokens"], prompt_tokens + 3);
    assert_eq!(
        chat_second.cached_tokens(),
        (prompt_tokens + 3 - 1) / 16 * 16
    );
    assert_eq!(chat_first.texts().len(), 3);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn lru_eviction_takes_the_oldest_chain_tail_first() {
    let config = SimConfig {
        kv_capacity_tokens: 4096,
        max_model_len: 2048,
        ..SimConfig::for_tests(0.0)
    };
    let server = start(config).await;
    let url = server.url();
    let [a, b, c] = [0, 5000, 10_000].map(|start| tokens(start, 1500));
    for prompt in [&a, &b, &c] {
        let streamed = stream(&url, "/v1/completions", token_request(prompt, 4)).await;
        assert_eq!(streamed.cached_tokens(), 0);
    }
    // 256 blocks: A and B cache 93 blocks each; C needs 94 (1504 tokens) and
    // evicts the 24 least recently freed blocks: A's tail.
    assert_eq!(
        metric(&url, "cacherate_sim:evicted_blocks_total").await,
        24.0
    );
    let again = stream(&url, "/v1/completions", token_request(&a, 4)).await;
    assert_eq!(again.cached_tokens(), (93 - 24) * 16);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn evicted_blocks_come_back_from_the_second_tier_at_load_cost() {
    let config = SimConfig {
        kv_capacity_tokens: 4096,
        max_model_len: 4096,
        offload_capacity_tokens: 65_536,
        cold_start_seconds: 0.0,
        ..SimConfig::for_tests(0.0)
    };
    let server = start(config).await;
    let url = server.url();
    let first = tokens(0, 3000);
    let (_, cold) = modelled(&url, token_request(&first, 2)).await;
    let (_, warm) = modelled(&url, token_request(&first, 2)).await;
    // A different prompt pushes the first one out of the first tier.
    stream(
        &url,
        "/v1/completions",
        token_request(&tokens(9000, 3000), 2),
    )
    .await;
    let (loaded, loaded_seconds) = modelled(&url, token_request(&first, 2)).await;
    assert_eq!(
        loaded.cached_tokens(),
        2992,
        "the whole prefix, from the second tier"
    );
    let offload_hits = metric(&url, "cacherate_sim:offload_hits_total").await;
    assert!(offload_hits > 0.0, "second-tier hits counted");
    assert!(
        warm < loaded_seconds && loaded_seconds < cold,
        "first tier {warm} s < second tier {loaded_seconds} s < cold {cold} s"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_batch_queues_the_next_request() {
    let config = SimConfig {
        max_num_seqs: 1,
        ..SimConfig::for_tests(FAST)
    };
    let server = start(config).await;
    let url = server.url();
    // Each stream's times count from its own send: keep when each was
    // sent, and compare instants.
    let timed = |body: Value| {
        let url = url.clone();
        async move {
            let sent = Instant::now();
            (sent, stream(&url, "/v1/completions", body).await)
        }
    };
    let (first, second) = tokio::join!(
        timed(token_request(&tokens(0, 100), 40)),
        timed(token_request(&tokens(500, 100), 40))
    );
    let first_token = |(sent, s): &(Instant, Streamed)| *sent + s.ttft.unwrap();
    let (early, late) = if first_token(&first) < first_token(&second) {
        (first, second)
    } else {
        (second, first)
    };
    let early_done = early.0 + early.1.events.last().unwrap().0;
    assert!(
        first_token(&late) >= early_done,
        "the second request starts only when the first finishes: {:?} after it",
        first_token(&late).checked_duration_since(early_done)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn slowdown_multiplies_service_time() {
    async fn service_time(slowdown: f64) -> f64 {
        let config = SimConfig {
            slowdown,
            cold_start_seconds: 0.0,
            ..SimConfig::for_tests(0.0)
        };
        let server = start(config).await;
        let (_, seconds) = modelled(&server.url(), token_request(&tokens(0, 64), 60)).await;
        server.stop().await.unwrap();
        seconds
    }
    let (normal, slow) = (service_time(1.0).await, service_time(2.0).await);
    assert!(normal > 0.0);
    assert!((slow / normal - 2.0).abs() < 1e-9, "{slow} s vs {normal} s");
}

#[tokio::test]
async fn error_rate_answers_500_and_rate_limit_answers_429_with_retry_after() {
    let server = start(SimConfig {
        error_rate: 1.0,
        ..SimConfig::for_tests(0.0)
    })
    .await;
    let body = token_request(&tokens(0, 10), 2).to_string();
    let (status, _, text) = post(&server.url(), "/v1/completions", &body).await;
    assert_eq!(status, 500);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["code"],
        500
    );
    server.stop().await.unwrap();

    let server = start(SimConfig {
        rate_limit_rate: 1.0,
        ..SimConfig::for_tests(0.0)
    })
    .await;
    let (status, headers, _) = post(&server.url(), "/v1/completions", &body).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "1");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disconnect_rate_drops_the_stream_after_the_first_token() {
    let server = start(SimConfig {
        disconnect_rate: 1.0,
        ..SimConfig::for_tests(0.0)
    })
    .await;
    let streamed = stream(
        &server.url(),
        "/v1/completions",
        token_request(&tokens(0, 10), 8),
    )
    .await;
    assert_eq!(streamed.status, 200);
    assert!(streamed.broken, "the body ends with an error");
    assert_eq!(streamed.texts().len(), 1);
    assert!(!streamed.raw.contains("[DONE]"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stall_rate_keeps_the_connection_open_and_silent() {
    let server = start(SimConfig {
        stall_rate: 1.0,
        ..SimConfig::for_tests(0.0)
    })
    .await;
    let url = server.url();
    let streamed = stream_with(
        &common::client(),
        &url,
        "/v1/completions",
        token_request(&tokens(0, 10), 8),
        Some(Duration::from_millis(500)),
    )
    .await;
    assert_eq!(streamed.texts().len(), 1, "one token, then silence");
    assert!(streamed.broken, "no end of stream within the idle limit");
    // The engine forgot the request: nothing runs while the stream hangs.
    assert_eq!(metric(&url, "vllm:num_requests_running").await, 0.0);
    // Shutdown is not held up by a stalled stream.
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("stops promptly")
        .unwrap();
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let config = SimConfig {
        max_model_len: 1000,
        ..SimConfig::for_tests(0.0)
    };
    let server = start(config).await;
    let url = server.url();
    let error = |text: &str| -> Value { serde_json::from_str(text).unwrap() };

    let too_long = token_request(&tokens(0, 990), 20).to_string();
    let (status, _, text) = post(&url, "/v1/completions", &too_long).await;
    assert_eq!(status, 400);
    let body = &error(&text)["error"];
    assert_eq!(body["type"], "BadRequestError");
    assert_eq!(body["code"], 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length is 980 tokens. However, your request has 990"),
        "{text}"
    );

    let (status, _, text) = post(&url, "/v1/completions", "{\"prompt\": ").await;
    assert_eq!(status, 400);
    assert_eq!(error(&text)["error"]["type"], "Bad Request");

    let unknown = json!({"model": "gpt-9", "prompt": "hi"}).to_string();
    let (status, _, text) = post(&url, "/v1/completions", &unknown).await;
    assert_eq!(status, 404);
    assert_eq!(
        error(&text)["error"]["message"],
        "The model `gpt-9` does not exist."
    );

    let out_of_vocab = json!({"prompt": [1, 2, 40_000]}).to_string();
    let (status, _, _) = post(&url, "/v1/completions", &out_of_vocab).await;
    assert_eq!(status, 400);

    for body in [
        json!({"prompt": "hi", "max_tokens": 0}),
        json!({"prompt": ["a", "b"]}),
        json!({"prompt": ""}),
        json!({"messages": []}),
    ] {
        let path = if body.get("messages").is_some() {
            "/v1/chat/completions"
        } else {
            "/v1/completions"
        };
        let (status, _, text) = post(&url, path, &body.to_string()).await;
        assert_eq!(status, 400, "{body} -> {text}");
    }

    let response = common::client()
        .get(format!("{url}/v2/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.text().await.unwrap(), r#"{"detail":"Not Found"}"#);

    // The server is still healthy after all that.
    let health = common::client()
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn non_streaming_responses_carry_text_and_usage() {
    let server = start(SimConfig::for_tests(0.0)).await;
    let url = server.url();
    let body = json!({"prompt": tokens(0, 50), "max_tokens": 7}).to_string();
    let (status, _, text) = post(&url, "/v1/completions", &body).await;
    assert_eq!(status, 200);
    let response: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(response["object"], "text_completion");
    assert_eq!(response["choices"][0]["finish_reason"], "length");
    assert_eq!(response["usage"]["completion_tokens"], 7);
    let generated = response["choices"][0]["text"].as_str().unwrap();
    assert_eq!(generated.split_whitespace().count(), 7);

    let chat = json!({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 3});
    let (status, _, text) = post(&url, "/v1/chat/completions", &chat.to_string()).await;
    assert_eq!(status, 200);
    let response: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(response["object"], "chat.completion");
    assert_eq!(response["choices"][0]["message"]["role"], "assistant");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn models_and_info_describe_the_server() {
    let server = start(SimConfig {
        model: "org/sim-model".to_string(),
        ..SimConfig::for_tests(0.0)
    })
    .await;
    let url = server.url();
    let models: Value = common::client()
        .get(format!("{url}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "org/sim-model");
    let info: Value = common::client()
        .get(format!("{url}/sim/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["vocab_size"], 32_000);
    assert_eq!(info["config"]["block_size"], 16);
    assert_eq!(info["config"]["run_noise"], 0.02);
    assert_eq!(info["config"]["cold_start_seconds"], 5.0);
    assert!(info["run_slowdown"].is_f64(), "{info}");
    server.stop().await.unwrap();
}

/// Regression: without TCP_NODELAY each small SSE write waited for the
/// client's delayed ACK, adding about 40 ms to TTFT and to every token.
/// The median gap between tokens (modelled at about 1 ms) shows it, and a
/// busy host stalling a few of them does not move the median.
#[tokio::test]
async fn tokens_leave_without_nagle_delay() {
    let server = start(SimConfig {
        step_overhead_ms: 1.0,
        ..SimConfig::for_tests(1.0)
    })
    .await;
    let url = server.url();
    let prompt = tokens(0, 64);
    stream(&url, "/v1/completions", token_request(&prompt, 1)).await;
    let warm = stream(&url, "/v1/completions", token_request(&prompt, 20)).await;
    let times: Vec<Duration> = warm.events.iter().map(|(at, _)| *at).collect();
    let mut gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    assert!(gaps.len() >= 19, "{} events", times.len());
    let median = gaps[gaps.len() / 2];
    assert!(median < Duration::from_millis(20), "median gap {median:?}");
    server.stop().await.unwrap();
}

/// Replaces the values that differ between runs with the fixtures'
/// placeholders.
fn normalize(raw: &str, texts: &[String]) -> String {
    let mut out = raw.to_string();
    let first: Value = serde_json::from_str(
        raw.trim_start_matches("data: ")
            .split("\n\n")
            .next()
            .unwrap(),
    )
    .unwrap();
    let id = first["id"].as_str().unwrap();
    let (prefix, hex) = id.split_once('-').unwrap();
    assert_eq!(hex.len(), 32, "ids carry 32 hex digits like vLLM's");
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    out = out.replace(id, &format!("{prefix}-<ID>"));
    let created = first["created"].as_u64().unwrap();
    out = out.replace(&format!("\"created\":{created}"), "\"created\":<CREATED>");
    out = out.replace("\"model\":\"cacherate-sim\"", "\"model\":\"<MODEL>\"");
    for text in texts {
        out = out.replace(&format!("\"text\":\"{text}\""), "\"text\":\"<TEXT>\"");
        out = out.replace(&format!("\"content\":\"{text}\""), "\"content\":\"<TEXT>\"");
    }
    out
}

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/vllm-0.11.0/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn streams_are_byte_for_byte_vllm() {
    let server = start(SimConfig::for_tests(0.0)).await;
    let url = server.url();
    let prompt = tokens(0, 40);
    stream(&url, "/v1/completions", token_request(&prompt, 1)).await;
    let streamed = stream(&url, "/v1/completions", token_request(&prompt, 3)).await;
    assert_eq!(
        normalize(&streamed.raw, &streamed.texts()),
        fixture("completions_stream.sse")
    );

    let chat = json!({"model": "cacherate-sim",
                      "messages": [{"role": "user", "content": "hello there"}],
                      "max_tokens": 2, "stream": true,
                      "stream_options": {"include_usage": true}});
    let streamed = stream(&url, "/v1/chat/completions", chat).await;
    assert_eq!(
        normalize(&streamed.raw, &streamed.texts()),
        fixture("chat_stream.sse")
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn whole_responses_are_byte_for_byte_vllm() {
    let server = start(SimConfig::for_tests(0.0)).await;
    let url = server.url();
    let body = json!({"prompt": tokens(0, 40), "max_tokens": 2}).to_string();
    let (status, headers, text) = post(&url, "/v1/completions", &body).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let generated: Value = serde_json::from_str(&text).unwrap();
    let words = [generated["choices"][0]["text"]
        .as_str()
        .unwrap()
        .to_string()];
    assert_eq!(normalize(&text, &words), fixture("completion.json"));

    let chat = json!({"messages": [{"role": "user", "content": "hello there"}],
                      "max_tokens": 2})
    .to_string();
    let (status, _, text) = post(&url, "/v1/chat/completions", &chat).await;
    assert_eq!(status, 200);
    let generated: Value = serde_json::from_str(&text).unwrap();
    let words = [generated["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()];
    assert_eq!(normalize(&text, &words), fixture("chat_completion.json"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn streaming_headers_match_uvicorn() {
    let server = start(SimConfig::for_tests(0.0)).await;
    let response = common::client()
        .post(format!("{}/v1/completions", server.url()))
        .json(&token_request(&tokens(0, 8), 1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn reset_prefix_cache_forgets_cached_prompts() {
    let server = start(SimConfig::for_tests(0.0)).await;
    let url = server.url();
    let prompt = tokens(0, 200);
    stream(&url, "/v1/completions", token_request(&prompt, 1)).await;
    let (status, _, _) = post(&url, "/reset_prefix_cache", "").await;
    assert_eq!(status, 200);
    let again = stream(&url, "/v1/completions", token_request(&prompt, 1)).await;
    assert_eq!(again.cached_tokens(), 0);
    server.stop().await.unwrap();
}

async fn sim_info(base: &str) -> Value {
    common::client()
        .get(format!("{base}/sim/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The run slowdown a server with `config` reports on /sim/info.
async fn reported_run_slowdown(config: SimConfig) -> f64 {
    let server = start(config).await;
    let info = sim_info(&server.url()).await;
    server.stop().await.unwrap();
    info["run_slowdown"]
        .as_f64()
        .expect("run_slowdown on /sim/info")
}

#[tokio::test]
async fn run_noise_draws_one_slowdown_per_seed() {
    let with_seed = |seed| SimConfig {
        seed,
        run_noise: 0.02,
        ..SimConfig::for_tests(0.0)
    };
    let first = reported_run_slowdown(with_seed(3)).await;
    let again = reported_run_slowdown(with_seed(3)).await;
    let other = reported_run_slowdown(with_seed(4)).await;
    assert_eq!(first, again, "same seed, same slowdown");
    assert_ne!(first, other, "another seed, another slowdown");
    assert_eq!(first, with_seed(3).run_slowdown());
    assert!((0.9..1.1).contains(&first), "{first} at sigma 0.02");
    let off = SimConfig {
        run_noise: 0.0,
        ..with_seed(3)
    };
    assert_eq!(reported_run_slowdown(off).await, 1.0);
}

/// The modelled seconds of `n` cold 4000-token prompts, one at a time,
/// each new to the cache.
async fn cold_seconds(url: &str, first_start: u32, n: u32) -> Vec<f64> {
    let mut seconds = Vec::new();
    for i in 0..n {
        let prompt = tokens(first_start + i * 4000, 4000);
        let (streamed, modelled) = modelled(url, token_request(&prompt, 1)).await;
        assert_eq!(streamed.cached_tokens(), 0);
        seconds.push(modelled);
    }
    seconds
}

#[tokio::test]
async fn the_run_slowdown_scales_request_latency() {
    // A seed whose draw is far from 1, so the test measures something.
    let sigma = 0.5;
    let seed = (0..)
        .find(|&seed| speed::run_slowdown(seed, sigma) > 1.6)
        .unwrap();
    let steady = SimConfig {
        seed,
        run_noise: 0.0,
        cold_start_seconds: 0.0,
        ..SimConfig::for_tests(0.0)
    };
    let noisy = SimConfig {
        run_noise: sigma,
        ..steady.clone()
    };
    let (steady, noisy) = (start(steady).await, start(noisy).await);
    let factor = sim_info(&noisy.url()).await["run_slowdown"]
        .as_f64()
        .unwrap();
    assert!(factor > 1.6, "{factor}");
    let base = cold_seconds(&steady.url(), 0, 1).await[0];
    let slowed = cold_seconds(&noisy.url(), 0, 1).await[0];
    assert!(
        (slowed / base - factor).abs() < 1e-9,
        "{slowed} s vs {base} s, drawn slowdown {factor}"
    );
    steady.stop().await.unwrap();
    noisy.stop().await.unwrap();
}

#[tokio::test]
async fn the_first_seconds_after_start_are_slower() {
    // Without a time scale the engine's clock is its modelled time: a
    // one-second cold start twice as slow at its start makes the first
    // cold prefill (328 ms when warm) about twice as long, and fades by
    // the fourth.
    let cold = SimConfig {
        run_noise: 0.0,
        cold_start_seconds: 1.0,
        cold_start_slowdown: 2.0,
        ..SimConfig::for_tests(0.0)
    };
    let warm = SimConfig {
        cold_start_seconds: 0.0,
        ..cold.clone()
    };
    let (cold, warm) = (start(cold).await, start(warm).await);
    let slowed = cold_seconds(&cold.url(), 0, 5).await;
    let steady = cold_seconds(&warm.url(), 0, 5).await;
    let ratio = slowed[0] / steady[0];
    assert!(
        (1.5..=2.0).contains(&ratio),
        "cold start: {slowed:?} against {steady:?} ({ratio:.2}x at first, configured 2x)"
    );
    // Differences of a growing sum: equal to within rounding.
    let same = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(
        slowed.windows(2).all(|w| w[0] >= w[1] || same(w[0], w[1])),
        "{slowed:?}"
    );
    assert!(
        same(slowed[4], steady[4]),
        "over after one modelled second: {slowed:?}"
    );
    assert!(steady.iter().all(|&s| same(s, steady[0])), "{steady:?}");
    cold.stop().await.unwrap();
    warm.stop().await.unwrap();
}

#[tokio::test]
async fn the_cold_start_follows_the_time_scale() {
    // Five simulated seconds pass in half a wall second at time scale 0.1.
    // The engine reads the wall clock when it plans a step, so the cold
    // start a request meets depends on when it ran: the bounds come from
    // the instants the test saw, not from how fast the machine is. Against
    // the same request on a server without a cold start (its modelled time
    // is exact), a request done by wall time `t` after the start costs
    // between the factor at `t / 0.1` simulated seconds and the factor at
    // zero; one sent half a wall second after that costs exactly as much.
    let cold_start = speed::ColdStart::new(2.0, 5.0);
    let config = SimConfig {
        run_noise: 0.0,
        cold_start_seconds: 5.0,
        cold_start_slowdown: 2.0,
        ..SimConfig::for_tests(0.1)
    };
    let warm = start(SimConfig {
        cold_start_seconds: 0.0,
        ..config.clone()
    })
    .await;
    let started = Instant::now();
    let server = start(config).await;
    let url = server.url();
    let first = cold_seconds(&url, 0, 1).await[0];
    let first_done = Instant::now();
    let steady = cold_seconds(&warm.url(), 0, 1).await[0];
    let ratio = first / steady;
    let latest = (first_done - started).as_secs_f64() / 0.1;
    let least = cold_start.factor(latest);
    assert!(
        ratio >= least - 1e-9 && ratio <= 2.0 + 1e-9,
        "the first request, done {latest:.2} simulated seconds after the start, cost \
         {ratio:.3}x the warm server's: not within [{least:.3}, 2]"
    );
    // The engine started before it answered the first request: half a wall
    // second after that, five simulated seconds have passed.
    tokio::time::sleep_until((first_done + Duration::from_millis(500)).into()).await;
    let later = cold_seconds(&url, 10_000, 1).await[0];
    let later_steady = cold_seconds(&warm.url(), 10_000, 1).await[0];
    server.stop().await.unwrap();
    warm.stop().await.unwrap();
    assert!(
        (later / later_steady - 1.0).abs() < 1e-9,
        "{later:.4} s against {later_steady:.4} s warm: the cold start is not over after five \
         simulated seconds"
    );
    eprintln!(
        "first request {ratio:.3}x (bounds [{least:.3}, 2]), later {:.3}x",
        later / later_steady
    );
}
