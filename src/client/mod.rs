//! The HTTP client: one streaming completion per call, timed on a monotonic
//! clock, plus the small calls a run needs (models, tokenize, version,
//! metrics). Endpoints are used round-robin.

pub mod prometheus;
pub mod sse;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use memchr::memmem::Finder;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::record::ErrorKind;
use sse::SseReader;

/// Monotonic time anchored to the wall clock once, so times of different
/// processes line up and no time within a run goes backwards.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    unix: f64,
}

impl Clock {
    pub fn new() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Clock {
            instant: Instant::now(),
            unix,
        }
    }

    /// Unix seconds of `at`.
    pub fn unix(&self, at: Instant) -> f64 {
        self.unix + at.saturating_duration_since(self.instant).as_secs_f64()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What one streamed request measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub endpoint: u32,
    pub ttft: Option<Duration>,
    pub ttlt: Option<Duration>,
    pub finish: Duration,
    pub chunks: u32,
    pub max_chunk_gap: Option<Duration>,
    /// When each chunk came, in microseconds since launch.
    pub chunk_times_us: Vec<u32>,
    /// Each chunk's token count as the server gave it (`token_ids`), 0
    /// where it did not; empty when no chunk said.
    pub chunk_tokens: Vec<u32>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub status: u16,
    pub error_kind: Option<ErrorKind>,
    pub error: Option<String>,
    /// The first send met a connection the server had closed, and the
    /// request went again on a new one.
    pub resent: bool,
    /// `[DONE]` or a finish reason was seen.
    done: bool,
    /// At least one event's data was read.
    saw_event: bool,
    last_token: Option<Duration>,
    /// Chunks to make room for at the first one.
    expected_chunks: usize,
}

impl Measured {
    fn fail(&mut self, kind: ErrorKind, message: impl Into<String>) {
        if self.error_kind.is_none() {
            self.error_kind = Some(kind);
            let mut message = message.into();
            // The message may hold a server's text: cut it between
            // characters, never inside one.
            message.truncate(char_boundary_at_most(&message, 500));
            self.error = Some(message);
        }
    }

    /// Counts an event that may carry generated text (or token ids whose
    /// text the server holds back, such as half a UTF-8 character).
    fn token_event(&mut self, has_text: bool, tokens: Option<u32>, at: Duration) {
        if !has_text && tokens.is_none_or(|n| n == 0) {
            return;
        }
        self.chunks = self.chunks.saturating_add(1);
        if self.chunk_times_us.capacity() == 0 {
            self.chunk_times_us
                .reserve_exact(self.expected_chunks.max(1));
        }
        self.chunk_times_us
            .push(u32::try_from(at.as_micros()).unwrap_or(u32::MAX));
        // Token counts are kept only once a server gives one: most never do.
        if let Some(n) = tokens.filter(|&n| n > 0) {
            self.chunk_tokens.resize(self.chunk_times_us.len() - 1, 0);
            self.chunk_tokens.push(n);
        } else if !self.chunk_tokens.is_empty() {
            self.chunk_tokens.push(0);
        }
        self.ttft.get_or_insert(at);
        if let Some(previous) = self.last_token {
            let gap = at.saturating_sub(previous);
            if self.max_chunk_gap.is_none_or(|max| gap > max) {
                self.max_chunk_gap = Some(gap);
            }
        }
        self.last_token = Some(at);
        self.ttlt = Some(at);
    }

    /// Reads the data of an event the stream ended inside (no blank line
    /// after it): taken whole when it reads (a server may end its last
    /// event without the blank line), else the stream was cut short.
    fn unterminated_event(&mut self, data: &[u8], at: Duration) {
        if data == b"[DONE]" || serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok() {
            return self.event(data, at);
        }
        self.saw_event = true;
        self.fail(
            ErrorKind::Incomplete,
            format!("the stream ended inside an event: {}", shown(data, 200)),
        );
    }

    /// Reads one event's data, received `at` after launch.
    fn event(&mut self, data: &[u8], at: Duration) {
        self.saw_event = true;
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        if let Some(has_text) = quick_scan(data) {
            self.token_event(has_text, None, at);
            return;
        }
        let chunk: ChunkView = match serde_json::from_slice(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                self.fail(
                    ErrorKind::Protocol,
                    format!("unreadable event ({e}): {}", shown(data, 200)),
                );
                return;
            }
        };
        if let Some(error) = chunk.error {
            self.fail(ErrorKind::StreamError, error.to_string());
            return;
        }
        if chunk.choices.finished {
            self.done = true;
        }
        self.token_event(chunk.choices.has_text, chunk.choices.token_ids, at);
        if let Some(usage) = chunk.usage {
            self.prompt_tokens = usage.prompt_tokens.or(self.prompt_tokens);
            self.completion_tokens = usage.completion_tokens.or(self.completion_tokens);
            if let Some(cached) = usage.prompt_tokens_details.and_then(|d| d.cached_tokens) {
                self.cached_tokens = Some(cached);
            }
        }
        // llama.cpp also reports the prompt tokens it took from its cache
        // in `timings.cache_n`; usage details win when both are there.
        if let Some(cached) = chunk.timings.and_then(|t| t.cache_n)
            && self.cached_tokens.is_none()
        {
            self.cached_tokens = Some(cached);
        }
    }
}

/// The largest length of `text`, at most `max` bytes, that ends between
/// two characters.
fn char_boundary_at_most(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// The start of `bytes` as readable text for an error message: at most
/// `max_chars` characters, control characters and backslashes escaped
/// (`\n`, `\u{1b}`, `\\`), bytes that are not UTF-8 as `\xNN`, and `…`
/// when there was more.
pub(crate) fn shown(bytes: &[u8], max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut push = |piece: &str, out: &mut String| {
        let n = piece.chars().count();
        if count + n > max_chars {
            return false;
        }
        count += n;
        out.push_str(piece);
        true
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let piece = if c.is_control() || c == '\\' {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            };
            if !push(&piece, &mut out) {
                out.push('…');
                return out;
            }
        }
        for byte in chunk.invalid() {
            if !push(&format!("\\x{byte:02x}"), &mut out) {
                out.push('…');
                return out;
            }
        }
    }
    out
}

/// Whether the start of a body reads as server-sent events: its first
/// line is a field (`data:`, `event:`, `id:`, `retry:`) or a comment.
/// An empty start says nothing either way.
fn looks_like_events(head: &[u8]) -> bool {
    let start = head.trim_ascii_start();
    let line = start.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let field = line.split(|&b| b == b':').next().unwrap_or_default();
    start.is_empty()
        || line.starts_with(b":")
        || [&b"data"[..], b"event", b"id", b"retry"].contains(&field)
}

/// How much of the start of a response is kept, to say what came when it
/// was not an event stream.
const HEAD_BYTES: usize = 1024;

/// The keys the fast path looks for, each with its searcher built once.
struct Keys {
    choices: Finder<'static>,
    error: Finder<'static>,
    /// Keys whose value must be null for an event to take the fast path.
    must_be_null: [Finder<'static>; 4],
    /// Keys whose non-empty string value is generated text.
    text: [Finder<'static>; 4],
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    choices: Finder::new(b"\"choices\""),
    error: Finder::new(b"\"error\""),
    must_be_null: [
        Finder::new(b"\"usage\""),
        Finder::new(b"\"finish_reason\""),
        Finder::new(b"\"timings\""),
        Finder::new(b"\"token_ids\""),
    ],
    text: [
        Finder::new(b"\"text\""),
        Finder::new(b"\"content\""),
        Finder::new(b"\"reasoning_content\""),
        Finder::new(b"\"reasoning\""),
    ],
});

/// The values that follow `"key"` wherever it stands as an object key (a
/// quoted `key` then a colon: inside a string value quotes are escaped, and
/// a string value is never followed by a colon).
fn key_values<'a>(data: &'a [u8], key: &'a Finder<'static>) -> impl Iterator<Item = &'a [u8]> + 'a {
    let len = key.needle().len();
    key.find_iter(data).filter_map(move |at| {
        let rest = data[at + len..].trim_ascii_start();
        let rest = rest.strip_prefix(b":")?;
        Some(rest.trim_ascii_start())
    })
}

/// The fast path for the events that make up most of a stream: one token,
/// no usage, no finish, no error. Returns whether it carries generated
/// text, or `None` when the event needs a full parse.
fn quick_scan(data: &[u8]) -> Option<bool> {
    let keys = &*KEYS;
    let trimmed = data.trim_ascii();
    if !(trimmed.starts_with(b"{") && trimmed.ends_with(b"}"))
        || key_values(data, &keys.choices).next().is_none()
        || keys.error.find(data).is_some()
    {
        return None;
    }
    for key in &keys.must_be_null {
        if key_values(data, key).any(|value| !value.starts_with(b"null")) {
            return None;
        }
    }
    let has_text = keys.text.iter().any(|key| {
        key_values(data, key).any(|value| value.len() > 1 && value[0] == b'"' && value[1] != b'"')
    });
    Some(has_text)
}

/// One stream event, read for what a measurement needs and nothing more:
/// no allocation and no UTF-8 validation on the path of a token event.
#[derive(Deserialize)]
struct ChunkView {
    #[serde(default)]
    choices: ChoicesSummary,
    #[serde(default)]
    usage: Option<UsageView>,
    #[serde(default)]
    timings: Option<TimingsView>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// llama.cpp's per-request timings.
#[derive(Deserialize)]
struct TimingsView {
    cache_n: Option<u64>,
}

/// The byte length of a JSON string (escapes not undone, UTF-8 not checked).
struct TextLen(usize);

impl<'de> Deserialize<'de> for TextLen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Length;
        impl serde::de::Visitor<'_> for Length {
            type Value = TextLen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_bytes<E>(self, bytes: &[u8]) -> Result<TextLen, E> {
                Ok(TextLen(bytes.len()))
            }
            fn visit_str<E>(self, text: &str) -> Result<TextLen, E> {
                Ok(TextLen(text.len()))
            }
        }
        deserializer.deserialize_bytes(Length)
    }
}

/// What the choices of an event say, folded without collecting them.
#[derive(Default)]
struct ChoicesSummary {
    has_text: bool,
    finished: bool,
    /// Token ids the choices carried, when any carried them (vLLM's
    /// `return_token_ids`).
    token_ids: Option<u32>,
}

impl<'de> Deserialize<'de> for ChoicesSummary {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fold;
        impl<'de> serde::de::Visitor<'de> for Fold {
            type Value = ChoicesSummary;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_unit<E>(self) -> Result<ChoicesSummary, E> {
                Ok(ChoicesSummary::default())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ChoicesSummary, A::Error> {
                let mut summary = ChoicesSummary::default();
                while let Some(choice) = seq.next_element::<ChoiceView>()? {
                    let len = |text: &Option<TextLen>| text.as_ref().map_or(0, |t| t.0);
                    let mut text = len(&choice.text);
                    if let Some(delta) = &choice.delta {
                        text += len(&delta.content)
                            + len(&delta.reasoning_content)
                            + len(&delta.reasoning);
                    }
                    summary.has_text |= text > 0;
                    summary.finished |= choice.finish_reason.is_some();
                    if let Some(ids) = choice.token_ids {
                        let total = summary.token_ids.get_or_insert(0);
                        *total = total.saturating_add(ids.0);
                    }
                }
                Ok(summary)
            }
        }
        deserializer.deserialize_any(Fold)
    }
}

#[derive(Deserialize)]
struct ChoiceView {
    #[serde(default)]
    text: Option<TextLen>,
    #[serde(default)]
    delta: Option<DeltaView>,
    #[serde(default)]
    finish_reason: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    token_ids: Option<Count>,
}

/// The length of a JSON array, its elements skipped.
struct Count(u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counting;
        impl<'de> serde::de::Visitor<'de> for Counting {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Count, A::Error> {
                let mut n: u32 = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n = n.saturating_add(1);
                }
                Ok(Count(n))
            }
        }
        deserializer.deserialize_seq(Counting)
    }
}

#[derive(Deserialize)]
struct DeltaView {
    #[serde(default)]
    content: Option<TextLen>,
    #[serde(default)]
    reasoning_content: Option<TextLen>,
    #[serde(default)]
    reasoning: Option<TextLen>,
}

#[derive(Deserialize)]
struct UsageView {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<DetailsView>,
}

#[derive(Deserialize)]
struct DetailsView {
    cached_tokens: Option<u64>,
}

/// The client of one run.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Vec<String>,
    completions: Vec<String>,
    api_key: Option<HeaderValue>,
    /// What `user:password@` in an endpoint's URL stood for; the URLs
    /// themselves go without, so no message or file can carry them.
    credentials: Vec<Credentials>,
    timeout: Duration,
    next: AtomicU64,
    expected_chunks: usize,
}

/// Basic-auth credentials taken out of a URL, for the URLs under `prefix`.
#[derive(Clone)]
struct Credentials {
    prefix: String,
    user: String,
    password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("prefix", &self.prefix)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `url` without `user:password@`: the form requests and messages use once
/// [`Client::keep_credentials`] has the credentials.
pub fn without_credentials(url: &str) -> String {
    split_credentials(url).0
}

/// `url` without `user:password@`, and what they were (percent-decoded).
fn split_credentials(url: &str) -> (String, Option<Credentials>) {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return (url.to_string(), None);
    };
    if parsed.username().is_empty() && parsed.password().is_none() {
        return (url.to_string(), None);
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(parsed.username());
    let password = parsed.password().map(decode);
    // Both setters fail only for URLs that cannot have a user (no host),
    // which a URL with one is not.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    // `Url` adds a `/` to a bare host; the endpoints are kept without.
    let clean = if url.ends_with('/') {
        parsed.to_string()
    } else {
        parsed.to_string().trim_end_matches('/').to_string()
    };
    let credentials = Credentials {
        prefix: clean.clone(),
        user,
        password,
    };
    (clean, Some(credentials))
}

pub(crate) fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn classify(error: &reqwest::Error) -> ErrorKind {
    if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Disconnect
    }
}

impl Client {
    /// `endpoints` are normalised base URLs (see `settings::normalize_endpoint`).
    pub fn new(endpoints: Vec<String>, api_key: Option<&str>, timeout: Duration) -> Result<Client> {
        // Requests pick an endpoint by a remainder, and the side calls use
        // the first one: there must be one.
        if endpoints.is_empty() {
            return Err(Error::Usage(
                "no endpoint to send requests to: give one with --api-endpoint".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            // Servers close idle keep-alive connections after about 5 s
            // (uvicorn, llama.cpp's httplib); a request sent on one they
            // just closed fails. Drop idle connections before that.
            .pool_idle_timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Internal(anyhow::anyhow!("cannot build the HTTP client: {e}")))?;
        let api_key = api_key
            .map(|key| {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    Error::Usage("--api-key contains characters a header cannot carry".into())
                })?;
                // Kept out of `Debug` output and HTTP/2 header tables.
                value.set_sensitive(true);
                Ok::<_, Error>(value)
            })
            .transpose()?;
        let (endpoints, credentials): (Vec<String>, Vec<Option<Credentials>>) =
            endpoints.iter().map(|url| split_credentials(url)).unzip();
        let completions = endpoints
            .iter()
            .map(|base| format!("{base}/v1/completions"))
            .collect();
        Ok(Client {
            http,
            endpoints,
            completions,
            api_key,
            credentials: credentials.into_iter().flatten().collect(),
            timeout,
            next: AtomicU64::new(0),
            expected_chunks: 0,
        })
    }

    /// Makes room for this many chunk times in each streamed request at its
    /// first chunk (the output tokens asked for), rather than growing.
    pub fn expecting_chunks(mut self, chunks: u32) -> Client {
        self.expected_chunks = chunks as usize;
        self
    }

    /// Sends completions to `path` (e.g. `/v1/chat/completions`) instead
    /// of `/v1/completions`.
    pub fn with_path(mut self, path: &str) -> Client {
        self.completions = self
            .endpoints
            .iter()
            .map(|base| format!("{base}{path}"))
            .collect();
        self
    }

    /// The endpoints' base URLs, without any `user:password@`: what
    /// messages and files name.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Takes `user:password@` out of another URL the run reads (the
    /// metrics URL): requests under it carry them as basic auth; returns
    /// the URL without them.
    pub fn keep_credentials(&mut self, url: &str) -> String {
        let (clean, credentials) = split_credentials(url);
        self.credentials.extend(credentials);
        clean
    }

    /// The Authorization a request to `url` carries: the `--api-key`, else
    /// the credentials of the endpoint it is under.
    fn authorize(&self, request: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
        if let Some(key) = &self.api_key {
            return request.header(AUTHORIZATION, key.clone());
        }
        match self
            .credentials
            .iter()
            .filter(|c| {
                // Under the prefix at a path boundary: `http://gpu1`'s
                // credentials are not `http://gpu10`'s.
                url.strip_prefix(&c.prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
            })
            .max_by_key(|c| c.prefix.len())
        {
            Some(c) => request.basic_auth(&c.user, c.password.as_deref()),
            None => request,
        }
    }

    fn get(&self, url: String) -> reqwest::RequestBuilder {
        let request = self.http.get(&url).timeout(Duration::from_secs(30));
        self.authorize(request, &url)
    }

    fn post_json(&self, url: String, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        self.authorize(request, &url)
    }

    /// The model ids each endpoint serves; an endpoint that does not answer
    /// is an `Unreachable` error naming it.
    pub async fn models(&self) -> Result<Vec<Vec<String>>> {
        #[derive(Deserialize)]
        struct Models {
            data: Vec<Model>,
        }
        #[derive(Deserialize)]
        struct Model {
            id: String,
        }
        let mut all = Vec::new();
        for base in &self.endpoints {
            let url = format!("{base}/v1/models");
            let mut last_error = String::new();
            let mut models = None;
            // A server that has just started may refuse a moment longer.
            for attempt in 0..4 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                match self.get(url.clone()).send().await {
                    Ok(response) if response.status().is_success() => {
                        let parsed: Models = response.json().await.map_err(|e| {
                            Error::Unreachable(format!(
                                "{url} answered, but not with an OpenAI model list: {e}"
                            ))
                        })?;
                        models = Some(parsed.data.into_iter().map(|m| m.id).collect());
                        break;
                    }
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        return Err(Error::Unreachable(format!(
                            "{url} answered {status}: {}{}",
                            text.chars().take(300).collect::<String>(),
                            if status == 401 {
                                " (give the key with --api-key or OPENAI_API_KEY)"
                            } else {
                                ""
                            }
                        )));
                    }
                    Err(e) => last_error = describe(&e),
                }
            }
            match models {
                Some(models) => all.push(models),
                None => {
                    return Err(Error::Unreachable(format!(
                        "cannot reach {url}: {last_error}; is the server running, and is \
                         --api-endpoint right?"
                    )));
                }
            }
        }
        Ok(all)
    }

    /// Tokenises `text` through the first endpoint's `/tokenize`, in vLLM's
    /// shape (`prompt`) or llama.cpp's (`content`). Returns the ids and the
    /// shape that worked.
    pub async fn tokenize(&self, model: &str, text: &str) -> Result<(Vec<u32>, &'static str)> {
        #[derive(Deserialize)]
        struct Tokens {
            tokens: Vec<u32>,
        }
        let url = format!("{}/tokenize", self.endpoints[0]);
        let shapes: [(&str, serde_json::Value); 2] = [
            (
                "vLLM",
                serde_json::json!({"model": model, "prompt": text, "add_special_tokens": false}),
            ),
            (
                "llama.cpp",
                serde_json::json!({"content": text, "add_special": false}),
            ),
        ];
        let mut failures = Vec::new();
        for (shape, body) in shapes {
            let body = bytes::Bytes::from(serde_json::to_vec(&body).expect("json serializes"));
            match self
                .send_idempotent(|| self.post_json(url.clone(), body.clone()))
                .await
            {
                Ok(response) if response.status().is_success() => {
                    match response.json::<Tokens>().await {
                        // llama.cpp answers a body without `content` with
                        // no tokens rather than an error.
                        Ok(tokens) if tokens.tokens.is_empty() && !text.is_empty() => {
                            failures.push(format!("{shape} shape: no tokens"));
                        }
                        Ok(tokens) => return Ok((tokens.tokens, shape)),
                        Err(e) => failures.push(format!("{shape} shape: {e}")),
                    }
                }
                Ok(response) => failures.push(format!("{shape} shape: {}", response.status())),
                Err(e) => failures.push(format!("{shape} shape: {e}")),
            }
        }
        Err(Error::Unreachable(format!(
            "cannot tokenise through {url} ({}); the server must serve /tokenize (vLLM, \
             SGLang and llama.cpp do)",
            failures.join("; ")
        )))
    }

    /// `GET /version` of the first endpoint, when it serves one.
    pub async fn server_version(&self) -> Option<String> {
        let url = format!("{}/version", self.endpoints[0]);
        let response = self.send_idempotent(|| self.get(url.clone())).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let value: serde_json::Value = response.json().await.ok()?;
        value["version"].as_str().map(str::to_string)
    }

    /// `GET /metrics` of the first endpoint, when it serves one.
    pub async fn metrics(&self) -> Option<String> {
        self.get_text(&format!("{}/metrics", self.endpoints[0]))
            .await
            .ok()
    }

    /// Sends a request that is safe to repeat, once more on a new
    /// connection when the server closed the pooled one under it (see
    /// `stream_into`).
    async fn send_idempotent(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> std::result::Result<reqwest::Response, String> {
        match build().send().await {
            Ok(response) => Ok(response),
            Err(e) if classify(&e) == ErrorKind::Disconnect => {
                tracing::debug!("sending again after a closed connection: {}", describe(&e));
                build().send().await.map_err(|e| describe(&e))
            }
            Err(e) => Err(describe(&e)),
        }
    }

    /// The body of a successful `GET url`, or why not.
    pub async fn get_text(&self, url: &str) -> std::result::Result<String, String> {
        let response = self.send_idempotent(|| self.get(url.to_string())).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        response.text().await.map_err(|e| describe(&e))
    }

    /// `POST url` with a JSON body; the status and body text. Only for
    /// requests that may be repeated (tokenising, flushing a cache).
    pub async fn post_text(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<(u16, String), String> {
        let body = bytes::Bytes::from(serde_json::to_vec(body).expect("json serializes"));
        let response = self
            .send_idempotent(|| self.post_json(url.to_string(), body.clone()))
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    /// Sends one streaming completion and measures it. Never fails: what
    /// went wrong is in the result. With several endpoints, a request with
    /// an `affinity` (its working-set prompt) always goes to the same one,
    /// the one its prefix was warmed on; others go round-robin.
    pub async fn stream(&self, body: Vec<u8>, launch: Instant, affinity: Option<u64>) -> Measured {
        let endpoints = self.completions.len() as u64;
        let endpoint = match affinity {
            Some(key) => key % endpoints,
            None => self.next.fetch_add(1, Ordering::Relaxed) % endpoints,
        } as usize;
        let mut measured = Measured {
            endpoint: endpoint as u32,
            expected_chunks: self.expected_chunks,
            ..Measured::default()
        };
        let url = &self.completions[endpoint];
        let outcome = tokio::time::timeout(
            self.timeout,
            self.stream_into(url, body, launch, &mut measured),
        )
        .await;
        if outcome.is_err() {
            let timeout = self.timeout.as_secs_f64();
            measured.fail(
                ErrorKind::Timeout,
                format!("no complete response within --request-timeout {timeout} s"),
            );
        }
        measured.finish = launch.elapsed();
        if measured.error_kind.is_none() && !measured.done {
            measured.fail(
                ErrorKind::Incomplete,
                "the stream ended without a finish reason or [DONE]",
            );
        }
        measured
    }

    async fn stream_into(&self, url: &str, body: Vec<u8>, launch: Instant, m: &mut Measured) {
        let body = bytes::Bytes::from(body);
        // A server may close an idle keep-alive connection just as a
        // request goes out on it (llama.cpp's HTTP library does, often);
        // nothing was processed, so the request is sent once more on a new
        // connection, its time still counted from the first launch.
        let response = match self.post_json(url.to_string(), body.clone()).send().await {
            Ok(response) => response,
            Err(e) if classify(&e) == ErrorKind::Disconnect => {
                tracing::debug!("resending after a closed connection: {}", describe(&e));
                m.resent = true;
                match self.post_json(url.to_string(), body).send().await {
                    Ok(response) => response,
                    Err(e) => return m.fail(classify(&e), describe(&e)),
                }
            }
            Err(e) => return m.fail(classify(&e), describe(&e)),
        };
        m.status = response.status().as_u16();
        if !response.status().is_success() {
            let status = m.status;
            let text = response.text().await.unwrap_or_default();
            return m.fail(
                ErrorKind::for_status(status),
                format!("HTTP {status}: {text}"),
            );
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        // The start of the body and its length, until the first event: a
        // gateway's HTML page or a JSON answer has none, and then what
        // came is what the error shows.
        let mut head = Vec::new();
        let mut length = 0usize;
        let mut reader = SseReader::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    let at = launch.elapsed();
                    if !m.saw_event {
                        length = length.saturating_add(bytes.len());
                        let room = HEAD_BYTES.saturating_sub(head.len());
                        head.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    }
                    reader.push(&bytes, |data| m.event(data, at));
                }
                Err(e) => return m.fail(ErrorKind::Disconnect, describe(&e)),
            }
        }
        let at = launch.elapsed();
        reader.finish(|data| m.unterminated_event(data, at));
        if !m.saw_event {
            let is_event_stream = content_type.as_deref().is_some_and(|value| {
                value
                    .split(';')
                    .next()
                    .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
            });
            if !(is_event_stream && looks_like_events(&head)) {
                let content_type = content_type.map_or_else(
                    || "no content type".to_string(),
                    |t| format!("content type {t:?}"),
                );
                let began = if length == 0 {
                    "an empty body".to_string()
                } else {
                    format!("{length} bytes beginning \"{}\"", shown(&head, 200))
                };
                m.fail(
                    ErrorKind::Protocol,
                    format!(
                        "a {} response that is not an event stream ({content_type}): {began}; \
                         is --api-endpoint the server itself, and does it stream?",
                        m.status
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttft_starts_at_the_first_text_not_at_a_role_only_delta() {
        let mut m = Measured::default();
        let ms = Duration::from_millis;
        m.event(
            br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            ms(5),
        );
        assert_eq!(m.ttft, None);
        m.event(
            br#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#,
            ms(9),
        );
        m.event(
            br#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            ms(20),
        );
        m.event(
            br#"{"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"length"}]}"#,
            ms(50),
        );
        m.event(
            br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#,
            ms(51),
        );
        m.event(b"[DONE]", ms(51));
        assert_eq!(m.ttft, Some(ms(9)));
        assert_eq!(m.ttlt, Some(ms(50)));
        assert_eq!(m.chunks, 3);
        assert_eq!(m.max_chunk_gap, Some(ms(30)));
        assert_eq!(m.chunk_times_us, [9000, 20000, 50000]);
        assert!(m.chunk_tokens.is_empty(), "the server did not say");
        assert_eq!(
            (m.prompt_tokens, m.completion_tokens, m.cached_tokens),
            (Some(7), Some(3), Some(4))
        );
        assert!(m.done && m.error_kind.is_none());
    }

    #[test]
    fn token_ids_give_each_chunk_its_count_even_without_text() {
        let mut m = Measured::default();
        let ms = Duration::from_millis;
        m.event(
            br#"{"choices":[{"index":0,"text":"ab","token_ids":[5,6],"finish_reason":null}],"usage":null}"#,
            ms(10),
        );
        // Half a character: vLLM holds the text back but sends the id.
        m.event(
            br#"{"choices":[{"index":0,"text":"","token_ids":[7],"finish_reason":null}],"usage":null}"#,
            ms(12),
        );
        m.event(
            br#"{"choices":[{"index":0,"text":"c","token_ids":null,"finish_reason":null}],"usage":null}"#,
            ms(15),
        );
        assert_eq!(m.chunk_times_us, [10000, 12000, 15000]);
        assert_eq!(m.chunk_tokens, [2, 1, 0]);
    }

    #[test]
    fn the_fast_path_agrees_with_a_full_parse() {
        let events: [&[u8]; 10] = [
            br#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" Hi","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
            br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            br#"{"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": null}]}"#,
            br#"{"choices":[{"index":0,"text":"\"usage\":{","finish_reason":null}],"usage":null}"#,
            br#"{"choices":[{"index":0,"text":"say \"error\"","finish_reason":null}]}"#,
            br#"{"choices":[{"text":"!","finish_reason":"length"}],"usage":null}"#,
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            br#"{not json}"#,
            br#"{"error":{"message":"boom"}}"#,
            br#"{"choices":[{"delta":{"reasoning_content":"hm"},"finish_reason":null}]}"#,
        ];
        let expected = [
            Some(true),
            Some(false),
            Some(true),
            Some(true),
            Some(true),
            None,
            None,
            None,
            None,
            Some(true),
        ];
        for (event, want) in events.iter().zip(expected) {
            assert_eq!(
                quick_scan(event),
                want,
                "{}",
                String::from_utf8_lossy(event)
            );
            if let Some(has_text) = want {
                let full: ChunkView = serde_json::from_slice(event).unwrap();
                assert_eq!(full.choices.has_text, has_text);
            }
        }
    }

    #[test]
    fn in_stream_errors_and_garbage_are_failures() {
        let mut m = Measured::default();
        m.event(
            br#"{"error": {"message": "boom", "code": 400}}"#,
            Duration::ZERO,
        );
        assert_eq!(m.error_kind, Some(ErrorKind::StreamError));
        let mut m = Measured::default();
        m.event(b"{not json", Duration::ZERO);
        assert_eq!(m.error_kind, Some(ErrorKind::Protocol));
    }

    #[test]
    fn a_stream_cut_inside_an_event_is_incomplete_not_garbage() {
        let mut m = Measured::default();
        m.unterminated_event(br#"{"choices":[{"index":0,"te"#, Duration::ZERO);
        assert_eq!(m.error_kind, Some(ErrorKind::Incomplete));
        assert!(m.error.unwrap().contains("ended inside an event"));
        // A last event without its blank line is still an event.
        let mut m = Measured::default();
        m.unterminated_event(b"[DONE]", Duration::ZERO);
        assert!(m.done && m.error_kind.is_none());
        let mut m = Measured::default();
        m.unterminated_event(br#"{"choices":[{"text":"a"}]}"#, Duration::ZERO);
        assert_eq!((m.chunks, m.error_kind), (1, None));
    }

    #[test]
    fn no_endpoint_is_an_error_not_a_division_by_zero_later() {
        let error = Client::new(Vec::new(), None, Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("--api-endpoint"), "{error}");
    }

    #[test]
    fn a_message_is_cut_between_characters() {
        let mut m = Measured::default();
        m.fail(ErrorKind::Http5xx, "€".repeat(400));
        let error = m.error.unwrap();
        assert_eq!(error.len(), 498);
        assert!(error.chars().all(|c| c == '€'));
        assert_eq!(char_boundary_at_most("ab", 5), 2);
        assert_eq!(char_boundary_at_most("a€", 2), 1);
    }

    #[test]
    fn shown_bytes_are_escaped_and_bounded() {
        assert_eq!(shown(b"<p>\"a\"</p>\r\n\\", 100), "<p>\"a\"</p>\\r\\n\\\\");
        assert_eq!(shown(b"ok\xff\x00", 100), "ok\\xff\\0");
        assert_eq!(shown("€uro".as_bytes(), 2), "€u…");
        // An escape is never cut in half.
        assert_eq!(shown(b"ab\x1b", 4), "ab…");
        assert_eq!(shown(b"", 10), "");
    }

    #[test]
    fn what_reads_as_an_event_stream() {
        for head in [
            &b""[..],
            b"data: {}",
            b": ping\n",
            b"\nevent: x",
            b"retry: 5",
            b"data\r\n",
            b"id:7\n",
        ] {
            assert!(looks_like_events(head), "{}", String::from_utf8_lossy(head));
        }
        for head in [
            &b"<!DOCTYPE html>"[..],
            b"{\"choices\":[]}",
            b"Internal error",
            b"idle timeout\n",
            b"database: down",
        ] {
            assert!(
                !looks_like_events(head),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
