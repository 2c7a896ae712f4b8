//! A run against the server `--serve` starts: started (or kept from the
//! gate's pass before), watched while the sweep measures it — its exit
//! stops the run at once, the completed requests saved, and fails it with
//! the exit status and the log's tail — and stopped by whoever holds it.

use std::time::Duration;

use super::setup::Target;
use super::stop::Stop;
use super::sweep::{RunOutcome, sweep};
use crate::error::Result;
use crate::progress::Ui;
use crate::serve::{ServeCommand, Server};
use crate::settings::{RunSettings, ServeSettings, mask_password};
use crate::store::SERVER_LOG;

/// Starts `serve` at the run's endpoint and waits until it answers; a
/// stop asked meanwhile ends the wait.
pub async fn start(settings: &RunSettings, serve: &ServeSettings, stop: &Stop) -> Result<Server> {
    let ui = Ui::new(settings.quiet);
    let endpoint = &settings.endpoints[0];
    let shown = serve.shown();
    ui.line(&format!(
        "--serve: starting sh -c {shown}; waiting up to {} s for {}/v1/models",
        serve.timeout,
        mask_password(endpoint)
    ));
    let server = Server::start(
        ServeCommand {
            command: &serve.command,
            shown: &shown,
            endpoint,
            api_key: settings.api_key.as_deref(),
            ready_timeout: Duration::from_secs_f64(serve.timeout),
        },
        &settings.output_dir.join(SERVER_LOG),
        stop.until_requested(),
    )
    .await?;
    ui.line(&format!(
        "--serve: the server (pid {}) answered after {:.1} s",
        server.pid(),
        server.ready_after().as_secs_f64()
    ));
    Ok(server)
}

/// Stops `server` (SIGTERM to its group, SIGKILL after the grace period).
pub async fn stop(server: Server, ui: &Ui) {
    let pid = server.pid();
    let exit = server.stop().await;
    ui.line(&format!("--serve: stopped the server (pid {pid}, {exit})"));
}

/// The sweep of `settings` (which has `serve`) against `server`, started
/// here when it holds none. A server that exits during the sweep stops the
/// run as a second Ctrl-C would (the requests completed are kept) and is
/// taken out of `server`; the error says how it ended.
pub async fn run(
    settings: &RunSettings,
    serve: &ServeSettings,
    argv: &[String],
    stop: &Stop,
    server: &mut Option<Server>,
) -> Result<RunOutcome> {
    let mut running = match server.take() {
        Some(running) => running,
        None => start(settings, serve, stop).await?,
    };
    let ui = Ui::new(settings.quiet);
    let run_stop = stop.child();
    let watcher = tokio::spawn({
        let exited = running.exited();
        let run_stop = run_stop.clone();
        async move {
            exited.await;
            run_stop.now();
        }
    });
    let outcome = sweep(
        settings,
        argv,
        &ui,
        settings.endpoints.clone(),
        Target::Served(&running),
        &run_stop,
    )
    .await;
    watcher.abort();
    match running.exit() {
        None => *server = Some(running),
        Some(_) if outcome.is_err() => {
            return Err(running.exited_error(&settings.output_dir).await);
        }
        // It exited as the run ended, after everything was measured: that
        // fails nothing, and it is no longer held.
        Some(_) => {}
    }
    outcome
}
