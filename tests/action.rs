//! The composite action's shell steps (action/install.sh, gate.sh,
//! finish.sh), run with bash as action.yml runs them, in a stand-in GitHub
//! environment: `GITHUB_OUTPUT`, `GITHUB_PATH`, `GITHUB_STEP_SUMMARY`, a
//! pull_request event in `GITHUB_EVENT_PATH`, `GITHUB_REPOSITORY` and
//! `GITHUB_API_URL` pointing at the stand-in API of tests/common
//! (fake_github). The install step takes its "release" from a local HTTP
//! server holding a tar.gz of the built binary and its SHA256SUMS; the gate
//! runs against the simulator on port 0, time scaled.
//!
//! What is checked: the binary is installed (and reused the second time),
//! a checksum that does not match is refused, a target the release lacks
//! falls back to `cargo install --locked`; two gates (the same server, then
//! one `--slowdown 1.3`) leave the run directory for the artifact, a
//! junit.xml for the check, `verdict` and `exit-code` in GITHUB_OUTPUT, and
//! exactly one comment on the pull request, and the last step fails with
//! exit 1 on the slowed server. action.yml itself is checked for naming the
//! scripts and this crate's version.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cacherate::sim::{SimConfig, SimServer};
use common::fake_github::{Fake, FakeGithub, MARKER, TOKEN, fake_github};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const SCALE: f64 = 0.1;

/// The gates measure in wall time: the test that compiles build.rs waits
/// until they are done rather than share the machine with them.
static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The release's name for this machine's target, as install.sh detects it.
fn this_target() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no release target for {other}"),
    }
}

/// A job's stand-in GitHub environment in `dir`: the files the runner
/// gives each step, the event, and where the API is.
struct Job {
    dir: PathBuf,
    api_url: String,
    /// Directories put before PATH (a fake `cargo`).
    path_prefix: Vec<PathBuf>,
}

/// What one step did: its exit code, output and the `GITHUB_OUTPUT` it
/// wrote.
struct Step {
    output: Output,
    outputs: BTreeMap<String, String>,
}

impl Step {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn text(&self) -> String {
        format!(
            "{}\noutputs: {:?}",
            common::binary::text(&self.output),
            self.outputs
        )
    }

    fn get(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .unwrap_or_else(|| panic!("no output {name}: {}", self.text()))
    }
}

impl Job {
    fn new(dir: &Path, api_url: String) -> Job {
        let event = dir.join("event.json");
        std::fs::write(
            &event,
            r#"{"action": "synchronize", "number": 7, "pull_request": {"number": 7}}"#,
        )
        .unwrap();
        for sub in ["tool-cache", "temp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        Job {
            dir: dir.to_path_buf(),
            api_url,
            path_prefix: Vec::new(),
        }
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.join("step_summary.md")).unwrap_or_default()
    }

    fn github_path(&self) -> String {
        std::fs::read_to_string(self.dir.join("github_path")).unwrap_or_default()
    }

    /// `bash action/SCRIPT` in the job's directory (its workspace), with
    /// only the environment a runner gives a step and `env`.
    fn step(&self, script: &str, env: &[(&str, String)]) -> Step {
        let outputs = self.dir.join(format!("output-{}", rand::random::<u64>()));
        let path = std::env::join_paths(
            self.path_prefix
                .iter()
                .cloned()
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let mut command = Command::new("bash");
        command
            .arg(root().join("action").join(script))
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.join("temp"))
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_ACTION_PATH", root())
            .env("GITHUB_WORKSPACE", &self.dir)
            .env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_PATH", self.dir.join("github_path"))
            .env("GITHUB_STEP_SUMMARY", self.dir.join("step_summary.md"))
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", self.dir.join("event.json"))
            .env("GITHUB_REPOSITORY", "acme/serving")
            .env("GITHUB_API_URL", &self.api_url)
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_RUN_ID", "8812")
            .env("GITHUB_RUN_ATTEMPT", "1")
            .env("GITHUB_JOB", "perf")
            .env("RUNNER_TEMP", self.dir.join("temp"))
            .env("RUNNER_TOOL_CACHE", self.dir.join("tool-cache"));
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        let outputs = std::fs::read_to_string(&outputs)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Step { output, outputs }
    }

    async fn step_async(
        self: &std::sync::Arc<Self>,
        script: &str,
        env: Vec<(&'static str, String)>,
    ) -> Step {
        let job = std::sync::Arc::clone(self);
        let script = script.to_string();
        tokio::task::spawn_blocking(move || job.step(&script, &env))
            .await
            .unwrap()
    }
}

/// The files of a stand-in release, by path under the server's root
/// (`good/v0.1.0/SHA256SUMS`).
type Files = std::sync::Arc<BTreeMap<String, Vec<u8>>>;

async fn serve_file(State(files): State<Files>, UrlPath(path): UrlPath<String>) -> Response {
    match files.get(&path) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A release as `release.yml` packs it, built from the binary under test:
/// `cacherate-VERSION-TARGET/cacherate` in a tar.gz, and SHA256SUMS. Under
/// `good/` the sums are right; under `tampered/` the archive is another
/// one than the sums say.
fn release_files(work: &Path) -> BTreeMap<String, Vec<u8>> {
    let name = format!("cacherate-{VERSION}-{}", this_target());
    let top = work.join(&name);
    std::fs::create_dir_all(&top).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_cacherate"), top.join("cacherate")).unwrap();
    let archive = work.join(format!("{name}.tar.gz"));
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(work)
        .arg(&name)
        .status()
        .unwrap();
    assert!(status.success());
    let sums = Command::new("sha256sum")
        .arg(archive.file_name().unwrap())
        .current_dir(work)
        .output()
        .unwrap();
    assert!(sums.status.success());
    let bytes = std::fs::read(&archive).unwrap();
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    let file = format!("{name}.tar.gz");
    BTreeMap::from([
        (format!("good/v{VERSION}/{file}"), bytes),
        (format!("good/v{VERSION}/SHA256SUMS"), sums.stdout.clone()),
        (format!("tampered/v{VERSION}/{file}"), tampered),
        (format!("tampered/v{VERSION}/SHA256SUMS"), sums.stdout),
    ])
}

/// Serves `files` on a free loopback port; the base URL.
async fn release_server(files: BTreeMap<String, Vec<u8>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/{*path}", get(serve_file))
        .with_state(std::sync::Arc::new(files));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The workload of the baseline and the gates: one context, two rates,
/// short phases, three samples a point (tests/gate.rs's sweep).
const SWEEP: &str = "--context-sizes 1024 --working-set-size 4096 --cache-hit-rates 0 100 \
     --output-tokens 16 --max-ttft 1.0 --ramp-duration 0.4 --test-duration 1.2 \
     --sample-duration 0.6 --num-retries 3 --start-concurrency 4 --concurrency-increment 4 \
     --max-concurrency 8 --init-concurrency 4 --reinit-strategy per_cache_rate --skip-graphs \
     --quiet";

async fn simulator(slowdown: f64) -> SimServer {
    common::start(SimConfig {
        slowdown,
        // Every simulator here the same speed but for --slowdown.
        seed: 5,
        run_noise: 0.0,
        ..SimConfig::for_tests(SCALE)
    })
    .await
}

/// `baselines/sim.json` in `dir`: two runs of the sweep against `url`.
async fn baseline(dir: &Path, url: &str) -> PathBuf {
    let mut args: Vec<String> = ["baseline", "refresh", "sim", "--runs", "2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(SWEEP.split_whitespace().map(String::from));
    args.extend(["--api-endpoint".into(), url.into()]);
    args.extend(["--output-dir".into(), "baseline-runs".into()]);
    let command = common::binary::cacherate(dir, &args);
    let output = tokio::task::spawn_blocking(move || {
        let mut command = command;
        command.output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", common::binary::text(&output));
    dir.join("baselines/sim.json")
}

fn comments(github: &FakeGithub) -> Vec<String> {
    let fake = github.state.lock().unwrap();
    fake.comments
        .iter()
        .map(|(_, _, body)| body.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_installs_gates_uploads_reports_comments_once_and_fails_on_a_slowdown() {
    let _alone = MACHINE.lock().await;
    let work = tempfile::tempdir().unwrap();
    let github = fake_github(Fake {
        next_id: 100,
        page_size: 30,
        ..Fake::default()
    })
    .await;
    let job = std::sync::Arc::new(Job::new(work.path(), github.url()));
    let packing = tempfile::tempdir().unwrap();
    let releases = release_server(release_files(packing.path())).await;

    // 1. Install: the release binary, checked, on the job's PATH.
    let install_env = |base: &str| {
        vec![
            ("CACHERATE_VERSION", VERSION.to_string()),
            ("CACHERATE_RELEASE_URL", format!("{releases}/{base}")),
        ]
    };
    let install = job.step_async("install.sh", install_env("good")).await;
    assert_eq!(install.code(), Some(0), "{}", install.text());
    assert_eq!(install.get("source"), "release", "{}", install.text());
    assert_eq!(install.get("version"), VERSION);
    let cacherate = install.get("path").to_string();
    let expected_dir = work.path().join(format!(
        "tool-cache/cacherate/{VERSION}/{}/bin",
        this_target()
    ));
    assert_eq!(Path::new(&cacherate), expected_dir.join("cacherate"));
    assert!(
        job.github_path()
            .lines()
            .any(|l| Path::new(l) == expected_dir),
        "{}",
        job.github_path()
    );
    assert!(String::from_utf8_lossy(&install.output.stderr).contains("matches SHA256SUMS"));
    // The next job on this runner reuses it.
    let again = job.step_async("install.sh", install_env("good")).await;
    assert_eq!(again.code(), Some(0), "{}", again.text());
    assert_eq!(again.get("source"), "cached", "{}", again.text());

    // 2. The gate of the same server, then its comment.
    let baseline = baseline(work.path(), &simulator(1.0).await.url()).await;
    let gate_env = |url: String, out: &str| {
        vec![
            ("CACHERATE", cacherate.clone()),
            ("INPUT_BASELINE", baseline.display().to_string()),
            ("INPUT_PROFILE", String::new()),
            ("INPUT_API_ENDPOINT", url),
            ("INPUT_SERVE", String::new()),
            ("INPUT_OUTPUT_DIR", out.to_string()),
            // Quotes as a user might write them in the workflow.
            (
                "INPUT_ARGS",
                format!("{SWEEP} --gate-metrics 'input_throughput,output_throughput'"),
            ),
            ("INPUT_ARTIFACT_NAME", String::new()),
        ]
    };
    let finish_env = |gate: &Step| {
        vec![
            ("CACHERATE", cacherate.clone()),
            ("GATE_EXIT_CODE", gate.get("exit-code").to_string()),
            ("COMMENT_PATH", gate.get("comment-path").to_string()),
            ("INPUT_COMMENT", "true".to_string()),
            ("GITHUB_TOKEN", TOKEN.to_string()),
        ]
    };
    let same = simulator(1.0).await;
    let gate = job
        .step_async("gate.sh", gate_env(same.url(), "run-same"))
        .await;
    same.stop().await.unwrap();
    assert_eq!(
        gate.code(),
        Some(0),
        "the gate step never fails: {}",
        gate.text()
    );
    assert_eq!(gate.get("exit-code"), "0", "{}", gate.text());
    assert_eq!(gate.get("verdict"), "pass", "{}", gate.text());
    assert_eq!(gate.get("artifact-name"), "cacherate-perf-1");
    let finish = job.step_async("finish.sh", finish_env(&gate)).await;
    assert_eq!(finish.code(), Some(0), "{}", finish.text());
    assert_eq!(comments(&github).len(), 1, "{}", finish.text());

    // 3. The gate of a server 30 % slower: the step after the others fails.
    let slow = simulator(1.3).await;
    let gate = job
        .step_async("gate.sh", gate_env(slow.url(), "run-slow"))
        .await;
    slow.stop().await.unwrap();
    assert_eq!(
        gate.code(),
        Some(0),
        "the gate step never fails: {}",
        gate.text()
    );
    assert_eq!(gate.get("exit-code"), "1", "{}", gate.text());
    assert_eq!(gate.get("verdict"), "regressed", "{}", gate.text());
    // The artifact: the run directory, with the run and its verdict.
    let run_dir = work.path().join(gate.get("run-dir"));
    assert_eq!(run_dir, work.path().join("run-slow"));
    common::assert_run_dir_complete(&run_dir, 1024);
    assert!(run_dir.join("compare/verdict.json").is_file());
    // The check: the junit.xml the JUnit step is given, failing.
    let junit = std::fs::read_to_string(work.path().join(gate.get("junit-path"))).unwrap();
    assert!(junit.contains("<testsuite"), "{junit}");
    assert!(junit.contains("<failure"), "{junit}");
    let finish = job.step_async("finish.sh", finish_env(&gate)).await;
    assert_eq!(finish.code(), Some(1), "{}", finish.text());
    let posted = comments(&github);
    assert_eq!(posted.len(), 1, "one comment, updated: {posted:?}");
    assert!(posted[0].starts_with(MARKER), "{}", posted[0]);
    assert!(posted[0].contains("regressed"), "{}", posted[0]);
    assert!(job.summary().contains("regressed"), "{}", job.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_whose_checksum_differs_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let job = Job::new(work.path(), "http://127.0.0.1:9".into());
    let packing = tempfile::tempdir().unwrap();
    let releases = release_server(release_files(packing.path())).await;
    let job = std::sync::Arc::new(job);
    let install = job
        .step_async(
            "install.sh",
            vec![
                ("CACHERATE_VERSION", VERSION.to_string()),
                ("CACHERATE_RELEASE_URL", format!("{releases}/tampered")),
            ],
        )
        .await;
    assert_eq!(install.code(), Some(1), "{}", install.text());
    let stderr = String::from_utf8_lossy(&install.output.stderr);
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(install.outputs.is_empty(), "{}", install.text());
    assert!(job.github_path().is_empty());
    let installed = work.path().join(format!(
        "tool-cache/cacherate/{VERSION}/{}/bin/cacherate",
        this_target()
    ));
    assert!(!installed.exists(), "nothing is installed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_binary_for_the_target_it_builds_the_same_version_with_cargo() {
    let work = tempfile::tempdir().unwrap();
    let packing = tempfile::tempdir().unwrap();
    let releases = release_server(release_files(packing.path())).await;
    // A `cargo` that notes its arguments and "builds" the binary under test.
    let bin = work.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = work.path().join("cargo.log");
    std::fs::write(
        bin.join("cargo"),
        format!(
            "#!/usr/bin/env bash\n\
             echo \"$*\" >> '{log}'\n\
             while [[ $# -gt 0 && $1 != --root ]]; do shift; done\n\
             mkdir -p \"$2/bin\" && cp '{exe}' \"$2/bin/cacherate\"\n",
            log = log.display(),
            exe = env!("CARGO_BIN_EXE_cacherate"),
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(bin.join("cargo"))
        .status()
        .unwrap();
    let mut job = Job::new(work.path(), "http://127.0.0.1:9".into());
    job.path_prefix.push(bin);
    let job = std::sync::Arc::new(job);
    let install = job
        .step_async(
            "install.sh",
            vec![
                ("CACHERATE_VERSION", format!("v{VERSION}")),
                ("CACHERATE_RELEASE_URL", format!("{releases}/good")),
                ("CACHERATE_TARGET", "riscv64gc-unknown-linux-gnu".into()),
            ],
        )
        .await;
    assert_eq!(install.code(), Some(0), "{}", install.text());
    assert_eq!(install.get("source"), "cargo");
    let calls = std::fs::read_to_string(&log).unwrap();
    let root = work.path().join(format!(
        "tool-cache/cacherate/{VERSION}/riscv64gc-unknown-linux-gnu"
    ));
    assert_eq!(
        calls.trim(),
        format!(
            "install --locked cacherate --version ={VERSION} --root {}",
            root.display()
        )
    );
}

#[test]
fn a_gate_without_a_baseline_says_so_and_the_last_step_fails_with_its_code() {
    let work = tempfile::tempdir().unwrap();
    let job = Job::new(work.path(), "http://127.0.0.1:9".into());
    let gate = job.step("gate.sh", &[("INPUT_BASELINE", String::new())]);
    assert_eq!(gate.code(), Some(2), "{}", gate.text());
    assert_eq!(gate.get("exit-code"), "2");
    assert_eq!(gate.get("verdict"), "none");
    assert!(String::from_utf8_lossy(&gate.output.stderr).contains("'baseline' is required"));
    // Arguments that do not split (an unmatched quote) are refused before
    // anything runs.
    let gate = job.step(
        "gate.sh",
        &[
            ("INPUT_BASELINE", "baselines/x.json".into()),
            ("INPUT_ARGS", "--gate-metrics 'input_throughput".into()),
            ("CACHERATE", "/nonexistent/cacherate".into()),
        ],
    );
    assert_eq!(gate.code(), Some(2), "{}", gate.text());
    assert_eq!(gate.get("exit-code"), "2");
    assert!(String::from_utf8_lossy(&gate.output.stderr).contains("cannot split the input 'args'"));
    // Not a pull request: no comment is tried, and the step ends with the
    // gate's code.
    let finish = job.step(
        "finish.sh",
        &[
            ("GATE_EXIT_CODE", "3".into()),
            ("INPUT_COMMENT", "true".into()),
            ("GITHUB_EVENT_NAME", "push".into()),
        ],
    );
    assert_eq!(finish.code(), Some(3), "{}", finish.text());
    assert!(String::from_utf8_lossy(&finish.output.stderr).contains("not about a pull request"));
}

#[test]
fn action_yml_runs_the_scripts_and_installs_this_version() {
    let action = std::fs::read_to_string(root().join("action.yml")).unwrap();
    for script in ["install.sh", "gate.sh", "finish.sh"] {
        assert!(
            action.contains(&format!(
                "run: bash \"$GITHUB_ACTION_PATH/action/{script}\""
            )),
            "action.yml runs action/{script}"
        );
        assert!(root().join("action").join(script).is_file());
    }
    // The version input's default is the release of this source: a release
    // tag of the action installs its own binary (release.yml checks it too).
    for file in ["action.yml", "install/action.yml"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let version = text
            .split("\n  version:")
            .nth(1)
            .and_then(|rest| rest.split("default:").nth(1))
            .and_then(|rest| rest.lines().next())
            .map(|line| line.trim().trim_matches('"').to_string())
            .expect("a version input with a default");
        assert_eq!(version, VERSION, "{file}'s version default");
    }
    let install = std::fs::read_to_string(root().join("install/action.yml")).unwrap();
    assert!(install.contains("run: bash \"$GITHUB_ACTION_PATH/../action/install.sh\""));
    for output in ["verdict", "exit-code"] {
        assert!(
            action.contains(&format!("\n  {output}:\n")),
            "output {output}"
        );
    }
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let output = Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let commit = text
        .trim()
        .strip_prefix(&format!("cacherate {VERSION} ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text:?} is not `cacherate {VERSION} (COMMIT)`"));
    // Built here, from a checkout: the commit is git's.
    let head = Command::new("git")
        .args(["rev-parse", "--short=9", "HEAD"])
        .current_dir(root())
        .output();
    match head {
        Ok(head) if head.status.success() => {
            assert_eq!(
                commit,
                String::from_utf8_lossy(&head.stdout).trim(),
                "{text}"
            )
        }
        _ => assert!(
            commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{text}"
        ),
    }
}

/// build.rs compiled on its own and run as cargo runs it, outside a git
/// checkout: the commit comes from `CACHERATE_COMMIT` (a container build),
/// else from the `.cargo_vcs_info.json` of a package (`cargo install
/// cacherate`), else it is `unknown`; a variable that is no commit id is
/// not trusted.
#[test]
fn outside_a_checkout_the_commit_comes_from_the_variable_then_the_package() {
    let _alone = MACHINE.blocking_lock();
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("build-script");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let built = Command::new(rustc)
        .args(["--edition", "2024", "-o"])
        .arg(&script)
        .arg(root().join("build.rs"))
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", common::binary::text(&built));
    let package = work.path().join("cacherate-0.1.0");
    std::fs::create_dir_all(&package).unwrap();
    let commit = |variable: Option<&str>, vcs_info: bool| {
        let info = package.join(".cargo_vcs_info.json");
        if vcs_info {
            std::fs::write(
                &info,
                "{\n  \"git\": {\n    \"sha1\": \"9e62d1efdb119dbaeb742d590111baedb831cbe8\"\n  },\n  \"path_in_vcs\": \"\"\n}",
            )
            .unwrap();
        } else {
            let _ = std::fs::remove_file(&info);
        }
        let mut command = Command::new(&script);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("CARGO_MANIFEST_DIR", &package)
            // No git repository above the package, whatever holds the
            // temporary directory.
            .env("GIT_CEILING_DIRECTORIES", work.path());
        if let Some(value) = variable {
            command.env("CACHERATE_COMMIT", value);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", common::binary::text(&output));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("cargo:rustc-env=CACHERATE_COMMIT="))
            .map(str::to_string)
            .expect("the script sets CACHERATE_COMMIT")
    };
    let full = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(commit(Some(full), true), "012345678");
    assert_eq!(commit(None, true), "9e62d1efd");
    assert_eq!(commit(None, false), "unknown");
    assert_eq!(commit(Some("$(rm -rf /)"), false), "unknown");
}
