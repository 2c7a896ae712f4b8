//! `cacherate doctor`: asks a server what a sweep needs and prints the
//! rows; the exit code says whether a sweep can run.

use std::io::Write;
use std::time::Duration;

use crate::cli::DoctorArgs;
use crate::client::Client;
use crate::doctor::{Options, examine, render_json, render_table};
use crate::error::{Error, Result};

pub async fn command(args: &DoctorArgs) -> Result<i32> {
    let endpoint = crate::settings::normalize_endpoint(&args.api_endpoint)?;
    if !args.request_timeout.is_finite() || args.request_timeout <= 0.0 {
        return Err(Error::Usage(format!(
            "--request-timeout must be a number of seconds > 0, got {}",
            args.request_timeout
        )));
    }
    let client = Client::new(
        vec![endpoint],
        args.api_key.as_deref(),
        Duration::from_secs_f64(args.request_timeout),
    )?;
    let options = Options {
        model: args.model.as_deref(),
        tokenizer: args.tokenizer.as_deref(),
        try_flush: true,
        text_prompts: false,
    };
    let findings = examine(&client, &options).await;
    let text = if args.json {
        render_json(&findings)
    } else {
        render_table(&findings)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(findings.exit_code())
}
