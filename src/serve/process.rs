//! The served command as a process: `sh -c CMD` in a process group of its
//! own (so a terminal's Ctrl-C reaches cacherate only, which stops the
//! server once the phase in flight is saved), its exit watched by a thread,
//! and its stop: SIGTERM to the whole group (whatever the shell started),
//! SIGKILL after [`STOP_GRACE`].

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::log::Log;

/// How long a stopped server may take to exit after SIGTERM before it is
/// killed (SIGKILL): vLLM and llama-server need a few seconds to free the
/// GPU or their threads.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How often a stop looks whether the group is gone.
const POLL: Duration = Duration::from_millis(50);

/// How a served process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Its status could not be read.
    Unknown,
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => return None,
    })
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signal = |f: &mut std::fmt::Formatter<'_>, n: i32| match signal_name(n) {
            Some(name) => write!(f, "signal {n} ({name})"),
            None => write!(f, "signal {n}"),
        };
        match *self {
            Exit::Code(code) if code > 128 && code - 128 < 65 => {
                // What sh reports of a command a signal ended.
                write!(f, "exit status {code} (128 + {}: killed by ", code - 128)?;
                signal(f, code - 128)?;
                f.write_str(")")
            }
            Exit::Code(code) => write!(f, "exit status {code}"),
            Exit::Signal(n) => {
                f.write_str("killed by ")?;
                signal(f, n)
            }
            Exit::Unknown => f.write_str("an unknown status"),
        }
    }
}

/// A running (or exited) served process.
pub(super) struct Process {
    pid: u32,
    exit: watch::Receiver<Option<Exit>>,
    /// Stopped by us: its exit is no surprise.
    stopping: bool,
    /// The thread that copies its output into the log.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `sh -c command`, its stdout and stderr into `log`.
    /// `header` gives the log's line for this start, from the pid.
    pub fn spawn(
        command: &str,
        log: &Log,
        header: impl FnOnce(u32) -> String,
    ) -> std::io::Result<Process> {
        let (reader, writer) = std::io::pipe()?;
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0);
        let mut child = sh.spawn()?;
        // The write ends live in the child only: the log reads to its end
        // when the last process of the group closes them.
        drop(sh);
        let pid = child.id();
        log.header(&header(pid));
        let reader = log.capture(reader)?;
        let (tell, exit) = watch::channel(None);
        std::thread::Builder::new()
            .name("cacherate-serve-wait".into())
            .spawn(move || {
                let status = match child.wait() {
                    Ok(status) => match (status.code(), status.signal()) {
                        (Some(code), _) => Exit::Code(code),
                        (None, Some(signal)) => Exit::Signal(signal),
                        (None, None) => Exit::Unknown,
                    },
                    Err(_) => Exit::Unknown,
                };
                let _ = tell.send(Some(status));
            })?;
        Ok(Process {
            pid,
            exit,
            stopping: false,
            reader: Some(reader),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How it ended, once it has.
    pub fn exit(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Whether we stopped it (then its exit is no failure).
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Waits (a moment at most) until the log holds everything the group
    /// wrote before it exited, so an error quotes its last words.
    pub async fn flush_log(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(reader) = &self.reader {
            if reader.is_finished() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.reader.as_ref().is_some_and(|r| r.is_finished()) {
            let _ = self.reader.take().map(std::thread::JoinHandle::join);
        }
    }

    /// Resolves when it has exited.
    pub fn exited(&self) -> impl Future<Output = Exit> + Send + 'static {
        let mut exit = self.exit.clone();
        async move {
            match exit.wait_for(Option::is_some).await {
                Ok(status) => status.unwrap_or(Exit::Unknown),
                // The waiting thread is gone without a word: nothing to
                // wait for any more.
                Err(_) => Exit::Unknown,
            }
        }
    }

    /// SIGTERM to the group, SIGKILL to what is left of it after `grace`;
    /// returns how the shell (or the server, with `exec`) ended.
    pub async fn stop(&mut self, grace: Duration) -> Exit {
        self.stopping = true;
        signal_group(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !self.gone() {
            tokio::time::sleep(POLL).await;
        }
        if !self.gone() {
            signal_group(self.pid, libc::SIGKILL);
            let _ = tokio::time::timeout(grace, self.exited()).await;
        }
        self.exit().unwrap_or(Exit::Unknown)
    }

    /// [`Process::stop`] without a runtime to wait on (when dropped).
    fn stop_blocking(&mut self, grace: Duration) {
        self.stopping = true;
        signal_group(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !self.gone() {
            std::thread::sleep(POLL);
        }
        if !self.gone() {
            signal_group(self.pid, libc::SIGKILL);
        }
    }

    /// The shell has exited and nothing of its group is left running.
    fn gone(&self) -> bool {
        self.exit().is_some() && group_members(self.pid).is_empty()
    }
}

impl Drop for Process {
    /// A run dropped where it stands (a panic, a second Ctrl-C whose grace
    /// ran out) still stops its server.
    fn drop(&mut self) {
        if !self.gone() {
            self.stop_blocking(STOP_GRACE);
        }
    }
}

/// Sends `signal` to the process group `group` (a served process is the
/// leader of its own); never to group 0 or 1.
fn signal_group(group: u32, signal: libc::c_int) {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    if group <= 1 {
        return;
    }
    // SAFETY: kill(2) takes two integers and touches no memory of ours; a
    // negative pid names the process group.
    unsafe {
        libc::kill(-group, signal);
    }
}

/// The live processes (not zombies) of process group `group`: read from
/// /proc where there is one, else whether kill(2) still finds the group.
pub fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        let Ok(id) = libc::pid_t::try_from(group) else {
            return Vec::new();
        };
        // SAFETY: as in `signal_group`; signal 0 only checks.
        let alive = id > 1 && unsafe { libc::kill(-id, 0) } == 0;
        return if alive { vec![group] } else { Vec::new() };
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid pgrp …: comm may hold spaces and ')'.
            let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
            let (state, pgrp) = (*fields.first()?, fields.get(2)?.parse::<u32>().ok()?);
            (pgrp == group && state != "Z" && state != "X").then_some(pid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_say_what_ended_them() {
        assert_eq!(Exit::Code(7).to_string(), "exit status 7");
        assert_eq!(
            Exit::Code(137).to_string(),
            "exit status 137 (128 + 9: killed by signal 9 (SIGKILL))"
        );
        assert_eq!(
            Exit::Signal(15).to_string(),
            "killed by signal 15 (SIGTERM)"
        );
    }

    #[tokio::test]
    async fn a_stop_ends_the_whole_group() {
        let log = Log::new();
        // The shell does not exec its last command here: two processes.
        let mut process =
            Process::spawn("sleep 30; echo never", &log, |pid| format!("start {pid}")).unwrap();
        let group = process.pid();
        while group_members(group).len() < 2 {
            tokio::time::sleep(POLL).await;
        }
        let exit = process.stop(STOP_GRACE).await;
        assert_eq!(exit, Exit::Signal(libc::SIGTERM), "{exit}");
        assert!(group_members(group).is_empty());
    }
}
