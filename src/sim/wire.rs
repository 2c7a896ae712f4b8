//! Request and response bodies as vLLM 0.11's OpenAI-compatible server reads
//! and writes them. Field order is declaration order and matches vLLM's
//! pydantic models, and so do the fields written as `null` or left out, so
//! the simulator's bytes match vLLM's (see tests/fixtures/vllm-0.11.0/).

use serde::{Deserialize, Serialize};

use super::tokenizer::TokenId;

/// `prompt` of `/v1/completions`: text or token ids, alone or batched.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<i64>),
    TextBatch(Vec<String>),
    TokenBatch(Vec<Vec<i64>>),
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
    #[serde(default)]
    pub continuous_usage_stats: bool,
}

/// The fields of `/v1/completions` the simulator uses; the rest (sampling
/// parameters) are accepted and ignored, as they do not change its timing.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Prompt,
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<MessageContent>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
}

/// `/tokenize` takes a prompt (vLLM) or chat messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TokenizeRequest {
    Prompt {
        #[serde(default)]
        model: Option<String>,
        prompt: String,
    },
    Chat {
        #[serde(default)]
        model: Option<String>,
        messages: Vec<ChatMessage>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenizeResponse {
    pub count: usize,
    pub max_model_len: usize,
    pub tokens: Vec<TokenId>,
    pub token_strs: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DetokenizeRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub tokens: Vec<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetokenizeResponse {
    pub prompt: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: usize,
}

/// `usage` of a stream's last chunk. vLLM (started with
/// `--enable-prompt-tokens-details`) adds the details only when some prompt
/// tokens were cached.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
    pub completion_tokens: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

impl Usage {
    pub fn new(prompt_tokens: usize, completion_tokens: usize, cached_tokens: usize) -> Self {
        Self {
            prompt_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            completion_tokens,
            prompt_tokens_details: (cached_tokens > 0)
                .then_some(PromptTokensDetails { cached_tokens }),
        }
    }
}

/// `usage` of a whole (non-streamed) response: every field, nulls included.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FullUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
    pub completion_tokens: usize,
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

impl From<Usage> for FullUsage {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            total_tokens: usage.total_tokens,
            completion_tokens: usage.completion_tokens,
            prompt_tokens_details: usage.prompt_tokens_details,
        }
    }
}

/// `null`, where vLLM writes a field it has no value for.
pub type Null = Option<()>;

/// One streamed `/v1/completions` choice.
#[derive(Debug, Clone, Serialize)]
pub struct CompletionStreamChoice<'a> {
    pub index: u32,
    pub text: &'a str,
    pub logprobs: Null,
    pub finish_reason: Option<&'static str>,
    pub stop_reason: Null,
    pub prompt_token_ids: Null,
    pub token_ids: Null,
}

/// A `/v1/completions` stream event: every field is written, so token
/// events carry `"usage":null`; the last event has no choices and the usage.
#[derive(Debug, Clone, Serialize)]
pub struct CompletionStreamChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<CompletionStreamChoice<'a>>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletionChoice {
    pub index: u32,
    pub text: String,
    pub logprobs: Null,
    pub finish_reason: &'static str,
    pub stop_reason: Null,
    pub token_ids: Null,
    pub prompt_logprobs: Null,
    pub prompt_token_ids: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletionResponse<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<CompletionChoice>,
    pub service_tier: Null,
    pub system_fingerprint: Null,
    pub usage: FullUsage,
    pub kv_transfer_params: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub content: &'a str,
}

/// A streamed chat choice. Chat chunks are written with only the fields
/// that were set, so some fields are absent rather than `null`: `Some(None)`
/// writes `null`, `None` leaves the field out.
#[derive(Debug, Clone, Serialize)]
pub struct ChatStreamChoice<'a> {
    pub index: u32,
    pub delta: Delta<'a>,
    pub logprobs: Null,
    pub finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<Null>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Null>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatStreamChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<ChatStreamChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_token_ids: Option<Null>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatMessageOut {
    pub role: &'static str,
    pub content: String,
    pub refusal: Null,
    pub annotations: Null,
    pub audio: Null,
    pub function_call: Null,
    pub tool_calls: Vec<()>,
    pub reasoning_content: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    pub index: u32,
    pub message: ChatMessageOut,
    pub logprobs: Null,
    pub finish_reason: &'static str,
    pub stop_reason: Null,
    pub token_ids: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatResponse<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<ChatChoice>,
    pub service_tier: Null,
    pub system_fingerprint: Null,
    pub usage: FullUsage,
    pub prompt_logprobs: Null,
    pub prompt_token_ids: Null,
    pub kv_transfer_params: Null,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelPermission {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub allow_create_engine: bool,
    pub allow_sampling: bool,
    pub allow_logprobs: bool,
    pub allow_search_indices: bool,
    pub allow_view: bool,
    pub allow_fine_tuning: bool,
    pub organization: &'static str,
    pub group: Null,
    pub is_blocking: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelCard<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    pub root: &'a str,
    pub parent: Null,
    pub max_model_len: usize,
    pub permission: Vec<ModelPermission>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelList<'a> {
    pub object: &'static str,
    pub data: Vec<ModelCard<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub param: Null,
    pub code: u16,
}

/// vLLM's error body (0.10.1 and later): `{"error": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorResponse {
    pub error: ErrorInfo,
}
