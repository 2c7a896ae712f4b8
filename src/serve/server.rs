//! [`Server`]: a served server from its start to its stop, and the errors
//! that say why one could not be measured (exit code 3, the log's tail in
//! the message).

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::log::Log;
use super::process::{Exit, Process, STOP_GRACE};
use super::ready::{Waited, something_listens, wait_ready};
use crate::client::Client;
use crate::error::{Error, Result};

/// What to start and where it will answer.
#[derive(Debug, Clone, Copy)]
pub struct ServeCommand<'a> {
    /// Run by `sh -c`.
    pub command: &'a str,
    /// The command as messages and files show it (secrets masked).
    pub shown: &'a str,
    /// The base URL it will answer at.
    pub endpoint: &'a str,
    pub api_key: Option<&'a str>,
    /// How long it may take to answer `GET /v1/models`.
    pub ready_timeout: Duration,
}

/// A server started by `--serve`, ready, stopped when dropped.
pub struct Server {
    process: Process,
    log: Log,
    shown: String,
    started_at: SystemTime,
    ready_after: Duration,
}

impl Server {
    /// Starts `serve` and waits until it answers. On failure the server is
    /// stopped and its log written to `failed_log`, which the message
    /// names. `abandon` resolving (a Ctrl-C) stops the wait.
    pub async fn start(
        serve: ServeCommand<'_>,
        failed_log: &Path,
        abandon: impl Future<Output = ()>,
    ) -> Result<Server> {
        if something_listens(serve.endpoint).await {
            return Err(Error::Usage(format!(
                "something already answers at {}, where --serve's server is to listen: \
                 cacherate would measure it instead. Stop it, or give --api-endpoint another \
                 port (the command may name it as {{port}})",
                serve.endpoint
            )));
        }
        let client = Client::new(
            vec![serve.endpoint.to_string()],
            serve.api_key,
            Duration::from_secs(5),
        )?;
        let log = Log::new();
        let started_at = SystemTime::now();
        let when = humantime::format_rfc3339_seconds(started_at);
        let mut process = Process::spawn(serve.command, &log, |pid| {
            format!(
                "==== cacherate --serve: started at {when}, pid {pid}: sh -c {} ====",
                serve.shown
            )
        })
        .map_err(|e| {
            Error::Unreachable(format!("--serve cannot start sh -c {}: {e}", serve.shown))
        })?;
        let exited = process.exited();
        let waited = wait_ready(
            &client,
            serve.ready_timeout,
            async {
                exited.await;
            },
            abandon,
        )
        .await;
        if let Waited::Ready(ready_after) = waited {
            return Ok(Server {
                process,
                log,
                shown: serve.shown.to_string(),
                started_at,
                ready_after,
            });
        }
        Err(not_ready(waited, &mut process, &log, &serve, failed_log).await)
    }

    /// From now on its log goes to `path` (the run directory's
    /// `server.log`), what it said before first.
    pub fn attach_log(&self, path: &Path) -> Result<()> {
        self.log.attach(path).map_err(|e| {
            Error::Usage(format!(
                "cannot write the server's log {}: {e}; make the directory writable or choose \
                 another --output-dir",
                path.display()
            ))
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The command as shown (secrets masked).
    pub fn command(&self) -> &str {
        &self.shown
    }

    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// From its start until it answered.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// How it ended, if it has (on its own: a stop is no exit here).
    pub fn exit(&self) -> Option<Exit> {
        self.process.exit().filter(|_| !self.process.is_stopping())
    }

    /// Resolves when its process exits.
    pub fn exited(&self) -> impl Future<Output = Exit> + Send + 'static {
        self.process.exited()
    }

    /// The error of a run whose server exited under it: its status and its
    /// last lines; `dir` holds what was measured.
    pub async fn exited_error(&mut self, dir: &Path) -> Error {
        self.process.flush_log().await;
        let exit = self.process.exit().unwrap_or(Exit::Unknown);
        Error::Unreachable(format!(
            "the server --serve started exited during the run ({exit}): sh -c {}\nwhat \
             was measured is saved in {}: run the same command again to resume it with a \
             fresh server\n{}",
            self.shown,
            dir.display(),
            self.log.quoted_tail()
        ))
    }

    /// Stops it: SIGTERM to its process group, SIGKILL after a grace
    /// period; how it ended.
    pub async fn stop(mut self) -> Exit {
        let exit = self.process.stop(STOP_GRACE).await;
        self.process.flush_log().await;
        exit
    }
}

/// Why a started server is not ready (`waited` is not `Ready`): it is
/// stopped if still running, and its log written to `failed_log`.
async fn not_ready(
    waited: Waited,
    process: &mut Process,
    log: &Log,
    serve: &ServeCommand<'_>,
    failed_log: &Path,
) -> Error {
    match waited {
        Waited::Exited => process.flush_log().await,
        Waited::TimedOut(_) => {
            process.stop(STOP_GRACE).await;
            process.flush_log().await;
        }
        Waited::Abandoned | Waited::Ready(_) => {
            process.stop(STOP_GRACE).await;
        }
    }
    if let Err(e) = log.attach(failed_log) {
        tracing::warn!(
            "cannot keep the server's log in {}: {e}",
            failed_log.display()
        );
    }
    match waited {
        Waited::Exited => {
            let exit = process.exit().unwrap_or(Exit::Unknown);
            Error::Unreachable(format!(
                "the server --serve started exited before it answered GET {}/v1/models \
                 ({exit}): sh -c {}\n{}",
                serve.endpoint,
                serve.shown,
                log.quoted_tail()
            ))
        }
        Waited::TimedOut(last) => Error::Unreachable(format!(
            "the server --serve started did not answer GET {}/v1/models within \
             --serve-timeout {} s (last: {last}), so it was stopped; give it longer with \
             --serve-timeout, or check the command and --api-endpoint: sh -c {}\n{}",
            serve.endpoint,
            serve.ready_timeout.as_secs_f64(),
            serve.shown,
            log.quoted_tail()
        )),
        Waited::Abandoned | Waited::Ready(_) => Error::Interrupted,
    }
}
