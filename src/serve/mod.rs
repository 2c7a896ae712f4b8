//! The server under test as a managed process (`--serve "CMD"`): started
//! with `sh -c` in a process group of its own, its output kept, waited for
//! until `GET /v1/models` answers, watched while the run measures it, and
//! stopped — SIGTERM to its group, SIGKILL after a grace period.

mod log;
mod process;
mod ready;
mod server;

pub use log::{Log, TAIL_LINES};
pub use process::{Exit, STOP_GRACE, group_members};
pub use server::{ServeCommand, Server};
