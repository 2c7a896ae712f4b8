//! Soak (not part of the tests): `cacherate run` at a high fixed
//! concurrency against a `cacherate sim` process for a long time, sampling
//! the client's resident memory and open file descriptors from /proc.
//!
//! ```sh
//! cargo bench --bench soak -- [--minutes 30] [--concurrency 128] \
//!     [--phase-seconds 60] [--out DIR]
//! ```
//!
//! The run is one fixed load of many equal sample phases, so its memory
//! should be the same at every phase boundary: a phase holds its requests'
//! records until it ends, then writes them and lets them go. Prints a line
//! per sample and, at the end, memory and descriptors at the start (after
//! the first phase), the largest and the end; exits 1 when the end is more
//! than 10 % (and 8 MiB) above the start or descriptors grew by more than 8.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Sim;

struct Options {
    minutes: f64,
    concurrency: u32,
    phase_seconds: f64,
    out: PathBuf,
}

fn options() -> Options {
    let mut o = Options {
        minutes: 30.0,
        concurrency: 128,
        phase_seconds: 60.0,
        out: std::env::temp_dir().join("cacherate-soak"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("a value after the option");
        match arg.as_str() {
            "--minutes" => o.minutes = value().parse().unwrap(),
            "--concurrency" => o.concurrency = value().parse().unwrap(),
            "--phase-seconds" => o.phase_seconds = value().parse().unwrap(),
            "--out" => o.out = PathBuf::from(value()),
            // cargo bench passes --bench.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// Resident memory of `pid` in KiB, or `None` once it has exited.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Completed phases so far: data rows of the phase metadata file.
fn phases(out: &std::path::Path) -> usize {
    std::fs::read_to_string(out.join("phase_metadata_2048.csv"))
        .map(|text| text.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

fn main() {
    let o = options();
    let _ = std::fs::remove_dir_all(&o.out);
    // Enough sequences for the load to be served, not queued forever.
    let sim = Sim::start(&[
        "--max-num-seqs",
        &o.concurrency.to_string(),
        "--kv-capacity-tokens",
        "2000000",
        "--seed",
        "1",
    ]);
    let samples = ((o.minutes * 60.0) / o.phase_seconds).ceil().max(2.0) as u32;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .args(["run", "--api-endpoint", &sim.url, "--output-dir"])
        .arg(&o.out)
        .args([
            "--mode",
            "fixed",
            "--fixed-concurrency-levels",
            &o.concurrency.to_string(),
            "--context-sizes",
            "2048",
            "--working-set-size",
            "65536",
            "--cache-hit-rates",
            "50",
            "--output-tokens",
            "64",
            "--max-ttft",
            "1000",
            "--ramp-duration",
            &o.phase_seconds.to_string(),
            "--sample-duration",
            &o.phase_seconds.to_string(),
            "--num-retries",
            &samples.to_string(),
            "--request-timeout",
            "600",
            "--skip-graphs",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start cacherate run");
    let pid = child.id();
    let started = Instant::now();
    println!(
        "client pid {pid}, {samples} phases of {} s at c {}",
        o.phase_seconds, o.concurrency
    );
    println!(
        "{:>8} {:>7} {:>10} {:>5}",
        "seconds", "phases", "RSS KiB", "fds"
    );
    // (phases done, RSS, fds) at each sample once the first phase is over.
    let mut seen: Vec<(usize, u64, usize)> = Vec::new();
    let mut last_phases = usize::MAX;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let (Some(rss), Some(fds)) = (rss_kib(pid), fds(pid)) else {
            break;
        };
        let done = phases(&o.out);
        if done != last_phases {
            println!(
                "{:>8.0} {done:>7} {rss:>10} {fds:>5}",
                started.elapsed().as_secs_f64()
            );
            last_phases = done;
        }
        if done >= 1 {
            seen.push((done, rss, fds));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let status = child.wait().unwrap();
    let wall = started.elapsed().as_secs_f64();
    drop(sim);
    let (Some(first), Some(last)) = (seen.first(), seen.last()) else {
        eprintln!("the run ended before its first phase: {status}");
        std::process::exit(1);
    };
    let most = seen.iter().map(|s| s.1).max().unwrap();
    let most_fds = seen.iter().map(|s| s.2).max().unwrap();
    println!(
        "\n{:.1} min, {} phases, exit {status}\nRSS KiB: start {} (after phase 1), largest {most}, \
         end {}\nfds: start {}, largest {most_fds}, end {}",
        wall / 60.0,
        last.0,
        first.1,
        last.1,
        first.2,
        last.2
    );
    let grew = last.1 > first.1 + (first.1 / 10).max(8 * 1024);
    if !status.success() || grew || last.2 > first.2 + 8 {
        println!("FAIL: the run failed, or its memory or descriptors grew");
        std::process::exit(1);
    }
    println!("flat");
}
