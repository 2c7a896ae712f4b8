//! Driving the `cacherate` binary from tests: a command whose environment
//! carries nothing of the caller's that would decide a test, its output as
//! text for a failure message, and the JSON files and directories a test
//! reads, edits and copies.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `cacherate ARGS…` in `cwd`, without the caller's `CACHERATE_*` and
/// `GITHUB_*` variables.
pub fn cacherate<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cacherate"));
    command.current_dir(cwd).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("CACHERATE_") || key.starts_with("GITHUB_") {
            command.env_remove(key);
        }
    }
    command
}

/// Exit code, stdout and stderr, for an assertion's message.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// Copies the directory `from` (a run directory) to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
