//! `run_command_*.sh`: a script that reruns the same options, every one
//! explicit so no profile file or environment changes what it does.

use std::path::PathBuf;

use super::provenance::now_rfc3339;
use crate::error::{Error, Result};
use crate::settings::{FixedLoadSpec, PASSWORD_MASK, RunSettings, mask_password};
use crate::store::RunDir;

fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// The environment variable the script reads a masked URL password from.
const PASSWORD_VARIABLE: &str = "CACHERATE_ENDPOINT_PASSWORD";

/// Quotes `arg` for the script; a masked URL credential (`user:***@` or a
/// token alone, `***@`) becomes a reference to [`PASSWORD_VARIABLE`].
fn script_arg(arg: &str) -> String {
    let masked = format!("{PASSWORD_MASK}@");
    match arg.split_once(&masked) {
        Some((before, after)) if arg.contains("://") && before.ends_with([':', '/']) => format!(
            "{}\"${PASSWORD_VARIABLE}\"{}",
            shell_quote(before),
            shell_quote(&format!("@{after}"))
        ),
        _ => shell_quote(arg),
    }
}

/// The script's arguments, option by option.
struct Args(Vec<String>);

impl Args {
    fn push(&mut self, name: &str, values: Vec<String>) {
        self.0.push(format!("--{name}"));
        self.0.extend(values);
    }

    fn one(&mut self, name: &str, value: &dyn ToString) {
        self.push(name, vec![value.to_string()]);
    }

    /// Explicit either way, so no profile can change it.
    fn flag(&mut self, name: &str, set: bool) {
        self.0.push(if set {
            format!("--{name}")
        } else {
            format!("--no-{name}")
        });
    }
}

/// Every option of the run, explicit, so the script does not depend on a
/// profile file or the environment.
pub fn reproduce_args(
    settings: &RunSettings,
    model: &str,
    seed: u64,
    embedded: bool,
) -> Vec<String> {
    let mut args = Args(vec!["run".into()]);
    if embedded {
        args.one("sim-time-scale", &settings.sim_time_scale);
    } else {
        let endpoints = settings.endpoints.iter().map(|url| mask_password(url));
        args.push("api-endpoint", endpoints.collect());
        if let Some(serve) = &settings.serve {
            args.one("serve", &serve.shown());
            args.one("serve-timeout", &serve.timeout);
        }
    }
    args.one("model", &model);
    sweep_args(&mut args, settings, seed);
    measurement_args(&mut args, settings);
    match (&settings.concurrency_from, &settings.fixed_load) {
        (Some(path), _) => args.one("concurrency-from", &path.display()),
        (None, Some(FixedLoadSpec::Levels(levels))) => args.push(
            "fixed-concurrency-levels",
            levels.iter().map(u32::to_string).collect(),
        ),
        _ => {}
    }
    args.flag(
        "random-working-set-selection",
        settings.random_working_set_selection,
    );
    args.flag("strict-time-window", settings.strict_time_window);
    args.flag("skip-graphs", settings.skip_graphs);
    args.0
}

/// What is swept and how the peak is searched for.
fn sweep_args(args: &mut Args, s: &RunSettings, seed: u64) {
    args.push(
        "context-sizes",
        s.context_sizes.iter().map(u64::to_string).collect(),
    );
    args.one("working-set-size", &s.working_set_size);
    args.one("output-tokens", &s.output_tokens);
    args.one("max-ttft", &s.max_ttft);
    args.one("ttft-metric", &s.ttft_metric);
    args.one("test-duration", &s.test_duration);
    args.one("ramp-duration", &s.ramp_duration);
    args.one("num-retries", &s.num_retries);
    args.one("start-concurrency", &s.start_concurrency);
    args.one("concurrency-increment", &s.concurrency_increment);
    args.one("max-concurrency", &s.max_concurrency);
    args.one("init-concurrency", &s.init_concurrency);
    args.push(
        "cache-hit-rates",
        s.cache_hit_rates.iter().map(u32::to_string).collect(),
    );
    args.one("chunk-size", &s.chunk_size);
    args.one("reinit-strategy", &s.reinit_strategy);
    args.one("output-dir", &s.output_dir.display());
    args.one("seed", &seed);
    args.one("kv-cache-quantization", &s.kv_cache_quantization);
}

/// How each request and phase is measured and judged.
fn measurement_args(args: &mut Args, s: &RunSettings) {
    args.one("tokens-per-req-metric", &s.tokens_per_req_metric);
    if let Some(min) = s.min_tokens_per_req {
        args.one("min-tokens-per-req", &min);
    }
    args.one("request-timeout", &s.request_timeout);
    args.one("max-error-rate", &s.max_error_rate);
    args.one("circuit-breaker-failures", &s.circuit_breaker_failures);
    args.one("circuit-breaker-window", &s.circuit_breaker_window);
    args.one("prompt-mode", &s.prompt_mode);
    if let Some(tokenizer) = &s.tokenizer {
        args.one("tokenizer", tokenizer);
    }
    args.one("flush-cache", &s.flush_cache);
    if let Some(url) = &s.metrics_url {
        args.one("metrics-url", &mask_password(url));
    }
    if let Some(gap) = s.max_cache_rate_gap {
        args.one("max-cache-rate-gap", &gap);
    }
    args.one("warmup-fraction", &s.warmup_fraction);
    args.one("sample-duration", &s.sample_duration);
    args.one("min-sample-cycles", &s.min_sample_cycles);
    args.one("min-sample-requests", &s.min_sample_requests);
    args.flag("lengthen-samples", s.lengthen_samples);
    args.one("mode", &s.mode);
    args.one("chunk-times", &s.chunk_times);
}

pub fn write_run_command(dir: &RunDir, args: &[String]) -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "cacherate".to_string());
    let stamp = now_rfc3339().replace([':', '-'], "");
    let name = format!("run_command_{stamp}.sh");
    let quoted: Vec<String> = args.iter().map(|a| script_arg(a)).collect();
    let script = format!(
        "#!/bin/sh\n\
         # Reproduces the cacherate run started {}.\n\
         # Extra arguments are passed on, and later ones win: e.g.\n\
         #   ./{name} --force-restart     or     ./{name} --output-dir other\n\
         # A server key is read from OPENAI_API_KEY, a password in an\n\
         # endpoint's URL from {PASSWORD_VARIABLE}.\n\
         exec {} {} \"$@\"\n",
        now_rfc3339(),
        shell_quote(&exe),
        quoted.join(" ")
    );
    dir.write_atomic(&name, script.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.file(&name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::Internal(anyhow::anyhow!("chmod {}: {e}", path.display())))?;
    }
    Ok(dir.file(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_masked_password_is_read_from_the_environment() {
        assert_eq!(
            script_arg("http://me:***@h:8000"),
            r#"'http://me:'"$CACHERATE_ENDPOINT_PASSWORD"'@h:8000'"#
        );
        assert_eq!(
            script_arg("https://***@h"),
            r#"'https://'"$CACHERATE_ENDPOINT_PASSWORD"'@h'"#
        );
        assert_eq!(script_arg("a***b"), "'a***b'");
    }
}
