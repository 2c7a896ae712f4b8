//! Creates or updates one pull request comment, found again by a hidden
//! marker, through GitHub's REST API:
//! `GET /repos/{owner}/{repo}/issues/{n}/comments` (every page, following
//! the `Link` header), then `PATCH /repos/{owner}/{repo}/issues/comments/{id}`
//! or `POST /repos/{owner}/{repo}/issues/{n}/comments`; no write at all when
//! the text is already there.
//!
//! Plain `reqwest` rather than octocrab: every octocrab release that
//! declares Rust 1.85 builds with `cargo_metadata` 0.23, which needs Rust
//! 1.86, above this crate's `rust-version`. Three endpoints do not need a
//! client library.
//!
//! The token goes only into the `Authorization` header (marked sensitive),
//! only to the API's own origin (a `Link` to another host is refused), and
//! never into a message: [`Token`] has no `Display`, its `Debug` is
//! redacted, and every error text passes through [`Token::redact`].

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

/// Comments per page asked for (GitHub's largest).
pub const PER_PAGE: u32 = 100;

/// Pages read at most (10 000 comments): a guard against a `Link` loop.
pub const MAX_PAGES: usize = 100;

/// A GitHub token. Shown nowhere: no `Display`, a redacted `Debug`.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// `None` for an empty or blank token.
    pub fn new(token: impl Into<String>) -> Option<Token> {
        let token = token.into().trim().to_string();
        (!token.is_empty()).then_some(Token(token))
    }

    /// `text` with every occurrence of the token replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.0, "***")
    }

    fn header(&self) -> Result<HeaderValue, GithubError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0)).map_err(|_| {
            GithubError::Protocol("the token holds characters an HTTP header cannot".into())
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// The pull request to comment on.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `https://api.github.com`, or `https://HOST/api/v3` on GitHub
    /// Enterprise Server (`GITHUB_API_URL`).
    pub api_url: String,
    pub owner: String,
    pub repo: String,
    pub pull_request: u64,
}

/// What [`upsert_comment`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Upserted {
    Created {
        id: u64,
        url: String,
    },
    Updated {
        id: u64,
        url: String,
    },
    /// The comment already says exactly this: nothing was written.
    Unchanged {
        id: u64,
        url: String,
    },
}

/// Why the comment could not be posted. Messages carry GitHub's own
/// words, never the token.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The token may not do this: a read-only `GITHUB_TOKEN` (pull requests
    /// from forks, Dependabot), missing `permissions: pull-requests: write`,
    /// or a secondary rate limit.
    #[error("GitHub refused to {action} (HTTP 403: {message})")]
    Forbidden {
        action: &'static str,
        message: String,
    },
    #[error("GitHub did not accept the token (HTTP 401: {message}); check GITHUB_TOKEN")]
    Unauthorized { message: String },
    #[error("GitHub answered HTTP {status} when asked to {action}: {message}")]
    Status {
        action: &'static str,
        status: u16,
        message: String,
    },
    #[error("cannot reach the GitHub API to {action}: {message}")]
    Transport {
        action: &'static str,
        message: String,
    },
    #[error("{0}")]
    Protocol(String),
}

impl GithubError {
    /// A server-side or network failure: trying again later may work.
    pub fn is_transient(&self) -> bool {
        match self {
            GithubError::Transport { .. } => true,
            GithubError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    fn redacted(self, token: &Token) -> GithubError {
        match self {
            GithubError::Forbidden { action, message } => GithubError::Forbidden {
                action,
                message: token.redact(&message),
            },
            GithubError::Unauthorized { message } => GithubError::Unauthorized {
                message: token.redact(&message),
            },
            GithubError::Status {
                action,
                status,
                message,
            } => GithubError::Status {
                action,
                status,
                message: token.redact(&message),
            },
            GithubError::Transport { action, message } => GithubError::Transport {
                action,
                message: token.redact(&message),
            },
            GithubError::Protocol(message) => GithubError::Protocol(token.redact(&message)),
        }
    }
}

/// An issue comment as far as this module reads one.
#[derive(Debug, Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
}

/// Line endings as GitHub may return them, and no trailing blank space.
fn normalise(body: &str) -> String {
    body.replace("\r\n", "\n").trim_end().to_string()
}

/// `body` cut to fewer than `max_chars` characters at a line break, with a
/// note saying so; unchanged when it fits.
pub fn cap_body(body: &str, max_chars: usize) -> String {
    if body.chars().count() < max_chars {
        return body.to_string();
    }
    let note = "\n\n**This comment was cut to fit GitHub's size limit.**\n";
    let keep = max_chars.saturating_sub(note.chars().count() + 1);
    let cut: String = body.chars().take(keep).collect();
    let cut = match cut.rfind('\n') {
        Some(i) if i > 0 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{cut}{note}")
}

/// The next page's URL from a `Link` header (RFC 8288), as GitHub sends it:
/// `<https://…&page=2>; rel="next", <https://…&page=5>; rel="last"`.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_string())
    })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

struct Api<'a> {
    client: reqwest::Client,
    base: Url,
    token: &'a Token,
}

impl Api<'_> {
    fn url(&self, path: &str) -> Result<Url, GithubError> {
        let joined = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        Url::parse(&joined).map_err(|e| GithubError::Protocol(format!("bad API URL {joined}: {e}")))
    }

    async fn send(
        &self,
        action: &'static str,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, GithubError> {
        if !same_origin(&url, &self.base) {
            return Err(GithubError::Protocol(format!(
                "refusing to send the token to {}, which is not the API at {} (GITHUB_API_URL)",
                url.origin().ascii_serialization(),
                self.base.origin().ascii_serialization()
            )));
        }
        let mut request = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, self.token.header()?)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            GithubError::Transport { action, message }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                let text: String = text.trim().chars().take(300).collect();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("no reason").to_string()
                } else {
                    text
                }
            });
        Err(match status {
            StatusCode::FORBIDDEN => GithubError::Forbidden { action, message },
            StatusCode::UNAUTHORIZED => GithubError::Unauthorized { message },
            _ => GithubError::Status {
                action,
                status: status.as_u16(),
                message,
            },
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        action: &'static str,
        response: reqwest::Response,
    ) -> Result<T, GithubError> {
        let bytes = response.bytes().await.map_err(|e| GithubError::Transport {
            action,
            message: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            GithubError::Protocol(format!(
                "GitHub's answer to the request to {action} is not what its REST API returns: {e}"
            ))
        })
    }

    /// The first comment whose text starts with `marker`, reading every
    /// page.
    async fn find(&self, target: &Target, marker: &str) -> Result<Option<Comment>, GithubError> {
        let action = "list the pull request's comments";
        let mut url = self.url(&format!(
            "/repos/{}/{}/issues/{}/comments?per_page={PER_PAGE}",
            target.owner, target.repo, target.pull_request
        ))?;
        for _ in 0..MAX_PAGES {
            let response = self.send(action, Method::GET, url, None).await?;
            let next = next_link(response.headers());
            let comments: Vec<Comment> = Self::json(action, response).await?;
            if let Some(found) = comments.into_iter().find(|c| {
                c.body
                    .as_deref()
                    .is_some_and(|b| b.trim_start().starts_with(marker))
            }) {
                return Ok(Some(found));
            }
            match next {
                Some(next) => {
                    url = Url::parse(&next).map_err(|e| {
                        GithubError::Protocol(format!("a bad Link to the next page ({next}): {e}"))
                    })?;
                }
                None => return Ok(None),
            }
        }
        Err(GithubError::Protocol(format!(
            "the pull request has more than {} pages of comments; stopped reading",
            MAX_PAGES
        )))
    }
}

/// The client the comment command uses: timeouts, and a user agent
/// (GitHub refuses requests without one).
pub fn client() -> Result<reqwest::Client, GithubError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("cacherate/", env!("CARGO_PKG_VERSION"))),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(60))
        // A redirect could carry the token elsewhere; GitHub does not
        // redirect these endpoints.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| GithubError::Protocol(format!("cannot build an HTTP client: {e}")))
}

/// Makes `body` the text of the pull request's comment that starts with
/// `marker`: updates that comment (or leaves it alone when it already says
/// this), or creates one. `body` should start with `marker`, or the next
/// call will not find it.
pub async fn upsert_comment(
    client: reqwest::Client,
    target: &Target,
    token: &Token,
    marker: &str,
    body: &str,
) -> Result<Upserted, GithubError> {
    let inner = async {
        let base = Url::parse(target.api_url.trim_end_matches('/')).map_err(|e| {
            GithubError::Protocol(format!(
                "GITHUB_API_URL {:?} is not a URL: {e}",
                target.api_url
            ))
        })?;
        if !matches!(base.scheme(), "https" | "http") {
            return Err(GithubError::Protocol(format!(
                "GITHUB_API_URL {:?} must be an http(s) URL",
                target.api_url
            )));
        }
        let api = Api {
            client,
            base,
            token,
        };
        let payload = serde_json::json!({ "body": body });
        match api.find(target, marker).await? {
            Some(existing) => {
                let url = existing.html_url.clone().unwrap_or_default();
                if existing.body.as_deref().map(normalise) == Some(normalise(body)) {
                    return Ok(Upserted::Unchanged {
                        id: existing.id,
                        url,
                    });
                }
                let action = "update the comment";
                let endpoint = api.url(&format!(
                    "/repos/{}/{}/issues/comments/{}",
                    target.owner, target.repo, existing.id
                ))?;
                let response = api
                    .send(action, Method::PATCH, endpoint, Some(&payload))
                    .await?;
                let updated: Comment = Api::json(action, response).await?;
                Ok(Upserted::Updated {
                    id: updated.id,
                    url: updated.html_url.unwrap_or(url),
                })
            }
            None => {
                let action = "create a comment on the pull request";
                let endpoint = api.url(&format!(
                    "/repos/{}/{}/issues/{}/comments",
                    target.owner, target.repo, target.pull_request
                ))?;
                let response = api
                    .send(action, Method::POST, endpoint, Some(&payload))
                    .await?;
                let created: Comment = Api::json(action, response).await?;
                Ok(Upserted::Created {
                    id: created.id,
                    url: created.html_url.unwrap_or_default(),
                })
            }
        }
    };
    inner.await.map_err(|e| e.redacted(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_shows_nowhere() {
        let token = Token::new("ghs_secret123").unwrap();
        assert_eq!(format!("{token:?}"), "Token(***)");
        assert_eq!(token.redact("a ghs_secret123 b"), "a *** b");
        let header = token.header().unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("secret"));
        assert!(Token::new("  ").is_none());
    }

    #[test]
    fn links_to_the_next_page_are_read_as_github_writes_them() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=2>; \
                 rel=\"next\", <https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=4>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=2")
        );
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://x/?page=1>; rel=\"prev\""),
        );
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn a_body_over_the_limit_is_cut_at_a_line_and_says_so() {
        let body = "line\n".repeat(100);
        let capped = cap_body(&body, 200);
        assert!(capped.chars().count() < 200);
        assert!(capped.contains("cut to fit"));
        assert_eq!(cap_body("short", 200), "short");
    }
}
