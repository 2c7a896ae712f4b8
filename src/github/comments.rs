//! Creates or updates one pull request comment, found again by a hidden
//! marker, through GitHub's REST API with octocrab:
//! `GET /repos/{owner}/{repo}/issues/{n}/comments` (every page, following
//! the `Link` header), then `PATCH /repos/{owner}/{repo}/issues/comments/{id}`
//! or `POST /repos/{owner}/{repo}/issues/{n}/comments`; no write at all when
//! the text is already there. The requests go through octocrab's generic
//! `get`/`patch`/`post` into this module's own [`Comment`], which reads only
//! the fields it needs, so an Enterprise Server or a stand-in that leaves
//! out fields of a user still works.
//!
//! The token goes only into the `Authorization` header (marked sensitive),
//! only to the API's own origin (a `Link` to another host is refused before
//! it is followed; octocrab follows no redirects without its
//! `follow-redirect` feature), and never into a message: [`Token`] has no
//! `Display`, its `Debug` is redacted, and every error text passes through
//! [`Token::redact`].

use std::time::Duration;

use octocrab::{Octocrab, Page};
use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue, USER_AGENT};
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

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Chains an error's sources into one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = cause.source();
    }
    message
}

/// What octocrab's error means here.
fn from_octocrab(action: &'static str, error: octocrab::Error) -> GithubError {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let message = source.message.clone();
            match source.status_code.as_u16() {
                403 => GithubError::Forbidden { action, message },
                401 => GithubError::Unauthorized { message },
                status => GithubError::Status {
                    action,
                    status,
                    message,
                },
            }
        }
        octocrab::Error::Hyper { .. }
        | octocrab::Error::Service { .. }
        | octocrab::Error::Http { .. }
        | octocrab::Error::Other { .. } => GithubError::Transport {
            action,
            message: chain(&error),
        },
        octocrab::Error::Serde { .. } | octocrab::Error::Json { .. } => {
            GithubError::Protocol(format!(
                "GitHub's answer to the request to {action} is not what its REST API returns: {}",
                chain(&error)
            ))
        }
        other => GithubError::Protocol(format!("cannot {action}: {}", chain(&other))),
    }
}

struct Api<'a> {
    github: Octocrab,
    base: Url,
    target: &'a Target,
}

impl Api<'_> {
    /// The client for `base`: the token, a user agent (GitHub refuses
    /// requests without one), the API version, and timeouts.
    fn new<'a>(base: Url, target: &'a Target, token: &Token) -> Result<Api<'a>, GithubError> {
        // Refuses what an HTTP header cannot hold before octocrab sees it.
        token.header()?;
        let build = |e: octocrab::Error| {
            GithubError::Protocol(format!("cannot build the GitHub client: {}", chain(&e)))
        };
        let github = Octocrab::builder()
            .base_uri(base.as_str())
            .map_err(build)?
            .personal_token(token.0.clone())
            .add_header(
                USER_AGENT,
                concat!("cacherate/", env!("CARGO_PKG_VERSION")).into(),
            )
            .add_header(ACCEPT, "application/vnd.github+json".into())
            .add_header(
                HeaderName::from_static("x-github-api-version"),
                "2022-11-28".into(),
            )
            .set_connect_timeout(Some(Duration::from_secs(15)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .set_write_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(build)?;
        Ok(Api {
            github,
            base,
            target,
        })
    }

    /// Refuses a URL outside the API's origin: the token would go there.
    fn check_origin(&self, url: &str) -> Result<(), GithubError> {
        let parsed = Url::parse(url).map_err(|e| {
            GithubError::Protocol(format!("a bad Link to the next page ({url}): {e}"))
        })?;
        if same_origin(&parsed, &self.base) {
            return Ok(());
        }
        Err(GithubError::Protocol(format!(
            "refusing to send the token to {}, which is not the API at {} (GITHUB_API_URL)",
            parsed.origin().ascii_serialization(),
            self.base.origin().ascii_serialization()
        )))
    }

    /// The first comment whose text starts with `marker`, reading every
    /// page.
    async fn find(&self, marker: &str) -> Result<Option<Comment>, GithubError> {
        let action = "list the pull request's comments";
        let target = self.target;
        let first = format!(
            "/repos/{}/{}/issues/{}/comments?per_page={PER_PAGE}",
            target.owner, target.repo, target.pull_request
        );
        let mut page: Page<Comment> = self
            .github
            .get(first, None::<&()>)
            .await
            .map_err(|e| from_octocrab(action, e))?;
        for _ in 0..MAX_PAGES {
            let next = page.next.take();
            if let Some(found) = page.items.into_iter().find(|c| {
                c.body
                    .as_deref()
                    .is_some_and(|b| b.trim_start().starts_with(marker))
            }) {
                return Ok(Some(found));
            }
            let Some(next) = next else {
                return Ok(None);
            };
            let next = next.to_string();
            self.check_origin(&next)?;
            page = self
                .github
                .get(next, None::<&()>)
                .await
                .map_err(|e| from_octocrab(action, e))?;
        }
        Err(GithubError::Protocol(format!(
            "the pull request has more than {} pages of comments; stopped reading",
            MAX_PAGES
        )))
    }

    async fn update(&self, id: u64, payload: &serde_json::Value) -> Result<Comment, GithubError> {
        let route = format!(
            "/repos/{}/{}/issues/comments/{id}",
            self.target.owner, self.target.repo
        );
        self.github
            .patch(route, Some(payload))
            .await
            .map_err(|e| from_octocrab("update the comment", e))
    }

    async fn create(&self, payload: &serde_json::Value) -> Result<Comment, GithubError> {
        let target = self.target;
        let route = format!(
            "/repos/{}/{}/issues/{}/comments",
            target.owner, target.repo, target.pull_request
        );
        self.github
            .post(route, Some(payload))
            .await
            .map_err(|e| from_octocrab("create a comment on the pull request", e))
    }
}

/// Makes `body` the text of the pull request's comment that starts with
/// `marker`: updates that comment (or leaves it alone when it already says
/// this), or creates one. `body` should start with `marker`, or the next
/// call will not find it.
pub async fn upsert_comment(
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
        let api = Api::new(base, target, token)?;
        let payload = serde_json::json!({ "body": body });
        match api.find(marker).await? {
            Some(existing) => {
                let url = existing.html_url.clone().unwrap_or_default();
                if existing.body.as_deref().map(normalise) == Some(normalise(body)) {
                    return Ok(Upserted::Unchanged {
                        id: existing.id,
                        url,
                    });
                }
                let updated = api.update(existing.id, &payload).await?;
                Ok(Upserted::Updated {
                    id: updated.id,
                    url: updated.html_url.unwrap_or(url),
                })
            }
            None => {
                let created = api.create(&payload).await?;
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
    fn a_body_over_the_limit_is_cut_at_a_line_and_says_so() {
        let body = "line\n".repeat(100);
        let capped = cap_body(&body, 200);
        assert!(capped.chars().count() < 200);
        assert!(capped.contains("cut to fit"));
        assert_eq!(cap_body("short", 200), "short");
    }
}
