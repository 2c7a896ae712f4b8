//! The HTTP client: one streaming completion per call, timed on a monotonic
//! clock, plus the small calls a run needs (models, tokenize, version,
//! metrics). Endpoints are used round-robin.

mod clock;
mod credentials;
mod describe;
mod events;
mod measured;
pub mod prometheus;
mod server;
pub mod sse;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::record::ErrorKind;
use credentials::{Credentials, split_credentials};
use describe::{classify, looks_like_events};
use sse::SseReader;

pub use clock::Clock;
pub use credentials::without_credentials;
pub(crate) use describe::{describe, shown};
pub use measured::Measured;
pub use server::{ServerInfo, ServerKind};

/// How much of the start of a response is kept, to say what came when it
/// was not an event stream.
const HEAD_BYTES: usize = 1024;

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
                        let content_type = response
                            .headers()
                            .get(CONTENT_TYPE)
                            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                            .unwrap_or_default();
                        let body = response.bytes().await.map_err(|e| {
                            Error::Unreachable(format!("{url} answered, then: {}", describe(&e)))
                        })?;
                        let parsed: Models = serde_json::from_slice(&body).map_err(|e| {
                            let html = content_type.contains("html")
                                || body.trim_ascii_start().starts_with(b"<");
                            let what = if html {
                                "an HTML page, not JSON".to_string()
                            } else {
                                format!("not an OpenAI model list ({e})")
                            };
                            Error::Unreachable(format!(
                                "{url} answered with {what}: \"{}\"; is --api-endpoint the \
                                 server itself?",
                                shown(&body, 120)
                            ))
                        })?;
                        models = Some(parsed.data.into_iter().map(|m| m.id).collect());
                        break;
                    }
                    Ok(response) => {
                        let status = response.status();
                        let body = response.bytes().await.unwrap_or_default();
                        return Err(Error::Unreachable(format!(
                            "{url} answered {status}: {}{}",
                            shown(&body, 300),
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

    /// Posts the request and returns the response, or `None` when it
    /// failed (said in `m`). A server may close an idle keep-alive
    /// connection just as a request goes out on it (llama.cpp's HTTP
    /// library does, often); nothing was processed, so the request is sent
    /// once more on a new connection, its time still counted from the first
    /// launch.
    async fn post(&self, url: &str, body: Vec<u8>, m: &mut Measured) -> Option<reqwest::Response> {
        let body = bytes::Bytes::from(body);
        let sent = match self.post_json(url.to_string(), body.clone()).send().await {
            Err(e) if classify(&e) == ErrorKind::Disconnect => {
                tracing::debug!("resending after a closed connection: {}", describe(&e));
                m.resent = true;
                self.post_json(url.to_string(), body).send().await
            }
            sent => sent,
        };
        match sent {
            Ok(response) => Some(response),
            Err(e) => {
                m.fail(classify(&e), describe(&e));
                None
            }
        }
    }

    async fn stream_into(&self, url: &str, body: Vec<u8>, launch: Instant, m: &mut Measured) {
        let Some(response) = self.post(url, body, m).await else {
            return;
        };
        m.status = response.status().as_u16();
        if !response.status().is_success() {
            let status = m.status;
            // The server's text, with control characters escaped (it
            // reaches the terminal in warnings).
            let body = response.bytes().await.unwrap_or_default();
            return m.fail(
                ErrorKind::for_status(status),
                format!("HTTP {status}: {}", shown(&body, 400)),
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
            check_event_stream(m, content_type, &head, length);
        }
    }
}

/// A response that carried no event fails unless it is an event stream
/// that looks like one (an empty stream is then `incomplete`): a gateway's
/// HTML page or a JSON answer is said for what it is.
fn check_event_stream(m: &mut Measured, content_type: Option<String>, head: &[u8], length: usize) {
    let is_event_stream = content_type.as_deref().is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
    });
    if is_event_stream && looks_like_events(head) {
        return;
    }
    let content_type = content_type.map_or_else(
        || "no content type".to_string(),
        |t| format!("content type {t:?}"),
    );
    let began = if length == 0 {
        "an empty body".to_string()
    } else {
        format!("{length} bytes beginning \"{}\"", shown(head, 200))
    };
    m.fail(
        ErrorKind::Protocol,
        format!(
            "a {} response that is not an event stream ({content_type}): {began}; is \
             --api-endpoint the server itself, and does it stream?",
            m.status
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_is_an_error_not_a_division_by_zero_later() {
        let error = Client::new(Vec::new(), None, Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("--api-endpoint"), "{error}");
    }
}
