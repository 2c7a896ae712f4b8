//! The job's step summary (`$GITHUB_STEP_SUMMARY`): a markdown file per
//! step that GitHub shows on the run's page. A section written again
//! (`gate` judges twice when it adds samples) replaces its earlier text in
//! the file instead of repeating it.

use std::io::Write;
use std::path::Path;

/// GitHub shows at most 1 MiB of a step's summary.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

fn delimiters(section: &str) -> (String, String) {
    (
        format!("<!-- cacherate-summary:{section}:begin -->\n"),
        format!("<!-- cacherate-summary:{section}:end -->\n"),
    )
}

/// Writes `text` as the section `section` of the summary file at `path`:
/// replaces the section when the file has it, else appends it.
pub fn write_section(path: &Path, section: &str, text: &str) -> std::io::Result<()> {
    let (begin, end) = delimiters(section);
    let mut block = String::with_capacity(text.len() + begin.len() + end.len() + 1);
    block.push_str(&begin);
    block.push_str(text);
    if !text.ends_with('\n') {
        block.push('\n');
    }
    block.push_str(&end);
    let existing = match std::fs::read_to_string(path) {
        Ok(existing) => existing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if let Some(start) = existing.find(&begin)
        && let Some(stop) = existing[start..].find(&end)
    {
        let mut replaced = String::with_capacity(existing.len() + block.len());
        replaced.push_str(&existing[..start]);
        replaced.push_str(&block);
        replaced.push_str(&existing[start + stop + end.len()..]);
        return std::fs::write(path, replaced);
    }
    if existing.len() + block.len() > STEP_SUMMARY_LIMIT {
        return Err(std::io::Error::other(format!(
            "the step summary would pass GitHub's limit of {STEP_SUMMARY_LIMIT} bytes"
        )));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if !existing.is_empty() && !existing.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    file.write_all(block.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_written_twice_is_there_once_with_the_last_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "# from an earlier step of the job\n").unwrap();
        write_section(&path, "verdict", "first").unwrap();
        write_section(&path, "comment", "posted").unwrap();
        write_section(&path, "verdict", "second\nwith two lines").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# from an earlier step of the job\n"));
        assert!(!text.contains("first"), "{text}");
        assert_eq!(
            text.matches("second\nwith two lines\n").count(),
            1,
            "{text}"
        );
        assert_eq!(text.matches("posted").count(), 1);
    }
}
