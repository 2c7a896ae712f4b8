//! `baseline refresh --commit`: the baseline file committed on the current
//! branch of the repository that holds it (git2).

use std::path::Path;

use crate::error::{Error, Result};

/// Commits `file` on the current branch of the repository that holds it;
/// returns the commit's id.
pub fn commit(file: &Path, message: &str) -> Result<String> {
    let fail = |what: &str, e: git2::Error| {
        Error::Usage(format!(
            "--commit: cannot {what} ({}): commit {} by hand",
            e.message(),
            file.display()
        ))
    };
    let repo = git2::Repository::discover(file.parent().unwrap_or(Path::new(".")))
        .map_err(|e| fail("find the git repository", e))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::Usage("--commit: the repository has no work tree".into()))?
        .canonicalize()
        .map_err(|e| Error::Internal(e.into()))?;
    let absolute = file.canonicalize().map_err(|e| Error::Internal(e.into()))?;
    let relative = absolute.strip_prefix(&workdir).map_err(|_| {
        Error::Usage(format!(
            "--commit: {} is outside the repository at {}",
            file.display(),
            workdir.display()
        ))
    })?;
    let mut index = repo.index().map_err(|e| fail("open the index", e))?;
    index
        .add_path(relative)
        .map_err(|e| fail("stage the baseline", e))?;
    index.write().map_err(|e| fail("write the index", e))?;
    let tree_id = index.write_tree().map_err(|e| fail("write the tree", e))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| fail("read the tree", e))?;
    let signature = repo
        .signature()
        .or_else(|_| git2::Signature::now("cacherate", "cacherate@localhost"))
        .map_err(|e| fail("make a signature", e))?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let id = repo
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .map_err(|e| fail("commit", e))?;
    Ok(id.to_string())
}
