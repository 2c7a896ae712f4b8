//! Where token counts come from: a local `tokenizer.json`, one fetched
//! from the Hugging Face hub by model id (cached), or the server's own
//! `/tokenize`. Used once at the start to tokenise the content, never per
//! request.

use std::path::{Path, PathBuf};

use crate::client::Client;
use crate::error::{Error, Result};

/// The tokenizer of a run.
pub enum Tokenizer {
    /// The server's `/tokenize`.
    Server,
    /// A Hugging Face `tokenizer.json`; the text says where it came from.
    Local(Box<tokenizers::Tokenizer>, String),
}

/// Where downloaded tokenizers are kept: `$CACHERATE_CACHE_DIR`, else
/// `~/.cache/cacherate`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CACHERATE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("cacherate")
}

fn load(path: &Path) -> Result<tokenizers::Tokenizer> {
    tokenizers::Tokenizer::from_file(path).map_err(|e| {
        Error::Usage(format!(
            "{} is not a Hugging Face tokenizer.json: {e}",
            path.display()
        ))
    })
}

/// Downloads `tokenizer.json` of hub model `id` into the cache, once.
async fn fetch_from_hub(id: &str) -> Result<PathBuf> {
    let target = cache_dir()
        .join("tokenizers")
        .join(id.replace('/', "--"))
        .join("tokenizer.json");
    if target.is_file() {
        return Ok(target);
    }
    let hub = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    let url = format!(
        "{}/{id}/resolve/main/tokenizer.json",
        hub.trim_end_matches('/')
    );
    let advice = "without network access, download tokenizer.json where there is some and \
                  give its path: --tokenizer ./tokenizer.json";
    let client = reqwest::Client::new();
    let mut request = client.get(&url);
    if let Ok(token) = std::env::var("HF_TOKEN") {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| {
        Error::Usage(format!(
            "cannot download the tokenizer of {id} from {url}: {e}; {advice}"
        ))
    })?;
    let status = response.status();
    if !status.is_success() {
        let hint = if status == 401 || status == 403 {
            " (a gated model: set HF_TOKEN)"
        } else {
            ""
        };
        return Err(Error::Usage(format!(
            "{url} answered {status}{hint}; is {id} a Hugging Face model id? {advice}"
        )));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::Usage(format!("the download of {url} broke off: {e}; {advice}")))?;
    let dir = target.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot create {}: {e}", dir.display())))?;
    let partial = dir.join("tokenizer.json.partial");
    std::fs::write(&partial, &bytes)
        .and_then(|()| std::fs::rename(&partial, &target))
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot write {}: {e}", target.display())))?;
    Ok(target)
}

impl Tokenizer {
    /// `--tokenizer`: a path to a `tokenizer.json` (or a directory holding
    /// one), a hub model id, or nothing for the server's `/tokenize`.
    pub async fn resolve(spec: Option<&str>) -> Result<Tokenizer> {
        let Some(spec) = spec else {
            return Ok(Tokenizer::Server);
        };
        let path = Path::new(spec);
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        if file.is_file() {
            let tokenizer = load(&file)?;
            return Ok(Tokenizer::Local(
                Box::new(tokenizer),
                format!("the local tokenizer {}", file.display()),
            ));
        }
        if path.exists()
            || spec.starts_with('.')
            || spec.starts_with('/')
            || spec.ends_with(".json")
        {
            return Err(Error::Usage(format!(
                "--tokenizer {spec}: no tokenizer.json there"
            )));
        }
        let file = fetch_from_hub(spec).await?;
        let tokenizer = load(&file)?;
        Ok(Tokenizer::Local(
            Box::new(tokenizer),
            format!("the Hugging Face tokenizer of {spec} ({})", file.display()),
        ))
    }

    /// Token ids of `text`, without special tokens.
    pub async fn encode(&self, client: &Client, model: &str, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Server => client.tokenize(model, text).await.map(|(ids, _)| ids),
            Tokenizer::Local(tokenizer, _) => tokenizer
                .encode(text, false)
                .map(|encoding| encoding.get_ids().to_vec())
                .map_err(|e| Error::Internal(anyhow::anyhow!("the tokenizer failed: {e}"))),
        }
    }

    /// What run.json says about it (the server's request shape is added
    /// by the caller once known).
    pub fn describe(&self) -> String {
        match self {
            Tokenizer::Server => "the server's /tokenize".to_string(),
            Tokenizer::Local(_, what) => what.clone(),
        }
    }
}
