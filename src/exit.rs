//! Process exit codes, one place for all of them (documented in the README
//! and in `cacherate --help`).

/// The gate passed, or a command finished normally.
pub const PASS: i32 = 0;
/// The gate failed: a regression, a point over a health limit (`error`),
/// or a gated verdict its samples cannot support (`insufficient`).
pub const REGRESSION: i32 = 1;
/// The command line, a profile, a baseline or a run directory's file is
/// wrong, or the output directory cannot be written (full, read-only).
pub const USAGE: i32 = 2;
/// The target server could not be reached or is unhealthy; or the server
/// `--serve` started exited before it was ready, did not answer in time,
/// or exited during the run.
pub const UNREACHABLE: i32 = 3;
/// The verdict was inconclusive and `--fail-on-inconclusive` was given.
pub const INCONCLUSIVE: i32 = 4;
/// Interrupted (Ctrl-C or SIGTERM); rerun the same command to resume.
pub const INTERRUPTED: i32 = 130;
/// A bug in cacherate.
pub const INTERNAL: i32 = 70;

/// The text `--help` shows under the command list.
pub const HELP: &str = "\
Exit codes:
  0   pass
  1   regression (the gate failed; so do error and insufficient verdicts)
  2   usage or configuration error
  3   target unreachable or unhealthy (run: a point errored; rerun to measure it;
      --serve: the server did not start, or exited during the run)
  4   inconclusive, with --fail-on-inconclusive
  70  internal error
  130 interrupted (rerun the same command to resume)";
