//! `cacherate doctor`: asks a server what a sweep needs (token-id prompts,
//! usage with cached tokens, a tokenizer, metrics, a cache flush, limits)
//! and says how to fix what is missing. `run` and `gate` ask the same
//! before their first point and warn of what is not ok.

mod checks;
mod finding;
mod fixes;
mod table;

pub use checks::{Options, examine};
pub use finding::{Check, Finding, Findings, Status};
pub use table::{SCHEMA_VERSION, render_json, render_table};
