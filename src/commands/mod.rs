//! The commands: each reads its inputs, calls the library, writes its
//! outputs and returns the exit code.

pub mod baseline;
pub mod calibrate;
pub mod comment;
pub mod compare;
pub mod doctor;
pub mod gate;
pub mod kv_size;
pub mod report;
pub mod run;
pub mod sim;

pub use run::run_and_report;
