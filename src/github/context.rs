//! Where a comment goes when the command line does not say: the
//! repository from `GITHUB_REPOSITORY`, the pull request from the event
//! that started the workflow (`GITHUB_EVENT_PATH`).

use std::path::Path;

/// `OWNER/NAME` split in two, when both parts are names GitHub allows.
pub fn split_repository(repository: &str) -> Option<(String, String)> {
    let (owner, name) = repository.trim().split_once('/')?;
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 100
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && part != "."
            && part != ".."
    };
    (valid(owner) && valid(name)).then(|| (owner.to_string(), name.to_string()))
}

/// The pull request number of the event payload at `path`: a
/// `pull_request` or `pull_request_target` event, an `issue_comment` on a
/// pull request, or a `workflow_run` triggered by one (the usual way to
/// comment on pull requests from forks). `Err` says why there is none.
pub fn pull_request_from_event(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the event payload {}: {e}", path.display()))?;
    let event: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("the event payload {} is not JSON: {e}", path.display()))?;
    let candidates = [
        event["pull_request"]["number"].as_u64(),
        event["issue"]["pull_request"]
            .is_object()
            .then(|| event["issue"]["number"].as_u64())
            .flatten(),
        event["workflow_run"]["pull_requests"][0]["number"].as_u64(),
        event["number"].as_u64(),
    ];
    candidates.into_iter().flatten().next().ok_or_else(|| {
        "the event that started this workflow is not about a pull request; give --pr".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_two_plain_names() {
        assert_eq!(
            split_repository("acme/vllm-config"),
            Some(("acme".into(), "vllm-config".into()))
        );
        for bad in ["acme", "acme/", "/x", "a/b/c", "a/..", "a b/c", "a/b?x=1"] {
            assert_eq!(split_repository(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_pull_request_comes_from_any_event_that_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (r#"{"number": 7, "pull_request": {"number": 7}}"#, Ok(7)),
            (
                r#"{"issue": {"number": 9, "pull_request": {"url": "x"}}}"#,
                Ok(9),
            ),
            (
                r#"{"workflow_run": {"pull_requests": [{"number": 11}]}}"#,
                Ok(11),
            ),
        ];
        for (i, (payload, expected)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("event{i}.json"));
            std::fs::write(&path, payload).unwrap();
            assert_eq!(pull_request_from_event(&path), expected, "{payload}");
        }
        let push = dir.path().join("push.json");
        std::fs::write(
            &push,
            r#"{"ref": "refs/heads/main", "issue": {"number": 3}}"#,
        )
        .unwrap();
        assert!(pull_request_from_event(&push).unwrap_err().contains("--pr"));
    }
}
