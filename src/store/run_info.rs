//! `run.json`: where and how a run was made — the tool, the command line
//! (secrets blanked), the server's fingerprint, the tokenizer, the seed,
//! the git state of the calling repository, the host, the settings — and
//! how far it got. One struct writes it and every reader reads it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::git::GitState;
use super::run_dir::{RUN, RunDir, io_error};
use crate::error::{Error, Result};

/// Version of `run.json`'s layout; bumped when a field changes meaning.
/// 1: the first with a version. A file without one (written before) has
/// the same fields and reads the same.
pub const RUN_INFO_SCHEMA_VERSION: u32 = 1;

crate::names::named_enum! {
    "snake_case",
    /// How far the run got.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RunStatus {
        /// Still going, or interrupted: the same command resumes it.
        Running,
        /// Every point measured.
        Complete,
        /// Finished, with points that errored: the same command measures them
        /// again.
        CompleteWithErrors,
    }
}

/// Who the server says it is, for `run.json` and for refusing comparisons
/// of different servers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fingerprint {
    /// `vllm`, `llama.cpp`, `sglang`, `cacherate-sim` or `unknown`.
    pub kind: String,
    pub version: Option<String>,
    /// The longest context the server accepts, when it says.
    pub max_model_len: Option<u64>,
    pub model: String,
    /// llama.cpp's `/props`, trimmed of its chat template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub props: Option<serde_json::Value>,
}

/// The server `--serve` started for the latest attempt of the run (each
/// attempt starts its own; `server.log` has a header line per start).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServedServer {
    /// The command, as `sh -c` ran it (secrets masked).
    pub command: String,
    /// Its process id (and process group).
    pub pid: Option<u32>,
    pub started_at: Option<String>,
    /// Seconds from its start until `GET /v1/models` answered.
    pub ready_after_s: Option<f64>,
    /// What the server says it is, as `server` reads it (`/version`,
    /// llama.cpp's `/props`, the simulator's `/sim/info`).
    pub kind: Option<String>,
    pub version: Option<String>,
    /// Its output, in the run directory.
    pub log: Option<String>,
}

/// `run.json`. The runner writes every field; a reader takes what a file
/// of another version has (every field may be missing), so the report of
/// an old run still shows its provenance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunInfo {
    /// [`RUN_INFO_SCHEMA_VERSION`]; `None` in a file written before the
    /// version was recorded.
    pub schema_version: Option<u32>,
    pub tool: Option<String>,
    /// cacherate's version.
    pub version: Option<String>,
    pub status: Option<RunStatus>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// 0 for a run never resumed, +1 at every resume.
    pub attempt: Option<u64>,
    pub command: Vec<String>,
    pub model: Option<String>,
    pub endpoints: Vec<String>,
    pub embedded_simulator: bool,
    pub server: Option<Fingerprint>,
    /// The server `--serve` started, when it did (absent otherwise, and
    /// in files written before the option).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve: Option<ServedServer>,
    /// Where the token counts came from, and the prompts' form.
    pub tokenizer: Option<String>,
    /// How the prefix cache was emptied before warm-ups, if it was.
    pub flush_cache: Option<String>,
    /// Where the server's prefix-cache counters were read.
    pub metrics_url: Option<String>,
    /// The same prompt sent twice came back with cached tokens.
    pub server_reports_cached_tokens: Option<bool>,
    pub seed: Option<u64>,
    pub git: Option<GitState>,
    pub host: Option<String>,
    /// The resolved options of the run, as the runner recorded them
    /// (passwords masked, the API key left out).
    pub settings: serde_json::Value,
}

impl RunInfo {
    /// Reads `run.json` text; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<RunInfo> {
        let info: RunInfo = serde_json::from_str(text).map_err(|e| {
            Error::Usage(format!(
                "{} is damaged or from an incompatible version ({e}); run with \
                 --force-restart to move this run aside and start over, or choose another \
                 --output-dir",
                path.display()
            ))
        })?;
        match info.schema_version {
            Some(newer) if newer > RUN_INFO_SCHEMA_VERSION => Err(Error::Usage(format!(
                "{} has schema version {newer}, written by a newer cacherate than this one \
                 (which reads {RUN_INFO_SCHEMA_VERSION}); upgrade cacherate to read it",
                path.display()
            ))),
            _ => Ok(info),
        }
    }

    /// The run directory's `run.json`, `None` when it has none.
    pub fn read(dir: &RunDir) -> Result<Option<RunInfo>> {
        let path = dir.file(RUN);
        match std::fs::read_to_string(&path) {
            Ok(text) => RunInfo::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", &path, e)),
        }
    }

    /// Replaces the run directory's `run.json` (by an atomic rename), with
    /// this version's schema version.
    pub fn write(&mut self, dir: &RunDir) -> Result<()> {
        self.schema_version = Some(RUN_INFO_SCHEMA_VERSION);
        dir.write_json(RUN, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_json_without_a_version_reads_and_a_newer_one_says_so() {
        let path = Path::new("out/run.json");
        let old = r#"{"tool": "cacherate", "status": "complete", "seed": 7,
            "server": {"kind": "vllm", "version": "0.11.0", "max_model_len": 65536,
            "model": "m"}, "git": null, "settings": {"max_ttft": 2.0}}"#;
        let info = RunInfo::parse(old, path).unwrap();
        assert_eq!(info.status, Some(RunStatus::Complete));
        assert_eq!((info.seed, info.schema_version), (Some(7), None));
        assert_eq!(info.server.unwrap().max_model_len, Some(65536));
        assert_eq!(info.settings["max_ttft"], 2.0);
        let partial = RunInfo::parse("{}", path).unwrap();
        assert_eq!(partial, RunInfo::default());
        let newer = RunInfo::parse(r#"{"schema_version": 99}"#, path).unwrap_err();
        assert!(newer.to_string().contains("newer cacherate"), "{newer}");
        let cut = RunInfo::parse(r#"{"tool": "cach"#, path).unwrap_err();
        assert_eq!(cut.exit_code(), crate::exit::USAGE);
        assert!(cut.to_string().contains("out/run.json is damaged"), "{cut}");
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        assert_eq!(RunInfo::read(&run).unwrap(), None);
        let mut info = RunInfo {
            status: Some(RunStatus::CompleteWithErrors),
            server: Some(Fingerprint {
                kind: "cacherate-sim".into(),
                ..Fingerprint::default()
            }),
            server_reports_cached_tokens: Some(true),
            settings: serde_json::json!({"seed": 1}),
            ..RunInfo::default()
        };
        info.write(&run).unwrap();
        let text = std::fs::read_to_string(run.file(RUN)).unwrap();
        assert!(
            text.contains(r#""status": "complete_with_errors""#),
            "{text}"
        );
        let back = RunInfo::read(&run).unwrap().unwrap();
        assert_eq!(back.schema_version, Some(RUN_INFO_SCHEMA_VERSION));
        assert_eq!(back, info);
    }
}
