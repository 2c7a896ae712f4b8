//! GitHub: the pull request comment, created or updated in place (never
//! duplicated) through the REST API, and the job's step summary. Works on
//! bytes and settings; what the comment says is the reporters' business.

pub mod comments;
pub mod context;
pub mod summary;

pub use comments::{GithubError, Target, Token, Upserted, cap_body, upsert_comment};
pub use context::{pull_request_from_event, split_repository};
