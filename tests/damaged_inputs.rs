//! Fuzzing the readers of what a user or an earlier run left on disk:
//! `progress.json`, `results.json` and `run.json` of a run directory (as a
//! resume and `baseline refresh` read them), baselines, stored TTFT
//! histograms, and profile files. Arbitrary bytes and mutations of valid
//! files (cut anywhere, bytes changed, fields deleted or given other
//! values) must read, or fail with a usage error (exit 2) that names the
//! file; never panic.

use std::path::Path;

use cacherate::baseline::{Baseline, load_run};
use cacherate::error::Error;
use cacherate::store::{self, Progress, Results, RunDir};
use proptest::prelude::*;
use serde_json::Value;

/// Cases per property. About a second each on a debug build (the
/// run-directory properties write files, so they take fewer).
const CASES: u32 = 1000;
const DIR_CASES: u32 = 300;

fn fixture(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

fn run_fixture(name: &str) -> String {
    let text = fixture(&format!("tests/fixtures/run-report/{name}"));
    if name != store::PROGRESS {
        return text;
    }
    // The fixture leaves out the request files (megabytes); so does its
    // progress, so that a resume of it can succeed.
    let mut progress: Value = serde_json::from_str(&text).unwrap();
    let files = progress["files"].as_object_mut().unwrap();
    files.retain(|name, _| name.starts_with("phase_metadata_"));
    serde_json::to_string_pretty(&progress).unwrap()
}

/// A TTFT histogram as a run stores it.
static STORED_HISTOGRAM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let results = Results::parse(&run_fixture("results.json"), Path::new("r")).unwrap();
    results.points[0].samples[0].ttft_histogram.clone()
});

/// Every path to a value inside `value`, objects' fields and arrays'
/// items alike.
fn paths(value: &Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(PathStep::Key(key.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(PathStep::Index(i));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// The parent of `path` and the last step to it.
fn parent_mut<'a>(root: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    let mut at = root;
    for step in path {
        at = match step {
            PathStep::Key(key) => &mut at[key.as_str()],
            PathStep::Index(i) => &mut at[*i],
        };
    }
    at
}

/// One change to a JSON document.
#[derive(Debug, Clone)]
enum Edit {
    /// Remove the field or item.
    Delete(prop::sample::Index),
    /// Give it another value.
    Replace(prop::sample::Index, Value),
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        Just(Value::Array(Vec::new())),
        Just(Value::Object(Default::default())),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Edit::Delete),
        (any::<prop::sample::Index>(), scalar()).prop_map(|(i, v)| Edit::Replace(i, v)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut root: Value = serde_json::from_str(text).unwrap();
    for edit in edits {
        let mut all = Vec::new();
        paths(&root, &mut Vec::new(), &mut all);
        if all.is_empty() {
            break;
        }
        match edit {
            Edit::Delete(i) => {
                let path = i.get(&all).clone();
                let (last, parent) = path.split_last().unwrap();
                match (parent_mut(&mut root, parent), last) {
                    (Value::Object(map), PathStep::Key(key)) => {
                        map.remove(key);
                    }
                    (Value::Array(items), PathStep::Index(i)) => {
                        items.remove(*i);
                    }
                    _ => unreachable!("a path leads to its parent's kind"),
                }
            }
            Edit::Replace(i, value) => {
                let path = i.get(&all).clone();
                *parent_mut(&mut root, &path) = value.clone();
            }
        }
    }
    serde_json::to_string_pretty(&root).unwrap()
}

/// Arbitrary bytes, or `valid` cut short, with bytes changed, or with
/// fields deleted and values replaced.
fn damaged(valid: String) -> impl Strategy<Value = String> {
    let cut = {
        let valid = valid.clone();
        any::<prop::sample::Index>().prop_map(move |i| {
            let bytes = valid.as_bytes();
            String::from_utf8_lossy(&bytes[..i.index(bytes.len() + 1)]).into_owned()
        })
    };
    let flipped = {
        let valid = valid.clone();
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6).prop_map(
            move |flips| {
                let mut bytes = valid.clone().into_bytes();
                for (i, byte) in flips {
                    let at = i.index(bytes.len());
                    bytes[at] = byte;
                }
                String::from_utf8_lossy(&bytes).into_owned()
            },
        )
    };
    let edited = prop::collection::vec(edit(), 1..4).prop_map(move |edits| apply(&valid, &edits));
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        2 => cut,
        2 => flipped,
        4 => edited,
    ]
}

/// A failure must be a usage error that names `file`.
fn assert_clear<T>(result: Result<T, Error>, file: &str) -> Result<(), TestCaseError> {
    if let Err(error) = result {
        let message = error.to_string();
        prop_assert_eq!(error.exit_code(), cacherate::exit::USAGE, "{}", message);
        prop_assert!(message.contains(file), "{} not named: {}", file, message);
    }
    Ok(())
}

#[test]
fn the_valid_fixtures_read() {
    let path = Path::new("progress.json");
    Progress::parse(&run_fixture("progress.json"), path).unwrap();
    Results::parse(&run_fixture("results.json"), path).unwrap();
    Baseline::parse(&fixture("baselines/sim-quick.json"), path).unwrap();
    // A document edited by the mutator still parses as JSON: the edits
    // reach the readers' checks, not only the JSON parser.
    let edited = apply(&run_fixture("progress.json"), &[]);
    Progress::parse(&edited, path).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn damaged_progress_reads_or_is_refused_clearly(text in damaged(run_fixture("progress.json"))) {
        assert_clear(Progress::parse(&text, Path::new("out/progress.json")), "out/progress.json")?;
    }

    #[test]
    fn damaged_results_read_or_are_refused_clearly(text in damaged(run_fixture("results.json"))) {
        let path = Path::new("out/results.json");
        if let Ok(results) = Results::parse(&text, path) {
            // The stored histograms decode or say they do not.
            for point in results.points {
                let _ = cacherate::stats::PointFigures::of(&point.samples);
            }
        } else {
            assert_clear(Results::parse(&text, path), "out/results.json")?;
        }
    }

    #[test]
    fn damaged_baselines_read_or_are_refused_clearly(
        text in damaged(fixture("baselines/sim-quick.json"))
    ) {
        let path = Path::new("baselines/main.json");
        assert_clear(Baseline::parse(&text, path), "baselines/main.json")?;
    }

    #[test]
    fn any_stored_histogram_decodes_or_says_it_does_not(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        text in ".{0,64}",
    ) {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let encoded = engine.encode(&bytes);
        let _ = cacherate::stats::decode_histogram(&encoded);
        let _ = cacherate::stats::decode_histogram(&text);
        let _ = cacherate::stats::merge_histograms([encoded.as_str(), text.as_str()]);
        // A real histogram with bytes of its header changed.
        let mut real = engine.decode(&*STORED_HISTOGRAM).unwrap();
        for (i, byte) in flips {
            let at = i.index(real.len().min(40));
            real[at] = byte;
        }
        let _ = cacherate::stats::decode_histogram(&engine.encode(&real));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(DIR_CASES))]

    /// A run directory with one damaged file, read as a resume reads it
    /// (progress, cut the CSVs to their committed lengths, results) and as
    /// `baseline refresh` does (`run.json` too).
    #[test]
    fn a_run_directory_with_a_damaged_file_resumes_or_is_refused_clearly(
        which in 0usize..3,
        seed in any::<prop::sample::Index>(),
        progress in damaged(run_fixture("progress.json")),
        results in damaged(run_fixture("results.json")),
        run in damaged(run_fixture("run.json")),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let names = [store::PROGRESS, store::RESULTS, store::RUN];
        let damaged = [progress, results, run];
        for (i, name) in names.iter().enumerate() {
            let text = if i == which { damaged[i].clone() } else { run_fixture(name) };
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        // One of the phase files may be cut short as well.
        let csvs = ["phase_metadata_1024.csv", "phase_metadata_4096.csv"];
        let cut = csvs[seed.index(2)];
        let mut short = None;
        for csv in csvs {
            let text = run_fixture(csv);
            let keep = if csv == cut { seed.index(text.len() + 1) } else { text.len() };
            if keep < text.len() {
                short = Some(csv);
            }
            std::fs::write(dir.path().join(csv), &text[..keep]).unwrap();
        }
        let file = names[which];
        let run_dir = RunDir::open(dir.path()).unwrap();
        match run_dir.load_progress() {
            Ok(Some(progress)) => {
                let truncated = run_dir.truncate_to(&progress.files);
                if let Err(error) = &truncated {
                    prop_assert_eq!(error.exit_code(), cacherate::exit::USAGE, "{}", error);
                    prop_assert!(error.to_string().contains("measured rows are missing"), "{}", error);
                } else if which != 0 {
                    // The committed lengths are the fixture's: a file cut
                    // short is refused, never resumed without its rows.
                    prop_assert!(short.is_none(), "{:?} cut short went unnoticed", short);
                }
                assert_clear(run_dir.load_results(), file)?;
                let _ = run_dir.read_value(store::RUN);
            }
            Ok(None) => prop_assert!(false, "progress.json is there"),
            Err(e) => assert_clear::<()>(Err(e), file)?,
        }
        if let Err(error) = load_run(dir.path()) {
            prop_assert_eq!(error.exit_code(), cacherate::exit::USAGE, "{}", error);
        }
    }

    /// The journal of a killed phase, cut anywhere or with bytes changed:
    /// the resume keeps the rows that read whole, and the request file it
    /// leaves reads row by row at its recorded length.
    #[test]
    fn a_damaged_journal_keeps_its_whole_rows_and_nothing_else(
        journal in damaged_bytes(journal_text()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = RunDir::open(dir.path()).unwrap();
        std::fs::write(run_dir.file("unfinished_phase_512.csv"), &journal).unwrap();
        let mut files = std::collections::BTreeMap::new();
        let recovered = run_dir.recover_requests(&mut files).unwrap();
        let path = run_dir.file("detailed_results_512.csv");
        if recovered.requests == 0 {
            prop_assert!(!path.exists());
        } else {
            let bytes = std::fs::read(&path).unwrap();
            prop_assert_eq!(files["detailed_results_512.csv"], bytes.len() as u64);
            let rows: Vec<cacherate::record::RequestRecord> = csv::Reader::from_reader(&bytes[..])
                .deserialize()
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(rows.len(), recovered.requests);
            prop_assert!(rows.iter().all(|r| r.phase_id.ends_with(store::UNFINISHED_SUFFIX)));
            let mut ids: Vec<u64> = rows.iter().map(|r| r.request_id).collect();
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(ids.len(), rows.len(), "a request is kept once");
        }
    }

    #[test]
    fn a_damaged_profile_file_resolves_or_is_refused_clearly(
        text in prop_oneof![
            1 => damaged_toml(cacherate::settings::DEFAULT_CONFIG.to_string()),
            1 => profile_toml(),
        ],
        profile in prop_oneof![Just("quick"), Just("fuzz"), Just("full")],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        std::fs::write(&path, &text).unwrap();
        let args = [
            "--config",
            path.to_str().unwrap(),
            "--profile",
            profile,
            "--output-dir",
            dir.path().to_str().unwrap(),
        ]
        .map(String::from);
        let mut argv = vec!["cacherate".to_string(), "run".to_string()];
        argv.extend(args);
        use clap::Parser;
        let cacherate::cli::Command::Run(run) =
            cacherate::cli::Cli::try_parse_from(argv).unwrap().command
        else {
            unreachable!("a run command line")
        };
        let result = cacherate::settings::RunSettings::resolve(*run, dir.path());
        if let Err(error) = result {
            prop_assert_eq!(error.exit_code(), cacherate::exit::USAGE, "{}", error);
        }
    }
}

/// The built-in profiles cut short or with bytes changed.
fn damaged_toml(valid: String) -> impl Strategy<Value = String> {
    let cut = {
        let valid = valid.clone();
        any::<prop::sample::Index>().prop_map(move |i| {
            let bytes = valid.as_bytes();
            String::from_utf8_lossy(&bytes[..i.index(bytes.len() + 1)]).into_owned()
        })
    };
    let flipped = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
        .prop_map(move |flips| {
            let mut bytes = valid.clone().into_bytes();
            for (i, byte) in flips {
                let at = i.index(bytes.len());
                bytes[at] = byte;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        });
    prop_oneof![cut, flipped]
}

/// A `[profile.fuzz]` of real keys with values of any type and size.
fn profile_toml() -> impl Strategy<Value = String> {
    let keys: Vec<String> = cacherate::settings::DEFAULT_CONFIG
        .lines()
        .filter_map(|line| {
            line.split_once(" = ")
                .map(|(key, _)| key.trim().to_string())
        })
        .chain(
            [
                "context-sizes",
                "working-set-size",
                "sample-duration",
                "fixed-concurrency-levels",
            ]
            .map(String::from),
        )
        .collect();
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}").replace("inf", "inf").replace("NaN", "nan")),
        any::<bool>().prop_map(|v| v.to_string()),
        "[a-z0-9 _.-]{0,10}".prop_map(|v| format!("{v:?}")),
        prop::collection::vec(any::<i32>(), 0..5).prop_map(|v| format!("{v:?}")),
        prop::collection::vec(any::<f32>(), 0..3)
            .prop_map(|v| format!("{v:?}").replace("NaN", "nan")),
    ];
    prop::collection::vec((prop::sample::select(keys), value), 1..6).prop_map(|entries| {
        let mut text = String::from("[profile.fuzz]\n");
        for (key, value) in entries {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text
    })
}

/// The binary against a finished run directory with one file damaged (or a
/// damaged baseline or profile file): each case's exit code and the words
/// its message must hold. `RUST_BACKTRACE` is off, so a panic would show
/// as exit 101.
#[test]
fn the_binary_refuses_each_damaged_file_with_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let finished = root.path().join("finished");
    let args = |dir: &Path| -> Vec<String> {
        [
            "run",
            "--output-dir",
            dir.to_str().unwrap(),
            "--context-sizes",
            "512",
            "--working-set-size",
            "2048",
            "--cache-hit-rates",
            "50",
            "--output-tokens",
            "8",
            "--max-ttft",
            "0.5",
            "--ramp-duration",
            "0.3",
            "--test-duration",
            "0.6",
            "--num-retries",
            "1",
            "--start-concurrency",
            "4",
            "--max-concurrency",
            "4",
            "--init-concurrency",
            "4",
            "--seed",
            "7",
            "--sim-time-scale",
            "0.05",
            "--skip-graphs",
            "--quiet",
        ]
        .map(String::from)
        .to_vec()
    };
    let cacherate = |args: &[String]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cacherate"))
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    };
    assert!(cacherate(&args(&finished)).status.success());

    type Damage = fn(&Path);
    fn cut_half(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    }
    let cases: [(&str, Damage, i32, &[&str]); 9] = [
        (
            "progress.json cut in half",
            |dir| cut_half(&dir.join("progress.json")),
            2,
            &["progress.json is damaged", "--force-restart"],
        ),
        (
            "progress.json of a future version",
            |dir| {
                let path = dir.join("progress.json");
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(
                    &path,
                    text.replacen("\"schema_version\": 2", "\"schema_version\": 9", 1),
                )
                .unwrap();
            },
            2,
            &["schema version 9", "--force-restart"],
        ),
        (
            "results.json cut in half",
            |dir| cut_half(&dir.join("results.json")),
            2,
            &["results.json is damaged", "--force-restart"],
        ),
        (
            "results.json of a future version",
            |dir| {
                let path = dir.join("results.json");
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(
                    &path,
                    text.replacen("\"schema_version\": 2", "\"schema_version\": 9", 1),
                )
                .unwrap();
            },
            2,
            &["schema version 9", "newer cacherate"],
        ),
        (
            "detailed_results CSV 100 bytes short",
            |dir| {
                let path = dir.join("detailed_results_512.csv");
                let length = std::fs::metadata(&path).unwrap().len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(length - 100)
                    .unwrap();
            },
            2,
            &["100 bytes of measured rows are missing", "--force-restart"],
        ),
        (
            "phase_metadata CSV removed",
            |dir| std::fs::remove_file(dir.join("phase_metadata_512.csv")).unwrap(),
            2,
            &[
                "phase_metadata_512.csv holds 0 bytes",
                "Put the whole file back",
            ],
        ),
        (
            "run.json garbage (rewritten by every attempt)",
            |dir| std::fs::write(dir.join("run.json"), "{\"tool\": \"cach").unwrap(),
            0,
            &[],
        ),
        (
            "a profile file that is not TOML",
            |dir| {
                std::fs::write(dir.join("cacherate.toml"), "[profile.quick\nmax-ttft = ").unwrap()
            },
            2,
            &["is not a valid cacherate profile file", "[profile.NAME]"],
        ),
        (
            "a profile with a value of the wrong type",
            |dir| {
                std::fs::write(
                    dir.join("cacherate.toml"),
                    "[defaults]\nmax-ttft = \"fast\"\n",
                )
                .unwrap()
            },
            2,
            &["is not a valid cacherate profile file", "max-ttft"],
        ),
    ];
    for (name, damage, code, words) in cases {
        let dir = root.path().join(name.replace(' ', "_"));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&finished).unwrap() {
            let from = entry.unwrap().path();
            std::fs::copy(&from, dir.join(from.file_name().unwrap())).unwrap();
        }
        damage(&dir);
        let mut case_args = args(&dir);
        if std::fs::exists(dir.join("cacherate.toml")).unwrap() {
            case_args.extend([
                "--config".to_string(),
                dir.join("cacherate.toml").to_str().unwrap().to_string(),
            ]);
        }
        let output = cacherate(&case_args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("{name}: exit {:?}: {}", output.status.code(), stderr.trim());
        assert_eq!(output.status.code(), Some(code), "{name}: {stderr}");
        for word in words {
            assert!(stderr.contains(word), "{name}: no {word:?} in {stderr}");
        }
        if code == 0 {
            let run: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap())
                    .unwrap();
            assert_eq!(run["status"], "complete", "{name}");
        }
    }

    // A damaged baseline stops the gate before it measures anything.
    let baseline = root.path().join("main.json");
    let text = fixture("baselines/sim-quick.json");
    std::fs::write(&baseline, &text[..text.len() / 3]).unwrap();
    let out = root.path().join("gated");
    let mut gate = args(&out);
    gate[0] = "gate".into();
    gate.extend([
        "--baseline".to_string(),
        baseline.to_str().unwrap().to_string(),
    ]);
    let output = cacherate(&gate);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "baseline cut to a third: exit {:?}: {}",
        output.status.code(),
        stderr.trim()
    );
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("main.json is damaged") && stderr.contains("baseline refresh"),
        "{stderr}"
    );
    assert!(!out.join("progress.json").exists());
}

/// A journal of ten requests, ids 0 to 9, as the load slots write it.
fn journal_text() -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for id in 0..10 {
        let row = cacherate::record::RequestRecord {
            context_size: 512,
            cache_hit_rate: 50,
            phase_id: "RAMP_c2".into(),
            phase_index: 1,
            concurrency: 2,
            request_id: id,
            endpoint: 0,
            working_set_prompt: 3,
            launch_unix_s: 1.5,
            dispatch_delay_s: None,
            ttft_s: Some(0.01),
            ttlt_s: Some(0.02),
            finish_s: 0.021,
            chunks: 2,
            max_chunk_gap_s: Some(0.01),
            chunk_times_us: vec![10_000, 20_000],
            tokens_per_chunk: vec![1],
            expected_prompt_tokens: 512,
            target_cached_tokens: 256,
            prompt_tokens: Some(512),
            completion_tokens: Some(2),
            cached_tokens: Some(256),
            status: 200,
            resent: false,
            error_kind: None,
            error: (id % 3 == 0).then(|| "a, \"quoted\"\nmessage".to_string()),
            in_window: false,
        };
        writer.serialize(row).unwrap();
    }
    writer.into_inner().unwrap()
}

/// `valid` cut short or with bytes changed.
fn damaged_bytes(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let cut = {
        let valid = valid.clone();
        any::<prop::sample::Index>().prop_map(move |i| valid[..i.index(valid.len() + 1)].to_vec())
    };
    let flipped = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
        .prop_map(move |flips| {
            let mut bytes = valid.clone();
            for (i, byte) in flips {
                let at = i.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        });
    prop_oneof![cut, flipped]
}
