//! The `cacherate` binary under process faults, with its embedded
//! simulator: SIGINT and SIGTERM (finish the phase, then stop; a second one
//! stops now), SIGKILL at seeded moments followed by the same command until
//! the sweep completes, and output it cannot write (a full disk, a path that
//! is not a directory); and Ctrl-C in `baseline refresh`, `gate` and
//! `calibrate`, each resumed by the same command.
//!
//! A directory that turns read-only mid-run needs `chattr +i` (root, and a
//! filesystem with the immutable attribute); where it fails that test is
//! reported as ignored, and under CI failed, never as passed. That is known
//! only at run time, so this file has its own harness (libtest-mimic,
//! `harness = false`), like tests/llama.rs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cacherate::record::RequestRecord;
use cacherate::store::{PointResult, Progress, UNFINISHED_SUFFIX};
use common::child::{Running, cacherate as binary};
use common::harness::{body, trial_needing};
use common::{phases, progress, records, results, uncommitted_requests};
use libtest_mimic::{Arguments, Trial};
use rand::{Rng, SeedableRng};

/// The tests that need nothing this machine may lack, by name.
const TESTS: [(&str, fn()); 6] = [
    (
        "a_first_sigint_finishes_the_phase_in_flight_saves_it_and_the_rerun_completes",
        a_first_sigint_finishes_the_phase_in_flight_saves_it_and_the_rerun_completes,
    ),
    (
        "sigterm_then_sigint_stops_now_and_keeps_every_completed_request",
        sigterm_then_sigint_stops_now_and_keeps_every_completed_request,
    ),
    (
        "sigkill_at_seeded_moments_then_the_same_command_completes_the_sweep",
        sigkill_at_seeded_moments_then_the_same_command_completes_the_sweep,
    ),
    (
        "a_full_disk_ends_the_run_with_a_clear_error_and_the_rerun_keeps_what_was_saved",
        a_full_disk_ends_the_run_with_a_clear_error_and_the_rerun_keeps_what_was_saved,
    ),
    (
        "an_output_dir_under_a_regular_file_is_refused_before_anything_is_sent",
        an_output_dir_under_a_regular_file_is_refused_before_anything_is_sent,
    ),
    (
        "ctrl_c_in_a_baseline_refresh_a_gate_and_a_calibration_then_the_same_command_resumes_each",
        ctrl_c_in_a_baseline_refresh_a_gate_and_a_calibration_then_the_same_command_resumes_each,
    ),
];

const READ_ONLY_TEST: &str =
    "a_directory_that_turns_read_only_mid_run_gives_a_clear_error_and_keeps_the_phases";

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = TESTS
        .iter()
        .map(|&(name, test)| Trial::test(name, body(test)))
        .collect();
    let missing = (!args.list).then(immutable_unsupported).flatten();
    trials.push(trial_needing(
        &args,
        READ_ONLY_TEST,
        missing,
        body(a_directory_that_turns_read_only_mid_run_gives_a_clear_error_and_keeps_the_phases),
    ));
    libtest_mimic::run(&args, trials).exit_code()
}

/// Rates of the sweep: with the concurrency capped at 8 and a loose TTFT
/// limit every point passes every level, so the phases a point runs are
/// the same in every run (RAMP_c4, RAMP_c8, RETRY_1 for the first,
/// RAMP_c8, RETRY_1 for the next).
const RATES: [u32; 2] = [0, 100];

/// A small sweep on the embedded simulator, `phase` seconds a phase.
fn sweep_args(dir: &Path, phase: f64) -> Vec<String> {
    sweep_args_at(dir, phase, &RATES)
}

fn sweep_args_at(dir: &Path, phase: f64, rates: &[u32]) -> Vec<String> {
    // The ramp's budget: room for both levels.
    let (phase, budget) = (phase.to_string(), (4.0 * phase).to_string());
    let mut args: Vec<String> = [
        "run",
        "--output-dir",
        dir.to_str().unwrap(),
        "--context-sizes",
        "512",
        "--working-set-size",
        "2048",
        "--output-tokens",
        "8",
        "--max-ttft",
        "0.5",
        "--ramp-duration",
        &phase,
        "--test-duration",
        &budget,
        "--num-retries",
        "1",
        "--start-concurrency",
        "4",
        "--concurrency-increment",
        "4",
        "--max-concurrency",
        "8",
        "--init-concurrency",
        "4",
        "--reinit-strategy",
        "per_cache_rate",
        "--request-timeout",
        "10",
        "--seed",
        "7",
        "--sim-time-scale",
        "0.05",
        "--skip-graphs",
        "--quiet",
        "--cache-hit-rates",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(rates.iter().map(u32::to_string));
    args
}

fn phases_done(p: &Progress) -> usize {
    p.current.as_ref().map_or(0, |c| c.phases.len())
}

/// What a run directory holds, reduced to what does not depend on timing:
/// per point, its phases in order and its sample phases; and every
/// request row.
struct Shape {
    /// (rate) → the phase ids written to phase_metadata, in order.
    phases: BTreeMap<u32, Vec<String>>,
    points: Vec<PointResult>,
    rows: Vec<RequestRecord>,
}

fn shape(dir: &Path) -> Shape {
    let mut by_rate: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let rows = records(dir, 512);
    // phase_metadata rows carry no rate in the test helper's columns: the
    // rate of each phase is that of its requests.
    let text = std::fs::read_to_string(dir.join("phase_metadata_512.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    for row in reader.records() {
        let row = row.unwrap();
        by_rate
            .entry(row[1].parse().unwrap())
            .or_default()
            .push(row[3].to_string());
    }
    assert_eq!(
        by_rate.values().map(Vec::len).sum::<usize>(),
        phases(dir, 512).len()
    );
    Shape {
        phases: by_rate,
        points: results(dir),
        rows,
    }
}

/// The structure every finished run directory must have, killed or not:
/// each point once with its own samples, request ids unique, and each
/// point's request count the rows written for it.
fn assert_consistent(shape: &Shape, rates: &[u32]) {
    assert_consistent_with(shape, rates, 1);
}

/// As [`assert_consistent`], for a sweep of `samples` samples a point.
fn assert_consistent_with(shape: &Shape, rates: &[u32], per_point: usize) {
    let keys: Vec<(u64, u32)> = shape
        .points
        .iter()
        .map(|p| (p.context_size, p.cache_hit_rate))
        .collect();
    let expected: Vec<(u64, u32)> = rates.iter().map(|&r| (512, r)).collect();
    assert_eq!(keys, expected, "each point exactly once");
    let mut ids = BTreeSet::new();
    for row in &shape.rows {
        assert!(
            ids.insert(row.request_id),
            "request {} twice",
            row.request_id
        );
    }
    for point in &shape.points {
        let samples: BTreeSet<&str> = point.samples.iter().map(|s| s.phase_id.as_str()).collect();
        assert_eq!(samples.len(), point.samples.len(), "a sample counted twice");
        assert_eq!(point.samples.len(), per_point);
        let phase_ids = &shape.phases[&point.cache_hit_rate];
        let distinct: BTreeSet<&String> = phase_ids.iter().collect();
        assert_eq!(distinct.len(), phase_ids.len(), "a phase written twice");
        assert_eq!(point.phases as usize, phase_ids.len());
        let measured = shape
            .rows
            .iter()
            .filter(|r| r.cache_hit_rate == point.cache_hit_rate)
            .filter(|r| phase_ids.contains(&r.phase_id))
            .count() as u64;
        assert_eq!(
            measured, point.total_requests,
            "{}%: the point counts exactly the rows of its phases",
            point.cache_hit_rate
        );
    }
}

fn a_first_sigint_finishes_the_phase_in_flight_saves_it_and_the_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let args = sweep_args(dir.path(), 1.5);
    let mut child = Running::spawn(binary(&args));
    wait_for_the_second_phase(&mut child, dir.path());
    child.interrupt("INT");
    let (code, stderr) = child.finish();
    assert_eq!(code, Some(cacherate::exit::INTERRUPTED), "{stderr}");
    assert!(
        stderr.contains("finishing the phase in flight")
            && stderr.contains("Press Ctrl-C again to stop now")
            && stderr.contains("run the same command again"),
        "{stderr}"
    );
    // The phase in flight ran to its end and was saved; nothing after it
    // started.
    let saved = progress(dir.path()).unwrap();
    assert_eq!(phases_done(&saved), 2, "{stderr}\n{saved:?}");
    let in_flight = &saved.current.as_ref().unwrap().phases[1];
    assert_eq!(in_flight.phase_id, "RAMP_c8");
    assert!(in_flight.window_end_unix_s - in_flight.start_unix_s >= 1.5);
    let rows = records(dir.path(), 512);
    let of_phase = rows.iter().filter(|r| r.phase_id == "RAMP_c8").count() as u64;
    assert!(of_phase > 0);
    assert_eq!(of_phase, in_flight.figures.launched);
    assert!(!rows.iter().any(|r| r.phase_id.ends_with(UNFINISHED_SUFFIX)));

    let status = binary(&args).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let shape = shape(dir.path());
    assert_consistent(&shape, &RATES);
    assert_eq!(shape.phases[&0], ["RAMP_c4", "RAMP_c8", "RETRY_1"]);
    assert_eq!(progress(dir.path()).unwrap().attempt, 1);
}

fn sigterm_then_sigint_stops_now_and_keeps_every_completed_request() {
    let dir = tempfile::tempdir().unwrap();
    // Phases of 3 s at the one level: the stop must not wait for the end
    // of the first.
    let mut args = sweep_args_at(dir.path(), 3.0, &[100]);
    let at = args
        .iter()
        .position(|a| a == "--start-concurrency")
        .unwrap();
    args[at + 1] = "8".into();
    let mut child = Running::spawn(binary(&args));
    child.wait_for_progress(dir.path(), "the warm-up", |p| {
        p.files.contains_key("detailed_results_512.csv")
    });
    let warmed = progress(dir.path()).unwrap();
    // Once a request of the first phase has completed; the second signal
    // only once the first was taken (sent close together, two signals can
    // arrive as one).
    wait_for_a_request_in_flight_phase(&mut child, dir.path());
    child.interrupt("TERM");
    child.interrupt_again("INT");
    let (code, stderr) = child.finish();
    assert_eq!(code, Some(cacherate::exit::INTERRUPTED), "{stderr}");
    assert!(stderr.contains("stopping now"), "{stderr}");
    let saved = progress(dir.path()).unwrap();
    // No phase was finished, but the completed requests of the one cut
    // short are saved, committed and marked as such.
    assert_eq!(phases_done(&saved), 0);
    assert!(saved.files["detailed_results_512.csv"] > warmed.files["detailed_results_512.csv"]);
    let stopped_id = format!("RAMP_c8{}", UNFINISHED_SUFFIX);
    let stopped: Vec<RequestRecord> = records(dir.path(), 512)
        .into_iter()
        .filter(|r| r.phase_id == stopped_id)
        .collect();
    assert!(!stopped.is_empty());
    assert!(stopped.iter().all(|r| r.ok() && r.ttlt_s.is_some()));
    assert!(!dir.path().join("phase_metadata_512.csv").exists());

    // The rerun measures the phase again and keeps the stopped rows.
    let status = binary(&args).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let shape = shape(dir.path());
    assert_consistent(&shape, &[100]);
    assert_eq!(shape.phases[&100], ["RAMP_c8", "RETRY_1"]);
    let kept: Vec<&RequestRecord> = shape
        .rows
        .iter()
        .filter(|r| r.phase_id == stopped_id)
        .collect();
    assert_eq!(kept.len(), stopped.len());
    assert!(kept.iter().zip(&stopped).all(|(a, b)| *a == b));
}

fn sigkill_at_seeded_moments_then_the_same_command_completes_the_sweep() {
    let reference = tempfile::tempdir().unwrap();
    let status = binary(&sweep_args(reference.path(), 0.5))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let uninterrupted = shape(reference.path());
    assert_consistent(&uninterrupted, &RATES);

    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_128);
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let args = sweep_args(dir.path(), 0.5);
        // Every row committed by any killed attempt, by request id, and the
        // committed bytes of the request file.
        let mut committed_rows: BTreeMap<u64, RequestRecord> = BTreeMap::new();
        let mut committed_bytes = Vec::new();
        // Requests completed in a killed phase, as a resume must keep them.
        let mut in_flight_rows: BTreeMap<u64, RequestRecord> = BTreeMap::new();
        let mut kills = 0;
        let mut resumable = 0;
        for attempt in 0.. {
            assert!(attempt < 20, "round {round}: the sweep never completed");
            let mut child = binary(&args).stderr(Stdio::null()).spawn().unwrap();
            // Three kills a round, each after a seeded delay within the
            // sweep's length (about 4 s unscaled on an idle machine).
            if kills < 3 {
                let delay = rng.random_range(50..3000);
                std::thread::sleep(Duration::from_millis(delay));
                if child.try_wait().unwrap().is_none() {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills += 1;
                    if let Some(p) = progress(dir.path()) {
                        resumable += 1;
                        let length = p.files.get("detailed_results_512.csv").copied();
                        let bytes = std::fs::read(dir.path().join("detailed_results_512.csv"))
                            .unwrap_or_default();
                        if let Some(length) = length {
                            assert!(bytes.len() as u64 >= length);
                            committed_bytes = bytes[..length as usize].to_vec();
                            let mut reader = csv::Reader::from_reader(&committed_bytes[..]);
                            for row in reader.deserialize::<RequestRecord>() {
                                let row = row.unwrap();
                                committed_rows.insert(row.request_id, row);
                            }
                        }
                        // The requests the killed phase had completed: each
                        // whole row of its journal not committed.
                        let journal = std::fs::read(dir.path().join("unfinished_phase_512.csv"))
                            .unwrap_or_default();
                        let whole = journal
                            .iter()
                            .rposition(|&b| b == b'\n')
                            .map_or(0, |i| i + 1);
                        let mut reader = csv::Reader::from_reader(&journal[..whole]);
                        for row in reader.deserialize::<RequestRecord>() {
                            let Ok(mut row) = row else { break };
                            if !committed_rows.contains_key(&row.request_id) {
                                row.phase_id.push_str(UNFINISHED_SUFFIX);
                                in_flight_rows.insert(row.request_id, row);
                            }
                        }
                    }
                    continue;
                }
            }
            let status = child.wait().unwrap();
            assert!(status.success(), "round {round}: {status}");
            break;
        }
        let shape = shape(dir.path());
        eprintln!(
            "round {round}: {kills} kills ({resumable} with a run to resume), {} committed \
             rows and {} requests of killed phases kept",
            committed_rows.len(),
            in_flight_rows.len()
        );
        assert_consistent(&shape, &RATES);
        assert_eq!(shape.phases, uninterrupted.phases, "round {round}");
        let final_bytes = std::fs::read(dir.path().join("detailed_results_512.csv")).unwrap();
        assert!(final_bytes.starts_with(&committed_bytes));
        let rows: BTreeMap<u64, &RequestRecord> =
            shape.rows.iter().map(|r| (r.request_id, r)).collect();
        for (id, row) in committed_rows.iter().chain(&in_flight_rows) {
            assert_eq!(rows.get(id), Some(&row), "round {round}: request {id} lost");
        }
        assert!(!dir.path().join("unfinished_phase_512.csv").exists());
        assert_eq!(
            progress(dir.path()).unwrap().attempt as usize,
            resumable,
            "round {round}: one attempt per kill that left a run to resume"
        );
    }
}

/// The run directory after a write failed: every JSON file whole, no
/// temporary file left, and the request file at its committed length.
fn assert_nothing_half_written(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "{name} left behind");
        if name.ends_with(".json") {
            let text = std::fs::read_to_string(&path).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{name} is not whole: {e}"));
        }
    }
    let p = progress(dir).expect("progress.json reads");
    for (name, length) in &p.files {
        let on_disk = std::fs::metadata(dir.join(name)).unwrap().len();
        assert_eq!(on_disk, *length, "{name} beyond its committed length");
    }
}

fn a_full_disk_ends_the_run_with_a_clear_error_and_the_rerun_keeps_what_was_saved() {
    let dir = tempfile::tempdir().unwrap();
    let args = sweep_args(dir.path(), 0.5);
    // Files may grow to 150 KiB (dash counts 512-byte blocks); past that a
    // write fails with EFBIG, as on a full disk, once SIGXFSZ is ignored
    // (an ignored signal stays ignored across exec).
    let output = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 300 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_cacherate"))
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::USAGE),
        "{stderr}"
    );
    assert!(
        stderr.contains(dir.path().to_str().unwrap())
            && stderr.contains("File too large")
            && stderr.contains("free space there")
            && stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    assert_nothing_half_written(dir.path());
    let saved = progress(dir.path()).unwrap();
    let committed = saved.files["detailed_results_512.csv"] as usize;
    assert!(committed > 0, "the limit left room for some phases");
    let kept = std::fs::read(dir.path().join("detailed_results_512.csv")).unwrap();

    let status = binary(&args).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let after = std::fs::read(dir.path().join("detailed_results_512.csv")).unwrap();
    assert_eq!(&after[..committed], &kept[..]);
    assert_consistent(&shape(dir.path()), &RATES);
}

/// Makes `path` immutable (so even root cannot create files in it) for
/// as long as the guard lives.
struct Immutable<'a>(&'a Path);

/// `chattr` with `flag` on `path`: whether it worked.
fn chattr(flag: &str, path: &Path) -> bool {
    Command::new("chattr")
        .arg(flag)
        .arg(path)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl<'a> Immutable<'a> {
    fn set(path: &'a Path) -> Immutable<'a> {
        assert!(
            chattr("+i", path),
            "`chattr +i` worked on a probe directory but not on {}",
            path.display()
        );
        Immutable(path)
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        chattr("-i", self.0);
    }
}

/// Why a directory cannot be made immutable here, if it cannot: tried on
/// a directory where the test's own directory will be.
fn immutable_unsupported() -> Option<String> {
    let probe = tempfile::tempdir().unwrap();
    if chattr("+i", probe.path()) {
        assert!(chattr("-i", probe.path()), "`chattr -i` undoes `chattr +i`");
        return None;
    }
    Some(format!(
        "`chattr +i {}` fails here: it needs root (CAP_LINUX_IMMUTABLE) and a filesystem with \
         the immutable attribute (ext4, xfs, btrfs; not tmpfs or overlayfs); set TMPDIR to a \
         directory on one",
        probe.path().display()
    ))
}

fn a_directory_that_turns_read_only_mid_run_gives_a_clear_error_and_keeps_the_phases() {
    let dir = tempfile::tempdir().unwrap();
    let args = sweep_args(dir.path(), 1.0);
    let mut child = Running::spawn(binary(&args));
    child.wait_for_progress(dir.path(), "its first phase", |p| phases_done(p) == 1);
    let guard = Immutable::set(dir.path());
    let (code, stderr) = child.finish();
    drop(guard);
    assert_eq!(code, Some(cacherate::exit::USAGE), "{stderr}");
    assert!(
        stderr.contains("Operation not permitted")
            && stderr.contains("make the directory writable")
            && stderr.contains(dir.path().to_str().unwrap()),
        "{stderr}"
    );
    let saved = progress(dir.path()).unwrap();
    assert!(phases_done(&saved) >= 1);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "{name} left behind");
    }
    // The rows appended before progress.json failed are not committed; the
    // rerun cuts them and measures that phase again.
    let status = binary(&args).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    assert_consistent(&shape(dir.path()), &RATES);
}

fn an_output_dir_under_a_regular_file_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results");
    std::fs::write(&file, "not a directory").unwrap();
    let output = binary(&sweep_args(&file.join("run"), 0.5))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::USAGE),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot create --output-dir") && stderr.contains("Not a directory"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// Waits until a request of a phase not yet saved has completed: a phase
/// is in flight, whatever the time it took to get there.
fn wait_for_a_request_in_flight_phase(child: &mut Running, dir: &Path) {
    while uncommitted_requests(dir, 512).is_empty() {
        assert!(
            child.try_wait().is_none(),
            "the run ended early:\n{}",
            child.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the run in `dir` has saved its first phase and the second
/// is under way.
fn wait_for_the_second_phase(child: &mut Running, dir: &Path) {
    child.wait_for_progress(dir, "its first phase", |p| phases_done(p) >= 1);
    wait_for_a_request_in_flight_phase(child, dir);
}

/// `cacherate COMMAND…` with the sweep's options, three samples a point
/// (what a comparison needs), its run directories under `out`.
fn command_args(command: &[&str], out: &Path) -> Vec<String> {
    let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    let sweep = sweep_args(out, 0.5);
    let at = sweep.iter().position(|a| a == "--num-retries").unwrap();
    args.extend(sweep[1..at].iter().cloned());
    args.extend(["--num-retries".to_string(), "3".to_string()]);
    args.extend(sweep[at + 2..].iter().cloned());
    args
}

/// The bytes of a run directory's phase and request files.
fn committed(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_default();
    (
        read("phase_metadata_512.csv"),
        read("detailed_results_512.csv"),
    )
}

/// Runs `args`, sends SIGINT once the run in `watched` has saved a phase,
/// and checks that the command stopped with 130, the phase in flight
/// saved; returns what `watched` held then.
fn interrupted(args: &[String], watched: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut child = Running::spawn(binary(args));
    wait_for_the_second_phase(&mut child, watched);
    child.interrupt("INT");
    let (code, stderr) = child.finish();
    assert_eq!(code, Some(cacherate::exit::INTERRUPTED), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    let saved = progress(watched).unwrap();
    assert!(
        phases_done(&saved) >= 2,
        "the phase in flight at the signal is saved too: {saved:?}"
    );
    assert!(!watched.join("unfinished_phase_512.csv").exists());
    committed(watched)
}

/// The run in `dir` was resumed by one more attempt, not started again:
/// what it had saved is kept byte for byte, nothing was moved aside, and
/// it is whole, every phase once.
fn assert_resumed(dir: &Path, before: &(Vec<u8>, Vec<u8>), attempts: u64) {
    let after = committed(dir);
    assert!(
        after.0.starts_with(&before.0) && after.1.starts_with(&before.1),
        "{}: the phases and requests saved before are kept as they were",
        dir.display()
    );
    assert!(after.0.len() > before.0.len(), "{}", dir.display());
    assert_eq!(
        progress(dir).unwrap().attempt,
        attempts,
        "{}",
        dir.display()
    );
    let moved: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("previous-"))
        .collect();
    assert!(moved.is_empty(), "{}: {moved:?} moved aside", dir.display());
    assert_consistent_with(&shape(dir), &RATES, 3);
}

fn ctrl_c_in_a_baseline_refresh_a_gate_and_a_calibration_then_the_same_command_resumes_each() {
    let root = tempfile::tempdir().unwrap();
    let baselines = root.path().join("baselines");

    // baseline refresh, stopped in its second run.
    let out = root.path().join("refresh");
    let mut refresh = command_args(&["baseline", "refresh", "sim", "--runs", "2"], &out);
    refresh.extend(["--baselines-dir".into(), baselines.display().to_string()]);
    let (first, second) = (
        out.join("baseline-sim/run-1"),
        out.join("baseline-sim/run-2"),
    );
    let saved = interrupted(&refresh, &second);
    let first_run = committed(&first);
    assert!(!baselines.join("sim.json").exists(), "no baseline yet");
    let status = binary(&refresh).stderr(Stdio::null()).status().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(committed(&first), first_run, "run 1 is not measured again");
    assert_resumed(&second, &saved, 1);
    let baseline_file = baselines.join("sim.json");
    let baseline = cacherate::baseline::Baseline::read(&baseline_file).unwrap();
    assert_eq!(baseline.runs.len(), 2);
    for point in &baseline.points {
        assert!(point.runs.iter().all(|r| r.samples.len() == 3), "{point:?}");
    }

    // gate, stopped in its run. Tolerances so wide that only a broken
    // resume (a point without its samples) keeps it from passing.
    let out = root.path().join("gate");
    let mut gate = command_args(&["gate", "--baseline"], &out);
    gate.insert(2, baseline_file.display().to_string());
    gate.extend(
        [
            "--tolerance-throughput",
            "1",
            "--tolerance-ttft-p50",
            "1",
            "--tolerance-ttft-p95",
            "1",
            "--max-extra-samples",
            "0",
        ]
        .map(String::from),
    );
    let saved = interrupted(&gate, &out);
    assert!(!out.join("compare/verdict.json").exists(), "no verdict yet");
    let output = binary(&gate).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::PASS),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.join("compare/verdict.json").is_file());
    assert_resumed(&out, &saved, 1);

    // calibrate, stopped in its second A/A run.
    let calibrated = root.path().join("calibrated.json");
    std::fs::copy(&baseline_file, &calibrated).unwrap();
    let out = root.path().join("calibrate");
    let mut calibrate = command_args(&["calibrate", "--runs", "2", "--baseline"], &out);
    calibrate.insert(4, calibrated.display().to_string());
    let (first, second) = (
        out.join("calibrate-calibrated/run-1"),
        out.join("calibrate-calibrated/run-2"),
    );
    let saved = interrupted(&calibrate, &second);
    let first_run = committed(&first);
    let untouched = cacherate::baseline::Baseline::read(&calibrated).unwrap();
    assert!(untouched.calibration.is_none(), "nothing stored yet");
    let status = binary(&calibrate).stderr(Stdio::null()).status().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        committed(&first),
        first_run,
        "A/A run 1 is not measured again"
    );
    assert_resumed(&second, &saved, 1);
    let calibration = cacherate::baseline::Baseline::read(&calibrated)
        .unwrap()
        .calibration
        .expect("the resumed calibration stored its noise");
    let runs: Vec<PathBuf> = calibration.runs.iter().map(PathBuf::from).collect();
    assert_eq!(runs, [first, second]);
}
