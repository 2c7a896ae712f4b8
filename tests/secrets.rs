//! A server key and credentials in an endpoint URL never reach a file of
//! the run directory, the working directory, the caches (home, cache and
//! temporary directories are the test's own), the reproduce script, the
//! logs or an error message — neither as written nor base64-encoded, as
//! they go in a basic-auth header.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use cacherate::sim::SimConfig;

const KEY: &str = "sk-live-KEY0123456789";
const USER: &str = "bench";
const PASSWORD: &str = "PASS0123456789";
const SECOND_PASSWORD: &str = "OTHERPASS987";
const TOKEN: &str = "TOKEN5551212";

/// Runs in `dir`, with its home, cache and temporary directories in `dir`
/// too, so that whatever it leaves anywhere is searched.
fn cacherate(args: &[&str], dir: &Path) -> Output {
    let own = |name: &str| {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    };
    Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .args(args)
        .current_dir(dir)
        .env("CACHERATE_LOG", "cacherate=trace")
        .env("HOME", own("home"))
        .env("XDG_CACHE_HOME", own("home/.cache"))
        .env("CACHERATE_CACHE_DIR", own("cache"))
        .env("TMPDIR", own("tmp"))
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap()
}

/// Every form a secret could be found in: as written, the basic-auth
/// values that carry it (`user:password`, a token alone as `token:`), and
/// base64 of any text that holds it, at each of the three alignments (the
/// characters of an encoding that depend on the secret's bytes alone).
fn secret_forms() -> Vec<String> {
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut forms: Vec<String> = [KEY, PASSWORD, SECOND_PASSWORD, TOKEN]
        .map(String::from)
        .to_vec();
    for credentials in [
        format!("{USER}:{PASSWORD}"),
        format!("{USER}:{SECOND_PASSWORD}"),
        format!("{TOKEN}:"),
    ] {
        forms.push(base64(credentials.as_bytes()));
    }
    for secret in [KEY, PASSWORD, SECOND_PASSWORD, TOKEN] {
        for offset in 0..3 {
            let mut text = vec![b'x'; offset];
            text.extend_from_slice(secret.as_bytes());
            let encoded = base64(&text);
            // Drop the groups that hold the padding bytes or the end.
            let start = if offset == 0 { 0 } else { 4 };
            let end = (text.len() / 3) * 4;
            forms.push(encoded[start..end].to_string());
        }
    }
    forms
}

/// Every file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in secret_forms() {
        assert!(
            !text.contains(&secret),
            "{what} carries a secret ({secret}):\n{text}"
        );
    }
}

/// Every file under `dir`, the run directories, home, caches and
/// temporary files among them.
fn assert_no_file_has_a_secret(dir: &Path) {
    for (name, text) in &files(dir) {
        assert_no_secret(name, text);
    }
}

/// A one-rate sweep small enough to take a few seconds.
fn sweep(endpoint: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--api-endpoint",
        endpoint,
        "--output-dir",
        out.to_str().unwrap(),
        "--context-sizes",
        "256",
        "--working-set-size",
        "512",
        "--cache-hit-rates",
        "50",
        "--output-tokens",
        "4",
        "--ramp-duration",
        "0.5",
        "--num-retries",
        "1",
        "--start-concurrency",
        "2",
        "--max-concurrency",
        "2",
        "--request-timeout",
        "10",
        "--verbose",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs to completion and checks stdout, stderr and every file of the
/// working directory.
fn assert_clean_run(args: &[String], work: &Path, out: &Path) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cacherate(&args, work);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_no_secret("stdout", &stdout);
    assert_no_secret("stderr", &stderr);
    let written = files(out);
    assert!(
        written
            .iter()
            .any(|(name, _)| name.contains("run_command_"))
    );
    assert!(written.iter().any(|(name, _)| name.ends_with("run.json")));
    assert_no_file_has_a_secret(work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_url_passwords_stay_out_of_files_logs_and_errors() {
    let server = common::start(SimConfig::for_tests(0.05)).await;
    let work = tempfile::tempdir().unwrap();

    let keyed = work.path().join("keyed");
    let url = server.url();
    let metrics = format!("{url}/metrics");
    let args = sweep(&url, &keyed, &["--api-key", KEY, "--metrics-url", &metrics]);
    assert_clean_run(&args, work.path(), &keyed);
    let script = files(&keyed)
        .into_iter()
        .find(|(name, _)| name.contains("run_command_"))
        .unwrap()
        .1;
    assert!(script.contains("OPENAI_API_KEY"), "{script}");

    let with_password = work.path().join("with-password");
    let url = server
        .url()
        .replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    let flush = format!("{url}/reset_prefix_cache");
    // Two replicas in one comma-separated value, each with its password
    // (the same simulator twice), and a metrics URL with a token alone.
    let both = format!(
        "{url},{}",
        server
            .url()
            .replace("http://", &format!("http://{USER}:{SECOND_PASSWORD}@"))
    );
    let metrics = server.url().replace("http://", &format!("http://{TOKEN}@")) + "/metrics";
    let args = sweep(
        &both,
        &with_password,
        &[&format!("--metrics-url={metrics}"), "--flush-cache", &flush],
    );
    assert_clean_run(&args, work.path(), &with_password);
    // The run still says where it went, with the password masked, and the
    // script reads it from the environment.
    let run_json = std::fs::read_to_string(with_password.join("run.json")).unwrap();
    assert!(run_json.contains("bench:***@127.0.0.1"), "{run_json}");
    let script = files(&with_password)
        .into_iter()
        .find(|(name, _)| name.contains("run_command_"))
        .unwrap()
        .1;
    assert!(
        script.contains(r#"'http://bench:'"$CACHERATE_ENDPOINT_PASSWORD"'@127.0.0.1"#),
        "{script}"
    );
    // A URL that does not parse is refused without printing its password.
    let plain = server.url();
    let malformed = format!("http://bench:{PASSWORD}@127.0.0.1:99999999");
    for option in ["--api-endpoint", "--metrics-url"] {
        let out = work.path().join("malformed");
        let mut args = vec![
            "run",
            "--profile",
            "quick",
            "--output-dir",
            out.to_str().unwrap(),
        ];
        if option == "--metrics-url" {
            args.extend(["--api-endpoint", &plain]);
        }
        args.extend([option, &malformed]);
        let bad = cacherate(&args, work.path());
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_ne!(bad.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("bench:***@"), "{option}: {stderr}");
        assert_no_secret(option, &stderr);
    }

    server.stop().await.unwrap();

    // The server is gone: the error names the endpoint without secrets.
    let gone = cacherate(
        &[
            "run",
            "--api-endpoint",
            &url,
            "--output-dir",
            work.path().join("gone").to_str().unwrap(),
            "--profile",
            "quick",
        ],
        work.path(),
    );
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    assert_no_secret("the unreachable error", &stderr);
    assert_no_secret("stdout", &String::from_utf8_lossy(&gone.stdout));

    // Both at once is refused, and the refusal does not print them.
    let both = cacherate(
        &[
            "run",
            "--api-endpoint",
            &url,
            "--api-key",
            KEY,
            "--profile",
            "quick",
        ],
        work.path(),
    );
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert_eq!(both.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--api-key"), "{stderr}");
    assert_no_secret("the refusal", &stderr);
    // Nor anything any of these runs left in the working directory.
    assert_no_file_has_a_secret(work.path());
}

/// A `--serve` command that carries secrets (environment assignments, an
/// option's value): masked in run.json, the reproduce script, server.log's
/// header and every message.
#[test]
fn secrets_in_the_served_command_stay_out_of_files_and_logs() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("served");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = format!(
        "OPENAI_API_KEY={KEY} HF_TOKEN={TOKEN} exec '{}' sim --listen 127.0.0.1:{port} \
         --time-scale 0.05 --model m --seed 1 || echo --api-key {PASSWORD}",
        env!("CARGO_BIN_EXE_cacherate")
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let args = sweep(&endpoint, &out, &["--serve", &serve]);
    assert_clean_run(&args, work.path(), &out);
    let log = std::fs::read_to_string(out.join("server.log")).unwrap();
    assert!(
        log.contains("OPENAI_API_KEY=*** HF_TOKEN=*** exec") && log.contains("--api-key ***"),
        "{log}"
    );
}

#[test]
fn the_secret_forms_hold_the_basic_auth_header_and_any_text_with_a_secret() {
    let forms = secret_forms();
    let header = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert!(forms.contains(&header));
    // Wherever the secret sits in a longer text, one form is in its
    // encoding.
    for prefix in ["", "a", "ab", "user:", "Basic "] {
        let text = format!("{prefix}{TOKEN} and more");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&text);
        assert!(
            forms
                .iter()
                .any(|form| form.len() >= 12 && encoded.contains(form)),
            "{text:?} encodes as {encoded}, which holds no form"
        );
    }
}
