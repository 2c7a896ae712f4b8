//! Prompts as token ids, built without tokenising anything per request.
//!
//! The synthetic content is tokenised once into a pool, kept both as ids and
//! as the JSON text of those ids, so a request body is a few copies of
//! pre-rendered slices. A working-set prompt is a 16-token head drawn from
//! the seed (so no two share a prefix by accident) followed by pool content
//! from a seeded offset. A request at rate r is the first
//! `floor(ctx * r / 100 / chunk) * chunk` tokens of a working-set prompt,
//! then a suffix that starts with a 16-token head drawn from the seed, the
//! attempt (fresh run or n-th resume) and the request id — unique across
//! the run and its resumes — so the server cannot reuse anything past the
//! intended prefix. The seed fixes every token of every prompt: the same
//! `--seed` sends the same prompts, so a rerun against a server that still
//! caches the first must flush it (`--flush-cache`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::text_pool::TextPool;
use crate::error::{Error, Result};
use crate::kvsize::{round_up, working_set_prompts};
use crate::rng::splitmix64;

/// Tokens of the distinct head of every prompt and suffix.
pub const HEAD_TOKENS: usize = 16;

/// The smallest pool that gives heads enough entropy and content variety.
const MIN_DISTINCT_TOKENS: usize = 64;

/// The run's suffix nonce, drawn from its seed.
pub fn suffix_nonce(seed: u64) -> u64 {
    mix(&[seed, 0x4e4f_4e43])
}

/// Mixes several words into one seed.
fn mix(words: &[u64]) -> u64 {
    let mut state = 0x243f_6a88_85a3_08d3;
    for &word in words {
        state ^= word;
        state = splitmix64(&mut state);
    }
    state
}

/// The tokenised content, as ids and as pre-rendered JSON.
#[derive(Debug)]
pub struct TokenPool {
    len: usize,
    /// `"12,345,6,"`: every id followed by a comma.
    json: Vec<u8>,
    /// Byte offset of each id in `json`, and its length at the end.
    offsets: Vec<usize>,
    /// Distinct ids of the pool, the alphabet of heads.
    alphabet: Vec<u32>,
}

impl TokenPool {
    pub fn new(tokens: &[u32]) -> Result<TokenPool> {
        let mut alphabet: Vec<u32> = tokens.to_vec();
        alphabet.sort_unstable();
        alphabet.dedup();
        if alphabet.len() < MIN_DISTINCT_TOKENS {
            return Err(Error::Usage(format!(
                "the tokenised content has only {} distinct tokens; at least \
                 {MIN_DISTINCT_TOKENS} are needed to make unique prompts (is the server's \
                 /tokenize working?)",
                alphabet.len()
            )));
        }
        let mut json = Vec::with_capacity(tokens.len() * 7);
        let mut offsets = Vec::with_capacity(tokens.len() + 1);
        let mut buffer = itoa::Buffer::new();
        for &token in tokens {
            offsets.push(json.len());
            json.extend_from_slice(buffer.format(token).as_bytes());
            json.push(b',');
        }
        offsets.push(json.len());
        Ok(TokenPool {
            len: tokens.len(),
            json,
            offsets,
            alphabet,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `count` ids from `start`, wrapping around the pool.
    fn push_range(&self, out: &mut Vec<u8>, start: usize, mut count: usize) {
        let mut at = start % self.len;
        while count > 0 {
            let take = count.min(self.len - at);
            out.extend_from_slice(&self.json[self.offsets[at]..self.offsets[at + take]]);
            count -= take;
            at = 0;
        }
    }

    /// Appends `count` head ids drawn from `seed`.
    fn push_head(&self, out: &mut Vec<u8>, seed: u64, count: usize) {
        let mut state = seed;
        let mut buffer = itoa::Buffer::new();
        for _ in 0..count {
            let token =
                self.alphabet[(splitmix64(&mut state) % self.alphabet.len() as u64) as usize];
            out.extend_from_slice(buffer.format(token).as_bytes());
            out.push(b',');
        }
    }

    /// Appends tokens `[0, count)` of the sequence "head from `seed`, then
    /// pool content from an offset drawn from `seed`".
    fn push_sequence(&self, out: &mut Vec<u8>, seed: u64, count: usize) {
        let head = count.min(HEAD_TOKENS);
        self.push_head(out, seed, head);
        let mut state = seed ^ 0x0ff5e7;
        let offset = (splitmix64(&mut state) % self.len as u64) as usize;
        self.push_range(out, offset, count - head);
    }

    /// The ids of such a sequence, for tests and checks.
    pub fn sequence(&self, seed: u64, count: usize) -> Vec<u32> {
        let mut json = Vec::new();
        self.push_sequence(&mut json, seed, count);
        parse_ids(&json)
    }
}

/// Parses `"1,2,3,"` back to ids.
fn parse_ids(json: &[u8]) -> Vec<u32> {
    std::str::from_utf8(json)
        .expect("ascii")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("id"))
        .collect()
}

/// What prompts are made of, by prompt mode.
#[derive(Debug, Clone)]
pub enum Content {
    /// Token ids to `/v1/completions`.
    Tokens(Arc<TokenPool>),
    /// Text to `/v1/completions`.
    Text(Arc<TextPool>),
    /// Text as one user message to `/v1/chat/completions`.
    Chat(Arc<TextPool>),
}

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct BuiltRequest {
    pub body: Vec<u8>,
    pub request_id: u64,
    pub working_set_prompt: u32,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
}

/// Request bodies for one context size.
#[derive(Debug)]
pub struct PromptFactory {
    content: Content,
    /// The context size rounded up to the chunk: every prompt's length.
    pub context: u64,
    chunk: u64,
    seed: u64,
    nonce: u64,
    /// Number of working-set prompts.
    pub working_set: u32,
    random_selection: bool,
    round_robin: AtomicU64,
    body_start: Vec<u8>,
    body_end: Vec<u8>,
    warmup_end: Vec<u8>,
}

/// What a factory needs besides the pool.
#[derive(Debug, Clone)]
pub struct FactoryOptions<'m> {
    pub model: &'m str,
    pub context_size: u64,
    pub chunk_size: u64,
    pub working_set_size: u64,
    pub output_tokens: u32,
    pub seed: u64,
    /// Differs for every run and every resume of a run: keeps suffixes from
    /// being sent again (a phase lost to a kill, an earlier run).
    pub nonce: u64,
    pub random_selection: bool,
}

fn body_end(content: &Content, max_tokens: u32) -> Vec<u8> {
    let close = match content {
        Content::Tokens(_) => "]",
        Content::Text(_) => "\"",
        Content::Chat(_) => "\"}]",
    };
    format!(
        "{close},\"max_tokens\":{max_tokens},\"temperature\":0,\"ignore_eos\":true,\
         \"stream\":true,\"stream_options\":{{\"include_usage\":true}}}}"
    )
    .into_bytes()
}

impl PromptFactory {
    pub fn new(content: Content, options: &FactoryOptions<'_>) -> PromptFactory {
        let context = round_up(options.context_size, options.chunk_size);
        let working_set = working_set_prompts(
            options.working_set_size,
            options.context_size,
            options.chunk_size,
        );
        let model = serde_json::to_string(options.model).expect("a string serializes");
        let open = match &content {
            Content::Tokens(_) => "\"prompt\":[",
            Content::Text(_) => "\"prompt\":\"",
            Content::Chat(_) => "\"messages\":[{\"role\":\"user\",\"content\":\"",
        };
        PromptFactory {
            body_end: body_end(&content, options.output_tokens),
            warmup_end: body_end(&content, 1),
            body_start: format!("{{\"model\":{model},{open}").into_bytes(),
            content,
            context,
            chunk: options.chunk_size,
            seed: options.seed,
            nonce: options.nonce,
            working_set: u32::try_from(working_set).unwrap_or(u32::MAX),
            random_selection: options.random_selection,
            round_robin: AtomicU64::new(0),
        }
    }

    /// Cached prefix at `rate` percent: `floor(ctx * r / 100 / chunk) * chunk`.
    pub fn cached_tokens(&self, rate: u32) -> u64 {
        self.context * u64::from(rate) / (100 * self.chunk) * self.chunk
    }

    fn working_set_seed(&self, index: u32) -> u64 {
        mix(&[self.seed, 0x5753, self.context, u64::from(index)])
    }

    fn suffix_seed(&self, request_id: u64) -> u64 {
        mix(&[self.seed, 0x5346, self.nonce, request_id])
    }

    /// Appends `count` tokens of the sequence drawn from `seed`.
    fn push_sequence(&self, out: &mut Vec<u8>, seed: u64, count: usize) {
        match &self.content {
            Content::Tokens(pool) => pool.push_sequence(out, seed, count),
            Content::Text(pool) | Content::Chat(pool) => {
                pool.push_sequence(out, seed, count, self.chunk as usize)
            }
        }
    }

    fn finish(&self, mut body: Vec<u8>, end: &[u8]) -> Vec<u8> {
        if matches!(self.content, Content::Tokens(_)) && body.last() == Some(&b',') {
            body.pop();
        }
        body.extend_from_slice(end);
        body
    }

    /// A whole working-set prompt with one output token: the warm-up.
    pub fn warmup(&self, index: u32, request_id: u64) -> BuiltRequest {
        let mut body = Vec::with_capacity(self.context as usize * 7 + 256);
        body.extend_from_slice(&self.body_start);
        self.push_sequence(
            &mut body,
            self.working_set_seed(index),
            self.context as usize,
        );
        BuiltRequest {
            body: self.finish(body, &self.warmup_end),
            request_id,
            working_set_prompt: index,
            prompt_tokens: self.context,
            cached_tokens: 0,
        }
    }

    /// A request at `rate` percent cache hits.
    pub fn request(&self, rate: u32, request_id: u64) -> BuiltRequest {
        let index = if self.random_selection {
            (mix(&[self.seed, 0x524e, request_id]) % u64::from(self.working_set)) as u32
        } else {
            (self.round_robin.fetch_add(1, Ordering::Relaxed) % u64::from(self.working_set)) as u32
        };
        let cached = self.cached_tokens(rate);
        let mut body = Vec::with_capacity(self.context as usize * 7 + 256);
        body.extend_from_slice(&self.body_start);
        self.push_sequence(&mut body, self.working_set_seed(index), cached as usize);
        self.push_sequence(
            &mut body,
            self.suffix_seed(request_id),
            (self.context - cached) as usize,
        );
        BuiltRequest {
            body: self.finish(body, &self.body_end),
            request_id,
            working_set_prompt: index,
            prompt_tokens: self.context,
            cached_tokens: cached,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Arc<TokenPool> {
        let tokens: Vec<u32> = (0..5000).map(|i| (i * 7919) % 1000 + 100).collect();
        Arc::new(TokenPool::new(&tokens).unwrap())
    }

    fn options(model: &str) -> FactoryOptions<'_> {
        FactoryOptions {
            model,
            context_size: 1000,
            chunk_size: 256,
            working_set_size: 3000,
            output_tokens: 8,
            seed: 42,
            nonce: 0,
            random_selection: false,
        }
    }

    fn prompt_of(body: &[u8]) -> Vec<u32> {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        value["prompt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect()
    }

    #[test]
    fn rounding_follows_the_chunk() {
        let pool = pool();
        let factory = PromptFactory::new(Content::Tokens(pool.clone()), &options("m"));
        assert_eq!(factory.context, 1024);
        assert_eq!(factory.working_set, 3);
        assert_eq!(factory.cached_tokens(0), 0);
        assert_eq!(factory.cached_tokens(50), 512);
        assert_eq!(factory.cached_tokens(30), 256);
        assert_eq!(factory.cached_tokens(100), 1024);
    }

    #[test]
    fn requests_share_exactly_the_cached_prefix_with_the_working_set() {
        let pool = pool();
        let factory = PromptFactory::new(Content::Tokens(pool.clone()), &options("org/\"m\""));
        let warm = prompt_of(&factory.warmup(0, 0).body);
        assert_eq!(warm.len(), 1024);
        let request = factory.request(50, 1);
        let value: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(value["model"], "org/\"m\"");
        assert_eq!(value["max_tokens"], 8);
        assert_eq!(value["stream_options"]["include_usage"], true);
        let prompt = prompt_of(&request.body);
        assert_eq!(prompt.len(), 1024);
        assert_eq!(prompt[..512], warm[..512]);
        assert_ne!(prompt[512..528], warm[512..528], "the suffix head differs");
        let full = prompt_of(&factory.request(100, 2).body);
        // Round-robin: the second request uses the second prompt.
        assert_eq!(full, prompt_of(&factory.warmup(1, 0).body));
    }

    #[test]
    fn working_set_prompts_differ_from_the_first_token() {
        let pool = pool();
        let factory = PromptFactory::new(Content::Tokens(pool.clone()), &options("m"));
        let heads: Vec<Vec<u32>> = (0..3)
            .map(|i| prompt_of(&factory.warmup(i, 0).body)[..HEAD_TOKENS].to_vec())
            .collect();
        assert_ne!(heads[0], heads[1]);
        assert_ne!(heads[1], heads[2]);
    }

    #[test]
    fn suffixes_are_unique_per_request_and_attempt_but_reproducible() {
        let pool = pool();
        let factory = PromptFactory::new(Content::Tokens(pool.clone()), &options("m"));
        let a = prompt_of(&factory.request(0, 7).body);
        let b = prompt_of(&factory.request(0, 8).body);
        assert_ne!(a[..HEAD_TOKENS], b[..HEAD_TOKENS]);
        let again = PromptFactory::new(Content::Tokens(pool.clone()), &options("m"));
        assert_eq!(
            prompt_of(&again.request(0, 7).body),
            a,
            "same seed, same prompt"
        );
        let resumed = PromptFactory::new(
            Content::Tokens(pool.clone()),
            &FactoryOptions {
                nonce: 1,
                ..options("m")
            },
        );
        assert_ne!(
            prompt_of(&resumed.request(0, 7).body)[..HEAD_TOKENS],
            a[..HEAD_TOKENS],
            "a resume never repeats a suffix"
        );
    }

    #[test]
    fn runs_with_neighbouring_seeds_share_no_suffix_head() {
        let pool = pool();
        let heads = |seed: u64| {
            let factory = PromptFactory::new(
                Content::Tokens(pool.clone()),
                &FactoryOptions {
                    seed,
                    nonce: suffix_nonce(seed),
                    ..options("m")
                },
            );
            (0..500)
                .map(|id| prompt_of(&factory.request(0, id).body)[..HEAD_TOKENS].to_vec())
                .collect::<std::collections::HashSet<_>>()
        };
        let seven = heads(7);
        assert_eq!(seven.len(), 500, "unique within a run");
        for seed in [6, 8, 15, 7 ^ (1 << 40)] {
            assert_eq!(seven.intersection(&heads(seed)).count(), 0, "seed {seed}");
        }
        assert_eq!(heads(7), seven, "the seed reproduces them");
    }

    #[test]
    fn long_contexts_wrap_around_the_pool() {
        let pool = pool();
        let factory = PromptFactory::new(
            Content::Tokens(pool.clone()),
            &FactoryOptions {
                context_size: 12_000,
                ..options("m")
            },
        );
        assert_eq!(prompt_of(&factory.warmup(0, 0).body).len(), 12_032);
    }

    #[test]
    fn a_tiny_vocabulary_is_refused() {
        assert!(TokenPool::new(&[1, 2, 3, 1, 2, 3]).is_err());
    }
}
