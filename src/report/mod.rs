//! Renderers: each takes a finished value and returns text or bytes.

pub mod table;
pub mod verdict_table;
