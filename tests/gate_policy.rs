//! What `gate`, `compare`, `calibrate` and `baseline refresh` decide from
//! their settings, each a regression test of a defect: the exit code and
//! `junit.xml` agree under `--fail-on-inconclusive`; an `insufficient`
//! verdict does not pass; a profile's `output-dir` holds the runs of
//! `baseline refresh` and `calibrate`; a fixed load implies `--mode fixed`.

mod common;
mod verdict_fixture;

use std::path::Path;

use cacherate::analysis::document::VerdictFile;
use cacherate::analysis::{Verdict, exit_code};
use cacherate::cli::{BaselineCommand, Cli, Command};
use cacherate::exit;
use cacherate::runner::Stop;
use cacherate::settings::{FixedLoadSpec, GateSettings, Mode};
use cacherate::sim::{SimConfig, SimServer};
use clap::Parser;
use verdict_fixture::{Change, JunitCounts};

/// The failures and errors of a JUnit file, as its `<testsuite>`s declare
/// them.
fn junit_failing(verdict: &VerdictFile) -> (usize, usize) {
    let xml = String::from_utf8(cacherate::report::junit::render(verdict).unwrap()).unwrap();
    let count = |needle: &str| xml.matches(needle).count();
    (count("<failure"), count("<error"))
}

/// A run whose only change is a noisy 7 % drop at one point: neither
/// clearly within tolerance nor beyond it.
fn inconclusive() -> VerdictFile {
    verdict_fixture::verdict("m", &[2048], &[0, 50, 100], |_, rate| match rate {
        0 => Change {
            factors: [0.93, 1.0, 1.0, 1.0],
            noisy: true,
            ..Change::SAME
        },
        _ => Change::SAME,
    })
}

/// A run whose output throughput is 0 at one point: no verdict can be
/// given there.
fn insufficient() -> VerdictFile {
    verdict_fixture::verdict("m", &[2048], &[0, 50, 100], |_, rate| match rate {
        50 => Change::factors([1.0, 0.0, 1.0, 1.0]),
        _ => Change::SAME,
    })
}

#[test]
fn junit_fails_exactly_when_the_exit_code_does() {
    let same = verdict_fixture::verdict("m", &[2048], &[0, 50, 100], |_, _| Change::SAME);
    for mut verdict in [
        verdict_fixture::mixed(),
        same,
        inconclusive(),
        insufficient(),
    ] {
        for flag in [false, true] {
            verdict.fail_on_inconclusive = flag;
            let code = exit_code(verdict.overall.verdict, flag);
            let (failures, errors) = junit_failing(&verdict);
            assert_eq!(
                code != exit::PASS,
                failures + errors > 0,
                "{} with --fail-on-inconclusive {flag}: exit {code}, JUnit {failures} \
                 failures and {errors} errors",
                verdict.overall.summary
            );
            let expected: JunitCounts = verdict_fixture::expected_junit_counts(&verdict)
                .values()
                .fold(JunitCounts::default(), |sum, c| JunitCounts {
                    tests: sum.tests + c.tests,
                    failures: sum.failures + c.failures,
                    errors: sum.errors + c.errors,
                    skipped: sum.skipped + c.skipped,
                });
            assert_eq!((failures, errors), (expected.failures, expected.errors));
        }
    }
}

#[test]
fn an_inconclusive_gate_under_the_flag_exits_4_and_fails_in_junit() {
    let mut verdict = inconclusive();
    assert_eq!(verdict.overall.verdict, Verdict::Inconclusive);
    assert_eq!(exit_code(verdict.overall.verdict, false), exit::PASS);
    assert_eq!(junit_failing(&verdict), (0, 0), "skipped without the flag");
    verdict.fail_on_inconclusive = true;
    assert_eq!(exit_code(verdict.overall.verdict, true), exit::INCONCLUSIVE);
    let (failures, _) = junit_failing(&verdict);
    assert!(failures > 0, "an inconclusive gated verdict is a failure");
}

#[test]
fn an_insufficient_verdict_fails_the_gate() {
    let verdict = insufficient();
    assert_eq!(verdict.overall.verdict, Verdict::Insufficient);
    assert_eq!(exit_code(verdict.overall.verdict, false), exit::REGRESSION);
    assert!(
        verdict.overall.insufficient[0].starts_with("ctx2048/cache50/output_throughput: "),
        "{:?}",
        verdict.overall.insufficient
    );
    assert!(
        verdict.overall.summary.starts_with("insufficient: "),
        "{}",
        verdict.overall.summary
    );
    let (_, errors) = junit_failing(&verdict);
    assert!(errors > 0, "JUnit shows the broken measurement");
}

fn parse(argv: &[&str]) -> Command {
    let mut all = vec!["cacherate"];
    all.extend_from_slice(argv);
    Cli::try_parse_from(all).unwrap().command
}

/// Short phases at one point, three samples, four requests at a time.
const SWEEP: [&str; 22] = [
    "--context-sizes",
    "1024",
    "--working-set-size",
    "4096",
    "--cache-hit-rates",
    "50",
    "--output-tokens",
    "16",
    "--max-ttft",
    "5",
    "--ramp-duration",
    "0.4",
    "--test-duration",
    "1.2",
    "--sample-duration",
    "0.4",
    "--num-retries",
    "3",
    "--init-concurrency",
    "4",
    "--reinit-strategy",
    "per_cache_rate",
];

/// A fixed load of four requests at a time.
const FIXED: [&str; 2] = ["--fixed-concurrency-levels", "4"];

async fn simulator() -> SimServer {
    common::start(SimConfig {
        seed: 5,
        cold_start_seconds: 0.0,
        ..SimConfig::for_tests(0.1)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_and_calibrate_put_their_runs_under_a_profiles_output_dir() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("from-profile");
    std::fs::write(
        root.path().join("cacherate.toml"),
        format!("[profile.here]\noutput-dir = {:?}\n", out.to_str().unwrap()),
    )
    .unwrap();
    let server = simulator().await;
    let url = server.url();
    let baselines = root.path().join("baselines");
    let mut argv = vec!["baseline", "refresh", "sim", "--runs", "1", "--quiet"];
    argv.extend(["--profile", "here", "--api-endpoint", &url]);
    argv.extend(["--baselines-dir", baselines.to_str().unwrap()]);
    argv.extend(SWEEP);
    argv.extend(FIXED);
    let Command::Baseline(BaselineCommand::Refresh(args)) = parse(&argv) else {
        unreachable!()
    };
    let code = cacherate::commands::baseline::refresh(&args, &[], root.path(), &Stop::new())
        .await
        .unwrap();
    assert_eq!(code, exit::PASS);
    assert!(out.join("baseline-sim/run-1/results.json").is_file());

    let baseline = baselines.join("sim.json");
    let mut argv = vec!["calibrate", "--runs", "2", "--quiet", "--profile", "here"];
    argv.extend([
        "--baseline",
        baseline.to_str().unwrap(),
        "--api-endpoint",
        &url,
    ]);
    argv.extend(SWEEP);
    let Command::Calibrate(args) = parse(&argv) else {
        unreachable!()
    };
    let code = cacherate::commands::calibrate::command(&args, &[], root.path(), &Stop::new())
        .await
        .unwrap();
    server.stop().await.unwrap();
    assert_eq!(code, exit::PASS);
    for k in [1, 2] {
        let run = out.join(format!("calibrate-sim/run-{k}/results.json"));
        assert!(run.is_file(), "{} is missing", run.display());
    }
}

/// An earlier run's results, only the fields the loads come from.
fn earlier_results(dir: &Path) -> std::path::PathBuf {
    let from = dir.join("earlier.json");
    std::fs::write(
        &from,
        r#"{"schema_version": 2, "points": [
            {"context_size": 1024, "cache_hit_rate": 50, "peak_concurrency": 3}]}"#,
    )
    .unwrap();
    from
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_from_an_earlier_run_implies_fixed_mode() {
    let dir = tempfile::tempdir().unwrap();
    let from = earlier_results(dir.path());
    let server = simulator().await;
    let url = server.url();
    let out = dir.path().join("run");
    let mut argv = vec!["run", "--quiet", "--skip-graphs", "--api-endpoint", &url];
    argv.extend(["--concurrency-from", from.to_str().unwrap()]);
    argv.extend(["--output-dir", out.to_str().unwrap()]);
    argv.extend(SWEEP);
    let Command::Run(args) = parse(&argv) else {
        unreachable!()
    };
    let code = cacherate::commands::run::command(*args, &[], dir.path(), &Stop::new())
        .await
        .unwrap();
    server.stop().await.unwrap();
    assert_eq!(code, exit::PASS);
    let ids: Vec<String> = common::phases(&out, 1024)
        .into_iter()
        .map(|p| p.phase_id)
        .collect();
    assert_eq!(
        ids,
        [
            "FIXED_c3_warmup",
            "FIXED_c3_run1",
            "FIXED_c3_run2",
            "FIXED_c3_run3"
        ]
    );
}

#[test]
fn fixed_levels_imply_fixed_mode_and_another_mode_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |extra: &[&str]| {
        let mut argv = vec!["run"];
        argv.extend_from_slice(&SWEEP);
        argv.extend_from_slice(extra);
        let Command::Run(args) = parse(&argv) else {
            unreachable!()
        };
        cacherate::commands::run::settings(*args, dir.path())
    };
    let levels = settings(&["--fixed-concurrency-levels", "8", "4"]).unwrap();
    assert_eq!(levels.mode, Mode::Fixed);
    assert_eq!(levels.fixed_load, Some(FixedLoadSpec::Levels(vec![4, 8])));
    let from = earlier_results(dir.path());
    let from = from.to_str().unwrap();
    for mode in ["adaptive", "sustained"] {
        let error = settings(&["--mode", mode, "--concurrency-from", from])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("--mode {mode} chooses its own load")),
            "{error}"
        );
    }
}

#[test]
fn a_gate_takes_the_load_its_command_line_gives() {
    let dir = tempfile::tempdir().unwrap();
    let mut argv = vec!["gate", "--baseline", "baselines/b.json"];
    argv.extend(SWEEP);
    argv.extend(FIXED);
    let Command::Gate(args) = parse(&argv) else {
        unreachable!()
    };
    let never = |path: &Path| -> cacherate::error::Result<Vec<(u64, u32, u32)>> {
        panic!("{} read: the command line gives the load", path.display())
    };
    let settings = GateSettings::resolve(&args, dir.path(), &never).unwrap();
    assert_eq!(settings.run.mode, Mode::Fixed);
    assert_eq!(
        settings.run.fixed_load,
        Some(FixedLoadSpec::Levels(vec![4]))
    );
    // Without one, the baseline's loads.
    let mut argv = vec!["gate", "--baseline", "baselines/b.json"];
    argv.extend(SWEEP);
    let Command::Gate(args) = parse(&argv) else {
        unreachable!()
    };
    let baseline = |path: &Path| -> cacherate::error::Result<Vec<(u64, u32, u32)>> {
        assert_eq!(path, Path::new("baselines/b.json"));
        Ok(vec![(1024, 50, 6)])
    };
    let settings = GateSettings::resolve(&args, dir.path(), &baseline).unwrap();
    assert_eq!(
        settings.run.fixed_load,
        Some(FixedLoadSpec::PerPoint(vec![(1024, 50, 6)]))
    );
}
