//! What the server writes (its stdout and stderr, through one pipe, in the
//! order it wrote them): kept in memory until the run directory is known,
//! then appended to its `server.log`, a header line before each start; the
//! last lines kept for error messages.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Lines of the server's output an error message quotes.
pub const TAIL_LINES: usize = 20;

/// Bytes kept in memory before the log has a file; a server that says
/// more before the run directory is ready loses the excess (counted).
const PENDING_LIMIT: usize = 16 << 20;

/// Characters of one line an error message quotes.
const LINE_LIMIT: usize = 400;

#[derive(Default)]
struct Sink {
    file: Option<(PathBuf, File)>,
    /// What was written before there was a file.
    pending: Vec<u8>,
    /// Bytes dropped from `pending` over its limit.
    dropped: usize,
    /// The server's last lines (headers left out).
    tail: VecDeque<String>,
    /// A write to the file failed once (said once).
    failed: bool,
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) {
        match &mut self.file {
            Some((path, file)) => {
                if let Err(e) = file.write_all(bytes)
                    && !self.failed
                {
                    self.failed = true;
                    tracing::warn!("cannot write the server's log {}: {e}", path.display());
                }
            }
            None if self.pending.len() + bytes.len() <= PENDING_LIMIT => {
                self.pending.extend_from_slice(bytes);
            }
            None => self.dropped += bytes.len(),
        }
    }
}

/// The log of one served server, shared by the threads that read its
/// output and by whoever reports on it.
#[derive(Clone, Default)]
pub struct Log {
    sink: Arc<Mutex<Sink>>,
}

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    fn lock(&self) -> MutexGuard<'_, Sink> {
        self.sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A line of cacherate's own (the start header), not in the tail.
    pub fn header(&self, line: &str) {
        self.lock().write(format!("{line}\n").as_bytes());
    }

    /// Reads `output` to its end on a thread of its own, line by line.
    pub(super) fn capture(
        &self,
        output: impl Read + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let log = self.clone();
        std::thread::Builder::new()
            .name("cacherate-serve-log".into())
            .spawn(move || {
                let mut reader = BufReader::new(output);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => log.line(&line),
                    }
                }
            })
    }

    fn line(&self, bytes: &[u8]) {
        let mut sink = self.lock();
        sink.write(bytes);
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end_matches(['\n', '\r']);
        let shown: String = if text.chars().count() > LINE_LIMIT {
            let cut: String = text.chars().take(LINE_LIMIT).collect();
            format!("{cut}…")
        } else {
            text.to_string()
        };
        if sink.tail.len() == TAIL_LINES {
            sink.tail.pop_front();
        }
        sink.tail.push_back(shown);
    }

    /// From now on the log goes to `path` (appended to, created if need
    /// be), what was said before first. Attaching to the file it already
    /// writes is nothing.
    pub fn attach(&self, path: &Path) -> std::io::Result<()> {
        let mut sink = self.lock();
        if sink
            .file
            .as_ref()
            .is_some_and(|(current, _)| current == path)
        {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        if sink.dropped > 0 {
            let note = format!(
                "[cacherate: {} bytes the server wrote before the run directory was ready \
                 were not kept]\n",
                sink.dropped
            );
            file.write_all(note.as_bytes())?;
            sink.dropped = 0;
        }
        let pending = std::mem::take(&mut sink.pending);
        file.write_all(&pending)?;
        sink.file = Some((path.to_path_buf(), file));
        Ok(())
    }

    /// The file the log goes to, once attached.
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().file.as_ref().map(|(path, _)| path.clone())
    }

    /// The server's last lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.lock().tail.iter().cloned().collect()
    }

    /// The last lines, indented, for an error message; says so when the
    /// server wrote nothing.
    pub fn quoted_tail(&self) -> String {
        let tail = self.tail();
        let where_ = match self.path() {
            Some(path) => format!(" ({})", path.display()),
            None => String::new(),
        };
        if tail.is_empty() {
            return format!("it wrote nothing to its log{where_}");
        }
        format!(
            "the last {} lines of its log{where_}:\n{}",
            tail.len(),
            tail.iter()
                .map(|line| format!("  | {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_for_the_file_and_the_tail_keeps_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new();
        log.header("==== start ====");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        log.capture(std::io::Cursor::new(text.into_bytes()))
            .unwrap()
            .join()
            .unwrap();
        let path = dir.path().join("run/server.log");
        log.attach(&path).unwrap();
        log.attach(&path).unwrap();
        log.line(b"after\n");
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.starts_with("==== start ====\nline 1\n"),
            "{written}"
        );
        assert!(written.ends_with("line 30\nafter\n"), "{written}");
        let tail = log.tail();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail[0], "line 12");
        assert_eq!(tail[TAIL_LINES - 1], "after");
        assert!(log.quoted_tail().contains("  | line 30"));
    }
}
