//! Response bodies: the SSE stream and the non-streaming JSON document.

use std::io;

use axum::body::Bytes;
use futures_util::stream::{self, Stream};

use crate::sim::faults::Fault;
use crate::sim::tokenizer;
use crate::sim::wire::*;

use super::generation::{Endpoint, Generation, dropped};

/// What the stream sends next.
enum SseState {
    Tokens,
    Usage,
    Done,
    Finished,
}

/// The SSE body: a chunk per token, the usage chunk if asked for, `[DONE]`.
pub(super) fn sse(generation: Generation) -> impl Stream<Item = io::Result<Bytes>> {
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
pub(super) async fn whole(mut generation: Generation) -> io::Result<Bytes> {
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
