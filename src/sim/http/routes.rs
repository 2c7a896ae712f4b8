//! The route handlers and the checks they apply to requests.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::sim::config::SimConfig;
use crate::sim::metrics;
use crate::sim::tokenizer::{self, TokenId, VOCAB_SIZE};
use crate::sim::wire::*;

use super::error::{ApiError, ApiResult, json_response, parse};
use super::generation::{Endpoint, generate};
use super::{App, Shared};

/// Default `max_tokens` when a request gives none, as vLLM's completions.
const DEFAULT_MAX_TOKENS: usize = 16;

pub(super) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"detail":"Not Found"}"#,
    )
        .into_response()
}

pub(super) async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"detail":"Method Not Allowed"}"#,
    )
        .into_response()
}

/// vLLM's dev-mode endpoint: empties the prefix cache.
pub(super) async fn reset_prefix_cache(State(app): State<Shared>) -> ApiResult {
    match app.engine.reset_prefix_cache().await {
        Some(dropped) => {
            tracing::debug!(dropped, "prefix cache reset");
            Ok(StatusCode::OK.into_response())
        }
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            "the engine is shutting down",
        )),
    }
}

pub(super) async fn health() -> StatusCode {
    StatusCode::OK
}

pub(super) async fn version() -> Response {
    #[derive(Serialize)]
    struct Version {
        version: &'static str,
    }
    json_response(
        StatusCode::OK,
        &Version {
            version: env!("CARGO_PKG_VERSION"),
        },
    )
}

pub(super) async fn models(State(app): State<Shared>) -> Response {
    let model = app.config.model.as_str();
    let list = ModelList {
        object: "list",
        data: vec![ModelCard {
            id: model,
            object: "model",
            created: app.started,
            owned_by: "vllm",
            root: model,
            parent: None,
            max_model_len: app.config.max_model_len,
            permission: vec![ModelPermission {
                id: format!("modelperm-{:032x}", u128::from(app.started)),
                object: "model_permission",
                created: app.started,
                allow_create_engine: false,
                allow_sampling: true,
                allow_logprobs: true,
                allow_search_indices: false,
                allow_view: true,
                allow_fine_tuning: false,
                organization: "*",
                group: None,
                is_blocking: false,
            }],
        }],
    };
    json_response(StatusCode::OK, &list)
}

pub(super) async fn info(State(app): State<Shared>) -> Response {
    #[derive(Serialize)]
    struct Info<'a> {
        server: &'static str,
        version: &'static str,
        vocab_size: u32,
        special_tokens: &'static [&'static str],
        /// The factor `--run-noise` drew for this process from `--seed`.
        run_slowdown: f64,
        config: &'a SimConfig,
    }
    json_response(
        StatusCode::OK,
        &Info {
            server: "cacherate-sim",
            version: env!("CARGO_PKG_VERSION"),
            vocab_size: VOCAB_SIZE,
            special_tokens: &tokenizer::SPECIAL_TOKENS,
            run_slowdown: app.config.run_slowdown(),
            config: &app.config,
        },
    )
}

pub(super) async fn prometheus(State(app): State<Shared>) -> Response {
    let text = metrics::render(&app.config, &app.engine.snapshot());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn check_model(app: &App, model: Option<&str>) -> ApiResult<()> {
    match model {
        Some(model) if model != app.config.model => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            format!("The model `{model}` does not exist."),
        )),
        _ => Ok(()),
    }
}

fn token_ids(ids: &[i64]) -> ApiResult<Vec<TokenId>> {
    ids.iter()
        .map(|&id| {
            u32::try_from(id)
                .ok()
                .filter(|&id| id < VOCAB_SIZE)
                .ok_or_else(|| ApiError::bad_request(format!("Token id {id} is out of vocabulary")))
        })
        .collect()
}

fn chat_prompt(messages: &[ChatMessage]) -> String {
    // The simulator's chat template: a role marker before each message, an
    // end marker after it, and the assistant marker last.
    let mut text = String::new();
    for message in messages {
        text.push_str(&format!("<|{}|>", message.role));
        match &message.content {
            Some(MessageContent::Text(content)) => text.push_str(content),
            Some(MessageContent::Parts(parts)) => parts
                .iter()
                .filter(|part| part.kind == "text")
                .for_each(|part| text.push_str(&part.text)),
            None => {}
        }
        text.push_str("<|end|>");
    }
    text.push_str("<|assistant|>");
    text
}

fn max_tokens(requested: Option<i64>) -> ApiResult<usize> {
    match requested {
        None => Ok(DEFAULT_MAX_TOKENS),
        Some(n) if n >= 1 => Ok(n as usize),
        Some(n) => Err(ApiError::bad_request(format!(
            "max_tokens must be at least 1, got {n}."
        ))),
    }
}

/// vLLM 0.11's length checks and messages, which differ by endpoint: the
/// completions message prints `max_model_len - max_tokens`, and the chat
/// messages end in " None" (vLLM appends the error's empty cause).
fn check_length(
    app: &App,
    endpoint: Endpoint,
    prompt_tokens: usize,
    max_tokens: usize,
) -> ApiResult<()> {
    if prompt_tokens == 0 {
        return Err(ApiError::bad_request("The prompt cannot be empty."));
    }
    let limit = app.config.max_model_len;
    if prompt_tokens + max_tokens <= limit {
        return Ok(());
    }
    let message = match endpoint {
        Endpoint::Completions => format!(
            "This model's maximum context length is {} tokens. However, your request has \
             {prompt_tokens} input tokens. Please reduce the length of the input messages.",
            limit.saturating_sub(max_tokens)
        ),
        Endpoint::Chat if prompt_tokens >= limit => format!(
            "This model's maximum context length is {limit} tokens. However, your request has \
             {prompt_tokens} input tokens. Please reduce the length of the input messages. None"
        ),
        Endpoint::Chat => format!(
            "'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's \
             maximum context length is {limit} tokens and your request has {prompt_tokens} \
             input tokens ({max_tokens} > {limit} - {prompt_tokens}). None"
        ),
    };
    Err(ApiError::bad_request(message))
}

pub(super) async fn completions(State(app): State<Shared>, body: Bytes) -> ApiResult {
    let request: CompletionRequest = parse(&body)?;
    check_model(&app, request.model.as_deref())?;
    let prompt = match &request.prompt {
        Prompt::Text(text) => tokenizer::encode(text),
        Prompt::Tokens(_) | Prompt::TokenBatch(_) if app.config.reject_token_prompts => {
            return Err(ApiError::bad_request(
                "this server takes text prompts only (cacherate sim --reject-token-prompts)",
            ));
        }
        Prompt::Tokens(ids) => token_ids(ids)?,
        Prompt::TextBatch(texts) if texts.len() == 1 => tokenizer::encode(&texts[0]),
        Prompt::TokenBatch(batch) if batch.len() == 1 => token_ids(&batch[0])?,
        _ => {
            return Err(ApiError::bad_request(
                "the simulator serves one prompt per request; send a batch as separate requests",
            ));
        }
    };
    let max_tokens = max_tokens(request.max_tokens)?;
    check_length(&app, Endpoint::Completions, prompt.len(), max_tokens)?;
    generate(
        app,
        Endpoint::Completions,
        prompt,
        max_tokens,
        request.stream,
        request.stream_options.unwrap_or_default(),
    )
}

pub(super) async fn chat_completions(State(app): State<Shared>, body: Bytes) -> ApiResult {
    let request: ChatRequest = parse(&body)?;
    check_model(&app, request.model.as_deref())?;
    if request.messages.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty"));
    }
    let prompt = tokenizer::encode(&chat_prompt(&request.messages));
    let max_tokens = max_tokens(request.max_completion_tokens.or(request.max_tokens))?;
    check_length(&app, Endpoint::Chat, prompt.len(), max_tokens)?;
    generate(
        app,
        Endpoint::Chat,
        prompt,
        max_tokens,
        request.stream,
        request.stream_options.unwrap_or_default(),
    )
}

pub(super) async fn tokenize(State(app): State<Shared>, body: Bytes) -> ApiResult {
    let request: TokenizeRequest = parse(&body)?;
    let (model, text) = match &request {
        TokenizeRequest::Prompt { model, prompt } => (model, prompt.clone()),
        TokenizeRequest::Chat { model, messages } => (model, chat_prompt(messages)),
    };
    check_model(&app, model.as_deref())?;
    let tokens = tokenizer::encode(&text);
    Ok(json_response(
        StatusCode::OK,
        &TokenizeResponse {
            count: tokens.len(),
            max_model_len: app.config.max_model_len,
            tokens,
            token_strs: None,
        },
    ))
}

pub(super) async fn detokenize(State(app): State<Shared>, body: Bytes) -> ApiResult {
    let request: DetokenizeRequest = parse(&body)?;
    check_model(&app, request.model.as_deref())?;
    let ids = token_ids(&request.tokens)?;
    Ok(json_response(
        StatusCode::OK,
        &DetokenizeResponse {
            prompt: tokenizer::decode(&ids),
        },
    ))
}
