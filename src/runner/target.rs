//! What the run learns about and does to the target server besides load:
//! its fingerprint (kind, version, context length), emptying its prefix
//! cache, and reading its own prefix-cache counters.

use serde_json::json;

use crate::client::Client;
use crate::client::ServerInfo;
use crate::client::prometheus::{PrefixCounters, prefix_counters};
use crate::error::{Error, Result};
use crate::settings::{FlushCache, mask_password};
use crate::store::Fingerprint;

/// Asks the first endpoint what it is.
pub async fn fingerprint(client: &Client, model: &str) -> Fingerprint {
    fingerprint_of(client.identify(model).await, model)
}

/// The fingerprint of what the server said it is.
pub fn fingerprint_of(info: ServerInfo, model: &str) -> Fingerprint {
    Fingerprint {
        kind: info.kind.as_str().to_string(),
        version: info.version,
        max_model_len: info.max_model_len,
        model: model.to_string(),
        props: info.props,
    }
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
    client.flush_prefix_cache(base).await.map_err(|tried| {
        Error::Unreachable(format!(
            "--flush-cache auto: {base} offers no way to empty its prefix cache ({}); start vLLM \
             with VLLM_SERVER_DEV_MODE=1, or give the URL, or use --flush-cache none",
            tried.join(", ")
        ))
    })
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
