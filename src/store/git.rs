//! The git state of the repository a run or a baseline was made in.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The git state of a repository: in `run.json` (the repository the run
/// was started in) and in a baseline (the one it was refreshed in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitState {
    pub commit: String,
    pub branch: Option<String>,
    /// Uncommitted changes to tracked files; `None` when git could not
    /// tell (never reported as clean then).
    pub dirty: Option<bool>,
}

/// The git state of the repository holding `dir`, if it is in one.
/// `dir` need not exist yet (a first baseline's directory): the search
/// starts at the nearest ancestor that does.
pub fn git_state(dir: &Path) -> Option<GitState> {
    let existing = dir
        .ancestors()
        .find(|d| !d.as_os_str().is_empty() && d.exists())
        .unwrap_or(Path::new("."));
    let repo = git2::Repository::discover(existing).ok()?;
    let head = repo.head().ok()?;
    let commit = head.peel_to_commit().ok()?.id().to_string();
    let branch = head
        .is_branch()
        .then(|| head.shorthand().ok().map(str::to_string))
        .flatten();
    let mut options = git2::StatusOptions::new();
    options.include_untracked(false).include_ignored(false);
    let dirty = match repo.statuses(Some(&mut options)) {
        Ok(statuses) => Some(!statuses.is_empty()),
        Err(e) => {
            tracing::warn!("cannot read the git status of {commit}: {e}");
            None
        }
    };
    Some(GitState {
        commit,
        branch,
        dirty,
    })
}
