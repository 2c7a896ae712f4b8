//! What the run learns about and does to the target server besides load:
//! its fingerprint (kind, version, context length), emptying its prefix
//! cache, and reading its own prefix-cache counters.

use serde_json::{Value, json};

use crate::client::Client;
use crate::client::prometheus::{PrefixCounters, prefix_counters};
use crate::error::{Error, Result};
use crate::settings::{FlushCache, mask_password};
use crate::store::Fingerprint;

async fn get_json(client: &Client, url: &str) -> Option<Value> {
    let text = client.get_text(url).await.ok()?;
    serde_json::from_str(&text).ok()
}

/// Asks the first endpoint what it is.
pub async fn fingerprint(client: &Client, model: &str) -> Fingerprint {
    let base = &client.endpoints()[0];
    let mut print = Fingerprint {
        kind: "unknown".into(),
        model: model.to_string(),
        ..Fingerprint::default()
    };
    if let Some(models) = get_json(client, &format!("{base}/v1/models")).await
        && let Some(card) = models["data"]
            .as_array()
            .and_then(|cards| cards.iter().find(|c| c["id"] == model))
    {
        print.max_model_len = card["max_model_len"]
            .as_u64()
            .or_else(|| card["meta"]["n_ctx_train"].as_u64());
    }
    if let Some(info) = get_json(client, &format!("{base}/sim/info")).await
        && info["server"] == "cacherate-sim"
    {
        print.kind = "cacherate-sim".into();
        print.version = info["version"].as_str().map(str::to_string);
        return print;
    }
    if let Some(mut props) = get_json(client, &format!("{base}/props")).await
        && props.get("build_info").is_some()
    {
        print.kind = "llama.cpp".into();
        print.version = props["build_info"].as_str().map(str::to_string);
        if let Some(n_ctx) = props["default_generation_settings"]["n_ctx"].as_u64() {
            print.max_model_len = Some(n_ctx);
        }
        if let Some(object) = props.as_object_mut() {
            object.remove("chat_template");
        }
        print.props = Some(props);
        return print;
    }
    if let Some(info) = get_json(client, &format!("{base}/get_server_info")).await
        && info.get("version").is_some()
    {
        print.kind = "sglang".into();
        print.version = info["version"].as_str().map(str::to_string);
        return print;
    }
    if let Some(version) = client.server_version().await {
        print.kind = "vllm".into();
        print.version = Some(version);
    }
    print
}

/// Empties the prefix cache of every endpoint; returns how, or `None` when
/// flushing is off.
pub async fn flush(client: &Client, how: &FlushCache) -> Result<Option<String>> {
    let mut done = None;
    for base in client.endpoints() {
        done = match how {
            FlushCache::None => return Ok(None),
            FlushCache::Url(url) => {
                // Its credentials, if any, went to the client at the start.
                let url = &mask_password(&crate::client::without_credentials(url));
                let (status, body) = client
                    .post_text(url, &json!({}))
                    .await
                    .map_err(|e| Error::Unreachable(format!("--flush-cache {url}: {e}")))?;
                if !(200..300).contains(&status) {
                    return Err(Error::Unreachable(format!(
                        "--flush-cache {url} answered {status}: {}",
                        crate::client::shown(body.as_bytes(), 200)
                    )));
                }
                return Ok(Some(format!("POST {url}")));
            }
            FlushCache::Auto => Some(flush_auto(client, base).await?),
        };
    }
    Ok(done)
}

async fn flush_auto(client: &Client, base: &str) -> Result<String> {
    let mut tried = Vec::new();
    for (path, what) in [
        ("/reset_prefix_cache", "vLLM POST /reset_prefix_cache"),
        ("/flush_cache", "SGLang POST /flush_cache"),
    ] {
        match client.post_text(&format!("{base}{path}"), &json!({})).await {
            Ok((status, _)) if (200..300).contains(&status) => return Ok(what.to_string()),
            Ok((status, _)) => tried.push(format!("{path}: {status}")),
            Err(e) => tried.push(format!("{path}: {e}")),
        }
    }
    // llama.cpp: erase every slot's KV.
    if let Some(slots) = get_json(client, &format!("{base}/slots")).await
        && let Some(slots) = slots.as_array()
    {
        let mut erased = 0;
        for slot in slots {
            let Some(id) = slot["id"].as_u64() else {
                continue;
            };
            let url = format!("{base}/slots/{id}?action=erase");
            match client.post_text(&url, &json!({})).await {
                Ok((status, _)) if (200..300).contains(&status) => erased += 1,
                Ok((status, body)) => tried.push(format!("{url}: {status} {body}")),
                Err(e) => tried.push(format!("{url}: {e}")),
            }
        }
        if erased > 0 && erased == slots.len() {
            return Ok(format!("llama.cpp slot erase ({erased} slots)"));
        }
    } else {
        tried.push("/slots: not served".to_string());
    }
    Err(Error::Unreachable(format!(
        "--flush-cache auto: {base} offers no way to empty its prefix cache ({}); start vLLM \
         with VLLM_SERVER_DEV_MODE=1, or give the URL, or use --flush-cache none",
        tried.join(", ")
    )))
}

/// Reads the server's prefix-cache counters, when configured and served.
pub async fn counters(client: &Client, url: Option<&str>) -> Option<PrefixCounters> {
    let url = url?;
    let text = match client.get_text(url).await {
        Ok(text) => text,
        Err(error) => {
            let (url, error) = (mask_password(url), mask_password(&error));
            tracing::warn!(%url, %error, "could not read the server's prefix-cache counters");
            return None;
        }
    };
    let counters = prefix_counters(&text);
    if counters.is_none() {
        let url = mask_password(url);
        tracing::warn!(%url, "no prefix-cache counters in the server's metrics");
    }
    counters
}

/// Whether the server reports cached prompt tokens: the same prompt sent
/// twice must come back with some cached the second time. vLLM, for one,
/// leaves the count out when it is zero, so without this a point where
/// nothing hit would read as "not reported" rather than 0 %.
pub async fn reports_cached_tokens(client: &Client, body: Vec<u8>) -> bool {
    let first = client
        .stream(body.clone(), std::time::Instant::now(), Some(0))
        .await;
    if first.error_kind.is_some() {
        return false;
    }
    let second = client
        .stream(body, std::time::Instant::now(), Some(0))
        .await;
    second.cached_tokens.is_some_and(|cached| cached > 0)
}

/// First-tier KV capacity in tokens from vLLM's `vllm:cache_config_info`;
/// `None` when absent or when the server's numbers overflow.
pub fn kv_capacity_from_metrics(metrics: &str) -> Option<u64> {
    crate::client::prometheus::kv_capacity_tokens(metrics)
}

/// The server's KV block size in tokens, when its metrics say
/// (`vllm:cache_config_info`'s `block_size`, which the simulator writes
/// too).
pub fn kv_block_size_from_metrics(metrics: &str) -> Option<u64> {
    crate::client::prometheus::parse(metrics)
        .samples_of("vllm:cache_config_info")
        .find_map(|sample| sample.label("block_size")?.parse().ok())
        .filter(|&n: &u64| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_and_block_come_from_vllm_cache_config_labels() {
        let metrics = "# HELP x\nvllm:cache_config_info{block_size=\"16\",engine=\"0\",\
                       num_gpu_blocks=\"1000\"} 1.0\n";
        assert_eq!(kv_capacity_from_metrics(metrics), Some(16_000));
        assert_eq!(kv_block_size_from_metrics(metrics), Some(16));
        assert_eq!(kv_capacity_from_metrics("vllm:other 1\n"), None);
        let huge = "vllm:cache_config_info{block_size=\"18446744073709551615\",\
                    num_gpu_blocks=\"2\"} 1\n";
        assert_eq!(
            kv_capacity_from_metrics(huge),
            None,
            "overflow is not a capacity"
        );
    }
}
