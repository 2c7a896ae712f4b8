//! What prompts are made of: the synthetic content, tokenised once — as a
//! token pool for token-ID prompts, or as words with their token counts for
//! the text and chat modes.

use std::sync::Arc;

use super::text::synthetic_text;
use super::tokenizer::Tokenizer;
use super::{Content, FactoryOptions, PromptFactory, TextPool, TokenPool};
use crate::client::Client;
use crate::error::Result;
use crate::settings::PromptMode;

/// Words of synthetic content tokenised into the pool (a few tens of
/// thousands of tokens), in pieces of this many lines.
const POOL_WORDS: usize = 24_000;
const POOL_PIECE_LINES: usize = 40;

/// Tokenises the synthetic content once, in pieces.
async fn token_pool(
    client: &Client,
    tokenizer: &Tokenizer,
    model: &str,
    seed: u64,
) -> Result<TokenPool> {
    let text = synthetic_text(seed, POOL_WORDS);
    let lines: Vec<&str> = text.lines().collect();
    let mut tokens = Vec::new();
    for piece in lines.chunks(POOL_PIECE_LINES) {
        tokens.extend(tokenizer.encode(client, model, &piece.join("\n")).await?);
    }
    TokenPool::new(&tokens)
}

/// Builds what prompts are made of, in the prompt mode asked for; `auto`
/// tries token ids first and falls back to text when the server refuses
/// them.
pub async fn prompt_content(
    client: &Client,
    tokenizer: &Tokenizer,
    model: &str,
    seed: u64,
    mode: PromptMode,
    warn: impl Fn(&str),
) -> Result<(Content, PromptMode)> {
    match mode {
        PromptMode::Text | PromptMode::Chat => {
            let pool = Arc::new(text_pool(client, tokenizer, model, seed).await?);
            return Ok(if mode == PromptMode::Text {
                (Content::Text(pool), PromptMode::Text)
            } else {
                (Content::Chat(pool), PromptMode::Chat)
            });
        }
        PromptMode::Tokens | PromptMode::Auto => {}
    }
    let tokens = Content::Tokens(Arc::new(token_pool(client, tokenizer, model, seed).await?));
    if mode == PromptMode::Tokens {
        return Ok((tokens, PromptMode::Tokens));
    }
    let probe = PromptFactory::new(
        tokens.clone(),
        &FactoryOptions {
            model,
            context_size: 64,
            chunk_size: 16,
            working_set_size: 1,
            output_tokens: 1,
            seed,
            nonce: super::suffix_nonce(seed) ^ 0x70_6b,
            random_selection: false,
        },
    );
    let measured = client
        .stream(
            probe.request(0, u64::MAX).body,
            std::time::Instant::now(),
            None,
        )
        .await;
    if (400..500).contains(&measured.status) && measured.status != 429 {
        warn(&format!(
            "the server refused a token-ID prompt ({}); sending text prompts instead \
             (--prompt-mode auto): the server re-tokenises them, and the drift from the \
             target length is reported",
            measured.error.unwrap_or_default()
        ));
        let pool = Arc::new(text_pool(client, tokenizer, model, seed).await?);
        return Ok((Content::Text(pool), PromptMode::Text));
    }
    Ok((tokens, PromptMode::Tokens))
}

/// Distinct words whose token counts are measured for the text modes.
const TEXT_WORDS: usize = 1500;

/// The synthetic content as words with their token counts, each distinct
/// word tokenised once.
async fn text_pool(
    client: &Client,
    tokenizer: &Tokenizer,
    model: &str,
    seed: u64,
) -> Result<TextPool> {
    let text = synthetic_text(seed, POOL_WORDS);
    let words: Vec<String> = text.split_whitespace().map(|w| format!(" {w}")).collect();
    let mut distinct: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for word in &words {
        if distinct.len() < TEXT_WORDS && seen.insert(word.as_str()) {
            distinct.push(word);
        }
    }
    let mut counts = std::collections::HashMap::new();
    for batch in distinct.chunks(16) {
        let encoded = futures_util::future::join_all(
            batch
                .iter()
                .map(|word| tokenizer.encode(client, model, word)),
        )
        .await;
        for (word, ids) in batch.iter().zip(encoded) {
            counts.insert(*word, ids?.len() as u32);
        }
    }
    let sequence: Vec<(String, u32)> = words
        .iter()
        .filter_map(|w| counts.get(w.as_str()).map(|&count| (w.clone(), count)))
        .collect();
    TextPool::new(&sequence)
}
