//! The README's measured figures, reproduced (not part of the tests): each
//! part runs the release binary against its embedded simulator in real
//! time and prints the figures the README quotes, with what they were
//! measured on.
//!
//! ```sh
//! cargo bench --bench figures -- quick      # the quick profile's table, wall time, report sizes
//! cargo bench --bench figures -- sizes      # bytes a detailed_results row, raw and gzipped
//! cargo bench --bench figures -- windows    # input tok/s by arrival, by window, launch to finish
//! cargo bench --bench figures -- modes      # peaks and wall time of the quick profile per mode
//! cargo bench --bench figures -- all        # everything (about 25 minutes on 2 cores)
//! ```
//!
//! `--out DIR` keeps the run directories (default: a directory under the
//! system's temporary one, emptied first). Gzip sizes come from the
//! system's `gzip -6`, the level `actions/upload-artifact` uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cacherate::record::RequestRecord;
use cacherate::store::{PointResult, Results};

const BIN: &str = env!("CARGO_BIN_EXE_cacherate");

/// `cacherate ARGS…` to its end; its stdout and wall seconds.
fn cacherate(args: &[&str]) -> (String, f64) {
    let started = Instant::now();
    let output = Command::new(BIN)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("cacherate runs");
    assert!(
        output.status.success(),
        "cacherate {} exited {:?}",
        args.join(" "),
        output.status.code()
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

fn results(dir: &Path) -> Vec<PointResult> {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let mut points = serde_json::from_str::<Results>(&text).unwrap().points;
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    points
}

fn records(dir: &Path, context: u64) -> Vec<RequestRecord> {
    csv::Reader::from_path(dir.join(format!("detailed_results_{context}.csv")))
        .unwrap()
        .deserialize()
        .map(|row| row.unwrap())
        .collect()
}

fn gzipped_bytes(path: &Path) -> u64 {
    let output = Command::new("gzip")
        .args(["-6", "-c"])
        .arg(path)
        .output()
        .expect("gzip is installed");
    output.stdout.len() as u64
}

fn dir_arg(dir: &Path) -> String {
    dir.display().to_string()
}

/// The quick profile as the README's set-up runs it: its table, its wall
/// time, and the size of each HTML report it wrote.
fn quick(out: &Path) {
    let dir = out.join("quick");
    let (stdout, seconds) =
        cacherate(&["run", "--profile", "quick", "--output-dir", &dir_arg(&dir)]);
    println!(
        "## cacherate run --profile quick\n\n{}\nwall time {seconds:.0} s\n",
        stdout.trim()
    );
    for point in results(&dir) {
        println!(
            "{} %: requests take {:.2} s at p50, {:.2} s at p99 (TTLT)",
            point.cache_hit_rate, point.ttlt.p50, point.ttlt.p99
        );
    }
    println!();
    println!("HTML reports:");
    let mut pages: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::metadata(&p).unwrap().len())
        })
        .collect();
    pages.sort();
    for (name, bytes) in &pages {
        println!("  {name}: {:.0} KB", *bytes as f64 / 1000.0);
    }
    let sizes: Vec<u64> = pages.iter().map(|p| p.1).collect();
    println!(
        "  {} pages, {:.0}–{:.0} KB\n",
        sizes.len(),
        *sizes.iter().min().unwrap() as f64 / 1000.0,
        *sizes.iter().max().unwrap() as f64 / 1000.0
    );
}

/// Bytes a `detailed_results` row takes on the quick profile with 256
/// output tokens, with every chunk's time and with `--chunk-times summary`.
fn sizes(out: &Path) {
    println!("## detailed_results rows, quick profile, --output-tokens 256\n");
    for chunk_times in ["all", "summary"] {
        let dir = out.join(format!("sizes-{chunk_times}"));
        cacherate(&[
            "run",
            "--profile",
            "quick",
            "--output-tokens",
            "256",
            "--chunk-times",
            chunk_times,
            "--skip-graphs",
            "--quiet",
            "--output-dir",
            &dir_arg(&dir),
        ]);
        let file = dir.join("detailed_results_2048.csv");
        let text = std::fs::read_to_string(&file).unwrap();
        let rows = text.lines().count() as u64 - 1;
        let header = text.lines().next().unwrap().len() as u64 + 1;
        let bytes = std::fs::metadata(&file).unwrap().len() - header;
        let gzipped = gzipped_bytes(&file);
        let (row, stored) = (bytes / rows, gzipped / rows);
        println!(
            "--chunk-times {chunk_times}: {rows} rows, {row} bytes a row, {stored} gzipped; \
             144 000 requests would be {:.0} MB, {:.0} MB gzipped",
            row as f64 * 144_000.0 / 1e6,
            stored as f64 * 144_000.0 / 1e6
        );
    }
    println!();
}

/// Input tok/s of a phase three ways: by the window rule (the figure
/// cacherate reports), by the prompt tokens whose first token arrived in
/// the window over its length, and from the first launch to the last
/// finish of the whole phase.
fn windows(out: &Path) {
    println!(
        "## Input tok/s of one phase at concurrency 8, 2048-token prompts at 50 % (embedded \
         simulator, real time)\n"
    );
    println!(
        "| phase | by window (reported) | by arrival in the window | first launch to last finish |"
    );
    println!("|---:|---:|---:|---:|");
    for phase in [3.0_f64, 20.0] {
        let dir = out.join(format!("windows-{phase}"));
        let phase_s = phase.to_string();
        let options = "run --mode fixed --fixed-concurrency-levels 8 --context-sizes 2048 \
                       --working-set-size 65536 --cache-hit-rates 50 --output-tokens 64 \
                       --max-ttft 100 --ramp-duration 3 --num-retries 1 --seed 1 \
                       --skip-graphs --quiet";
        let mut args: Vec<&str> = options.split_whitespace().collect();
        let dir_text = dir_arg(&dir);
        args.extend(["--sample-duration", &phase_s, "--output-dir", &dir_text]);
        cacherate(&args);
        let point = &results(&dir)[0];
        let sample = &point.samples[0];
        let rows: Vec<RequestRecord> = records(&dir, 2048)
            .into_iter()
            .filter(|r| r.phase_id == sample.phase_id && r.ok())
            .collect();
        let (start, end) = (sample.window_start_unix_s, sample.window_end_unix_s);
        let arrived: u64 = rows
            .iter()
            .filter(|r| {
                let first = r.launch_unix_s + r.ttft_s.unwrap_or(f64::INFINITY);
                first >= start && first < end
            })
            .map(|r| r.prompt_tokens_or_expected())
            .sum();
        let first_launch = rows
            .iter()
            .map(|r| r.launch_unix_s)
            .fold(f64::INFINITY, f64::min);
        let last_finish = rows
            .iter()
            .map(|r| r.launch_unix_s + r.finish_s)
            .fold(0.0, f64::max);
        let all: u64 = rows.iter().map(|r| r.prompt_tokens_or_expected()).sum();
        println!(
            "| {phase} s | {:.0} | {:.0} | {:.0} |",
            sample.input_tps,
            arrived as f64 / (end - start),
            all as f64 / (last_finish - first_launch)
        );
    }
    println!();
}

/// The concurrency of each sustained period at `rate`, in order, and its
/// longest TTLT p95, as "4 → 44 → 84 (TTLT p95 up to 3.9 s)".
fn periods(dir: &Path, rate: u32) -> String {
    let mut reader = csv::Reader::from_path(dir.join("phase_metadata_2048.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (rate_at, kind_at, level_at, ttlt_at) = (
        column("cache_hit_rate"),
        column("phase_type"),
        column("concurrency"),
        column("ttlt_p95_s"),
    );
    let (mut levels, mut longest) = (Vec::new(), 0.0_f64);
    for row in reader.records() {
        let row = row.unwrap();
        if row[rate_at].parse::<u32>().unwrap() == rate && &row[kind_at] == "PERIOD" {
            levels.push(row[level_at].to_string());
            longest = longest.max(row[ttlt_at].parse().unwrap_or(0.0));
        }
    }
    format!("{} (TTLT p95 up to {longest:.1} s)", levels.join(" → "))
}

/// Peaks at 0 / 50 / 100 % and wall time of the quick profile per mode.
fn modes(out: &Path) {
    println!("## The quick profile per mode (peak concurrency at 0 / 50 / 100 %, wall time)\n");
    println!("| mode | seed | peaks | wall time |");
    println!("| --- | ---: | --- | ---: |");
    let cases: [(&str, &[&str], &[u64]); 4] = [
        ("adaptive", &[], &[1, 2]),
        (
            "sustained, --assessment-period 3 (5 periods)",
            &["--mode", "sustained", "--assessment-period", "3"],
            &[1, 2],
        ),
        (
            "sustained, --assessment-period 6 --test-duration 48",
            &[
                "--mode",
                "sustained",
                "--assessment-period",
                "6",
                "--test-duration",
                "48",
            ],
            &[1, 2],
        ),
        (
            "sustained, --assessment-period 15 --test-duration 90",
            &[
                "--mode",
                "sustained",
                "--assessment-period",
                "15",
                "--test-duration",
                "90",
            ],
            &[1],
        ),
    ];
    for (k, (name, extra, seeds)) in cases.iter().enumerate() {
        for seed in *seeds {
            let dir = out.join(format!("modes-{k}-seed{seed}"));
            let seed = seed.to_string();
            let mut args = vec![
                "run",
                "--profile",
                "quick",
                "--seed",
                &seed,
                "--skip-graphs",
            ];
            args.extend_from_slice(extra);
            let dir_text = dir_arg(&dir);
            args.extend(["--quiet", "--output-dir", &dir_text]);
            let (_, seconds) = cacherate(&args);
            let peaks: Vec<String> = results(&dir)
                .iter()
                .map(|p| p.peak_concurrency.to_string())
                .collect();
            println!(
                "| {name} | {seed} | {} | {seconds:.0} s |",
                peaks.join(" / ")
            );
            if !extra.is_empty() {
                for rate in [0, 50, 100] {
                    println!("|   periods at {rate} % | | {} | |", periods(&dir, rate));
                }
            }
        }
    }
    println!();
}

fn main() {
    let mut parts: Vec<String> = Vec::new();
    let mut out = std::env::temp_dir().join("cacherate-figures");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = PathBuf::from(args.next().expect("--out DIR")),
            // cargo bench passes --bench.
            "--bench" => {}
            part => parts.push(part.to_string()),
        }
    }
    if parts.is_empty() || parts.iter().any(|p| p == "all") {
        parts = ["quick", "sizes", "windows", "modes"]
            .map(String::from)
            .to_vec();
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    println!(
        "# README figures: {} cores, cacherate {}\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        env!("CARGO_PKG_VERSION")
    );
    for part in &parts {
        match part.as_str() {
            "quick" => quick(&out),
            "sizes" => sizes(&out),
            "windows" => windows(&out),
            "modes" => modes(&out),
            other => panic!("unknown part {other}: quick, sizes, windows, modes or all"),
        }
    }
}
