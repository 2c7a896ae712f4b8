//! One row of `cacherate doctor`: a check, what was seen, whether it stops
//! a sweep, and the fix; and the rows of one server together.

use serde::Serialize;

use crate::client::ServerInfo;

/// The checks, in the order they run and print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// `GET /v1/models` answers with an OpenAI model list.
    Models,
    /// The model a run would request: `--model`, else the first listed.
    Model,
    /// Which server it is, and its version.
    Server,
    /// The longest request the server accepts, as a run reads it.
    MaxModelLen,
    /// Token counts: the server's `/tokenize`, or `--tokenizer`.
    Tokenizer,
    /// A `/v1/completions` with a prompt of token ids.
    TokenPrompts,
    /// `stream_options.include_usage`: usage arrives in the stream.
    StreamUsage,
    /// `usage.prompt_tokens_details.cached_tokens`, and a repeated prompt
    /// is cached.
    CachedTokens,
    /// `GET /metrics` and its prefix-cache counters.
    Metrics,
    /// A way to empty the prefix cache (`--flush-cache auto`).
    Flush,
}

impl Check {
    /// As the table and the JSON name it.
    pub fn name(self) -> &'static str {
        match self {
            Check::Models => "models",
            Check::Model => "model",
            Check::Server => "server",
            Check::MaxModelLen => "max_model_len",
            Check::Tokenizer => "tokenizer",
            Check::TokenPrompts => "token_prompts",
            Check::StreamUsage => "stream_usage",
            Check::CachedTokens => "cached_tokens",
            Check::Metrics => "metrics",
            Check::Flush => "flush",
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// As a sweep needs it.
    Ok,
    /// The server does not offer it (not served, not reported).
    Missing,
    /// The server answers, but not as a sweep needs.
    Wrong,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Wrong => "wrong",
        }
    }
}

/// One row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    pub status: Status,
    /// A sweep cannot run (or cannot measure what it is for) with this
    /// row as it is.
    pub blocks_sweep: bool,
    /// What the server answered.
    pub seen: String,
    /// How to fix it, for the server found; `None` when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: Check, seen: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Ok,
            blocks_sweep: false,
            seen: seen.into(),
            fix: None,
        }
    }

    /// A row that is not ok; `blocks_sweep` says whether a sweep can run
    /// all the same.
    pub fn not_ok(
        check: Check,
        status: Status,
        blocks_sweep: bool,
        seen: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            status,
            blocks_sweep,
            seen: seen.into(),
            fix: Some(fix.into()),
        }
    }

    /// The row as one warning line (what `run` and `gate` print).
    pub fn warning(&self) -> String {
        let fix = self
            .fix
            .as_deref()
            .map(|fix| format!("; fix: {fix}"))
            .unwrap_or_default();
        format!(
            "doctor: {} {}: {}{fix}",
            self.check.name(),
            self.status.name(),
            self.seen
        )
    }
}

/// Every row of one server, and what was learnt on the way.
#[derive(Debug, Clone)]
pub struct Findings {
    pub endpoint: String,
    /// Which server it is, once its model list answered.
    pub server: Option<ServerInfo>,
    /// The model chosen, as `run` chooses it.
    pub model: Option<String>,
    pub rows: Vec<Finding>,
}

impl Findings {
    /// Whether a sweep can run: no row blocks it.
    pub fn sweep_can_run(&self) -> bool {
        !self.rows.iter().any(|row| row.blocks_sweep)
    }

    /// The rows that are not ok.
    pub fn problems(&self) -> impl Iterator<Item = &Finding> {
        self.rows.iter().filter(|row| row.status != Status::Ok)
    }

    /// The row of `check`, if it ran.
    pub fn row(&self, check: Check) -> Option<&Finding> {
        self.rows.iter().find(|row| row.check == check)
    }

    /// The server reported cached prompt tokens for a repeated prompt.
    pub fn reports_cached_tokens(&self) -> bool {
        self.row(Check::CachedTokens)
            .is_some_and(|row| row.status == Status::Ok)
    }

    /// The process exit code `cacherate doctor` ends with.
    pub fn exit_code(&self) -> i32 {
        if self.sweep_can_run() {
            crate::exit::PASS
        } else {
            crate::exit::UNREACHABLE
        }
    }
}
