//! How to fix what a check found, named for the server found: its own
//! flags and endpoints (vLLM, SGLang, llama.cpp, the simulator).

use crate::client::ServerKind;

use super::finding::Check;

/// The fix for `check` not being as a sweep needs it (`caching_off`: the
/// server reports cached tokens but cached none of a repeated prompt).
pub fn fix(check: Check, kind: ServerKind, caching_off: bool) -> String {
    use ServerKind::*;
    match (check, kind) {
        (Check::Models, _) => "start the server, check --api-endpoint (the server's base URL, \
             not a proxy's or UI's page) and --api-key"
            .into(),
        (Check::Model, _) => "give --model one of the ids /v1/models lists".into(),
        (Check::Server, _) => "none needed: fixes below are generic; vLLM serves GET /version, \
             llama.cpp GET /props, SGLang GET /get_server_info"
            .into(),
        (Check::MaxModelLen, _) => "none needed: a run then cannot refuse a context the server \
             cannot hold before sending it"
            .into(),
        (Check::Tokenizer, _) => "give --tokenizer: a tokenizer.json (or a directory holding \
             one) or the model's Hugging Face id"
            .into(),
        (Check::TokenPrompts, _) => "use a server that takes token-id prompts (vLLM, SGLang, \
             llama.cpp do), or run with --prompt-mode text (the server re-tokenises; contexts \
             drift and cached prefixes lose their chunk alignment)"
            .into(),
        (Check::StreamUsage, _) => "use a server that honours stream_options.include_usage \
             (vLLM, SGLang and llama.cpp do); behind a gateway, let it pass the usage chunk"
            .into(),
        (Check::CachedTokens, Vllm | Unknown) if caching_off => {
            "start vLLM with --enable-prefix-caching (and without --no-enable-prefix-caching)"
                .into()
        }
        (Check::CachedTokens, Vllm | Unknown) => "start vLLM with \
             --enable-prompt-tokens-details (and prefix caching on: --enable-prefix-caching, \
             the V1 default)"
            .into(),
        (Check::CachedTokens, Sim) if caching_off => {
            "the simulator always caches: is its --kv-capacity-tokens tiny?".into()
        }
        (Check::CachedTokens, Sim) => "the simulator was started with \
             --no-prompt-tokens-details, as vLLM runs without --enable-prompt-tokens-details; \
             start vLLM with --enable-prompt-tokens-details"
            .into(),
        (Check::CachedTokens, Sglang) if caching_off => {
            "start SGLang without --disable-radix-cache".into()
        }
        (Check::CachedTokens, Sglang) => "start SGLang with --enable-cache-report".into(),
        (Check::CachedTokens, LlamaCpp) if caching_off => "keep llama.cpp's prompt cache on: \
             --cache-prompt is the default; --cache-ram N keeps prompts of idle slots; fewer \
             --parallel slots keep a prompt in the slot that served it"
            .into(),
        (Check::CachedTokens, LlamaCpp) => {
            "use a llama.cpp build that reports usage.prompt_tokens_details (b5xxx and later)"
                .into()
        }
        (Check::Metrics, LlamaCpp) => "start llama-server with --metrics".into(),
        (Check::Metrics, Sglang) => "start SGLang with --enable-metrics".into(),
        (Check::Metrics, Vllm | Unknown | Sim) => "vLLM serves /metrics by default (not with \
             --disable-log-stats); optional: a run then has only the client's view of the \
             cache-hit rate"
            .into(),
        (Check::Flush, Vllm | Unknown | Sim) => "start vLLM with VLLM_SERVER_DEV_MODE=1 (POST \
             /reset_prefix_cache); optional: without it use --flush-cache none and distinct \
             --seed values"
            .into(),
        (Check::Flush, LlamaCpp) => "start llama-server with --slots (the default) and \
             --slot-save-path DIR, which enable POST /slots/N?action=erase (the --cache-ram host \
             cache is kept)"
            .into(),
        (Check::Flush, Sglang) => "SGLang flushes only when idle: retry with no requests in \
             flight"
            .into(),
    }
}
