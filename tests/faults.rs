//! What cacherate records when the server misbehaves: one test per fault
//! class, through the fault-injecting proxy (tests/common/fault_proxy.rs)
//! or the simulator's own fault knobs. Each asserts the error kind of the
//! saved rows, that every launched request is a row, the point's status
//! and the exit code.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use cacherate::client::{Client, Measured};
use cacherate::record::{ErrorKind, RequestRecord};
use cacherate::sim::{SimConfig, SimServer};
use cacherate::store::{PointResult, PointStatus};
use clap::Parser;
use common::fault_proxy::{Fault, FaultProxy};

/// The simulator's time runs this much faster than modelled.
const TIME_SCALE: f64 = 0.05;

async fn simulator(config: SimConfig) -> SimServer {
    common::start(SimConfig {
        time_scale: TIME_SCALE,
        ..config
    })
    .await
}

/// What a measurement says apart from its times.
fn facts(m: &Measured) -> impl PartialEq + std::fmt::Debug {
    (
        m.status,
        m.error_kind,
        m.chunks,
        m.chunk_tokens.clone(),
        m.prompt_tokens,
        m.completion_tokens,
        m.cached_tokens,
        m.chunk_times_us.len(),
    )
}

async fn measure(url: &str, timeout: Duration) -> Measured {
    let client = Client::new(vec![url.to_string()], None, timeout).unwrap();
    let body = serde_json::to_vec(&common::token_request(&common::tokens(0, 64), 4)).unwrap();
    client.stream(body, Instant::now(), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_split_at_any_byte_reads_as_the_whole_stream() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let proxy = FaultProxy::start(&server.url()).await;
    // Twice, so the reference has its prefix cached as every later one.
    measure(&server.url(), Duration::from_secs(10)).await;
    let whole = measure(&server.url(), Duration::from_secs(10)).await;
    assert_eq!(whole.error_kind, None, "{:?}", whole.error);
    assert_eq!(whole.chunks, 4);
    let raw = common::stream(
        &server.url(),
        "/v1/completions",
        common::token_request(&common::tokens(0, 64), 4),
    )
    .await
    .raw;
    let events = common::fault_proxy::split_events(raw.as_bytes());
    let longest = events.iter().map(|e| e.len()).max().unwrap();
    assert!(events.len() >= 6 && longest > 200, "{raw}");
    for at in 1..longest {
        proxy.inject(Fault::Split { at });
        let before = proxy.splits();
        let split = measure(&proxy.url(), Duration::from_secs(10)).await;
        assert_eq!(facts(&split), facts(&whole), "events cut {at} bytes in");
        // The cut happened, and the client read the pieces apart.
        let after = proxy.splits();
        let written = after.written - before.written;
        assert!(written > 0, "no event is longer than {at} bytes");
        assert_eq!(
            after.read_apart - before.read_apart,
            written,
            "events cut {at} bytes in: the client read some of them whole"
        );
    }
    server.stop().await.unwrap();
}

/// A tiny sweep: two 512-token prompts, one rate, half-second phases at
/// concurrency 2 to 4, one sample.
fn sweep_args(url: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--api-endpoint",
        url,
        "--output-dir",
        dir.to_str().unwrap(),
        "--context-sizes",
        "512",
        "--working-set-size",
        "1024",
        "--cache-hit-rates",
        "50",
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
        "2",
        "--concurrency-increment",
        "2",
        "--max-concurrency",
        "4",
        "--init-concurrency",
        "2",
        "--request-timeout",
        "10",
        "--seed",
        "7",
        "--skip-graphs",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// `cacherate run ARGS` in-process, as the binary runs it: the exit code,
/// and the error it printed.
async fn run(args: &[String]) -> (i32, String) {
    let mut argv = vec!["run".to_string()];
    argv.extend_from_slice(args);
    command(&argv).await
}

/// `cacherate ARGS` in-process, as [`run`].
async fn command(args: &[String]) -> (i32, String) {
    let mut argv = vec!["cacherate".to_string()];
    argv.extend_from_slice(args);
    let cli = cacherate::cli::Cli::try_parse_from(&argv).unwrap();
    match cacherate::run(cli, argv).await {
        Ok(code) => (code, String::new()),
        Err(e) => (e.exit_code(), e.to_string()),
    }
}

/// The rows of the phases (warm-up left out), after checking that each
/// request launched is one row: as many rows as the phases launched, with
/// no request id twice.
fn load_rows(dir: &Path) -> Vec<RequestRecord> {
    let rows: Vec<RequestRecord> = common::records(dir, 512)
        .into_iter()
        .filter(|r| r.phase_id != "WARMUP")
        .collect();
    let launched: u64 = common::phases(dir, 512).iter().map(|p| p.launched).sum();
    assert_eq!(rows.len() as u64, launched, "a launched request is missing");
    let mut ids: Vec<u64> = rows.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "a request id is there twice");
    assert!(!rows.is_empty());
    rows
}

/// Every load row failed with `kind`; the one point is an error naming
/// it, with every phase's request counted.
fn assert_all_failed(dir: &Path, kind: ErrorKind) -> (Vec<RequestRecord>, PointResult) {
    let rows = load_rows(dir);
    for row in &rows {
        assert_eq!(row.error_kind, Some(kind), "{row:?}");
        assert!(row.error.is_some(), "a failed row says why");
    }
    let points = common::results(dir);
    assert_eq!(points.len(), 1);
    let point = points[0].clone();
    assert_eq!(point.status, PointStatus::Error);
    let message = point.status_message.clone().unwrap();
    assert!(message.contains(kind.name()), "{message}");
    assert_eq!(point.failed_requests, rows.len() as u64);
    assert_eq!(point.total_requests, rows.len() as u64);
    assert!(!point.peak_passed);
    (rows, point)
}

/// A proxy in front of a fresh simulator, `fault` on every load request.
async fn faulty(fault: Fault) -> (SimServer, FaultProxy) {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let proxy = FaultProxy::start(&server.url()).await;
    proxy.inject(fault);
    (server, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_inside_the_headers_is_a_disconnect_sent_twice() {
    let (server, proxy) = faulty(Fault::ResetInHeaders).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = run(&sweep_args(&proxy.url(), dir.path(), &[])).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    let (rows, _) = assert_all_failed(dir.path(), ErrorKind::Disconnect);
    // The client cannot tell a reset from a closed keep-alive connection,
    // so it sent each once more; both attempts are one row.
    assert!(rows.iter().all(|r| r.resent && r.status == 0));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_inside_an_event_is_incomplete() {
    let (server, proxy) = faulty(Fault::TruncateInEvent(3)).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = run(&sweep_args(&proxy.url(), dir.path(), &[])).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    let (rows, _) = assert_all_failed(dir.path(), ErrorKind::Incomplete);
    for row in &rows {
        assert_eq!(
            (row.status, row.chunks),
            (200, 3),
            "the events before the cut count"
        );
        assert!(row.error.as_ref().unwrap().contains("inside an event"));
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_is_a_protocol_error() {
    let (server, proxy) = faulty(Fault::MalformedEvent(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = run(&sweep_args(&proxy.url(), dir.path(), &[])).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    let (rows, _) = assert_all_failed(dir.path(), ErrorKind::Protocol);
    for row in &rows {
        assert!(row.error.as_ref().unwrap().contains("unreadable event"));
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_never_ends_is_bounded_by_the_request_timeout() {
    // Silent right after the headers, and after two events.
    for events in [0, 2] {
        let (server, proxy) = faulty(Fault::HangAfter(events)).await;
        let dir = tempfile::tempdir().unwrap();
        let args = sweep_args(&proxy.url(), dir.path(), &["--request-timeout", "0.4"]);
        let (code, _) = run(&args).await;
        assert_eq!(code, cacherate::exit::UNREACHABLE);
        let (rows, _) = assert_all_failed(dir.path(), ErrorKind::Timeout);
        for row in &rows {
            assert_eq!(row.status, 200);
            assert_eq!(
                row.chunks, events as u32,
                "the events before the stall count"
            );
            assert!(row.finish_s >= 0.4, "{}", row.finish_s);
        }
        server.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_page_with_status_200_is_a_protocol_error() {
    let (server, proxy) = faulty(Fault::Html).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = run(&sweep_args(&proxy.url(), dir.path(), &[])).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    let (rows, _) = assert_all_failed(dir.path(), ErrorKind::Protocol);
    for row in &rows {
        let error = row.error.as_ref().unwrap();
        assert_eq!(row.status, 200);
        assert!(
            error.contains("text/html") && error.contains("Bad Gateway"),
            "{error}"
        );
    }
    server.stop().await.unwrap();
}

/// The options that let the circuit breaker stop a half-second phase.
const BREAKER: [&str; 4] = [
    "--circuit-breaker-failures",
    "3",
    "--circuit-breaker-window",
    "0.2",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_storm_trips_the_breaker_and_a_rerun_after_it_measures_the_point() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let proxy = FaultProxy::start(&server.url()).await;
    proxy.inject_for(Fault::Status(503), Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let args = sweep_args(&proxy.url(), dir.path(), &BREAKER);
    let (code, _) = run(&args).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    let (rows, point) = assert_all_failed(dir.path(), ErrorKind::Http5xx);
    assert!(rows.iter().all(|r| r.status == 503));
    let message = point.status_message.unwrap();
    assert!(message.starts_with("circuit breaker"), "{message}");
    // Stopped, not spun: the breaker ended the phase it tripped in.
    assert_eq!(common::phases(dir.path(), 512).len(), 1);

    // The storm passes; the same command measures the point again, and
    // the rows of the first attempt stay.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, error) = run(&args).await;
    assert_eq!(code, cacherate::exit::PASS, "{error}");
    let point = &common::results(dir.path())[0];
    assert_eq!((point.status, point.failed_requests), (PointStatus::Ok, 0));
    assert!(point.peak_passed && point.input_tps > 0.0);
    let all = load_rows(dir.path());
    assert_eq!(all.iter().filter(|r| !r.ok()).count(), rows.len());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_away_and_back_errors_one_point_and_the_sweep_goes_on() {
    let (server, proxy) = faulty(Fault::Away(Duration::from_secs(1))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&proxy.url(), dir.path(), &BREAKER);
    args.extend(["--cache-hit-rates", "50", "100"].map(String::from));
    let (code, _) = run(&args).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    let rows = load_rows(dir.path());
    let points = common::results(dir.path());
    assert_eq!(
        points.iter().map(|p| p.status).collect::<Vec<_>>(),
        [PointStatus::Error, PointStatus::Ok]
    );
    let message = points[0].status_message.clone().unwrap();
    assert!(message.starts_with("circuit breaker"), "{message}");
    for row in rows.iter().filter(|r| r.cache_hit_rate == 50) {
        assert!(
            matches!(
                row.error_kind,
                Some(ErrorKind::Connect | ErrorKind::Disconnect)
            ),
            "{row:?}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.error_kind == Some(ErrorKind::Connect))
    );
    assert!(
        rows.iter()
            .filter(|r| r.cache_hit_rate == 100)
            .all(|r| r.ok())
    );

    // Run again: the errored point is measured, the good one kept.
    let (code, error) = run(&args).await;
    assert_eq!(code, cacherate::exit::PASS, "{error}");
    let again = common::results(dir.path());
    assert!(again.iter().all(|p| p.status == PointStatus::Ok));
    assert_eq!(again[1], points[1]);
    assert_eq!(
        load_rows(dir.path()).len(),
        rows.len() + again[0].total_requests as usize
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_for_good_stops_the_run_with_exit_3_and_saves_the_point() {
    let (server, proxy) = faulty(Fault::Away(Duration::from_secs(3600))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&proxy.url(), dir.path(), &BREAKER);
    args.extend(["--cache-hit-rates", "50", "100"].map(String::from));
    let (code, error) = run(&args).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    assert!(
        error.contains("circuit breaker stopped ctx 512 at 50%")
            && error.contains("run the same command again"),
        "{error}"
    );
    let rows = load_rows(dir.path());
    assert!(rows.iter().all(|r| !r.ok()));
    let points = common::results(dir.path());
    assert_eq!(points.len(), 1, "the sweep stopped at the point");
    assert_eq!(points[0].status, PointStatus::Error);
    assert_eq!(points[0].total_requests, rows.len() as u64);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dropped_request_is_reported_not_an_error_of_the_point() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let proxy = FaultProxy::start(&server.url()).await;
    // The fifth load request fails, and no other.
    let once = Fault::StatusOnce {
        status: 503,
        nth: 5,
    };
    let failed_phase = |dir: &Path| {
        let phases = common::phases(dir, 512);
        let hit: Vec<_> = phases.into_iter().filter(|p| p.failed > 0).collect();
        assert_eq!(hit.len(), 1, "one phase holds the one failure: {hit:?}");
        assert_eq!(hit[0].failed, 1);
        hit.into_iter().next().unwrap()
    };
    // A limit of 0.1 %: one failure among the phase's few hundred requests
    // is over it, yet what a server failing 0.1 % of requests shows often.
    proxy.inject(once);
    let dir = tempfile::tempdir().unwrap();
    let (code, error) = run(&sweep_args(
        &proxy.url(),
        dir.path(),
        &["--max-error-rate", "0.001"],
    ))
    .await;
    assert_eq!(code, cacherate::exit::PASS, "{error}");
    assert_eq!(load_rows(dir.path()).iter().filter(|r| !r.ok()).count(), 1);
    let phase = failed_phase(dir.path());
    assert!(
        phase.failed as f64 / phase.launched as f64 > 0.001,
        "1 of {} is not over the limit: the case this test is about is not there",
        phase.launched
    );
    assert!(
        phase.passed,
        "one failure is chance at the limit: {phase:?}"
    );
    let point = &common::results(dir.path())[0];
    assert_eq!(point.status, PointStatus::Ok, "{:?}", point.status_message);
    assert_eq!(point.failed_requests, 1);

    // The same single failure under a limit of 0 fails its phase: the
    // count is judged against the limit, not ignored.
    proxy.inject(once);
    let strict = tempfile::tempdir().unwrap();
    let args = sweep_args(&proxy.url(), strict.path(), &["--max-error-rate", "0"]);
    let _ = run(&args).await;
    assert!(!failed_phase(strict.path()).passed);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_over_the_max_error_rate_mark_the_point_and_never_pass() {
    let server = simulator(SimConfig {
        error_rate: 0.3,
        ..SimConfig::for_tests(TIME_SCALE)
    })
    .await;
    let strict = tempfile::tempdir().unwrap();
    let args = sweep_args(&server.url(), strict.path(), &["--max-error-rate", "0.05"]);
    let (code, _) = run(&args).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    let rows = load_rows(strict.path());
    assert!(
        rows.iter()
            .any(|r| r.error_kind == Some(ErrorKind::Http5xx))
    );
    assert!(
        rows.iter()
            .all(|r| r.ok() || (r.error_kind == Some(ErrorKind::Http5xx) && r.status == 500))
    );
    let point = &common::results(strict.path())[0];
    assert_eq!(point.status, PointStatus::Error);
    assert!(!point.peak_passed, "no level with 30 % errors holds");
    let message = point.status_message.as_deref().unwrap();
    assert!(message.contains("--max-error-rate 5.0 %") && message.contains("http_5xx"));
    assert!(
        common::phases(strict.path(), 512).iter().all(|p| !p.passed),
        "no phase passes, so none is a peak"
    );
    let summary: Vec<csv::StringRecord> = csv::Reader::from_path(strict.path().join("summary.csv"))
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    let header = csv::Reader::from_path(strict.path().join("summary.csv"))
        .unwrap()
        .headers()
        .unwrap()
        .clone();
    let column = header.iter().position(|h| h == "status").unwrap();
    assert_eq!(&summary[0][column], "error");
    assert_eq!(
        common::run_json(strict.path())["status"],
        "complete_with_errors"
    );
    let run_dir = cacherate::store::RunDir::open(strict.path()).unwrap();
    cacherate::commands::report::write_reports(&run_dir).unwrap();
    let index = std::fs::read_to_string(strict.path().join("index.html")).unwrap();
    assert!(
        index
            .contains(r#"<span class="flag" title="too many failed requests for --max-error-rate"#)
            && index.contains(">error</span>"),
        "the report marks the point"
    );

    // The same server under a looser limit: a measured point.
    let loose = tempfile::tempdir().unwrap();
    let args = sweep_args(&server.url(), loose.path(), &["--max-error-rate", "0.9"]);
    let (code, error) = run(&args).await;
    assert_eq!(code, cacherate::exit::PASS, "{error}");
    assert_eq!(common::run_json(loose.path())["status"], "complete");
    let point = &common::results(loose.path())[0];
    assert_eq!(
        (point.status, &point.status_message),
        (PointStatus::Ok, &None)
    );
    assert!(point.error_rate > 0.1 && point.peak_passed);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_samples_cut_short_by_the_breaker_are_counted_but_are_no_samples() {
    let (server, proxy) = faulty(Fault::Pass).await;
    let dir = tempfile::tempdir().unwrap();
    let args = sweep_args(&proxy.url(), dir.path(), &BREAKER);
    let (code, error) = run(&args).await;
    assert_eq!(code, cacherate::exit::PASS, "{error}");
    let before = common::results(dir.path())[0].clone();

    // What a gate does at an inconclusive point, against a 503 storm.
    proxy.inject(Fault::Status(503));
    let mut settings = common::run_settings(&args);
    settings.sample_targets = vec![(512, 50, 3)];
    cacherate::runner::run(settings, &args).await.unwrap();
    let after = common::results(dir.path())[0].clone();
    let failed = load_rows(dir.path())
        .iter()
        .filter(|r| r.status == 503)
        .count() as u64;
    assert!(failed >= 3);
    assert_eq!(after.samples, before.samples);
    assert_eq!(
        (after.status, after.input_tps),
        (PointStatus::Ok, before.input_tps)
    );
    assert_eq!(after.failed_requests, before.failed_requests + failed);
    assert_eq!(after.phases, before.phases + 1);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_whose_point_the_breaker_stopped_exits_3_and_is_no_baseline() {
    let (server, proxy) = faulty(Fault::Pass).await;
    let root = tempfile::tempdir().unwrap();
    let baselines = root.path().join("baselines");
    let refresh = |name: &str, from: &Path| -> Vec<String> {
        let mut args: Vec<String> = ["baseline", "refresh", name, "--from-run"]
            .map(String::from)
            .to_vec();
        args.push(from.to_str().unwrap().into());
        args.extend(["--baselines-dir".into(), baselines.to_str().unwrap().into()]);
        args
    };
    let good = root.path().join("good");
    let mut args = sweep_args(&proxy.url(), &good, &BREAKER);
    args.extend(["--num-retries", "3"].map(String::from));
    assert_eq!(run(&args).await.0, cacherate::exit::PASS);
    let (code, error) = command(&refresh("sim", &good)).await;
    assert_eq!(code, cacherate::exit::PASS, "{error}");

    proxy.inject(Fault::Away(Duration::from_secs(1)));
    let gated = root.path().join("gated");
    let mut args = vec!["gate".to_string()];
    args.extend(sweep_args(&proxy.url(), &gated, &BREAKER));
    args.extend(["--num-retries", "3", "--baseline"].map(String::from));
    args.push(baselines.join("sim.json").to_str().unwrap().into());
    let (code, error) = command(&args).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE, "{error}");
    assert!(
        error.contains("ctx 512 at 50% was not measured (circuit breaker"),
        "{error}"
    );
    let (code, error) = command(&refresh("errored", &gated)).await;
    assert_ne!(code, cacherate::exit::PASS);
    assert!(error.contains("errored at ctx 512 at 50%"), "{error}");
    server.stop().await.unwrap();
}

/// The breaker covers sustained mode's continuous load too: the period it
/// trips in is the last, saved whole, and the point is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_storm_stops_a_sustained_point_at_the_period_it_trips_in() {
    let (server, proxy) = faulty(Fault::Status(503)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&proxy.url(), dir.path(), &BREAKER);
    args.extend(
        [
            "--mode",
            "sustained",
            "--assessment-period",
            "0.5",
            "--test-duration",
            "5",
        ]
        .map(String::from),
    );
    let (code, _) = run(&args).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE);
    let (rows, point) = assert_all_failed(dir.path(), ErrorKind::Http5xx);
    assert!(rows.iter().all(|r| r.status == 503));
    let message = point.status_message.unwrap();
    assert!(message.starts_with("circuit breaker"), "{message}");
    let periods = common::phases(dir.path(), 512).len();
    assert!(
        (1..10).contains(&periods),
        "stopped at the period it tripped in, not after all ten: {periods}"
    );
    server.stop().await.unwrap();
}

/// A sustained point whose server goes away: the breaker ends the point at
/// that period (not the run), and the sweep goes on once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_away_ends_a_sustained_point_and_the_sweep_goes_on() {
    let (server, proxy) = faulty(Fault::Away(Duration::from_secs(1))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = sweep_args(&proxy.url(), dir.path(), &BREAKER);
    args.extend(
        [
            "--cache-hit-rates",
            "50",
            "100",
            "--mode",
            "sustained",
            "--assessment-period",
            "0.5",
            "--test-duration",
            "2",
        ]
        .map(String::from),
    );
    let (code, error) = run(&args).await;
    assert_eq!(code, cacherate::exit::UNREACHABLE, "{error}");
    let points = common::results(dir.path());
    assert_eq!(
        points.iter().map(|p| p.status).collect::<Vec<_>>(),
        [PointStatus::Error, PointStatus::Ok],
        "{error}"
    );
    let message = points[0].status_message.clone().unwrap();
    assert!(message.starts_with("circuit breaker"), "{message}");
    server.stop().await.unwrap();
}
