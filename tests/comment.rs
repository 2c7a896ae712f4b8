//! `cacherate comment` against a fake GitHub on 127.0.0.1:0 that speaks
//! the three REST endpoints the command uses, with GitHub's paging (`Link`
//! headers pointing at `/repositories/{id}/…`, as github.com writes them):
//! the first call creates the comment, the next updates it, an unchanged
//! body writes nothing, every page is read, a read-only token is reported
//! with exit 0, a `Link` to another host is refused (exit 2) and the token
//! never sent there, GitHub failing (5xx) or unreachable exits 3, and the
//! token never shows in what the command prints.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fake_github::{Fake, MARKER, TOKEN, fake_github};

/// Three comments by people, over two pages of two.
fn people_talking() -> Fake {
    Fake {
        comments: vec![
            (
                1,
                "alice".into(),
                "Looks good, but let's see the gate.".into(),
            ),
            (
                2,
                "bob".into(),
                format!("> {MARKER} quoted by hand is not ours"),
            ),
            (3, "carol".into(), "Any numbers at 50 % hits?".into()),
        ],
        next_id: 100,
        page_size: 2,
        ..Fake::default()
    }
}

struct Run {
    output: Output,
    summary: String,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }

    fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
}

/// Runs the binary with only the environment GitHub Actions would give
/// it, and `CACHERATE_LOG=trace` so that nothing hides in debug logs.
async fn comment(
    addr: SocketAddr,
    dir: &Path,
    body: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> Run {
    let file = dir.join("comment.md");
    std::fs::write(&file, body).unwrap();
    let summary = dir.join("step_summary.md");
    let _ = std::fs::remove_file(&summary);
    let mut command = Command::new(env!("CARGO_BIN_EXE_cacherate"));
    command
        .env_clear()
        .arg("comment")
        .arg("--file")
        .arg(&file)
        .args(args)
        .env("GITHUB_API_URL", format!("http://{addr}"))
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_ACTIONS", "true")
        .env("CACHERATE_LOG", "trace")
        .current_dir(dir);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let summary = std::fs::read_to_string(dir.join("step_summary.md")).unwrap_or_default();
    let run = Run { output, summary };
    assert!(
        !run.text().contains(TOKEN) && !run.summary.contains(TOKEN),
        "the token leaked:\n{}\n{}",
        run.text(),
        run.summary
    );
    assert!(!run.text().contains("NEVERPRINT") && !run.summary.contains("NEVERPRINT"));
    run
}

/// `cacherate comment --repo acme/serving --pr 7` of a verdict against
/// the API at `addr`, in a directory of its own.
async fn comment_on_pr_7(addr: SocketAddr) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--repo", "acme/serving", "--pr", "7"];
    comment(addr, dir.path(), &verdict_body("x"), &args, &[]).await
}

fn writes(log: &[String]) -> Vec<&String> {
    log.iter()
        .filter(|l| l.starts_with("POST") || l.starts_with("PATCH"))
        .collect()
}

fn verdict_body(text: &str) -> String {
    format!("{MARKER}\n### cacherate: pass\n\n{text}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_then_updates_then_leaves_an_unchanged_comment_alone() {
    let github = fake_github(people_talking()).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--repo", "acme/serving", "--pr", "7"];

    let first = comment(github.addr, dir.path(), &verdict_body("one"), &args, &[]).await;
    assert_eq!(first.code(), 0, "{}", first.text());
    assert!(first.text().contains("created"), "{}", first.text());
    assert!(first.summary.contains("was created"), "{}", first.summary);
    {
        let fake = github.state.lock().unwrap();
        // Both pages read (the hand-quoted marker is not ours), then a POST.
        let gets: Vec<&String> = fake.log.iter().filter(|l| l.starts_with("GET")).collect();
        assert_eq!(gets.len(), 2, "{:?}", fake.log);
        assert!(
            gets[1].contains("id=4242"),
            "the Link was followed: {:?}",
            gets
        );
        assert!(gets[1].contains("page=2"));
        assert!(gets[0].contains("per_page=100"), "{:?}", gets);
        assert_eq!(writes(&fake.log), vec!["POST acme/serving#7"]);
        assert_eq!(fake.comments.len(), 4);
    }

    // More people talk: our comment is now on page 2 of 3.
    {
        let mut fake = github.state.lock().unwrap();
        fake.comments
            .push((5, "dave".into(), "Rerun please".into()));
        fake.comments.push((6, "erin".into(), "ok".into()));
        fake.log.clear();
    }
    let second = comment(github.addr, dir.path(), &verdict_body("two"), &args, &[]).await;
    assert_eq!(second.code(), 0, "{}", second.text());
    assert!(second.text().contains("updated"), "{}", second.text());
    {
        let fake = github.state.lock().unwrap();
        assert_eq!(writes(&fake.log), vec!["PATCH acme/serving comment 101"]);
        assert_eq!(fake.comments.len(), 6, "no second comment");
        assert_eq!(fake.comments[3].2, verdict_body("two"));
    }

    {
        github.state.lock().unwrap().log.clear();
    }
    let third = comment(github.addr, dir.path(), &verdict_body("two"), &args, &[]).await;
    assert_eq!(third.code(), 0, "{}", third.text());
    assert!(third.text().contains("unchanged"), "{}", third.text());
    let fake = github.state.lock().unwrap();
    assert!(writes(&fake.log).is_empty(), "{:?}", fake.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_read_before_creating_a_comment() {
    let mut fake = people_talking();
    // Our comment is the 23rd of 25, on the last page of 13.
    for i in 0..22 {
        fake.comments
            .push((10 + i, "someone".into(), format!("comment {i}")));
    }
    let ours = verdict_body("old");
    fake.comments
        .insert(22, (77, "github-actions[bot]".into(), ours));
    let github = fake_github(fake).await;
    let dir = tempfile::tempdir().unwrap();
    let run = comment(
        github.addr,
        dir.path(),
        &verdict_body("new"),
        &["--repo", "acme/serving", "--pr", "7"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "{}", run.text());
    let fake = github.state.lock().unwrap();
    let gets = fake.log.iter().filter(|l| l.starts_with("GET")).count();
    assert_eq!(gets, 12, "{:?}", fake.log);
    assert_eq!(writes(&fake.log), vec!["PATCH acme/serving comment 77"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pull_request_and_repository_come_from_the_actions_environment() {
    let github = fake_github(people_talking()).await;
    let dir = tempfile::tempdir().unwrap();
    let event: PathBuf = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"action": "synchronize", "number": 7, "pull_request": {"number": 7}}"#,
    )
    .unwrap();
    let run = comment(
        github.addr,
        dir.path(),
        "no marker in this file",
        &[],
        &[
            ("GITHUB_REPOSITORY", "acme/serving".into()),
            ("GITHUB_EVENT_PATH", event.display().to_string()),
        ],
    )
    .await;
    assert_eq!(run.code(), 0, "{}", run.text());
    let fake = github.state.lock().unwrap();
    assert_eq!(writes(&fake.log), vec!["POST acme/serving#7"]);
    let posted = &fake.comments.last().unwrap().2;
    assert!(posted.starts_with(MARKER), "the marker is added: {posted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_is_reported_and_exits_0() {
    let github = fake_github(Fake {
        read_only: true,
        echo_token_in_errors: true,
        ..people_talking()
    })
    .await;
    let run = comment_on_pr_7(github.addr).await;
    assert_eq!(run.code(), 0, "{}", run.text());
    let text = run.text();
    assert!(text.contains("HTTP 403"), "{text}");
    assert!(text.contains("read-only GITHUB_TOKEN"), "{text}");
    assert!(
        text.contains("::warning title=cacherate comment::"),
        "{text}"
    );
    assert!(text.contains("***"), "the echoed token is redacted: {text}");
    assert!(run.summary.contains("read-only"), "{}", run.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_another_host_is_refused_and_the_token_never_goes_there() {
    // Another server, as `localhost` rather than the API's 127.0.0.1: what
    // it is asked is logged, so a token sent there would show.
    let elsewhere = fake_github(people_talking()).await;
    let github = fake_github(Fake {
        links_to: Some(format!("http://localhost:{}", elsewhere.addr.port())),
        ..people_talking()
    })
    .await;
    let run = comment_on_pr_7(github.addr).await;
    let text = run.text();
    assert_eq!(run.code(), cacherate::exit::USAGE, "{text}");
    assert!(
        text.contains(&format!(
            "refusing to send the token to http://localhost:{}",
            elsewhere.addr.port()
        )),
        "{text}"
    );
    assert!(
        elsewhere.state.lock().unwrap().log.is_empty(),
        "the other host was asked: {:?}",
        elsewhere.state.lock().unwrap().log
    );
    let fake = github.state.lock().unwrap();
    assert_eq!(fake.log.len(), 1, "only the first page: {:?}", fake.log);
    assert!(writes(&fake.log).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_failing_or_unreachable_exits_3_without_printing_the_token() {
    for (what, fake) in [
        (
            "listing answered 502",
            Fake {
                list_fails_with: Some(502),
                echo_token_in_errors: true,
                ..people_talking()
            },
        ),
        (
            "creating answered 503",
            Fake {
                create_fails_with: Some(503),
                echo_token_in_errors: true,
                ..people_talking()
            },
        ),
    ] {
        let status = fake.list_fails_with.or(fake.create_fails_with).unwrap();
        let github = fake_github(fake).await;
        let run = comment_on_pr_7(github.addr).await;
        let text = run.text();
        assert_eq!(run.code(), cacherate::exit::UNREACHABLE, "{what}: {text}");
        assert!(text.contains(&format!("HTTP {status}")), "{what}: {text}");
        assert!(
            run.summary.contains("could not comment"),
            "{what}: {}",
            run.summary
        );
    }
    // Nothing listening where the API should be.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let run = comment_on_pr_7(addr).await;
    assert_eq!(run.code(), cacherate::exit::UNREACHABLE, "{}", run.text());
    assert!(
        run.text().contains("cannot reach the GitHub API"),
        "{}",
        run.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_a_usage_error_that_does_not_print_it() {
    let github = fake_github(Fake {
        echo_token_in_errors: true,
        ..people_talking()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("comment.md");
    std::fs::write(&file, verdict_body("x")).unwrap();
    // The fake accepts only TOKEN; send another and have it quoted back.
    let other = "ghp_OTHERsecretNEVERPRINTxyz";
    let output = tokio::task::spawn_blocking({
        let addr = github.addr;
        let file = file.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_cacherate"))
                .env_clear()
                .args(["comment", "--repo", "acme/serving", "--pr", "7", "--file"])
                .arg(&file)
                .env("GITHUB_API_URL", format!("http://{addr}"))
                .env("GITHUB_TOKEN", other)
                .env("CACHERATE_LOG", "trace")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(
        !text.contains(other) && !text.contains("NEVERPRINT"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_or_a_pull_request_it_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("comment.md");
    std::fs::write(&file, verdict_body("x")).unwrap();
    let run = |env: Vec<(&'static str, &'static str)>, args: Vec<&'static str>| {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_cacherate"));
            command.env_clear().arg("comment").arg("--file").arg(&file);
            command.args(args).envs(env);
            command.output().unwrap()
        })
    };
    let no_token = run(vec![], vec!["--repo", "acme/serving", "--pr", "7"])
        .await
        .unwrap();
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("GITHUB_TOKEN is not set"));
    let no_pr = run(
        vec![("GITHUB_TOKEN", TOKEN)],
        vec!["--repo", "acme/serving"],
    )
    .await
    .unwrap();
    assert_eq!(no_pr.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&no_pr.stderr);
    assert!(stderr.contains("--pr"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
}
