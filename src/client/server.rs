//! What the client learns about the server it talks to besides load: which
//! server it is (kind, version, context length) and how its prefix cache is
//! emptied. Shared by the run (its fingerprint and `--flush-cache auto`)
//! and `cacherate doctor`.

use serde_json::{Value, json};

use super::Client;

/// The servers cacherate tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Sim,
    LlamaCpp,
    Sglang,
    Vllm,
    Unknown,
}

impl ServerKind {
    /// As `run.json` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Sim => "cacherate-sim",
            ServerKind::LlamaCpp => "llama.cpp",
            ServerKind::Sglang => "sglang",
            ServerKind::Vllm => "vllm",
            ServerKind::Unknown => "unknown",
        }
    }
}

/// What the first endpoint says it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    pub kind: ServerKind,
    pub version: Option<String>,
    /// The longest context the server accepts per request, when it says.
    pub max_model_len: Option<u64>,
    /// Where `max_model_len` was read.
    pub max_model_len_from: Option<&'static str>,
    /// llama.cpp's `/props`, trimmed of its chat template.
    pub props: Option<Value>,
}

impl Client {
    async fn get_json(&self, url: &str) -> Option<Value> {
        let text = self.get_text(url).await.ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Asks the first endpoint what it is: the simulator's `/sim/info`,
    /// llama.cpp's `/props` (`build_info`), SGLang's `/get_server_info`,
    /// vLLM's `/version`, in that order; the context length from the
    /// model's card on `/v1/models` (vLLM's `max_model_len`, llama.cpp's
    /// `meta.n_ctx_train`), else from llama.cpp's per-slot `n_ctx`.
    pub async fn identify(&self, model: &str) -> ServerInfo {
        let base = &self.endpoints[0];
        let mut info = ServerInfo {
            kind: ServerKind::Unknown,
            version: None,
            max_model_len: None,
            max_model_len_from: None,
            props: None,
        };
        if let Some(models) = self.get_json(&format!("{base}/v1/models")).await
            && let Some(card) = models["data"]
                .as_array()
                .and_then(|cards| cards.iter().find(|c| c["id"] == model))
        {
            if let Some(n) = card["max_model_len"].as_u64() {
                info.max_model_len = Some(n);
                info.max_model_len_from = Some("/v1/models max_model_len");
            } else if let Some(n) = card["meta"]["n_ctx_train"].as_u64() {
                info.max_model_len = Some(n);
                info.max_model_len_from = Some("/v1/models meta.n_ctx_train");
            }
        }
        if let Some(sim) = self.get_json(&format!("{base}/sim/info")).await
            && sim["server"] == "cacherate-sim"
        {
            info.kind = ServerKind::Sim;
            info.version = sim["version"].as_str().map(str::to_string);
            return info;
        }
        if let Some(mut props) = self.get_json(&format!("{base}/props")).await
            && props.get("build_info").is_some()
        {
            info.kind = ServerKind::LlamaCpp;
            info.version = props["build_info"].as_str().map(str::to_string);
            if let Some(n_ctx) = props["default_generation_settings"]["n_ctx"].as_u64() {
                info.max_model_len = Some(n_ctx);
                info.max_model_len_from = Some("/props n_ctx (per slot)");
            }
            if let Some(object) = props.as_object_mut() {
                object.remove("chat_template");
            }
            info.props = Some(props);
            return info;
        }
        if let Some(server) = self.get_json(&format!("{base}/get_server_info")).await
            && server.get("version").is_some()
        {
            info.kind = ServerKind::Sglang;
            info.version = server["version"].as_str().map(str::to_string);
            return info;
        }
        if let Some(version) = self.server_version().await {
            info.kind = ServerKind::Vllm;
            info.version = Some(version);
        }
        info
    }

    /// Empties the prefix cache of the endpoint `base` the first way it
    /// offers: vLLM's `POST /reset_prefix_cache` (dev mode), SGLang's
    /// `POST /flush_cache`, else erasing every llama.cpp slot. Returns
    /// how, or every way tried and what it answered.
    pub async fn flush_prefix_cache(&self, base: &str) -> Result<String, Vec<String>> {
        let mut tried = Vec::new();
        for (path, what) in [
            ("/reset_prefix_cache", "vLLM POST /reset_prefix_cache"),
            ("/flush_cache", "SGLang POST /flush_cache"),
        ] {
            match self.post_text(&format!("{base}{path}"), &json!({})).await {
                Ok((status, _)) if (200..300).contains(&status) => return Ok(what.to_string()),
                Ok((status, _)) => tried.push(format!("{path}: {status}")),
                Err(e) => tried.push(format!("{path}: {e}")),
            }
        }
        // llama.cpp: erase every slot's KV.
        if let Some(slots) = self.get_json(&format!("{base}/slots")).await
            && let Some(slots) = slots.as_array()
        {
            let mut erased = 0;
            for slot in slots {
                let Some(id) = slot["id"].as_u64() else {
                    continue;
                };
                let url = format!("{base}/slots/{id}?action=erase");
                match self.post_text(&url, &json!({})).await {
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
        Err(tried)
    }
}
