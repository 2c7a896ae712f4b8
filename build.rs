//! Names the commit `cacherate --version` was built from, as the
//! `CACHERATE_COMMIT` compile-time variable (src/cli/mod.rs): from git when
//! the package is built in its own checkout (`git rev-parse --short HEAD`),
//! else from the environment
//! variable `CACHERATE_COMMIT` (a container build without `.git` sets it),
//! else from the `.cargo_vcs_info.json` that `cargo package` writes (what
//! `cargo install cacherate` builds from), else `unknown`. No
//! dependencies: only `git`, when it is there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A commit id: hex digits; anything else (a stray variable) is not
/// trusted.
fn plausible(commit: &str) -> bool {
    (4..=40).contains(&commit.len()) && commit.chars().all(|c| c.is_ascii_hexdigit())
}

/// The commit from git, when `manifest_dir` is the top of its own work
/// tree (a package unpacked inside some other repository is not).
fn from_git(manifest_dir: &Path) -> Option<String> {
    let top = PathBuf::from(git(manifest_dir, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != manifest_dir.canonicalize().ok()? {
        return None;
    }
    // Rebuild when HEAD moves: its file, the ref it names (in the common
    // directory, for a worktree) and packed-refs. Only files that exist: a
    // missing one would rerun this script, and rebuild the crate, every time.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(manifest_dir, &["rev-parse", "--git-path", &name]) {
            let path = manifest_dir.join(path);
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    git(manifest_dir, &["rev-parse", "--short=9", "HEAD"])
}

/// The `"sha1"` of the `.cargo_vcs_info.json` `cargo package` wrote.
fn from_package(manifest_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest_dir.join(".cargo_vcs_info.json")).ok()?;
    let rest = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let rest = &rest[rest.find('"')? + 1..];
    let sha1 = &rest[..rest.find('"')?];
    Some(sha1.chars().take(9).collect())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CACHERATE_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = from_git(&manifest_dir)
        .or_else(|| std::env::var("CACHERATE_COMMIT").ok())
        .or_else(|| from_package(&manifest_dir))
        .map(|commit| commit.trim().to_string())
        .filter(|commit| plausible(commit))
        // As git abbreviates it above; a container build passes the full id.
        .map(|commit| commit.chars().take(9).collect())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CACHERATE_COMMIT={commit}");
}
