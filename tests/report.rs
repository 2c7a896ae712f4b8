//! The run reports: rendered from a stored run (`tests/fixtures/run-report`,
//! a sweep of the simulator) and compared with snapshots; every file
//! self-contained and small; a string the server controls escaped
//! everywhere; `cacherate report` on a run in progress and on a directory
//! that is not a run; `run --skip-graphs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cacherate::commands::report::{load, write_reports};
use cacherate::report::html::{RenderedFile, RunReport, names, render_all};
use cacherate::store::{Progress, RunDir};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-report")
}

fn fixture_report() -> RunReport {
    let loaded = load(&RunDir::existing(&fixture()).unwrap()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let mut report = loaded.report;
    report.renderer_version = "VERSION".into();
    report
}

fn text(file: &RenderedFile) -> &str {
    std::str::from_utf8(&file.bytes).expect("HTML is UTF-8")
}

/// The page with the embedded libraries and stylesheets left out and the
/// chart data pretty-printed, so a snapshot shows what the page says.
fn for_snapshot(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let open_end = start + rest[start..].find('>').unwrap() + 1;
        let close = open_end + rest[open_end..].find("</script>").unwrap();
        out.push_str(&rest[..open_end]);
        let body = &rest[open_end..close];
        if rest[start..open_end].contains("application/json") {
            let value: serde_json::Value = serde_json::from_str(body).unwrap();
            out.push('\n');
            out.push_str(&serde_json::to_string_pretty(&value).unwrap());
            out.push('\n');
        } else {
            out.push_str(&format!("[script, {} bytes]", body.len()));
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    let mut out2 = String::new();
    let mut rest = out.as_str();
    while let Some(start) = rest.find("<style>") {
        let close = start + rest[start..].find("</style>").unwrap();
        out2.push_str(&rest[..start + 7]);
        out2.push_str(&format!("[style, {} bytes]", close - start - 7));
        rest = &rest[close..];
    }
    out2.push_str(rest);
    out2
}

#[test]
fn the_reports_of_a_stored_run_match_their_snapshots() {
    let files = render_all(&fixture_report()).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "index.html",
            "performance_vs_cache_rate_1024.html",
            "performance_vs_cache_rate_4096.html",
            "ramp_ctx1024_cache0.html",
            "ramp_ctx1024_cache50.html",
            "ramp_ctx1024_cache90.html",
            "ramp_ctx1024_cache100.html",
            "ramp_ctx4096_cache0.html",
            "ramp_ctx4096_cache50.html",
            "ramp_ctx4096_cache90.html",
            "ramp_ctx4096_cache100.html",
            "input_throughput_comparison.html",
            "output_throughput_comparison.html",
            "output_metrics_comparison.html",
            "ttft_heatmap.html",
        ]
    );
    for name in [
        "index.html",
        "performance_vs_cache_rate_4096.html",
        "ramp_ctx4096_cache90.html",
        "output_metrics_comparison.html",
        "ttft_heatmap.html",
    ] {
        let file = files.iter().find(|f| f.name == name).unwrap();
        insta::assert_snapshot!(name, for_snapshot(text(file)));
    }
}

/// Every `src="…"`, `href="…"` and `url(…)` of a page.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for key in ["src=", "href=", "url("] {
        let mut rest = html;
        while let Some(at) = rest.find(key) {
            rest = &rest[at + key.len()..];
            let quote = rest.chars().next().unwrap_or(' ');
            let value: String = if quote == '"' || quote == '\'' {
                rest[1..].chars().take_while(|&c| c != quote).collect()
            } else {
                rest.chars().take_while(|&c| c != ')' && c != ' ').collect()
            };
            found.push(value);
        }
    }
    found
}

#[test]
fn every_report_is_self_contained_small_and_links_only_to_its_siblings() {
    let files = render_all(&fixture_report()).unwrap();
    let written: BTreeSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let mut sizes = Vec::new();
    for file in &files {
        let html = text(file);
        assert!(
            !html.contains("<link"),
            "{}: <link> loads a file",
            file.name
        );
        assert!(!html.contains("@import"), "{}: @import", file.name);
        for reference in references(html) {
            // uPlot's code builds no URLs; the page refers only to the
            // other reports, by relative name.
            assert!(
                written.contains(reference.as_str()),
                "{}: reference {reference:?} is not one of the reports",
                file.name
            );
        }
        // No external script: every <script> tag is inline.
        assert!(
            !html.contains("<script src"),
            "{}: external script",
            file.name
        );
        sizes.push((file.name.clone(), file.bytes.len()));
        assert!(
            file.bytes.len() < 150_000,
            "{} is {} bytes",
            file.name,
            file.bytes.len()
        );
    }
    // uPlot is embedded once per page with charts, not at all without.
    for file in &files {
        let copies = text(file).matches("leeoniya/uPlot (v1.6.32)").count();
        let expected = usize::from(file.name != names::HEATMAP);
        assert_eq!(copies, expected, "{}", file.name);
    }
    eprintln!("report sizes: {sizes:?}");
}

#[test]
fn a_string_the_server_controls_is_escaped_everywhere() {
    let evil = "<script>alert(1)</script>\"'&";
    let mut report = fixture_report();
    report.provenance.model = Some(evil.into());
    report.provenance.command = vec!["cacherate".into(), evil.into()];
    report.provenance.tokenizer = Some(evil.into());
    if let Some(server) = report.provenance.server.as_mut() {
        server.version = Some(evil.into());
    }
    report.options.push(("--model".into(), evil.into()));
    report.phases[1].reason = Some(evil.into());
    report.phases[1].phase_id = evil.into();
    report.points[0].selection_phase = Some(evil.into());
    let files = render_all(&report).unwrap();
    for file in &files {
        let html = text(file);
        assert!(!html.contains(evil), "{} holds the string raw", file.name);
        assert!(!html.contains("<script>alert"), "{}", file.name);
        // The only scripts are the page's own: the chart data, uPlot and
        // the code that draws; none on the heatmap.
        let scripts = html.matches("<script").count();
        let expected = if file.name == names::HEATMAP { 0 } else { 3 };
        assert_eq!(scripts, expected, "{}", file.name);
        // The chart data cannot end its <script> element.
        if let Some(start) = html.find("<script type=\"application/json\"") {
            let data = &html[start..];
            let data = &data[data.find('>').unwrap() + 1..data.find("</script>").unwrap()];
            assert!(!data.contains('<'), "{}: '<' in the chart data", file.name);
        }
    }
    let index = text(&files[0]);
    assert!(
        index.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "the model is shown, escaped"
    );
}

#[test]
fn report_of_a_run_in_progress_shows_the_points_done_and_skips_a_partial_row() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    // The last point is in flight: not in results.json, its phases so far
    // committed, and a partial row after them.
    let results_path = dir.path().join("results.json");
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results_path).unwrap()).unwrap();
    let points = results["points"].as_array_mut().unwrap();
    let last = points.pop().unwrap();
    let (context, rate) = (
        last["context_size"].as_u64().unwrap(),
        last["cache_hit_rate"].as_u64().unwrap() as u32,
    );
    std::fs::write(&results_path, serde_json::to_vec(&results).unwrap()).unwrap();
    let progress_path = dir.path().join("progress.json");
    let mut progress: Progress =
        serde_json::from_str(&std::fs::read_to_string(&progress_path).unwrap()).unwrap();
    progress.completed.pop();
    progress.current = Some(cacherate::store::CurrentPoint {
        context_size: context,
        cache_hit_rate: rate,
        start_concurrency: 2,
        phases: Vec::new(),
    });
    std::fs::write(&progress_path, serde_json::to_vec(&progress).unwrap()).unwrap();
    let csv = dir.path().join(format!("phase_metadata_{context}.csv"));
    let mut bytes = std::fs::read(&csv).unwrap();
    bytes.extend_from_slice(b"4096,100,99,RAMP_c999,RAMP,999,17958");
    std::fs::write(&csv, bytes).unwrap();
    let mut run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap())
            .unwrap();
    run["status"] = "running".into();
    std::fs::write(dir.path().join("run.json"), run.to_string()).unwrap();

    let run_dir = RunDir::existing(dir.path()).unwrap();
    let written = write_reports(&run_dir).unwrap();
    assert!(written.warnings.is_empty(), "{:?}", written.warnings);
    let ramp = names::ramp(context, rate);
    assert!(written.files.iter().any(|(name, _)| *name == ramp));
    let page = std::fs::read_to_string(dir.path().join(&ramp)).unwrap();
    assert!(page.contains("This point is not finished"), "{page}");
    assert!(
        !page.contains("RAMP_c999"),
        "the uncommitted row is left out"
    );
    let index = std::fs::read_to_string(dir.path().join(names::INDEX)).unwrap();
    assert!(index.contains("not finished (running or interrupted): 7 points done"));
    assert!(index.contains(&format!("href=\"{ramp}\"")));
}

#[test]
fn report_of_a_phase_file_shorter_than_committed_warns_of_the_missing_rows() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let csv = dir.path().join("phase_metadata_1024.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    // The last two rows are gone.
    let kept: Vec<&str> = text.lines().collect();
    let kept = kept[..kept.len() - 2].join("\n") + "\n";
    std::fs::write(&csv, &kept).unwrap();
    let loaded = load(&RunDir::existing(dir.path()).unwrap()).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let warning = &loaded.warnings[0];
    assert!(
        warning.contains("phase_metadata_1024.csv")
            && warning.contains(&format!("holds {} bytes", kept.len()))
            && warning.contains(&format!("records {}", text.len()))
            && warning.contains("rows of measured phases are missing"),
        "{warning}"
    );
}

#[test]
fn report_refuses_a_directory_that_is_not_a_run_with_exit_2() {
    let bin = env!("CARGO_BIN_EXE_cacherate");
    let empty = tempfile::tempdir().unwrap();
    for dir in [empty.path().to_path_buf(), empty.path().join("missing")] {
        let output = std::process::Command::new(bin)
            .arg("report")
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is not a run directory"), "{stderr}");
        assert!(
            std::fs::read_dir(empty.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }
}

#[test]
fn report_writes_every_page_into_the_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.matches(".html").count(), 16, "{stdout}");
    assert!(dir.path().join("ttft_heatmap.html").is_file());
    assert!(dir.path().join("index.html").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_writes_the_reports_at_its_end_unless_skip_graphs() {
    use cacherate::cli::{Cli, Command as CliCommand};
    use clap::Parser;

    let server = cacherate::sim::SimServer::start(cacherate::sim::SimConfig::for_tests(0.05))
        .await
        .unwrap();
    for skip in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut argv: Vec<String> = [
            "cacherate",
            "run",
            "--api-endpoint",
            &server.url(),
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--context-sizes",
            "512",
            "--working-set-size",
            "1024",
            "--cache-hit-rates",
            "50",
            "--output-tokens",
            "4",
            "--max-ttft",
            "0.5",
            "--ramp-duration",
            "0.3",
            "--test-duration",
            "0.3",
            "--num-retries",
            "1",
            "--start-concurrency",
            "2",
            "--init-concurrency",
            "2",
            "--chunk-size",
            "64",
            "--seed",
            "3",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if skip {
            argv.push("--skip-graphs".into());
        }
        let CliCommand::Run(run) = Cli::try_parse_from(&argv).unwrap().command else {
            unreachable!()
        };
        let no_profiles = tempfile::tempdir().unwrap();
        let settings = cacherate::settings::RunSettings::resolve(*run, no_profiles.path()).unwrap();
        cacherate::commands::run_and_report(settings, &argv, &cacherate::runner::Stop::new())
            .await
            .unwrap();
        let html: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".html"))
            .collect();
        if skip {
            assert!(html.is_empty(), "--skip-graphs wrote {html:?}");
        } else {
            for name in [
                "index.html",
                "performance_vs_cache_rate_512.html",
                "ramp_ctx512_cache50.html",
            ] {
                assert!(
                    html.iter().any(|n| n == name),
                    "{name} missing from {html:?}"
                );
            }
        }
    }
    server.stop().await.unwrap();
}
