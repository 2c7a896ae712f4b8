//! What `run.json` records of where and how a run was made: the tool, the
//! command line (secrets blanked), the git state of the calling
//! repository, the host, the server's fingerprint and the settings.

use std::time::SystemTime;

use crate::error::Result;
use crate::settings::{RunSettings, mask_command, mask_password};
use crate::store::{GitState, RunInfo, RunStatus, git_state};

/// `run.json` of a run starting now: the tool, the command line, the git
/// state, the host and the settings; the setup adds what it learns of the
/// server and the prompts.
pub fn run_info(settings: &RunSettings, argv: &[String]) -> Result<RunInfo> {
    Ok(RunInfo {
        tool: Some("cacherate".into()),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        status: Some(RunStatus::Running),
        started_at: Some(now_rfc3339()),
        command: redacted(argv),
        git: git_info(),
        host: hostname(),
        settings: serde_json::to_value(settings).map_err(anyhow::Error::from)?,
        ..RunInfo::default()
    })
}

/// The git state of the repository the run was started in.
pub fn git_info() -> Option<GitState> {
    git_state(std::path::Path::new("."))
}

pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The command line with secrets blanked, for `run.json`.
pub fn redacted(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    let mut serve_next = false;
    for arg in argv {
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
        } else if serve_next {
            out.push(mask_command(arg));
            serve_next = false;
        } else if arg == "--serve" {
            out.push(arg.clone());
            serve_next = true;
        } else if let Some(command) = arg.strip_prefix("--serve=") {
            out.push(format!("--serve={}", mask_command(command)));
        } else if arg == "--api-key" {
            out.push(arg.clone());
            hide_next = true;
        } else if arg.starts_with("--api-key=") {
            out.push("--api-key=***".to_string());
        } else if let Some((option, url)) = arg.split_once('=')
            && option.starts_with("--")
        {
            out.push(format!("{option}={}", mask_password(url)));
        } else {
            out.push(mask_password(arg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_never_reach_run_json() {
        let argv: Vec<String> = ["cacherate", "run", "--api-key", "sk-1", "--api-key=sk-2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            redacted(&argv),
            ["cacherate", "run", "--api-key", "***", "--api-key=***"]
        );
    }

    #[test]
    fn the_served_command_keeps_its_secrets() {
        let argv: Vec<String> = [
            "run",
            "--serve",
            "vllm serve m --api-key sk-1",
            "--serve=HF_TOKEN=hf_1 vllm serve m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redacted(&argv),
            [
                "run",
                "--serve",
                "vllm serve m --api-key ***",
                "--serve=HF_TOKEN=*** vllm serve m"
            ]
        );
    }

    #[test]
    fn url_passwords_are_masked_in_the_command_line() {
        let argv: Vec<String> = [
            "run",
            "--api-endpoint",
            "http://me:s3cret@h:8000",
            "--metrics-url=https://me:s3cret@h/metrics",
            "http://h:8000",
            "--api-endpoint=http://TOKEN@a,http://u:pw2@b:1/x",
            "http://u:pw3@h:99999999",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redacted(&argv),
            [
                "run",
                "--api-endpoint",
                "http://me:***@h:8000",
                "--metrics-url=https://me:***@h/metrics",
                "http://h:8000",
                "--api-endpoint=http://***@a,http://u:***@b:1/x",
                "http://u:***@h:99999999",
            ]
        );
    }
}
