//! The simulator's HTTP server: vLLM's OpenAI-compatible routes over axum,
//! streaming as vLLM streams, with faults injected per request.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures_util::stream::{self, Stream};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::engine::{self, EngineEvent, EngineHandle, EngineRequest};
use super::faults::{Fault, FaultDraw};
use super::metrics;
use super::tokenizer::{self, TokenId, VOCAB_SIZE};
use super::wire::*;

/// Default `max_tokens` when a request gives none, as vLLM's completions.
const DEFAULT_MAX_TOKENS: usize = 16;

struct App {
    config: SimConfig,
    engine: EngineHandle,
    faults: Mutex<FaultDraw>,
    requests: AtomicU64,
    started: u64,
    shutdown: CancellationToken,
}

type Shared = Arc<App>;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An OpenAI-style error, turned into a response at the handler's edge.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    retry_after: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestError", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorInfo {
                message: self.message,
                kind: self.kind,
                param: None,
                code: self.status.as_u16(),
            },
        };
        let mut response = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }
}

type ApiResult<T = Response> = Result<T, ApiError>;

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("wire types serialize");
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// Parses a request body; failures read as FastAPI's validation errors do in
/// vLLM (type "Bad Request", Python's rendering of the error list).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        let offset = body
            .split(|&b| b == b'\n')
            .take(e.line().saturating_sub(1))
            .map(|line| line.len() + 1)
            .sum::<usize>()
            + e.column().saturating_sub(1);
        let kind = if e.is_syntax() || e.is_eof() {
            "json_invalid"
        } else {
            "value_error"
        };
        let detail = e.to_string().replace('\'', "\"");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            format!(
                "[{{'type': '{kind}', 'loc': ('body', {offset}), 'msg': 'JSON decode error', \
                 'input': {{}}, 'ctx': {{'error': '{detail}'}}}}]"
            ),
        )
    })
}

/// Builds the router; `serve` and tests share it.
fn router(app: Shared) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/reset_prefix_cache", post(reset_prefix_cache))
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/metrics", get(prometheus))
        .route("/sim/info", get(info))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

/// Runs the simulator on `listener` until `shutdown` is cancelled, then
/// finishes open responses (stalled ones end at once) and returns.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    tracing::info!(
        run_slowdown = config.run_slowdown(),
        run_noise = config.run_noise,
        seed = config.seed,
        cold_start_slowdown = config.cold_start_slowdown,
        cold_start_seconds = config.cold_start_seconds,
        "simulator speed"
    );
    let engine = engine::spawn(&config, shutdown.clone());
    let app = Arc::new(App {
        faults: Mutex::new(FaultDraw::new(&config)),
        config,
        engine,
        requests: AtomicU64::new(0),
        started: unix_now(),
        shutdown: shutdown.clone(),
    });
    // Small SSE writes must leave at once, as uvicorn sends them: without
    // TCP_NODELAY, Nagle's algorithm holds a token until the client's
    // delayed ACK, adding tens of milliseconds to every TTFT.
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// A simulator running in this process, for tests and for `cacherate run`
/// without an endpoint.
pub struct SimServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<io::Result<()>>,
}

impl SimServer {
    /// Binds `config.listen` and serves in a background task.
    pub async fn start(config: SimConfig) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, config, shutdown.clone()));
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(self) -> io::Result<()> {
        self.shutdown.cancel();
        self.task.await.map_err(io::Error::other)?
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when it is first awaited, so a signal that arrives right
/// after the caller announced itself is not missed.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"detail":"Not Found"}"#,
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"detail":"Method Not Allowed"}"#,
    )
        .into_response()
}

/// vLLM's dev-mode endpoint: empties the prefix cache.
async fn reset_prefix_cache(State(app): State<Shared>) -> ApiResult {
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

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn version() -> Response {
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

async fn models(State(app): State<Shared>) -> Response {
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

async fn info(State(app): State<Shared>) -> Response {
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

async fn prometheus(State(app): State<Shared>) -> Response {
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

async fn completions(State(app): State<Shared>, body: Bytes) -> ApiResult {
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

async fn chat_completions(State(app): State<Shared>, body: Bytes) -> ApiResult {
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

async fn tokenize(State(app): State<Shared>, body: Bytes) -> ApiResult {
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

async fn detokenize(State(app): State<Shared>, body: Bytes) -> ApiResult {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Completions,
    Chat,
}

/// Everything a response needs besides the engine's events.
struct Generation {
    app: Shared,
    endpoint: Endpoint,
    id: String,
    created: u64,
    prompt_tokens: usize,
    max_tokens: usize,
    include_usage: bool,
    fault: Option<Fault>,
    events: mpsc::UnboundedReceiver<EngineEvent>,
    cached_tokens: usize,
    generated: usize,
}

fn generate(
    app: Shared,
    endpoint: Endpoint,
    prompt: Vec<TokenId>,
    max_tokens: usize,
    stream: bool,
    options: StreamOptions,
) -> ApiResult {
    let fault = app.faults.lock().expect("fault lock").draw();
    match fault {
        Some(Fault::ServerError) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "injected server error (cacherate sim --error-rate)",
            ));
        }
        Some(Fault::RateLimited) => {
            return Err(ApiError {
                retry_after: Some("1"),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RateLimitError",
                    "injected rate limit (cacherate sim --rate-limit-rate)",
                )
            });
        }
        _ => {}
    }
    let number = app.requests.fetch_add(1, Ordering::Relaxed);
    let prefix = match endpoint {
        Endpoint::Completions => "cmpl",
        Endpoint::Chat => "chatcmpl",
    };
    // 32 hex digits like vLLM's random ids, but reproducible from the seed.
    let mut state = app.config.seed ^ number.wrapping_mul(0xd134_2543_de82_ef95);
    let id = format!(
        "{prefix}-{:016x}{:016x}",
        crate::rng::splitmix64(&mut state),
        crate::rng::splitmix64(&mut state)
    );
    let (sender, events) = mpsc::unbounded_channel();
    let prompt_tokens = prompt.len();
    let submitted = app.engine.submit(EngineRequest {
        prompt,
        max_tokens,
        output_seed: app
            .config
            .seed
            .wrapping_mul(0x9e37_79b9)
            .wrapping_add(number),
        events: sender,
    });
    if !submitted {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            "the engine is shutting down",
        ));
    }
    let generation = Generation {
        app,
        endpoint,
        id,
        created: unix_now(),
        prompt_tokens,
        max_tokens,
        include_usage: options.include_usage,
        fault,
        events,
        cached_tokens: 0,
        generated: 0,
    };
    if stream {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        Ok((headers, Body::from_stream(sse(generation))).into_response())
    } else {
        let body = stream::once(whole(generation));
        Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(body),
        )
            .into_response())
    }
}

/// The event after `event`, formatted.
fn sse_event<T: Serialize>(event: &T) -> Bytes {
    let mut bytes = b"data: ".to_vec();
    serde_json::to_writer(&mut bytes, event).expect("wire types serialize");
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}

impl Generation {
    /// Waits for the next token; `None` if the engine stopped.
    async fn next_token(&mut self) -> Option<TokenId> {
        loop {
            match self.events.recv().await? {
                EngineEvent::Admitted { cached_tokens } => self.cached_tokens = cached_tokens,
                EngineEvent::Token(token) => {
                    self.generated += 1;
                    return Some(token);
                }
            }
        }
    }

    fn usage(&self) -> Usage {
        Usage::new(self.prompt_tokens, self.generated, self.cached_tokens)
    }

    fn model(&self) -> &str {
        &self.app.config.model
    }

    /// The chunk that carries one token (and, for the last, the finish).
    fn token_chunk(&self, text: &str) -> Bytes {
        let finish_reason = (self.generated == self.max_tokens).then_some("length");
        match self.endpoint {
            Endpoint::Completions => sse_event(&CompletionStreamChunk {
                id: &self.id,
                object: "text_completion",
                created: self.created,
                model: self.model(),
                choices: vec![CompletionStreamChoice {
                    index: 0,
                    text,
                    logprobs: None,
                    finish_reason,
                    stop_reason: None,
                    prompt_token_ids: None,
                    token_ids: None,
                }],
                usage: None,
            }),
            Endpoint::Chat => sse_event(&ChatStreamChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: self.model(),
                choices: vec![ChatStreamChoice {
                    index: 0,
                    delta: Delta {
                        role: None,
                        content: text,
                    },
                    logprobs: None,
                    finish_reason,
                    stop_reason: finish_reason.map(|_| None),
                    token_ids: Some(None),
                }],
                usage: None,
                prompt_token_ids: None,
            }),
        }
    }

    fn role_chunk(&self) -> Bytes {
        sse_event(&ChatStreamChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model(),
            choices: vec![ChatStreamChoice {
                index: 0,
                delta: Delta {
                    role: Some("assistant"),
                    content: "",
                },
                logprobs: None,
                finish_reason: None,
                stop_reason: None,
                token_ids: None,
            }],
            usage: None,
            prompt_token_ids: Some(None),
        })
    }

    fn usage_chunk(&self) -> Bytes {
        let usage = Some(self.usage());
        match self.endpoint {
            Endpoint::Completions => sse_event(&CompletionStreamChunk {
                id: &self.id,
                object: "text_completion",
                created: self.created,
                model: self.model(),
                choices: Vec::new(),
                usage,
            }),
            Endpoint::Chat => sse_event(&ChatStreamChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: self.model(),
                choices: Vec::new(),
                usage,
                prompt_token_ids: None,
            }),
        }
    }

    /// Waits until the next token would be sent, then a moment more so the
    /// tokens already sent leave the server before the connection drops.
    async fn drop_when_next_token_is_due(&mut self) {
        let _ = self.next_token().await;
        self.events.close();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }

    /// Holds the connection open, sending nothing, until shutdown; the
    /// engine forgets the request at once.
    async fn stall(&mut self) {
        self.events.close();
        self.app.shutdown.cancelled().await;
    }
}

fn dropped() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "injected disconnect")
}

/// What the stream sends next.
enum SseState {
    Tokens,
    Usage,
    Done,
    Finished,
}

/// The SSE body: a chunk per token, the usage chunk if asked for, `[DONE]`.
fn sse(generation: Generation) -> impl Stream<Item = io::Result<Bytes>> {
    stream::unfold(
        (generation, SseState::Tokens),
        |(mut generation, state)| async move {
            match state {
                SseState::Tokens => {
                    if generation.generated >= 1 {
                        match generation.fault {
                            Some(Fault::Disconnect) => {
                                generation.drop_when_next_token_is_due().await;
                                return Some((Err(dropped()), (generation, SseState::Finished)));
                            }
                            Some(Fault::Stall) => {
                                generation.stall().await;
                                return Some((Err(dropped()), (generation, SseState::Finished)));
                            }
                            _ => {}
                        }
                    }
                    let Some(token) = generation.next_token().await else {
                        let error = io::Error::other("the engine stopped");
                        return Some((Err(error), (generation, SseState::Finished)));
                    };
                    let text = tokenizer::piece(token).unwrap_or_default();
                    let mut bytes = Vec::new();
                    if generation.generated == 1 && generation.endpoint == Endpoint::Chat {
                        bytes.extend_from_slice(&generation.role_chunk());
                    }
                    bytes.extend_from_slice(&generation.token_chunk(text));
                    let next = if generation.generated < generation.max_tokens {
                        SseState::Tokens
                    } else if generation.include_usage {
                        SseState::Usage
                    } else {
                        SseState::Done
                    };
                    Some((Ok(Bytes::from(bytes)), (generation, next)))
                }
                SseState::Usage => {
                    let chunk = generation.usage_chunk();
                    Some((Ok(chunk), (generation, SseState::Done)))
                }
                SseState::Done => Some((
                    Ok(Bytes::from_static(b"data: [DONE]\n\n")),
                    (generation, SseState::Finished),
                )),
                SseState::Finished => None,
            }
        },
    )
}

/// The non-streaming body: one JSON document after the last token.
async fn whole(mut generation: Generation) -> io::Result<Bytes> {
    let mut text = String::new();
    while generation.generated < generation.max_tokens {
        if generation.generated >= 1 {
            match generation.fault {
                Some(Fault::Disconnect) => return Err(dropped()),
                Some(Fault::Stall) => {
                    generation.stall().await;
                    return Err(dropped());
                }
                _ => {}
            }
        }
        let token = generation
            .next_token()
            .await
            .ok_or_else(|| io::Error::other("the engine stopped"))?;
        text.push_str(tokenizer::piece(token).unwrap_or_default());
    }
    let usage = generation.usage();
    let model = generation.model();
    let bytes = match generation.endpoint {
        Endpoint::Completions => serde_json::to_vec(&CompletionResponse {
            id: &generation.id,
            object: "text_completion",
            created: generation.created,
            model,
            choices: vec![CompletionChoice {
                index: 0,
                text,
                logprobs: None,
                finish_reason: "length",
                stop_reason: None,
                token_ids: None,
                prompt_logprobs: None,
                prompt_token_ids: None,
            }],
            service_tier: None,
            system_fingerprint: None,
            usage: usage.into(),
            kv_transfer_params: None,
        }),
        Endpoint::Chat => serde_json::to_vec(&ChatResponse {
            id: &generation.id,
            object: "chat.completion",
            created: generation.created,
            model,
            choices: vec![ChatChoice {
                index: 0,
                message: ChatMessageOut {
                    role: "assistant",
                    content: text,
                    refusal: None,
                    annotations: None,
                    audio: None,
                    function_call: None,
                    tool_calls: Vec::new(),
                    reasoning_content: None,
                },
                logprobs: None,
                finish_reason: "length",
                stop_reason: None,
                token_ids: None,
            }],
            service_tier: None,
            system_fingerprint: None,
            usage: usage.into(),
            prompt_logprobs: None,
            prompt_token_ids: None,
            kv_transfer_params: None,
        }),
    }
    .expect("wire types serialize");
    Ok(Bytes::from(bytes))
}
