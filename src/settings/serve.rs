//! `--serve`: the command that starts the server under test, resolved —
//! where it listens, its `{host}` and `{port}` filled in from the endpoint,
//! how long it may take to answer, and how files and messages show it
//! (secrets masked).

use serde::Serialize;

use crate::error::{Error, Result};

use super::url::{PASSWORD_MASK, mask_password};

/// Where a `--serve` server listens when no `--api-endpoint` says:
/// vLLM's and SGLang's default port, on the loopback.
pub const DEFAULT_SERVE_ENDPOINT: &str = "http://127.0.0.1:8000";

/// The server a run starts, stops, and starts again for every run of a
/// refresh or a calibration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServeSettings {
    /// What `sh -c` runs: the command given, `{host}` and `{port}`
    /// replaced by the endpoint's.
    #[serde(serialize_with = "serialize_command")]
    pub command: String,
    /// Seconds it may take to answer `GET /v1/models`.
    pub timeout: f64,
}

impl ServeSettings {
    /// The command as files and messages show it.
    pub fn shown(&self) -> String {
        mask_command(&self.command)
    }
}

fn serialize_command<S: serde::Serializer>(
    command: &str,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&mask_command(command))
}

/// `--serve` over `endpoints` (normalised): `None` without a command; the
/// default endpoint added when none is given. (`doctor` resolves its own
/// `--serve` with it; `run` and the others through their settings.)
pub fn resolve(
    command: Option<String>,
    timeout: Option<f64>,
    endpoints: &mut Vec<String>,
) -> Result<Option<ServeSettings>> {
    let Some(command) = command else {
        return Ok(None);
    };
    if command.trim().is_empty() {
        return Err(Error::Usage(
            "--serve needs the command that starts the server, e.g. --serve \"vllm serve MODEL \
             --port {port}\""
                .into(),
        ));
    }
    if endpoints.len() > 1 {
        return Err(Error::Usage(format!(
            "--serve starts one server, and --api-endpoint names {}: give the one it listens at",
            endpoints.len()
        )));
    }
    if endpoints.is_empty() {
        endpoints.push(DEFAULT_SERVE_ENDPOINT.to_string());
    }
    let timeout = super::resolve::required(timeout, "--serve-timeout")?;
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(Error::Usage(format!(
            "--serve-timeout must be above 0 seconds, not {timeout}"
        )));
    }
    let url = reqwest::Url::parse(&endpoints[0]).map_err(|e| {
        Error::Usage(format!(
            "--api-endpoint {}: {e}",
            mask_password(&endpoints[0])
        ))
    })?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let port = url
        .port_or_known_default()
        .map(|p| p.to_string())
        .unwrap_or_default();
    Ok(Some(ServeSettings {
        command: command.replace("{host}", &host).replace("{port}", &port),
        timeout,
    }))
}

/// Options whose next word is a secret.
const SECRET_OPTIONS: &[&str] = &["--api-key", "--token", "--hf-token"];

/// `command` with its secrets shown as `***`: the word after `--api-key`
/// (`--token`, `--hf-token`) or after its `=`, the value of an environment
/// assignment whose name says KEY, TOKEN, SECRET or PASSWORD, and URL
/// credentials.
pub fn mask_command(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut hide_next = false;
    let mut rest = command;
    while !rest.is_empty() {
        let space = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..space]);
        rest = &rest[space..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        if word.is_empty() {
            continue;
        }
        if hide_next {
            out.push_str(PASSWORD_MASK);
            hide_next = false;
            continue;
        }
        if SECRET_OPTIONS.contains(&word) {
            hide_next = true;
            out.push_str(word);
            continue;
        }
        match word.split_once('=') {
            Some((name, _)) if SECRET_OPTIONS.contains(&name) || secret_variable(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(PASSWORD_MASK);
            }
            _ => out.push_str(word),
        }
    }
    mask_password(&out)
}

/// `HF_TOKEN`, `OPENAI_API_KEY`, `DB_PASSWORD`…
fn secret_variable(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && ["KEY", "TOKEN", "SECRET", "PASSWORD"]
            .iter()
            .any(|secret| name.contains(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_a_command_are_masked() {
        assert_eq!(
            mask_command(
                "HF_TOKEN=hf_x CUDA_VISIBLE_DEVICES=0 vllm serve m --api-key sk-1  \
                 --api-key=sk-2 --port 8000 --x http://u:pw@h"
            ),
            "HF_TOKEN=*** CUDA_VISIBLE_DEVICES=0 vllm serve m --api-key ***  --api-key=*** \
             --port 8000 --x http://u:***@h"
        );
    }

    #[test]
    fn the_endpoint_fills_the_placeholders_and_defaults() {
        let mut endpoints = Vec::new();
        let serve = resolve(
            Some("sim --listen {host}:{port}".into()),
            Some(5.0),
            &mut endpoints,
        )
        .unwrap()
        .unwrap();
        assert_eq!(endpoints, [DEFAULT_SERVE_ENDPOINT]);
        assert_eq!(serve.command, "sim --listen 127.0.0.1:8000");
        let mut two = vec!["http://a:1".to_string(), "http://b:2".to_string()];
        let error = resolve(Some("x".into()), Some(5.0), &mut two).unwrap_err();
        assert!(error.to_string().contains("starts one server"), "{error}");
        let error = resolve(Some("x".into()), Some(0.0), &mut Vec::new()).unwrap_err();
        assert!(error.to_string().contains("--serve-timeout"), "{error}");
        assert_eq!(resolve(None, Some(5.0), &mut Vec::new()).unwrap(), None);
    }
}
