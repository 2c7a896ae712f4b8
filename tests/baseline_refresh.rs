//! `cacherate baseline refresh` through the binary: every refusal, named
//! with the run it refuses, and `--force` making the baseline anyway;
//! `--commit` in a real git repository, after an interrupted refresh that
//! the same command resumes. Runs are of the embedded simulator with
//! scaled time; nothing here depends on what they measured.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::binary::{copy_dir, read_json, text, write_json};
use serde_json::Value;

/// Two points, three samples each at a fixed load of 4 (`FIXED`).
const FIXED: [&str; 4] = ["--mode", "fixed", "--fixed-concurrency-levels", "4"];

/// The sweep's options, then `extra` (a later option overrides an earlier
/// one).
fn sweep(extra: &[&str]) -> Vec<String> {
    let common = "--context-sizes 512 --working-set-size 2048 --cache-hit-rates 0 100 \
                  --output-tokens 8 --max-ttft 9 --ramp-duration 0.3 --sample-duration 0.4 \
                  --num-retries 3 --init-concurrency 4 --reinit-strategy per_cache_rate \
                  --sim-time-scale 0.05 --seed 7 --skip-graphs --quiet";
    common
        .split_whitespace()
        .chain(extra.iter().copied())
        .map(String::from)
        .collect()
}

fn cacherate(cwd: &Path, args: &[String]) -> Command {
    common::binary::cacherate(cwd, args)
}

/// [`FIXED`], then `extra`.
fn fixed(extra: &[&'static str]) -> Vec<&'static str> {
    [&FIXED[..], extra].concat()
}

/// `cacherate run` of [`sweep`] with `extra` into `dir`.
fn run(root: &Path, dir: &str, extra: &[&str]) -> PathBuf {
    let out = root.join(dir);
    let mut args = vec!["run".to_string()];
    args.extend(sweep(extra));
    args.extend(["--output-dir".to_string(), out.display().to_string()]);
    let output = cacherate(root, &args).output().unwrap();
    assert!(output.status.success(), "{dir}: {}", text(&output));
    out
}

/// A copy of `run` named `name`, changed by `edit`.
fn edited(root: &Path, run: &Path, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let copy = root.join(name);
    copy_dir(run, &copy);
    edit(&copy);
    copy
}

fn refresh_from(root: &Path, name: &str, runs: &[&Path], force: bool) -> Output {
    let mut args: Vec<String> = ["baseline", "refresh", name, "--baselines-dir", "baselines"]
        .map(String::from)
        .to_vec();
    args.push("--from-run".into());
    args.extend(runs.iter().map(|r| r.display().to_string()));
    if force {
        args.push("--force".into());
    }
    cacherate(root, &args).output().unwrap()
}

#[test]
fn each_refusal_names_the_run_and_force_makes_the_baseline_anyway() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    // The real runs, two at a time (the machine has two cores).
    let (good, no_samples, other_workload, other_load, other_points) =
        std::thread::scope(|scope| {
            let good = scope.spawn(|| run(root, "good", &FIXED));
            // The ramp with no samples after it (fixed loads refuse that).
            let no_samples = scope.spawn(|| {
                let ramp = "--mode adaptive --num-retries 0 --start-concurrency 4 \
                            --max-concurrency 4 --test-duration 1";
                run(
                    root,
                    "no-samples",
                    &ramp.split_whitespace().collect::<Vec<_>>(),
                )
            });
            let (good, no_samples) = (good.join().unwrap(), no_samples.join().unwrap());
            let other_workload =
                scope.spawn(|| run(root, "other-workload", &fixed(&["--output-tokens", "16"])));
            let other_load = scope.spawn(|| {
                run(
                    root,
                    "other-load",
                    &fixed(&["--fixed-concurrency-levels", "8"]),
                )
            });
            let (other_workload, other_load) =
                (other_workload.join().unwrap(), other_load.join().unwrap());
            let other_points = run(root, "other-points", &fixed(&["--cache-hit-rates", "0"]));
            (good, no_samples, other_workload, other_load, other_points)
        });
    // What a killed run, a gate that failed and an errored point leave.
    let incomplete = edited(root, &good, "incomplete", |dir| {
        let mut info = read_json(&dir.join("run.json"));
        info["status"] = "running".into();
        write_json(&dir.join("run.json"), &info);
    });
    let missing_point = edited(root, &good, "missing-point", |dir| {
        let mut results = read_json(&dir.join("results.json"));
        results["points"].as_array_mut().unwrap().pop();
        write_json(&dir.join("results.json"), &results);
    });
    let errored = edited(root, &good, "errored", |dir| {
        let mut results = read_json(&dir.join("results.json"));
        results["points"][0]["status"] = "error".into();
        results["points"][0]["status_message"] = "error rate 12.00 % over the limit".into();
        write_json(&dir.join("results.json"), &results);
    });
    let failed_gate = edited(root, &good, "failed-gate", |dir| {
        std::fs::create_dir_all(dir.join("compare")).unwrap();
        write_json(
            &dir.join("compare/verdict.json"),
            &serde_json::json!({"overall": {"verdict": "regressed"}}),
        );
    });

    let cases: [(&Path, &str); 8] = [
        (
            &incomplete,
            "is not complete (run.json status is not \"complete\")",
        ),
        (&missing_point, "has no result for ctx 512 at 100%"),
        (
            &errored,
            "errored at ctx 512 at 0% (error rate 12.00 % over the limit)",
        ),
        (
            &no_samples,
            "has no samples at ctx 512 at 0% (--num-retries 0)",
        ),
        (&failed_gate, "failed its gate (regressed)"),
        (&other_workload, "measured another workload than"),
        (&other_points, "measured other points than"),
        (&other_load, "measured ctx 512 at 0% at concurrency 8,"),
    ];
    for (k, (refused, why)) in cases.iter().enumerate() {
        let name = format!("case{k}");
        let output = refresh_from(root, &name, &[&good, refused], false);
        assert_eq!(output.status.code(), Some(2), "{why}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("{} {why}", refused.display())),
            "{why}: {stderr}"
        );
        assert!(stderr.contains("(--force makes it anyway)"), "{stderr}");
        let file = root.join(format!("baselines/{name}.json"));
        assert!(!file.exists(), "{why}: nothing written");
        // The refusal is the other run's: no line refuses the good one.
        let good_line = format!("  {} ", good.display());
        assert!(
            !stderr.lines().any(|l| l.starts_with(&good_line)),
            "{why}: {stderr}"
        );

        let output = refresh_from(root, &name, &[&good, refused], true);
        if *refused == no_samples.as_path() {
            // --force cannot make samples: no point has them in both runs.
            assert_eq!(output.status.code(), Some(2), "{}", text(&output));
            assert!(
                String::from_utf8_lossy(&output.stderr)
                    .contains("no point has samples in every run"),
                "{}",
                text(&output)
            );
            continue;
        }
        assert!(output.status.success(), "{why}: {}", text(&output));
        let baseline = read_json(&file);
        // The points both runs have.
        let points = if *refused == other_points.as_path() || *refused == missing_point.as_path() {
            1
        } else {
            2
        };
        assert_eq!(
            baseline["points"].as_array().unwrap().len(),
            points,
            "{why}"
        );
        let dirs: Vec<&str> = baseline["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dir"].as_str().unwrap())
            .collect();
        assert_eq!(dirs.len(), 2, "{why}: --force keeps both runs");
        assert_eq!(dirs[1], refused.display().to_string());
    }

    // Two good runs make one without complaint; a bad name or no runs
    // are refused before anything runs.
    let output = refresh_from(root, "good", &[&good, &good], false);
    assert!(output.status.success(), "{}", text(&output));
    for (args, why) in [
        (
            vec!["baseline", "refresh", "../escape", "--from-run"],
            "baseline name \"../escape\" must be letters, digits",
        ),
        (
            vec!["baseline", "refresh", "zero", "--runs", "0"],
            "--runs must be at least 1",
        ),
    ] {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if args.last().is_some_and(|a| a == "--from-run") {
            args.push(good.display().to_string());
        }
        let output = cacherate(root, &args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{why}: {}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(why),
            "{}",
            text(&output)
        );
    }
    assert!(!root.join("escape.json").exists());
}

fn progress(dir: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("progress.json")).ok()?).ok()
}

fn refresh_command() -> Vec<String> {
    let refresh = "baseline refresh sim --runs 2 --commit --baselines-dir baselines \
                   --output-dir runs";
    let mut args: Vec<String> = refresh.split_whitespace().map(String::from).collect();
    args.extend(sweep(&FIXED));
    args
}

#[test]
fn an_interrupted_refresh_resumes_and_commits_the_baseline() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    // A repository of a serving configuration, with no baselines yet: the
    // refresh makes the directory, and still records the repository.
    let repo = git2::Repository::init(root).unwrap();
    std::fs::write(root.join("README"), "a serving configuration\n").unwrap();
    let signature = git2::Signature::now("test", "test@localhost").unwrap();
    let initial = {
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("README")).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        repo.commit(Some("HEAD"), &signature, &signature, "initial", &tree, &[])
            .unwrap()
    };

    // Interrupted (Ctrl-C) once the second run has measured a point.
    let args = refresh_command();
    let mut child = cacherate(root, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = root.join("runs/baseline-sim/run-2");
    loop {
        if progress(&second).is_some_and(|p| p["completed"].as_array().unwrap().len() == 1) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the refresh ended before its second run measured a point"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    let interrupted = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(interrupted.success(), "kill -INT {pid}");
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::INTERRUPTED),
        "{}",
        text(&output)
    );
    assert!(!root.join("baselines/sim.json").exists());
    assert_eq!(repo.head().unwrap().peel_to_commit().unwrap().id(), initial);
    let first = root.join("runs/baseline-sim/run-1");
    let measured = |dir: &Path| {
        [
            "detailed_results_512.csv",
            "phase_metadata_512.csv",
            "results.json",
        ]
        .map(|file| std::fs::read(dir.join(file)).unwrap())
    };
    let first_files = measured(&first);

    // The same command finishes the second run, writes and commits.
    let output = cacherate(root, &args).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let committed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("committed as "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        measured(&first) == first_files,
        "the first run is not measured again"
    );
    assert_eq!(
        progress(&second).unwrap()["attempt"],
        1,
        "the second run resumed"
    );
    assert_eq!(
        progress(&second).unwrap()["completed"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.id().to_string(), committed);
    assert_eq!(head.parent_id(0).unwrap(), initial);
    let message = head.message().unwrap();
    assert!(
        message.starts_with("Refresh baseline sim\n\n2 run(s) of "),
        "{message}"
    );
    let file = std::fs::read(root.join("baselines/sim.json")).unwrap();
    let entry = head
        .tree()
        .unwrap()
        .get_path(Path::new("baselines/sim.json"))
        .unwrap();
    let blob = repo.find_blob(entry.id()).unwrap();
    assert_eq!(
        blob.content(),
        &file[..],
        "the commit holds the file written"
    );
    let status = repo.status_file(Path::new("baselines/sim.json")).unwrap();
    assert!(status.is_empty(), "nothing left to commit: {status:?}");
    // Both runs are in it, and it knows the commit it was refreshed at.
    let baseline = cacherate::baseline::Baseline::read(&root.join("baselines/sim.json")).unwrap();
    assert_eq!(baseline.runs.len(), 2);
    assert!(baseline.points.iter().all(|p| p.runs.len() == 2));
    assert_eq!(baseline.provenance.git.unwrap().commit, initial.to_string());
}
