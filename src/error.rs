//! Errors that end a command, each with the exit code it maps to.

use crate::exit;

/// An error that ends the process; its message says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line, profile or input file.
    #[error("{0}")]
    Usage(String),
    /// The target server is not there or not healthy.
    #[error("{0}")]
    Unreachable(String),
    /// Interrupted by SIGINT or SIGTERM; what was measured is on disk.
    #[error("interrupted; run the same command again to resume from the last finished phase")]
    Interrupted,
    /// Anything else: a bug or an environment failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Unreachable(_) => exit::UNREACHABLE,
            Error::Interrupted => exit::INTERRUPTED,
            Error::Internal(_) => exit::INTERNAL,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
