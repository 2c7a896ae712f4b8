//! `cacherate run` against the simulator on port 0: the sweep's curves, the
//! exactness of cached prefixes, resume after a kill, refusal to resume
//! with other options, failures counted, and the reproduce script.

mod common;

use common::{records, results, run_json};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cacherate::cli::{Cli, Command as CliCommand};
use cacherate::record::RequestRecord;
use cacherate::settings::RunSettings;
use cacherate::sim::{SimConfig, SimServer};
use cacherate::store::Progress;
use clap::Parser;

/// The simulator's time runs this much faster than modelled.
const TIME_SCALE: f64 = 0.05;

/// A small, fast sweep: 512-token prompts, rates 0/50/100, half-second
/// phases, concurrency capped at 8 so every rate ends at the same level.
fn sweep_args(url: &str, dir: &Path) -> Vec<String> {
    [
        "--api-endpoint",
        url,
        "--output-dir",
        dir.to_str().unwrap(),
        "--context-sizes",
        "512",
        "--working-set-size",
        "2048",
        "--cache-hit-rates",
        "0",
        "50",
        "100",
        "--output-tokens",
        "8",
        "--max-ttft",
        "0.5",
        "--ramp-duration",
        "0.5",
        "--test-duration",
        "1.5",
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
        // Refill the cache before every rate: a long 0% point evicts the
        // working set, as on a real server.
        "--reinit-strategy",
        "per_cache_rate",
        "--request-timeout",
        "10",
        "--seed",
        "7",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn settings(args: &[String]) -> RunSettings {
    let mut argv = vec!["cacherate".to_string(), "run".to_string()];
    argv.extend_from_slice(args);
    let CliCommand::Run(run) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let no_profiles = tempfile::tempdir().unwrap();
    RunSettings::resolve(*run, no_profiles.path()).unwrap()
}

async fn simulator(config: SimConfig) -> SimServer {
    common::start(SimConfig {
        time_scale: TIME_SCALE,
        ..config
    })
    .await
}

fn progress(dir: &Path) -> Option<Progress> {
    let text = std::fs::read_to_string(dir.join("progress.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// What the simulator (16-token blocks) must report for a request: the
/// block-aligned target prefix, and never more; a whole prompt hits all but
/// its last block.
fn expected_cached(record: &RequestRecord) -> u64 {
    let block = 16;
    record
        .target_cached_tokens
        .min((record.expected_prompt_tokens - 1) / block * block)
}

fn assert_cached_prefixes_exact(rows: &[RequestRecord]) {
    let measured: Vec<&RequestRecord> = rows
        .iter()
        .filter(|r| r.phase_id != "WARMUP" && r.ok())
        .collect();
    assert!(!measured.is_empty());
    for row in measured {
        assert_eq!(
            row.cached_tokens.unwrap_or(0),
            expected_cached(row),
            "request {} at {}% reused more or less than its prefix",
            row.request_id,
            row.cache_hit_rate
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_rate_sweep_rises_with_the_cache_rate_and_reuses_exactly_the_prefix() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let args = sweep_args(&server.url(), dir.path());
    let outcome = cacherate::runner::run(settings(&args), &args)
        .await
        .unwrap();
    server.stop().await.unwrap();

    let points = outcome.points;
    assert_eq!(points.len(), 3);
    for point in &points {
        assert_eq!(point.peak_concurrency, 8, "{point:?}");
        assert!(point.peak_passed);
        assert_eq!(point.error_rate, 0.0);
        // The retry is the sample; the ramp phase that chose the peak is
        // not one.
        assert_eq!(point.samples.len(), 1, "{point:?}");
        assert_eq!(point.samples[0].phase_id, "RETRY_1");
        let selection = point.selection_phase.as_deref().unwrap();
        assert!(selection.starts_with("RAMP"), "{selection}");
        assert_eq!(point.samples[0].concurrency, point.peak_concurrency);
        assert!(point.samples[0].window_start_unix_s < point.samples[0].window_end_unix_s);
    }
    let (cold, half, warm) = (&points[0], &points[1], &points[2]);
    assert!(
        cold.input_tps < half.input_tps && half.input_tps < warm.input_tps,
        "input tok/s {} < {} < {}",
        cold.input_tps,
        half.input_tps,
        warm.input_tps
    );
    assert!(
        cold.ttft.p50 > half.ttft.p50 && half.ttft.p50 > warm.ttft.p50,
        "TTFT p50 {} > {} > {}",
        cold.ttft.p50,
        half.ttft.p50,
        warm.ttft.p50
    );
    // Achieved rates: 0, 256/512, 496/512 (the last block is recomputed).
    assert_eq!(cold.achieved_cache_rate, Some(0.0));
    assert_eq!(half.achieved_cache_rate, Some(0.5));
    assert_eq!(warm.achieved_cache_rate, Some(496.0 / 512.0));

    let rows = records(dir.path(), 512);
    assert_cached_prefixes_exact(&rows);
    let mut ids: Vec<u64> = rows.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "request ids are unique");
    // Each streamed chunk's time is kept: eight one-token chunks, in
    // order, from the first token to the last (warm-up asks for one).
    for row in rows.iter().filter(|r| r.ok() && r.phase_id != "WARMUP") {
        let times = &row.chunk_times_us;
        assert_eq!(times.len(), 8, "request {}", row.request_id);
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        let micros = |s: Option<f64>| (s.unwrap() * 1e6).round() as i64;
        assert!((i64::from(times[0]) - micros(row.ttft_s)).abs() <= 1);
        assert!((i64::from(times[7]) - micros(row.ttlt_s)).abs() <= 1);
        assert_eq!(row.tokens_per_chunk, [1]);
    }
    common::assert_run_dir_complete(dir.path(), 512);
    let summary = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 4, "header and three points");
    let run = run_json(dir.path());
    assert_eq!(run["status"], "complete");
    assert_eq!(run["model"], "cacherate-sim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_the_fault_knobs_are_rows_and_count() {
    let server = simulator(SimConfig {
        error_rate: 0.1,
        rate_limit_rate: 0.05,
        disconnect_rate: 0.1,
        ..SimConfig::for_tests(TIME_SCALE)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.extend(["--cache-hit-rates", "50"].map(String::from));
    let outcome = cacherate::runner::run(settings(&args), &args)
        .await
        .unwrap();
    server.stop().await.unwrap();

    let rows = records(dir.path(), 512);
    let count = |kind: &str| {
        rows.iter()
            .filter(|r| r.error_kind.is_some_and(|k| k.name() == kind))
            .count()
    };
    assert!(count("http_5xx") > 0 && count("rate_limited") > 0 && count("disconnect") > 0);
    let failed = rows.iter().filter(|r| !r.ok()).count();
    let share = failed as f64 / rows.len() as f64;
    assert!(
        (0.12..0.38).contains(&share),
        "about 25% failed, got {share}"
    );
    for row in rows.iter().filter(|r| !r.ok()) {
        assert!(row.error.is_some(), "a failed row says why");
    }
    let point = &outcome.points[0];
    assert!(point.failed_requests > 0 && point.error_rate > 0.05);
    assert!(
        !point.peak_passed,
        "25% errors exceed --max-error-rate at every level"
    );
    assert!(point.errors["http_5xx"] > 0);
}

fn binary(args: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cacherate"));
    command.arg("run").args(args);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_where_it_stopped() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    // Longer phases so the kill lands inside a point.
    args.extend(["--ramp-duration", "1", "--test-duration", "3"].map(String::from));
    let mut child = binary(&args).stderr(Stdio::null()).spawn().unwrap();
    // Until the run is inside its second point; a run that ends first
    // fails the test.
    loop {
        if let Some(progress) = progress(dir.path())
            && progress.completed.len() == 1
            && progress
                .current
                .as_ref()
                .is_some_and(|c| !c.phases.is_empty())
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before a second point"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the next phase get under way, then kill without warning.
    tokio::time::sleep(Duration::from_millis(400)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let before = progress(dir.path()).unwrap();
    let committed = before.files["detailed_results_512.csv"] as usize;
    let csv_path = dir.path().join("detailed_results_512.csv");
    let written = std::fs::read(&csv_path).unwrap();
    let kept = written[..committed].to_vec();
    // Rows are appended when a phase ends, so the kill most likely left
    // nothing uncommitted; make it the worst case: a torn append.
    std::fs::write(
        &csv_path,
        [&written[..], b"2048,50,RAMP_c8,1,8,99999,0,0,17"].concat(),
    )
    .unwrap();

    let status = binary(&args).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    server.stop().await.unwrap();

    let after = progress(dir.path()).unwrap();
    assert_eq!(after.attempt, 1);
    assert_eq!(after.completed.len(), 3);
    let points = results(dir.path());
    assert_eq!(points.len(), 3);
    let rows = records(dir.path(), 512);
    // The committed rows are untouched, byte for byte, and the resumed run
    // added its own after them (the partial rows of the killed phase are
    // gone: every row parses and no request id repeats).
    let bytes = std::fs::read(dir.path().join("detailed_results_512.csv")).unwrap();
    assert_eq!(&bytes[..committed], &kept[..]);
    assert!(bytes.len() > committed);
    // No request id twice, and the phases of each point numbered 0, 1, ...
    // with none lost or doubled by the kill.
    let mut ids: Vec<u64> = rows.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    let unique = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), unique);
    let phases = std::fs::read_to_string(dir.path().join("phase_metadata_512.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(phases.as_bytes());
    let mut seen: Vec<(u32, u32)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[1].parse().unwrap(), r[2].parse().unwrap())
        })
        .collect();
    let total = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), total, "no phase written twice");
    for rate in [0, 50, 100] {
        let indexes: Vec<u32> = seen.iter().filter(|s| s.0 == rate).map(|s| s.1).collect();
        assert_eq!(indexes, (0..indexes.len() as u32).collect::<Vec<_>>());
    }
    // Suffixes of the phase lost to the kill were not sent again as cache
    // hits: every request still reused exactly its prefix.
    assert_cached_prefixes_exact(&rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_options_start_a_new_run_and_keep_the_old_one() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.extend(["--cache-hit-rates", "100", "--num-retries", "0"].map(String::from));
    let mut both = args.clone();
    both.extend(["--context-sizes", "256", "512"].map(String::from));
    assert!(
        binary(&both)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(results(dir.path()).len(), 2);

    // The same options with a subset of the context sizes resume, and find
    // nothing left to measure.
    let output = binary(&args).output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("cannot be resumed"), "{stderr}");
    assert_eq!(progress(dir.path()).unwrap().attempt, 1);
    assert_eq!(results(dir.path()).len(), 2);

    let mut changed = args.clone();
    changed.retain(|a| a != "--quiet");
    changed.extend(["--max-ttft", "0.4"].map(String::from));
    let output = binary(&changed).output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot be resumed") && stderr.contains("--max-ttft: 0.5 -> 0.4"),
        "{stderr}"
    );
    server.stop().await.unwrap();
    let archived: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(archived.len(), 1, "the earlier run moved aside");
    assert!(archived[0].join("results.json").is_file());
    assert!(archived[0].join("detailed_results_512.csv").is_file());
    let new = progress(dir.path()).unwrap();
    assert_eq!(new.attempt, 0);
    assert_eq!(new.workload.max_ttft, 0.4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_context_sizes_resumes_the_run_and_keeps_what_it_measured() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.extend(["--cache-hit-rates", "100", "--context-sizes", "256"].map(String::from));
    let status = binary(&args).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let first = progress(dir.path()).unwrap();
    assert_eq!(first.completed, vec![(256, 100)]);
    let kept = |dir: &Path| {
        ["detailed_results_256.csv", "phase_metadata_256.csv"]
            .map(|file| std::fs::read(dir.join(file)).unwrap())
    };
    let measured = kept(dir.path());

    // The same options with a second context size: a resume, not a new
    // run, that measures only the new point.
    let mut more = args.clone();
    more.retain(|a| a != "--quiet");
    more.extend(["--context-sizes", "256", "512"].map(String::from));
    let output = binary(&more).output().unwrap();
    server.stop().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("cannot be resumed"), "{stderr}");
    let archived = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(archived, 0, "nothing moved aside");
    let after = progress(dir.path()).unwrap();
    assert_eq!(after.attempt, first.attempt + 1, "resumed");
    assert_eq!(after.completed, vec![(256, 100), (512, 100)]);
    assert_eq!(
        kept(dir.path()),
        measured,
        "the 256-token point is not measured again"
    );
    let points = results(dir.path());
    assert_eq!(
        points
            .iter()
            .map(|p| (p.context_size, p.cache_hit_rate))
            .collect::<Vec<_>>(),
        [(256, 100), (512, 100)]
    );
    assert!(points.iter().all(|p| p.samples.len() == 1));
    assert!(!records(dir.path(), 512).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_command_script_reproduces_the_options() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.extend(["--cache-hit-rates", "50", "--num-retries", "0"].map(String::from));
    assert!(
        binary(&args)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    let script = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("run_command_")
        })
        .expect("a run_command script");
    let again = tempfile::tempdir().unwrap();
    let status = Command::new(&script)
        .args(["--output-dir", again.path().to_str().unwrap(), "--quiet"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    server.stop().await.unwrap();
    let (first, second) = (
        progress(dir.path()).unwrap(),
        progress(again.path()).unwrap(),
    );
    assert_eq!(first.workload, second.workload, "same options and seed");
    let settings = |dir: &Path| -> serde_json::Value {
        let mut settings = run_json(dir)["settings"].clone();
        // The script names the model the first run found on its own.
        settings.as_object_mut().unwrap().remove("output_dir");
        settings.as_object_mut().unwrap().remove("model");
        settings
    };
    assert_eq!(settings(dir.path()), settings(again.path()));
    assert_eq!(results(again.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_endpoints_share_the_load_and_keep_prefixes_where_they_were_warmed() {
    let (a, b) = (
        simulator(SimConfig::for_tests(TIME_SCALE)).await,
        simulator(SimConfig::for_tests(TIME_SCALE)).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&a.url(), dir.path());
    args.extend(
        [
            "--api-endpoint",
            &a.url(),
            &b.url(),
            "--cache-hit-rates",
            "0",
            "50",
            "--num-retries",
            "0",
        ]
        .map(String::from),
    );
    let outcome = cacherate::runner::run(settings(&args), &args)
        .await
        .unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let rows = records(dir.path(), 512);
    for endpoint in [0, 1] {
        let served = rows.iter().filter(|r| r.endpoint == endpoint).count();
        assert!(
            served > rows.len() / 4,
            "endpoint {endpoint} served {served} of {}",
            rows.len()
        );
    }
    // Each working-set prompt goes back to the server that was warmed with
    // it, so every prefix is still a hit.
    assert_cached_prefixes_exact(&rows);
    assert_eq!(outcome.points[1].achieved_cache_rate, Some(0.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_restart_recovers_from_a_damaged_progress_file() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("progress.json"), "{ torn").unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.extend(["--cache-hit-rates", "100", "--num-retries", "0"].map(String::from));
    let output = binary(&args).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force-restart"));
    args.push("--force-restart".into());
    let output = binary(&args).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await.unwrap();
    assert_eq!(results(dir.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_ends_the_run_with_exit_3_and_keeps_the_phases() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.extend(["--ramp-duration", "1", "--test-duration", "5"].map(String::from));
    let run = tokio::spawn({
        let args = args.clone();
        async move { cacherate::runner::run(settings(&args), &args).await }
    });
    while progress(dir.path())
        .and_then(|p| p.current)
        .is_none_or(|c| c.phases.is_empty())
    {
        assert!(!run.is_finished(), "the run ended before a phase finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await.unwrap();
    let error = run.await.unwrap().unwrap_err();
    assert_eq!(error.exit_code(), cacherate::exit::UNREACHABLE, "{error}");
    assert!(
        error.to_string().contains("run the same command again"),
        "{error}"
    );
    let kept = progress(dir.path()).unwrap();
    assert!(kept.current.is_some_and(|c| !c.phases.is_empty()));
    let rows = records(dir.path(), 512);
    assert!(rows.iter().any(|r| r.ok()));
    assert!(
        rows.iter()
            .any(|r| r.error_kind.is_some_and(|k| k.name() == "connect"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_side_view_flush_and_fingerprint_are_recorded() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.extend(
        [
            "--cache-hit-rates",
            "50",
            "--num-retries",
            "0",
            "--flush-cache",
            "auto",
            "--metrics-url",
            "auto",
        ]
        .map(String::from),
    );
    let outcome = cacherate::runner::run(settings(&args), &args)
        .await
        .unwrap();
    server.stop().await.unwrap();
    let run = run_json(dir.path());
    assert_eq!(run["flush_cache"], "vLLM POST /reset_prefix_cache");
    assert_eq!(run["server"]["kind"], "cacherate-sim");
    assert_eq!(run["server"]["max_model_len"], 32_768);
    let point = &outcome.points[0];
    assert!(!point.cache_rate_missed);
    // The server counts every prompt it looked up; its view matches ours.
    let server_rate = point.server_cache_rate.expect("counters read");
    assert!((server_rate - 0.5).abs() < 0.01, "server saw {server_rate}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_set_larger_than_the_cache_is_flagged() {
    // 4096 tokens of KV; the working set is 16 prompts of 512 tokens.
    let server = simulator(SimConfig {
        kv_capacity_tokens: 4096,
        max_model_len: 1024,
        ..SimConfig::for_tests(TIME_SCALE)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.retain(|a| a != "--quiet");
    args.extend(
        [
            "--working-set-size",
            "8192",
            "--cache-hit-rates",
            "100",
            "--num-retries",
            "0",
        ]
        .map(String::from),
    );
    let output = binary(&args).output().unwrap();
    server.stop().await.unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("more than the server's KV cache of 4096 tokens"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not stay in the server's prefix cache"),
        "{stderr}"
    );
    let point = &results(dir.path())[0];
    assert!(point.cache_rate_missed);
    assert!(
        point.achieved_cache_rate.unwrap() < 0.5,
        "{:?}",
        point.achieved_cache_rate
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("* the achieved cache-hit rate missed the target"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_reproduces_every_prompt_and_a_warm_rerun_is_flagged() {
    // Room for every prompt of several runs: nothing is evicted.
    let server = simulator(SimConfig {
        kv_capacity_tokens: 1 << 24,
        ..SimConfig::for_tests(TIME_SCALE)
    })
    .await;
    let run_at_zero = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = sweep_args(&server.url(), dir.path());
        args.extend(["--cache-hit-rates", "0", "--num-retries", "0"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        (dir, args)
    };
    let achieved = |outcome: &cacherate::runner::RunOutcome| {
        let point = &outcome.points[0];
        (point.achieved_cache_rate.unwrap(), point.cache_rate_missed)
    };

    // The first run is twice as long, so the rerun's requests (ids from 0
    // on, whatever its ramp does on a busy machine) are all among its own.
    let (_first_dir, args) = run_at_zero(&["--ramp-duration", "1.0", "--test-duration", "3.0"]);
    let first = cacherate::runner::run(settings(&args), &args)
        .await
        .unwrap();
    assert_eq!(achieved(&first), (0.0, false));

    // The same seed sends the same "unique" suffixes: the server has them.
    let (_again_dir, args) = run_at_zero(&[]);
    let again = cacherate::runner::run(settings(&args), &args)
        .await
        .unwrap();
    let (rate, missed) = achieved(&again);
    assert!(
        rate > 0.5 && missed,
        "a warm rerun hit {rate}, flagged {missed}"
    );

    // Flushed first, the same prompts measure cold again.
    let (_flushed_dir, args) = run_at_zero(&["--flush-cache", "auto"]);
    let flushed = cacherate::runner::run(settings(&args), &args)
        .await
        .unwrap();
    assert_eq!(achieved(&flushed), (0.0, false));

    // Another seed, other suffixes: nothing hits without a flush.
    let (_other_dir, args) = run_at_zero(&["--seed", "8"]);
    let other = cacherate::runner::run(settings(&args), &args)
        .await
        .unwrap();
    assert_eq!(achieved(&other), (0.0, false));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_times_summary_keeps_the_figures_and_drops_the_bulk() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let bytes_per_row = |dir: &Path| {
        let rows = records(dir, 512).len() as f64;
        std::fs::metadata(dir.join("detailed_results_512.csv"))
            .unwrap()
            .len() as f64
            / rows
    };
    let mut per_row = Vec::new();
    for chunk_times in ["all", "summary"] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = sweep_args(&server.url(), dir.path());
        args.extend(["--output-tokens", "64", "--cache-hit-rates", "50"].map(String::from));
        args.extend(["--chunk-times".to_string(), chunk_times.to_string()]);
        let outcome = cacherate::runner::run(settings(&args), &args)
            .await
            .unwrap();
        let point = &outcome.points[0];
        // ITL quantiles come from every chunk either way.
        assert!(
            point.itl.p50 > 0.0 && point.itl.p99 >= point.itl.p50,
            "{point:?}"
        );
        for row in records(dir.path(), 512)
            .iter()
            .filter(|r| r.ok() && r.phase_id != "WARMUP")
        {
            assert_eq!(row.chunks, 64);
            assert!(row.ttft_s.is_some() && row.ttlt_s.is_some() && row.max_chunk_gap_s.is_some());
            assert_eq!(row.tokens_per_chunk, [1]);
            match chunk_times {
                "all" => assert_eq!(row.chunk_times_us.len(), 64),
                _ => assert!(row.chunk_times_us.is_empty()),
            }
        }
        let script = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains("run_command_"))
            .unwrap();
        let script = std::fs::read_to_string(script).unwrap();
        assert!(
            script.contains(&format!("'--chunk-times' '{chunk_times}'")),
            "{script}"
        );
        per_row.push(bytes_per_row(dir.path()));
    }
    server.stop().await.unwrap();
    assert!(
        per_row[1] < per_row[0] / 2.0,
        "bytes a row: all {:.0}, summary {:.0}",
        per_row[0],
        per_row[1]
    );
}

/// Regression: `run.json` was written before the cached-token probe and the
/// first cache flush, and only rewritten at the end, so a run still going
/// (or interrupted) said `server_reports_cached_tokens: false` and
/// `flush_cache: null`, and its index printed that. It says what the run
/// knows once it knows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_json_of_an_unfinished_run_records_the_cache_probe_and_the_flush() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&server.url(), dir.path());
    args.extend(["--flush-cache", "auto"].map(String::from));
    let stop = cacherate::runner::Stop::new();
    let running = tokio::spawn({
        let (settings, args, stop) = (settings(&args), args.clone(), stop.clone());
        async move { cacherate::runner::run_until(settings, &args, &stop).await }
    });
    // The first phase of the first point is committed: the warm-up before
    // it flushed the cache.
    let phases = dir.path().join("phase_metadata_512.csv");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !phases.exists() {
        assert!(std::time::Instant::now() < deadline, "no phase committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.after_phase();
    let error = running.await.unwrap().unwrap_err();
    assert_eq!(error.exit_code(), cacherate::exit::INTERRUPTED, "{error}");
    server.stop().await.unwrap();

    let run = run_json(dir.path());
    assert_eq!(run["status"], "running");
    assert_eq!(run["server_reports_cached_tokens"], true);
    assert_eq!(run["flush_cache"], "vLLM POST /reset_prefix_cache");
    let run_dir = cacherate::store::RunDir::existing(dir.path()).unwrap();
    cacherate::commands::report::write_reports(&run_dir).unwrap();
    let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(
        index.contains("<tr><th>server reports cached tokens</th><td>yes</td></tr>")
            && index.contains(
                "<tr><th>cache flushed with</th><td>vLLM POST &#x2f;reset_prefix_cache</td></tr>"
            ),
        "{index}"
    );
}
