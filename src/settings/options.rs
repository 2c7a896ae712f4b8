//! How the server's prefix cache is emptied (`--flush-cache`), and the
//! option values the command line defines, re-exported.

use serde::Serialize;

use crate::error::{Error, Result};

use super::url::serialize_masked_url;

pub use crate::cli::{
    ChunkTimes, FixedLoadSpec, Metric, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric,
    TtftMetric,
};

/// Whether and how the server's prefix cache is emptied before a warm-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushCache {
    None,
    /// Try vLLM's, SGLang's and llama.cpp's endpoints.
    Auto,
    /// POST to this URL.
    Url(#[serde(serialize_with = "serialize_masked_url")] String),
}

impl FlushCache {
    pub fn parse(text: &str) -> Result<FlushCache> {
        match text {
            "none" => Ok(FlushCache::None),
            "auto" => Ok(FlushCache::Auto),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(FlushCache::Url(url.to_string()))
            }
            other => Err(Error::Usage(format!(
                "--flush-cache takes none, auto or a URL to POST to, not {other:?}"
            ))),
        }
    }
}

/// As `--flush-cache` takes it (the inverse of [`FlushCache::parse`]), a
/// URL's password masked.
impl std::fmt::Display for FlushCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushCache::None => f.write_str("none"),
            FlushCache::Auto => f.write_str("auto"),
            FlushCache::Url(url) => f.write_str(&super::url::mask_password(url)),
        }
    }
}
