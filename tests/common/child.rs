//! The `cacherate` binary as a child process whose stderr is read as it
//! comes, so that a test acts on what the process said rather than on how
//! long it waited: a second Ctrl-C is sent only once the first was seen
//! (two signals sent close together merge into one when the process is
//! slow to take the first), and a wait ends when the line it waits for is
//! written, however busy the machine.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use cacherate::store::Progress;

/// What the first SIGINT or SIGTERM makes the binary say (src/lib.rs).
pub const FINISHING_THE_PHASE: &str = "interrupted: finishing the phase in flight";
/// What the second one makes it say.
pub const STOPPING_NOW: &str = "stopping now";

#[derive(Default)]
struct Stderr {
    lines: Vec<String>,
    ended: bool,
}

/// A running `cacherate`, stopped (SIGKILL) if dropped while it runs.
pub struct Running {
    child: std::process::Child,
    stderr: Arc<(Mutex<Stderr>, Condvar)>,
    reader: Option<JoinHandle<()>>,
}

/// `cacherate ARGS…` as [`super::binary::cacherate`] starts it, in the
/// package's directory, its stdout discarded.
pub fn cacherate(args: &[String]) -> Command {
    let mut command = super::binary::cacherate(Path::new(env!("CARGO_MANIFEST_DIR")), args);
    command.stdout(Stdio::null());
    command
}

impl Running {
    /// Starts `command` with its stderr piped to this reader.
    pub fn spawn(mut command: Command) -> Running {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let pipe = child.stderr.take().unwrap();
        let stderr: Arc<(Mutex<Stderr>, Condvar)> = Arc::default();
        let shared = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let (lines, changed) = &*shared;
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().lines.push(line);
                changed.notify_all();
            }
            lines.lock().unwrap().ended = true;
            changed.notify_all();
        });
        Running {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Sends signal `name` (`INT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Blocks until a line of stderr contains `needle`; fails if stderr
    /// ends first (the process exited without saying it).
    pub fn wait_for_stderr(&self, needle: &str) {
        let (lines, changed) = &*self.stderr;
        let mut stderr = lines.lock().unwrap();
        loop {
            if stderr.lines.iter().any(|line| line.contains(needle)) {
                return;
            }
            assert!(
                !stderr.ended,
                "the process ended without writing {needle:?}:\n{}",
                stderr.lines.join("\n")
            );
            stderr = changed.wait(stderr).unwrap();
        }
    }

    /// The first Ctrl-C (`signal` `INT` or `TERM`), returning once the
    /// process has taken it: it finishes the phase in flight.
    pub fn interrupt(&self, signal: &str) {
        self.signal(signal);
        self.wait_for_stderr(FINISHING_THE_PHASE);
    }

    /// The second Ctrl-C, sent only after the first was taken, returning
    /// once the process has taken it too: it stops now.
    pub fn interrupt_again(&self, signal: &str) {
        self.wait_for_stderr(FINISHING_THE_PHASE);
        self.signal(signal);
        self.wait_for_stderr(STOPPING_NOW);
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Polls `dir`'s progress.json until `ready` holds; fails if the
    /// process exits first.
    pub fn wait_for_progress(&mut self, dir: &Path, what: &str, ready: impl Fn(&Progress) -> bool) {
        while !super::progress(dir).is_some_and(|p| ready(&p)) {
            assert!(
                self.try_wait().is_none(),
                "the process ended before {what}:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// What it wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.0.lock().unwrap().lines.join("\n")
    }

    /// Waits for the process to exit: its exit code and its whole stderr.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status.code(), self.stderr_text())
    }

    /// Kills it without warning (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
