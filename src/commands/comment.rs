//! `cacherate comment`: posts `comment.md` on a pull request, updating the
//! comment an earlier run posted (found by its marker) rather than adding
//! another, and skipping the write when nothing changed. Where it could not
//! post because the token may not write (pull requests from forks get a
//! read-only `GITHUB_TOKEN`) it says so and exits 0: the verdict is in the
//! job's step summary and artifacts, and the gate's own exit code is what
//! fails a job.

use std::path::Path;

use crate::cli::CommentArgs;
use crate::error::{Error, Result};
use crate::exit;
use crate::github::{self, GithubError, Target, Token, Upserted};
use crate::report::markdown::{GITHUB_COMMENT_LIMIT, MARKER};

/// The public API, when `GITHUB_API_URL` is not set.
const DEFAULT_API_URL: &str = "https://api.github.com";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The body as it goes out: the marker first (so the next run finds it),
/// and under GitHub's size limit.
fn prepare_body(text: &str) -> String {
    let body = if text.trim_start().starts_with(MARKER) {
        text.to_string()
    } else {
        format!("{MARKER}\n{text}")
    };
    github::cap_body(&body, GITHUB_COMMENT_LIMIT)
}

fn summary_line(text: &str) {
    if let Some(path) = env("GITHUB_STEP_SUMMARY")
        && let Err(e) = github::summary::write_section(Path::new(&path), "comment", text)
    {
        eprintln!("warning: cannot write the step summary {path}: {e}");
    }
}

/// An annotation on the workflow run's page, when running in GitHub Actions.
fn annotate(level: &str, text: &str) {
    if env("GITHUB_ACTIONS").as_deref() == Some("true") {
        let escaped = text
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        println!("::{level} title=cacherate comment::{escaped}");
    }
}

fn target(args: &CommentArgs) -> Result<Target> {
    let repository = args.repo.clone().ok_or_else(|| {
        Error::Usage(
            "no repository to comment on: give --repo OWNER/NAME (GitHub Actions sets \
             GITHUB_REPOSITORY)"
                .into(),
        )
    })?;
    let (owner, repo) = github::split_repository(&repository).ok_or_else(|| {
        Error::Usage(format!(
            "--repo {repository:?} is not OWNER/NAME (letters, digits, '-', '_', '.')"
        ))
    })?;
    let pull_request = match args.pr {
        Some(0) => return Err(Error::Usage("--pr must be a pull request number".into())),
        Some(n) => n,
        None => {
            let path = env("GITHUB_EVENT_PATH").ok_or_else(|| {
                Error::Usage(
                    "no pull request to comment on: give --pr N (in GitHub Actions, the \
                     pull_request event's GITHUB_EVENT_PATH says it)"
                        .into(),
                )
            })?;
            github::pull_request_from_event(Path::new(&path)).map_err(Error::Usage)?
        }
    };
    Ok(Target {
        api_url: env("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string()),
        owner,
        repo,
        pull_request,
    })
}

/// Runs the command; returns the exit code.
pub async fn command(args: &CommentArgs) -> Result<i32> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        Error::Usage(format!(
            "cannot read {}: {e}; give --file RUN_DIR/compare/comment.md (written by \
             `cacherate compare` and `cacherate gate`)",
            args.file.display()
        ))
    })?;
    let body = prepare_body(&text);
    let target = target(args)?;
    let token = env("GITHUB_TOKEN").and_then(Token::new).ok_or_else(|| {
        Error::Usage(
            "GITHUB_TOKEN is not set: in the workflow, give the step `env: GITHUB_TOKEN: \
             ${{ secrets.GITHUB_TOKEN }}` and the job `permissions: pull-requests: write`"
                .into(),
        )
    })?;
    let pr = format!("{}/{}#{}", target.owner, target.repo, target.pull_request);
    match github::upsert_comment(&target, &token, MARKER, &body).await {
        Ok(done) => {
            let (what, url) = match &done {
                Upserted::Created { url, .. } => ("created", url),
                Upserted::Updated { url, .. } => ("updated", url),
                Upserted::Unchanged { url, .. } => ("unchanged, not rewritten", url),
            };
            println!("comment on {pr} {what}: {url}");
            summary_line(&format!(
                "cacherate: the verdict comment on {pr} was {what}.\n"
            ));
            Ok(exit::PASS)
        }
        Err(GithubError::Forbidden { action, message }) => {
            let text = token.redact(&format!(
                "cannot comment on {pr}: GitHub refused to {action} (HTTP 403: {message}). \
                 The token may not write to pull requests: a pull request from a fork gets a \
                 read-only GITHUB_TOKEN, and a job needs `permissions: pull-requests: write`. \
                 The verdict is in this job's step summary and artifacts."
            ));
            eprintln!("warning: {text}");
            annotate("warning", &text);
            summary_line(&format!("cacherate: {text}\n"));
            Ok(exit::PASS)
        }
        Err(e) => {
            let text = token.redact(&e.to_string());
            summary_line(&format!("cacherate: could not comment on {pr}: {text}\n"));
            annotate("error", &text);
            let message = format!("cannot comment on {pr}: {text}");
            Err(if e.is_transient() {
                Error::Unreachable(message)
            } else {
                Error::Usage(message)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_always_starts_with_the_marker() {
        assert!(prepare_body("hello").starts_with(MARKER));
        let marked = format!("{MARKER}\nhello");
        assert_eq!(prepare_body(&marked), marked);
        let huge = "x\n".repeat(GITHUB_COMMENT_LIMIT);
        assert!(prepare_body(&huge).chars().count() < GITHUB_COMMENT_LIMIT);
    }
}
