//! `--serve`: cacherate starts the server under test, waits until it
//! answers, keeps its output in the run directory, records it in
//! `run.json` and stops it — after the run, on Ctrl-C, when it fails to
//! start — and a refresh starts a fresh one for every run. Every server
//! here is a real `cacherate sim` process with scaled time, on a free
//! loopback port; every run is the real binary.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use cacherate::serve::group_members;
use common::binary::{read_json, text};
use common::child::Running;
use serde_json::Value;

/// What the log says at each start (src/serve/server.rs).
const START_HEADER: &str = "==== cacherate --serve: started at ";

/// A loopback port nothing listens on now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `cacherate sim` on `port`, twenty times faster than real time; `exec`
/// makes the shell the simulator itself (one process, its own pid).
fn sim_command(port: u16, exec: bool) -> String {
    format!(
        "{}{} sim --listen 127.0.0.1:{port} --time-scale 0.05 --seed 5",
        if exec { "exec " } else { "" },
        shell_quote(env!("CARGO_BIN_EXE_cacherate"))
    )
}

/// A small fixed-load sweep of `rates` at concurrency 4, three short
/// samples a point, into `out`.
fn sweep(out: &Path, rates: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = "--context-sizes 512 --working-set-size 2048 --output-tokens 8 \
         --max-ttft 9 --ramp-duration 0.3 --sample-duration 0.4 --num-retries 3 \
         --init-concurrency 4 --reinit-strategy per_cache_rate --mode fixed \
         --fixed-concurrency-levels 4 --seed 7 --skip-graphs"
        .split_whitespace()
        .map(String::from)
        .collect();
    args.push("--cache-hit-rates".into());
    args.extend(rates.iter().map(|r| r.to_string()));
    args.extend(["--output-dir".into(), out.display().to_string()]);
    args
}

/// `cacherate COMMAND… --serve SERVE --api-endpoint …:PORT` and the sweep.
fn served(command: &[&str], serve: &str, port: u16, out: &Path, rates: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    args.extend(sweep(out, rates));
    args.extend([
        "--serve".into(),
        serve.into(),
        "--api-endpoint".into(),
        format!("http://127.0.0.1:{port}"),
    ]);
    args
}

fn cacherate(args: &[String]) -> Output {
    common::binary::cacherate(Path::new(env!("CARGO_MANIFEST_DIR")), args)
        .output()
        .unwrap()
}

fn listens(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

/// `run.json`'s record of the served server.
fn served_record(dir: &Path) -> Value {
    read_json(&dir.join("run.json"))["serve"].clone()
}

fn pid_of(dir: &Path) -> u32 {
    let pid = served_record(dir)["pid"].as_u64();
    u32::try_from(pid.expect("run.json records the served pid")).unwrap()
}

fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).expect("server.log in the run directory")
}

fn starts(log: &str) -> usize {
    log.lines().filter(|l| l.starts_with(START_HEADER)).count()
}

/// The server's process group is gone and its port closed.
fn assert_stopped(pid: u32, port: u16) {
    assert!(group_members(pid).is_empty(), "group {pid} still runs");
    assert!(!listens(port), "port {port} still answers");
}

#[test]
fn a_served_simulator_is_started_measured_logged_recorded_and_stopped() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let port = free_port();
    let serve = sim_command(port, true);
    let output = cacherate(&served(&["run"], &serve, port, &out, &["0", "100"]));
    assert!(output.status.success(), "{}", text(&output));
    common::assert_run_dir_complete(&out, 512);
    assert_eq!(common::results(&out).len(), 2);

    let log = server_log(&out);
    assert_eq!(starts(&log), 1, "{log}");
    assert!(
        log.contains(&format!("listening on http://127.0.0.1:{port}")),
        "the simulator's own output is kept: {log}"
    );
    let record = served_record(&out);
    assert_eq!(record["command"], serve.as_str(), "{record}");
    assert_eq!(record["kind"], "cacherate-sim", "{record}");
    assert_eq!(record["version"], env!("CARGO_PKG_VERSION"), "{record}");
    assert_eq!(record["log"], "server.log");
    assert!(record["ready_after_s"].as_f64().unwrap() > 0.0, "{record}");
    let pid = pid_of(&out);
    assert!(log.contains(&format!("pid {pid}: sh -c {serve}")), "{log}");
    assert_stopped(pid, port);
    // The endpoint it listened at is the run's, and the reproduce script
    // starts the same server.
    let info = read_json(&out.join("run.json"));
    assert_eq!(info["endpoints"][0], format!("http://127.0.0.1:{port}"));
    let script = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("run_command_")
        })
        .unwrap();
    let script = std::fs::read_to_string(script).unwrap();
    assert!(script.contains("'--serve'"), "{script}");
}

#[test]
fn a_refresh_and_a_calibration_start_a_fresh_server_for_every_run_a_gate_one_and_without_serve_a_warning()
 {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let baselines = root.path().join("baselines");
    let mut args = served(
        &["baseline", "refresh", "fresh", "--runs", "2"],
        &sim_command(port, true),
        port,
        &root.path().join("runs"),
        &["0"],
    );
    args.extend(["--baselines-dir".into(), baselines.display().to_string()]);
    let output = cacherate(&args);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("σ_run"),
        "{}",
        text(&output)
    );
    let runs: Vec<PathBuf> = (1..=2)
        .map(|k| root.path().join(format!("runs/baseline-fresh/run-{k}")))
        .collect();
    let pids: Vec<u32> = runs.iter().map(|dir| pid_of(dir)).collect();
    assert_ne!(pids[0], pids[1], "a fresh server for every run");
    for (dir, &pid) in runs.iter().zip(&pids) {
        let log = server_log(dir);
        assert_eq!(starts(&log), 1, "{}: {log}", dir.display());
        assert!(log.contains(&format!("pid {pid}:")), "{log}");
        assert_stopped(pid, port);
    }
    let baseline = baselines.join("fresh.json");
    // The baseline says which server each of its runs measured.
    let made = read_json(&baseline);
    assert_eq!(
        made["provenance"]["serve"],
        sim_command(port, true).as_str(),
        "{}",
        made["provenance"]
    );
    let recorded: Vec<u64> = made["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["server_pid"].as_u64().unwrap())
        .collect();
    assert_eq!(
        recorded,
        pids.iter().map(|&p| u64::from(p)).collect::<Vec<_>>()
    );

    // A gate measures one fresh server, its extra samples included.
    let gate_dir = root.path().join("gate");
    let mut args = served(
        &["gate", "--baseline", baseline.to_str().unwrap()],
        &sim_command(port, true),
        port,
        &gate_dir,
        &["0"],
    );
    args.extend(["--max-extra-samples".into(), "2".into()]);
    let output = cacherate(&args);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output)
    );
    assert!(gate_dir.join("compare/verdict.json").is_file());
    assert_eq!(starts(&server_log(&gate_dir)), 1);
    assert_stopped(pid_of(&gate_dir), port);

    // A calibration, like a refresh, starts one for every run.
    let output = cacherate(&served(
        &[
            "calibrate",
            "--baseline",
            baseline.to_str().unwrap(),
            "--runs",
            "2",
        ],
        &sim_command(port, true),
        port,
        &root.path().join("calibration"),
        &["0"],
    ));
    assert!(output.status.success(), "{}", text(&output));
    let calibrated: Vec<u32> = (1..=2)
        .map(|k| {
            pid_of(
                &root
                    .path()
                    .join(format!("calibration/calibrate-fresh/run-{k}")),
            )
        })
        .collect();
    assert_ne!(calibrated[0], calibrated[1], "{}", text(&output));

    // The same refresh against one server it does not start: said once.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime.block_on(common::start(cacherate::sim::SimConfig::for_tests(0.05)));
    let mut args = vec!["baseline", "refresh", "shared", "--runs", "2"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(sweep(&root.path().join("shared-runs"), &["0"]));
    args.extend([
        "--api-endpoint".into(),
        sim.url(),
        "--baselines-dir".into(),
        baselines.display().to_string(),
        "--quiet".into(),
    ]);
    let output = cacherate(&args);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches("runs go to the one server process at")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("σ_run")
            && stderr.contains("will be understated")
            && stderr.contains("--serve"),
        "{stderr}"
    );
    runtime.block_on(sim.stop()).unwrap();
}

#[test]
fn a_command_that_exits_at_once_fails_with_its_status_and_log() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let port = free_port();
    let output = cacherate(&served(
        &["run"],
        "echo starting; echo boom >&2; exit 7",
        port,
        &out,
        &["0"],
    ));
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::UNREACHABLE),
        "{}",
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("exited before it answered")
            && stderr.contains("(exit status 7)")
            && stderr.contains("  | starting\n  | boom"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&out.join("server.log").display().to_string()),
        "{stderr}"
    );
    let log = server_log(&out);
    assert_eq!(starts(&log), 1, "{log}");
    assert!(log.ends_with("starting\nboom\n"), "{log}");
}

#[test]
fn a_command_that_never_listens_times_out_within_serve_timeout() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let port = free_port();
    let mut args = served(&["run"], "echo waiting; sleep 60", port, &out, &["0"]);
    args.extend(["--serve-timeout".into(), "2".into()]);
    let started = Instant::now();
    let output = cacherate(&args);
    let took = started.elapsed();
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::UNREACHABLE),
        "{}",
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "did not answer GET http://127.0.0.1:{port}/v1/models within --serve-timeout 2 s"
        )) && stderr.contains("so it was stopped")
            && stderr.contains("  | waiting"),
        "{stderr}"
    );
    // Two seconds of waiting, a SIGTERM that ends sh and sleep at once:
    // well under the 60 s the command would sleep, or the 10 s grace.
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(9), "{took:?}");
    let pid: u32 = server_log(&out)
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap();
    assert!(group_members(pid).is_empty(), "sleep 60 was stopped");
}

#[test]
fn a_server_killed_mid_run_fails_the_run_and_the_same_command_resumes_with_a_fresh_one() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let port = free_port();
    let args = served(
        &["run"],
        &sim_command(port, true),
        port,
        &out,
        &["0", "50", "100"],
    );
    let mut child = Running::spawn(common::child::cacherate(&args));
    child.wait_for_progress(&out, "its first point", |p| !p.completed.is_empty());
    let first = common::results(&out);
    let pid = pid_of(&out);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (code, stderr) = child.finish();
    assert_eq!(code, Some(cacherate::exit::UNREACHABLE), "{stderr}");
    assert!(
        stderr.contains("exited during the run (killed by signal 9 (SIGKILL))")
            && stderr.contains("what was measured is saved in")
            && stderr.contains("resume it with a fresh server")
            && stderr.contains("  | listening on"),
        "{stderr}"
    );
    // Nothing measured is lost: the points done stay done.
    let kept = common::results(&out);
    assert!(kept.len() >= first.len() && !kept.is_empty());
    assert!(!listens(port));

    let output = cacherate(&args);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("resuming the run"),
        "{}",
        text(&output)
    );
    let points = common::results(&out);
    assert_eq!(points.len(), 3);
    assert_eq!(
        points[0].samples.len(),
        first[0].samples.len(),
        "the point measured before the kill is not measured again"
    );
    assert_eq!(points[0].input_tps, first[0].input_tps);
    let log = server_log(&out);
    assert_eq!(starts(&log), 2, "{log}");
    let fresh = pid_of(&out);
    assert_ne!(fresh, pid);
    assert_stopped(fresh, port);
}

#[test]
fn ctrl_c_stops_the_served_server_too() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let port = free_port();
    // Without `exec`: the shell and the simulator, one process group.
    let args = served(
        &["run"],
        &sim_command(port, false),
        port,
        &out,
        &["0", "50", "100"],
    );
    let mut child = Running::spawn(common::child::cacherate(&args));
    child.wait_for_progress(&out, "its first phase", |p| {
        p.current.as_ref().is_some_and(|c| !c.phases.is_empty()) || !p.completed.is_empty()
    });
    let group = pid_of(&out);
    assert_eq!(group_members(group).len(), 2, "sh and the simulator");
    child.interrupt("INT");
    let (code, stderr) = child.finish();
    assert_eq!(code, Some(cacherate::exit::INTERRUPTED), "{stderr}");
    assert_stopped(group, port);
}

#[test]
fn ctrl_c_while_the_server_starts_stops_it_and_the_wait() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let port = free_port();
    let args = served(&["run"], "echo loading; sleep 60", port, &out, &["0"]);
    let started = Instant::now();
    let child = Running::spawn(common::child::cacherate(&args));
    child.wait_for_stderr("--serve: starting");
    child.interrupt("INT");
    let (code, stderr) = child.finish();
    assert_eq!(code, Some(cacherate::exit::INTERRUPTED), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "not the 60 s sleep"
    );
    let log = server_log(&out);
    assert_eq!(starts(&log), 1, "{log}");
    let pid: u32 = log
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap();
    assert!(group_members(pid).is_empty(), "sleep 60 was stopped");
}
