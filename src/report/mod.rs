//! Renderers: each takes a finished value and returns text or bytes.

pub mod calibration;
pub mod diff_html;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod table;
pub mod verdict_table;
pub mod verdict_view;
