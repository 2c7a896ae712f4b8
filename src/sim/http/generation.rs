//! One generation: the fault drawn for it, its engine events, and the
//! wire chunks it turns them into.

use std::io;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::sim::engine::{EngineEvent, EngineRequest};
use crate::sim::faults::Fault;
use crate::sim::tokenizer::TokenId;
use crate::sim::wire::*;

use super::error::{ApiError, ApiResult};
use super::stream::{sse, whole};
use super::{Shared, unix_now};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Completions,
    Chat,
}

/// Everything a response needs besides the engine's events.
pub(super) struct Generation {
    pub(super) app: Shared,
    pub(super) endpoint: Endpoint,
    pub(super) id: String,
    pub(super) created: u64,
    pub(super) prompt_tokens: usize,
    pub(super) max_tokens: usize,
    pub(super) include_usage: bool,
    pub(super) fault: Option<Fault>,
    pub(super) events: mpsc::UnboundedReceiver<EngineEvent>,
    pub(super) cached_tokens: usize,
    pub(super) generated: usize,
}

/// The injected faults answered before a request reaches the engine.
fn refused(fault: Option<Fault>) -> Result<(), ApiError> {
    match fault {
        Some(Fault::ServerError) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "injected server error (cacherate sim --error-rate)",
        )),
        Some(Fault::RateLimited) => Err(ApiError {
            retry_after: Some("1"),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RateLimitError",
                "injected rate limit (cacherate sim --rate-limit-rate)",
            )
        }),
        _ => Ok(()),
    }
}

/// The id of request `number`: 32 hex digits like vLLM's random ids, but
/// reproducible from the seed.
fn request_id(seed: u64, number: u64, endpoint: Endpoint) -> String {
    let prefix = match endpoint {
        Endpoint::Completions => "cmpl",
        Endpoint::Chat => "chatcmpl",
    };
    let mut state = seed ^ number.wrapping_mul(0xd134_2543_de82_ef95);
    format!(
        "{prefix}-{:016x}{:016x}",
        crate::rng::splitmix64(&mut state),
        crate::rng::splitmix64(&mut state)
    )
}

/// The response of a generation: an event stream, or one JSON body.
fn respond(generation: Generation, stream: bool) -> Response {
    if stream {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        (headers, Body::from_stream(sse(generation))).into_response()
    } else {
        let body = stream::once(whole(generation));
        (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(body),
        )
            .into_response()
    }
}

pub(super) fn generate(
    app: Shared,
    endpoint: Endpoint,
    prompt: Vec<TokenId>,
    max_tokens: usize,
    stream: bool,
    options: StreamOptions,
) -> ApiResult {
    let fault = app.faults.lock().expect("fault lock").draw();
    refused(fault)?;
    let number = app.requests.fetch_add(1, Ordering::Relaxed);
    let id = request_id(app.config.seed, number, endpoint);
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
    Ok(respond(generation, stream))
}

/// The event after `event`, formatted.
pub(super) fn sse_event<T: Serialize>(event: &T) -> Bytes {
    let mut bytes = b"data: ".to_vec();
    serde_json::to_writer(&mut bytes, event).expect("wire types serialize");
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}

impl Generation {
    /// Waits for the next token; `None` if the engine stopped.
    pub(super) async fn next_token(&mut self) -> Option<TokenId> {
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

    pub(super) fn usage(&self) -> Usage {
        // vLLM without --enable-prompt-tokens-details says nothing of
        // cached tokens; the engine caches all the same.
        let reported_cached = if self.app.config.no_prompt_tokens_details {
            0
        } else {
            self.cached_tokens
        };
        Usage::new(self.prompt_tokens, self.generated, reported_cached)
    }

    pub(super) fn model(&self) -> &str {
        &self.app.config.model
    }

    /// The chunk that carries one token (and, for the last, the finish).
    pub(super) fn token_chunk(&self, text: &str) -> Bytes {
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

    pub(super) fn role_chunk(&self) -> Bytes {
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

    pub(super) fn usage_chunk(&self) -> Bytes {
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
    pub(super) async fn drop_when_next_token_is_due(&mut self) {
        let _ = self.next_token().await;
        self.events.close();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }

    /// Holds the connection open, sending nothing, until shutdown; the
    /// engine forgets the request at once.
    pub(super) async fn stall(&mut self) {
        self.events.close();
        self.app.shutdown.cancelled().await;
    }
}

pub(super) fn dropped() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "injected disconnect")
}
