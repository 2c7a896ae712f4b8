//! `cacherate doctor`: asks a server what a sweep needs and prints the
//! rows; the exit code says whether a sweep can run. With `--serve` it
//! starts the server first, as `run --serve` does, and stops it after.

use std::io::Write;
use std::time::Duration;

use crate::cli::DoctorArgs;
use crate::client::Client;
use crate::doctor::{Findings, Options, examine, render_json, render_table};
use crate::error::{Error, Result};
use crate::serve::{ServeCommand, Server};
use crate::settings::{mask_password, normalize_endpoint, resolve_serve};

pub async fn command(args: &DoctorArgs) -> Result<i32> {
    if !args.request_timeout.is_finite() || args.request_timeout <= 0.0 {
        return Err(Error::Usage(format!(
            "--request-timeout must be a number of seconds > 0, got {}",
            args.request_timeout
        )));
    }
    let mut endpoints = match &args.api_endpoint {
        Some(endpoint) => vec![normalize_endpoint(endpoint)?],
        None => Vec::new(),
    };
    let serve = resolve_serve(args.serve.clone(), Some(args.serve_timeout), &mut endpoints)?;
    let endpoint = endpoints.pop().ok_or_else(|| {
        Error::Usage("give --api-endpoint URL, or --serve CMD to start the server".into())
    })?;
    let server = match &serve {
        Some(serve) => Some(start(args, &serve.command, serve.timeout, &endpoint).await?),
        None => None,
    };
    let findings = examine_at(args, &endpoint).await;
    if let Some(server) = server {
        let pid = server.pid();
        let exit = server.stop().await;
        eprintln!("doctor: stopped the --serve server (pid {pid}, {exit})");
    }
    let findings = findings?;
    let text = if args.json {
        render_json(&findings)
    } else {
        render_table(&findings)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(findings.exit_code())
}

/// The checks of the server at `endpoint`.
async fn examine_at(args: &DoctorArgs, endpoint: &str) -> Result<Findings> {
    let client = Client::new(
        vec![endpoint.to_string()],
        args.api_key.as_deref(),
        Duration::from_secs_f64(args.request_timeout),
    )?;
    let options = Options {
        model: args.model.as_deref(),
        tokenizer: args.tokenizer.as_deref(),
        try_flush: true,
        text_prompts: false,
    };
    Ok(examine(&client, &options).await)
}

/// Starts `command` to listen at `endpoint` and waits until it answers; a
/// failed start leaves its log in the temporary directory, which the
/// message names. Ctrl-C ends the wait (and stops the server).
async fn start(args: &DoctorArgs, command: &str, timeout: f64, endpoint: &str) -> Result<Server> {
    let shown = crate::settings::mask_command(command);
    eprintln!(
        "doctor: starting sh -c {shown}; waiting up to {timeout} s for {}/v1/models",
        mask_password(endpoint)
    );
    let failed_log = std::env::temp_dir().join(format!(
        "cacherate-doctor-server-{}.log",
        std::process::id()
    ));
    let server = Server::start(
        ServeCommand {
            command,
            shown: &shown,
            endpoint,
            api_key: args.api_key.as_deref(),
            ready_timeout: Duration::from_secs_f64(timeout),
        },
        &failed_log,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await?;
    eprintln!(
        "doctor: the server (pid {}) answered after {:.1} s",
        server.pid(),
        server.ready_after().as_secs_f64()
    );
    Ok(server)
}
