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

/// Every option of the run, explicit, so the script does not depend on a
/// profile file or the environment.
pub fn reproduce_args(
    settings: &RunSettings,
    model: &str,
    seed: u64,
    embedded: bool,
) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into()];
    let mut push = |name: &str, values: Vec<String>| {
        args.push(format!("--{name}"));
        args.extend(values);
    };
    let one = |value: &dyn ToString| vec![value.to_string()];
    if embedded {
        push("sim-time-scale", one(&settings.sim_time_scale));
    } else {
        push(
            "api-endpoint",
            settings
                .endpoints
                .iter()
                .map(|url| mask_password(url))
                .collect(),
        );
    }
    push("model", one(&model));
    push(
        "context-sizes",
        settings.context_sizes.iter().map(u64::to_string).collect(),
    );
    push("working-set-size", one(&settings.working_set_size));
    push("output-tokens", one(&settings.output_tokens));
    push("max-ttft", one(&settings.max_ttft));
    push("ttft-metric", one(&settings.ttft_metric));
    push("test-duration", one(&settings.test_duration));
    push("ramp-duration", one(&settings.ramp_duration));
    push("num-retries", one(&settings.num_retries));
    push("start-concurrency", one(&settings.start_concurrency));
    push(
        "concurrency-increment",
        one(&settings.concurrency_increment),
    );
    push("max-concurrency", one(&settings.max_concurrency));
    push("init-concurrency", one(&settings.init_concurrency));
    push(
        "cache-hit-rates",
        settings
            .cache_hit_rates
            .iter()
            .map(u32::to_string)
            .collect(),
    );
    push("chunk-size", one(&settings.chunk_size));
    push("reinit-strategy", one(&settings.reinit_strategy));
    push("output-dir", one(&settings.output_dir.display()));
    push("seed", one(&seed));
    push(
        "kv-cache-quantization",
        one(&settings.kv_cache_quantization),
    );
    push(
        "tokens-per-req-metric",
        one(&settings.tokens_per_req_metric),
    );
    if let Some(min) = settings.min_tokens_per_req {
        push("min-tokens-per-req", one(&min));
    }
    push("request-timeout", one(&settings.request_timeout));
    push("max-error-rate", one(&settings.max_error_rate));
    push(
        "circuit-breaker-failures",
        one(&settings.circuit_breaker_failures),
    );
    push(
        "circuit-breaker-window",
        one(&settings.circuit_breaker_window),
    );
    push("prompt-mode", one(&settings.prompt_mode));
    if let Some(tokenizer) = &settings.tokenizer {
        push("tokenizer", one(tokenizer));
    }
    push(
        "flush-cache",
        one(&match &settings.flush_cache {
            crate::settings::FlushCache::None => "none".to_string(),
            crate::settings::FlushCache::Auto => "auto".to_string(),
            crate::settings::FlushCache::Url(url) => mask_password(url),
        }),
    );
    if let Some(url) = &settings.metrics_url {
        push("metrics-url", one(&mask_password(url)));
    }
    if let Some(gap) = settings.max_cache_rate_gap {
        push("max-cache-rate-gap", one(&gap));
    }
    push("warmup-fraction", one(&settings.warmup_fraction));
    push("sample-duration", one(&settings.sample_duration));
    push("mode", one(&settings.mode));
    push("chunk-times", one(&settings.chunk_times));
    match (&settings.concurrency_from, &settings.fixed_load) {
        (Some(path), _) => push("concurrency-from", one(&path.display())),
        (None, Some(FixedLoadSpec::Levels(levels))) => push(
            "fixed-concurrency-levels",
            levels.iter().map(u32::to_string).collect(),
        ),
        _ => {}
    }
    for (flag, set) in [
        (
            "random-working-set-selection",
            settings.random_working_set_selection,
        ),
        ("strict-time-window", settings.strict_time_window),
        ("skip-graphs", settings.skip_graphs),
    ] {
        // Explicit either way, so no profile can change it.
        args.push(if set {
            format!("--{flag}")
        } else {
            format!("--no-{flag}")
        });
    }
    args
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
