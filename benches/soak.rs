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
//! per phase boundary and, at the end, memory and descriptors at the start
//! (after the first phase), the largest and the end, and the last ten
//! phase boundaries. Exits 1 when the run failed; when the end is more than
//! 10 % (and 8 MiB) above the start or descriptors grew by more than 8;
//! or when the last ten phases are not flat: memory rising over them (the
//! least-squares slope times the nine phases between them) by more than
//! 2 % of their mean or 1 MiB, whichever is larger, or descriptors moving
//! by more than 2. A run of fewer than eleven phases cannot show that and
//! fails too (give it more `--minutes` or shorter `--phase-seconds`).

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

/// Phases at the end of the run that must be flat.
const FLAT_PHASES: usize = 10;

/// Least-squares slope of memory (KiB) against the phase number over
/// `boundaries` (phase, RSS KiB, fds).
fn slope_kib_per_phase(boundaries: &[(usize, u64, usize)]) -> f64 {
    let n = boundaries.len() as f64;
    let mean_x = boundaries.iter().map(|b| b.0 as f64).sum::<f64>() / n;
    let mean_y = boundaries.iter().map(|b| b.1 as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(x, y, _) in boundaries {
        sxy += (x as f64 - mean_x) * (y as f64 - mean_y);
        sxx += (x as f64 - mean_x).powi(2);
    }
    sxy / sxx
}

/// Whether the last [`FLAT_PHASES`] phase boundaries are flat, and why not.
fn flat(boundaries: &[(usize, u64, usize)]) -> Result<String, String> {
    if boundaries.len() < FLAT_PHASES + 1 {
        return Err(format!(
            "{} phase boundaries seen: the last {FLAT_PHASES} phases after the first cannot be \
             judged; run longer",
            boundaries.len()
        ));
    }
    let last = &boundaries[boundaries.len() - FLAT_PHASES..];
    let mean = last.iter().map(|b| b.1 as f64).sum::<f64>() / FLAT_PHASES as f64;
    let rise = slope_kib_per_phase(last) * (FLAT_PHASES - 1) as f64;
    let allowed = (0.02 * mean).max(1024.0);
    let (fds_low, fds_high) = (
        last.iter().map(|b| b.2).min().unwrap(),
        last.iter().map(|b| b.2).max().unwrap(),
    );
    let what = format!(
        "last {FLAT_PHASES} phases (phases {} to {}): RSS mean {:.0} KiB, trend {rise:+.0} KiB over \
         them (allowed {allowed:.0}), fds {fds_low} to {fds_high}",
        last[0].0,
        last[FLAT_PHASES - 1].0,
        mean
    );
    if rise > allowed || fds_high - fds_low > 2 {
        Err(what)
    } else {
        Ok(what)
    }
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
    // (phases done, RSS, fds) at each sample once the first phase is over,
    // and at the first sample after each phase boundary.
    let mut seen: Vec<(usize, u64, usize)> = Vec::new();
    let mut boundaries: Vec<(usize, u64, usize)> = Vec::new();
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
            if done >= 1 {
                boundaries.push((done, rss, fds));
            }
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
    let flatness = flat(&boundaries);
    match &flatness {
        Ok(what) => println!("{what}: flat"),
        Err(what) => println!("{what}: NOT FLAT"),
    }
    if !status.success() || grew || last.2 > first.2 + 8 || flatness.is_err() {
        println!(
            "FAIL: the run failed, its memory or descriptors grew, or its last {FLAT_PHASES} \
             phases are not flat"
        );
        std::process::exit(1);
    }
    println!("flat");
}
