//! Renderers: each takes a finished value and returns text or bytes.

pub mod html;
pub mod table;
pub mod verdict_table;
