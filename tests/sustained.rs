//! `--mode sustained` against the simulator: the controller's continuous
//! load per point, the seed's period log, the point result it settles on,
//! and a killed sustained point that resumes after its last written period.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use cacherate::sim::{SimConfig, SimServer};
use cacherate::store::PlanKind;
use common::child::Running;
use common::{progress, records, results, run_settings, uncommitted_requests};

/// The simulator runs ten times faster than modelled: a 2 s period holds
/// many requests of 2048-token prompts.
const TIME_SCALE: f64 = 0.1;
const PERIODS: usize = 6;

/// 2048-token prompts, six periods of 2 s, TTFT limit 0.1 s (1 s of the
/// modelled server): prefill-bound at 0 %, far lighter at 100 %.
fn args(url: &str, dir: &Path, rates: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--api-endpoint",
        url,
        "--output-dir",
        dir.to_str().unwrap(),
        "--mode",
        "sustained",
        "--assessment-period",
        "2",
        "--test-duration",
        "12",
        "--context-sizes",
        "2048",
        "--working-set-size",
        "8192",
        "--output-tokens",
        "8",
        "--max-ttft",
        "0.1",
        "--start-concurrency",
        "4",
        "--concurrency-increment",
        "4",
        "--max-concurrency",
        "32",
        "--init-concurrency",
        "4",
        "--reinit-strategy",
        "per_cache_rate",
        "--request-timeout",
        "10",
        "--seed",
        "5",
        "--quiet",
        "--skip-graphs",
        "--cache-hit-rates",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(rates.iter().map(|s| s.to_string()));
    args
}

async fn simulator() -> SimServer {
    common::start(SimConfig {
        cold_start_seconds: 0.0,
        ..SimConfig::for_tests(TIME_SCALE)
    })
    .await
}

/// The period log of a point, and its rows as column → value maps.
fn period_log(dir: &Path, rate: u32) -> (PathBuf, Vec<BTreeMap<String, String>>) {
    let prefix = format!("sustained_periods_ctx2048_cache{rate}_");
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect();
    assert_eq!(files.len(), 1, "one period log for {rate}%: {files:?}");
    let rows = csv::Reader::from_path(&files[0])
        .unwrap()
        .deserialize()
        .map(|row| row.unwrap())
        .collect();
    (files[0].clone(), rows)
}

fn number(row: &BTreeMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?}", row[column]))
}

/// The period log is whole: one row per period in order, each period at
/// the concurrency the one before decided, windows inside their periods,
/// every request launched counted once.
fn assert_period_log_complete(rows: &[BTreeMap<String, String>]) {
    assert_eq!(rows.len(), PERIODS);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(number(row, "period") as usize, i + 1);
        let decision = row["decision"].as_str();
        assert!(
            [
                "RAMP_UP",
                "RAMP_DOWN",
                "PLATEAU_RAMP_DOWN",
                "STAY",
                "MIN_REACHED",
                "MAX_REACHED"
            ]
            .contains(&decision),
            "{decision}"
        );
        assert!(number(row, "launched") > 0.0);
        assert_eq!(
            number(row, "completed") + number(row, "failed"),
            number(row, "launched")
        );
        assert!(number(row, "window_requests") > 0.0, "period {}", i + 1);
        assert!(number(row, "input_tokens") > 0.0 && number(row, "input_tps") > 0.0);
        assert!(number(row, "output_tokens") > 0.0 && number(row, "ttft_p95_s") > 0.0);
        let (start, window_start, window_end, end) = (
            number(row, "start_unix_s"),
            number(row, "window_start_unix_s"),
            number(row, "window_end_unix_s"),
            number(row, "end_unix_s"),
        );
        assert!(start <= window_start && window_start < window_end && window_end <= end);
        assert_eq!(
            row["passed"] == "true",
            number(row, "measured_ttft_s") <= 0.1
        );
        if let Some(next) = rows.get(i + 1) {
            assert_eq!(row["next_concurrency"], next["concurrency"]);
            // Periods follow each other without a gap: the load never
            // stopped.
            assert_eq!(row["window_end_unix_s"], next["start_unix_s"]);
        }
    }
    assert_eq!(rows[0]["concurrency"], "4", "the start concurrency");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sustained_sweep_settles_higher_with_the_cache_and_logs_every_period() {
    let server = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let args = args(&server.url(), dir.path(), &["0", "100"]);
    let outcome = cacherate::runner::run(run_settings(&args), &args)
        .await
        .unwrap();
    server.stop().await.unwrap();

    let points = outcome.points;
    assert_eq!(points.len(), 2);
    let rows_of_requests = records(dir.path(), 2048);
    for point in &points {
        assert_eq!(point.plan, PlanKind::Sustained);
        assert!(point.peak_passed, "{point:?}");
        assert_eq!(point.selection_phase, None);
        assert!(!point.samples.is_empty());
        assert_eq!(point.phases as usize, PERIODS);
        // The samples are the passing periods at the settled level.
        for sample in &point.samples {
            assert!(
                sample.phase_id.starts_with("PERIOD_"),
                "{}",
                sample.phase_id
            );
            assert_eq!(sample.concurrency, point.peak_concurrency);
            assert!(sample.passed);
        }
        let (_, rows) = period_log(dir.path(), point.cache_hit_rate);
        assert_period_log_complete(&rows);
        let passing_at_peak = rows
            .iter()
            .filter(|r| {
                r["passed"] == "true" && number(r, "concurrency") as u32 == point.peak_concurrency
            })
            .count();
        assert_eq!(point.samples.len(), passing_at_peak);
        // Every request the point sent is in one period: none lost.
        let launched: f64 = rows.iter().map(|r| number(r, "launched")).sum();
        let sent = rows_of_requests
            .iter()
            .filter(|r| r.cache_hit_rate == point.cache_hit_rate && r.phase_id != "WARMUP")
            .count();
        assert_eq!(launched as usize, sent);
        assert_eq!(point.total_requests as usize, sent);
    }
    let (cold, warm) = (&points[0], &points[1]);
    assert!(
        warm.peak_concurrency > cold.peak_concurrency,
        "settled at {} (100 %) vs {} (0 %)",
        warm.peak_concurrency,
        cold.peak_concurrency
    );
    assert!(warm.input_tps > cold.input_tps);
    let summary = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 3, "header and two points");
    assert_eq!(summary.matches(",sustained,").count(), 2, "{summary}");
    let phases = common::phases(dir.path(), 2048);
    assert_eq!(phases.len(), 2 * PERIODS);
    // The reports: each point's page lists every period's decision, and
    // one page per rate sets the contexts' periods side by side.
    let report = Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(report.status.success(), "{report:?}");
    for point in &points {
        let rate = point.cache_hit_rate;
        let page =
            std::fs::read_to_string(dir.path().join(format!("ramp_ctx2048_cache{rate}.html")))
                .unwrap();
        let (_, rows) = period_log(dir.path(), rate);
        for row in &rows {
            let decided = format!("{} → {}", row["decision"], row["next_concurrency"]);
            assert!(page.contains(&decided), "{decided} missing at {rate}%");
        }
        let comparison = std::fs::read_to_string(
            dir.path()
                .join(format!("sustained_cache{rate}_comparison.html")),
        )
        .unwrap();
        assert!(comparison.contains("ctx 2048"));
    }
}

/// `cacherate run ARGS…`.
fn binary(args: &[String]) -> Command {
    let mut argv = vec!["run".to_string()];
    argv.extend_from_slice(args);
    common::child::cacherate(&argv)
}

/// Blocks (off the runtime's workers) until the run has written `periods`
/// periods and requests of the period after them have completed: that
/// period is under way, however long getting there took.
fn wait_for_period_under_way(child: &mut Running, dir: &Path, periods: usize) {
    tokio::task::block_in_place(|| {
        child.wait_for_progress(dir, "the periods waited for", |p| {
            p.current
                .as_ref()
                .is_some_and(|c| c.phases.len() >= periods)
        });
        while uncommitted_requests(dir, 2048).is_empty() {
            assert!(child.try_wait().is_none(), "the run ended early");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sustained_point_resumes_after_its_last_written_period() {
    let server = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let args = args(&server.url(), dir.path(), &["100"]);
    let mut child = Running::spawn(binary(&args));
    // Kill inside the next period, once some of its requests completed,
    // without warning.
    wait_for_period_under_way(&mut child, dir.path(), 2);
    assert!(child.try_wait().is_none(), "the run ended before the kill");
    child.kill();
    let killed = progress(dir.path()).unwrap();
    let kept = killed.current.as_ref().unwrap().phases.len();
    assert!((2..PERIODS).contains(&kept), "{kept} periods written");
    // The requests the killed run completed and did not commit: the whole
    // rows of its journal whose ids are not in the committed rows.
    let completed_uncommitted = uncommitted_requests(dir.path(), 2048);
    assert!(
        !completed_uncommitted.is_empty(),
        "requests of the period in flight had completed"
    );
    let (log, _) = period_log(dir.path(), 100);
    let before = std::fs::read_to_string(&log).unwrap();
    assert_eq!(before.lines().count(), kept + 1);
    // The worst case of a kill: a row torn in the middle of its append.
    let torn = format!("{}9,1795840000.5,17", kept + 1);
    std::fs::write(&log, format!("{before}{torn}")).unwrap();

    let output = binary(&args).output().unwrap();
    assert!(output.status.success());
    server.stop().await.unwrap();

    let after = progress(dir.path()).unwrap();
    assert_eq!(after.attempt, 1);
    assert_eq!(after.completed, vec![(2048, 100)]);
    // The same file, its rows of the killed run kept byte for byte, and
    // the periods after them measured by the resumed run.
    let (same, rows) = period_log(dir.path(), 100);
    assert_eq!(same, log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with(&before), "{before}\n---\n{text}");
    assert!(!text.contains(&torn), "the torn row was cut");
    assert_period_log_complete_after_resume(&rows, kept);
    let point = &results(dir.path())[0];
    assert_eq!(point.phases as usize, PERIODS);
    assert!(!point.samples.is_empty());
    // No request id twice, and every request row of a period parses (the
    // killed period's partial rows are gone).
    let requests = records(dir.path(), 2048);
    let mut ids: Vec<u64> = requests.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    let all = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), all);
    // Every request a period launched is a row of that period; the
    // requests the killed run had completed are kept too, marked as such.
    for row in &rows {
        let id = format!("PERIOD_{}", number(row, "period"));
        let of_period = requests.iter().filter(|r| r.phase_id == id).count();
        assert_eq!(of_period, number(row, "launched") as usize, "{id}");
    }
    let stopped: std::collections::BTreeSet<u64> = requests
        .iter()
        .filter(|r| r.phase_id.ends_with(cacherate::store::UNFINISHED_SUFFIX))
        .map(|r| r.request_id)
        .collect();
    assert_eq!(stopped, completed_uncommitted);
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// As [`assert_period_log_complete`], except that the period resumed after
/// the kill starts a new load: it follows its predecessor's decision but
/// not its boundary.
fn assert_period_log_complete_after_resume(rows: &[BTreeMap<String, String>], kept: usize) {
    assert_eq!(rows.len(), PERIODS);
    assert_eq!(
        rows[kept - 1]["next_concurrency"],
        rows[kept]["concurrency"]
    );
    let mut joined: Vec<BTreeMap<String, String>> = rows.to_vec();
    // Make the one boundary the kill broke continuous for the shared check.
    let boundary = joined[kept - 1]["window_end_unix_s"].clone();
    joined[kept].insert("start_unix_s".into(), boundary.clone());
    if number(&joined[kept], "window_start_unix_s") < number(&joined[kept], "start_unix_s") {
        joined[kept].insert("window_start_unix_s".into(), boundary);
    }
    assert_period_log_complete(&joined);
}

/// Ctrl-C in sustained mode: the period in flight is measured to its
/// boundary and saved, then the run ends with 130; a second Ctrl-C ends it
/// at once and keeps the completed requests as stopped rows. Either way
/// the same command then completes the point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_a_sustained_point_at_a_period_and_again_at_once() {
    let server = simulator().await;
    for twice in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let args = args(&server.url(), dir.path(), &["100"]);
        let mut child = Running::spawn(binary(&args));
        // Inside the second period, once some of its requests completed.
        wait_for_period_under_way(&mut child, dir.path(), 1);
        // The second signal only once the first was taken: sent close
        // together, two signals can arrive as one.
        let mut second_sent = None;
        tokio::task::block_in_place(|| {
            child.interrupt("INT");
            if twice {
                second_sent = Some(unix_now());
                child.interrupt_again("INT");
            }
        });
        let (code, stderr) = tokio::task::block_in_place(|| child.finish());
        assert_eq!(code, Some(130), "{stderr}");
        let periods = progress(dir.path()).unwrap().current.unwrap().phases.len();
        let stopped: Vec<_> = records(dir.path(), 2048)
            .into_iter()
            .filter(|r| r.phase_id.ends_with(cacherate::store::UNFINISHED_SUFFIX))
            .collect();
        let (_, rows) = period_log(dir.path(), 100);
        if let Some(sent) = second_sent {
            // Stopped inside the second period (it ends one period after
            // the first one's window): only the first is written, the
            // second's completed requests are kept.
            let boundary = number(&rows[0], "window_end_unix_s") + 2.0;
            assert!(
                sent < boundary,
                "the second Ctrl-C went at {sent:.3}, after the second period's end at \
                 {boundary:.3}: nothing was left to stop"
            );
            assert_eq!(periods, 1, "{stderr}");
            assert!(!stopped.is_empty(), "the completed requests are kept");
        } else {
            // The second period ran to its boundary and was saved whole.
            assert_eq!(periods, 2, "{stderr}");
            assert!(stopped.is_empty());
        }
        assert_eq!(rows.len(), periods);

        let output = binary(&args).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (_, rows) = period_log(dir.path(), 100);
        assert_eq!(rows.len(), PERIODS);
        assert_eq!(results(dir.path())[0].phases as usize, PERIODS);
    }
    server.stop().await.unwrap();
}
