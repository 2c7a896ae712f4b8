//! The run reports in a real browser: a small sweep of the simulator writes
//! them at its end, then headless Chromium opens every page (no console
//! message may appear: no `Uncaught` error, no `console.error`), checks
//! that every page has charts and every chart placeholder holds a drawn
//! uPlot chart, and screenshots `index.html`, whose chart area must hold
//! coloured pixels. Each check has its control: a copy of the index that
//! calls `console.error` and throws must be caught, and the index with its
//! scripts cut out must show its placeholders undrawn and no coloured
//! pixels, so the checks tell a clean page from a noisy one and a drawn
//! chart from a blank one.
//!
//! Chromium is Debian's `chromium` package (`apt-get install chromium`;
//! `.ci/run` installs it). Where it is missing the test is reported as
//! ignored, with a message — unless `CI=true`, where it must be there and
//! the test fails without it. `CACHERATE_CHROMIUM` names another binary.
//! Like tests/llama.rs this file has its own harness (libtest-mimic), as
//! only at run time is it known whether to ignore the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cacherate::cli::{Cli, Command as CliCommand};
use cacherate::settings::RunSettings;
use cacherate::sim::SimConfig;
use clap::Parser;
use common::harness::trial_needing;
use libtest_mimic::Arguments;

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let browser = chromium();
    let missing = browser.is_none().then(|| {
        "chromium is not installed: apt-get install chromium (.ci/run does), or set \
         CACHERATE_CHROMIUM to another Chromium or Chrome"
            .to_string()
    });
    let trial = trial_needing(
        &args,
        "the_reports_of_a_real_run_render_in_chromium_without_console_errors",
        missing,
        move || {
            reports_render_in_chromium(&browser.expect("checked above"));
            Ok(())
        },
    );
    libtest_mimic::run(&args, vec![trial]).exit_code()
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CACHERATE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .map(move |name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// A small sweep: two contexts (so the heatmap is drawn too), three
/// rates, half-second phases on a simulator twenty times faster than
/// modelled.
fn sweep_args(url: &str, dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    [
        "--api-endpoint",
        url,
        "--output-dir",
        dir,
        "--context-sizes",
        "512",
        "1024",
        "--working-set-size",
        "4096",
        "--cache-hit-rates",
        "0",
        "50",
        "100",
        "--output-tokens",
        "8",
        "--max-ttft",
        "0.05",
        "--ramp-duration",
        "0.4",
        "--test-duration",
        "1.6",
        "--num-retries",
        "2",
        "--start-concurrency",
        "2",
        "--concurrency-increment",
        "4",
        "--max-concurrency",
        "32",
        "--init-concurrency",
        "4",
        "--chunk-size",
        "64",
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

fn run_sweep(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = common::start(SimConfig::for_tests(0.05)).await;
        let args = sweep_args(&server.url(), dir);
        let mut argv = vec!["cacherate".to_string(), "run".to_string()];
        argv.extend_from_slice(&args);
        let CliCommand::Run(run) = Cli::try_parse_from(&argv).unwrap().command else {
            unreachable!()
        };
        let no_profiles = tempfile::tempdir().unwrap();
        let settings = RunSettings::resolve(*run, no_profiles.path()).unwrap();
        cacherate::commands::run_and_report(settings, &argv, &cacherate::runner::Stop::new())
            .await
            .unwrap();
        server.stop().await.unwrap();
    });
}

/// Runs headless Chromium on `page` with `extra` arguments; returns its
/// standard output and error.
fn chromium_on(browser: &Path, page: &Path, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "chromium failed on {}: {stderr}",
        page.display()
    );
    (stdout, stderr)
}

/// The lines of Chromium's log that report a console message or an
/// uncaught exception.
fn console_messages(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(":CONSOLE") || line.contains("Uncaught"))
        .map(str::to_string)
        .collect()
}

/// The charts of a page's DOM after its scripts ran.
#[derive(Debug)]
struct Charts {
    /// Elements a chart is drawn into.
    placeholders: usize,
    /// uPlot charts drawn.
    drawn: usize,
    canvases: usize,
}

impl Charts {
    fn of(dom: &str) -> Charts {
        Charts {
            placeholders: dom.matches("class=\"plot\"").count(),
            drawn: dom.matches("class=\"uplot").count(),
            canvases: dom.matches("<canvas").count(),
        }
    }
}

/// Pixels of strong colour (chart lines, bands, markers) in the rows
/// `top..bottom` of a PNG; text and grid lines are grey or near black.
fn coloured_pixels(png_path: &Path, top: u32, bottom: u32) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let channels = frame.color_type.samples();
    assert!(
        frame.bit_depth == png::BitDepth::Eight && channels >= 3,
        "{:?} {:?}",
        frame.color_type,
        frame.bit_depth
    );
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut count = 0;
    for y in (top as usize)..(bottom as usize).min(height) {
        for x in 0..width {
            let at = (y * width + x) * channels;
            let [r, g, b] = [buffer[at], buffer[at + 1], buffer[at + 2]];
            if r.max(g).max(b) - r.min(g).min(b) > 80 {
                count += 1;
            }
        }
    }
    count
}

fn reports_render_in_chromium(browser: &Path) {
    let dir = tempfile::tempdir().unwrap();
    run_sweep(dir.path());
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    pages.sort();
    for name in [
        "index.html",
        "performance_vs_cache_rate_512.html",
        "performance_vs_cache_rate_1024.html",
        "ramp_ctx512_cache0.html",
        "ramp_ctx1024_cache100.html",
        "input_throughput_comparison.html",
        "output_throughput_comparison.html",
        "output_metrics_comparison.html",
        "ttft_heatmap.html",
    ] {
        assert!(dir.path().join(name).is_file(), "run wrote no {name}");
    }

    for page in &pages {
        let (dom, log) = chromium_on(browser, page, &["--dump-dom".to_string()]);
        let console = console_messages(&log);
        assert!(
            console.is_empty(),
            "{}: console output {console:#?}",
            page.display()
        );
        let charts = Charts::of(&dom);
        if page.ends_with("ttft_heatmap.html") {
            // Tables, no chart: in each one coloured cell per context and
            // rate.
            assert_eq!(charts.placeholders, 0, "{}", page.display());
            let cells = dom.matches("<td style=\"background").count();
            assert!(
                cells > 0 && cells % 6 == 0,
                "{}: {cells} cells, not 2 contexts × 3 rates a table",
                page.display()
            );
            continue;
        }
        assert!(
            charts.placeholders > 0,
            "{}: no chart placeholder, so `drawn == placeholders` would say nothing",
            page.display()
        );
        assert_eq!(
            charts.drawn,
            charts.placeholders,
            "{}: {} charts, {} drawn",
            page.display(),
            charts.placeholders,
            charts.drawn
        );
        assert!(
            charts.canvases >= charts.drawn,
            "{}: a chart without its canvas",
            page.display()
        );
    }

    // The controls of the checks above. A page that writes to the console
    // (an error, then an uncaught exception) is caught by the console
    // check, and a page whose scripts were cut out, its charts undrawn, by
    // the chart count.
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    let noisy_page = dir.path().join("index-with-console-errors.html");
    let noise = "<script>console.error(\"cacherate control: console.error\");\
                 throw new Error(\"cacherate control: thrown\");</script>";
    std::fs::write(
        &noisy_page,
        html.replace("</body>", &format!("{noise}</body>")),
    )
    .unwrap();
    let (_, log) = chromium_on(browser, &noisy_page, &["--dump-dom".to_string()]);
    let console = console_messages(&log);
    for expected in [
        "control: console.error",
        "Uncaught Error: cacherate control: thrown",
    ] {
        assert!(
            console.iter().any(|line| line.contains(expected)),
            "the console check misses {expected:?}: it saw {console:#?} in\n{log}"
        );
    }
    let scripts = html.find("<script").expect("the index has scripts");
    let end = html.rfind("</script>").unwrap() + "</script>".len();
    let undrawn_page = dir.path().join("index-without-scripts.html");
    std::fs::write(
        &undrawn_page,
        format!("{}{}", &html[..scripts], &html[end..]),
    )
    .unwrap();
    let (dom, _) = chromium_on(browser, &undrawn_page, &["--dump-dom".to_string()]);
    let undrawn = Charts::of(&dom);
    assert!(
        undrawn.placeholders > 0 && undrawn.drawn == 0,
        "without its scripts the index should have its placeholders and no chart: {undrawn:?}"
    );

    // The overview's charts fill the rows under the header (about 90 px)
    // down to the points table.
    let index = dir.path().join("index.html");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let shot = out.join("report-index.png");
    let blank = out.join("report-index-no-scripts.png");
    let size = "--window-size=1280,1000".to_string();
    chromium_on(
        browser,
        &index,
        &[size.clone(), format!("--screenshot={}", shot.display())],
    );
    // The control: the same page without its scripts, charts undrawn.
    chromium_on(
        browser,
        &undrawn_page,
        &[size, format!("--screenshot={}", blank.display())],
    );
    let drawn = coloured_pixels(&shot, 100, 800);
    let undrawn = coloured_pixels(&blank, 100, 800);
    assert!(
        drawn > 5_000,
        "the charts of {} look blank: {drawn} coloured pixels (screenshot {})",
        index.display(),
        shot.display()
    );
    assert!(
        undrawn < drawn / 10,
        "without its scripts the chart area still has {undrawn} coloured pixels (with: {drawn}); \
         the check would not see a blank chart"
    );
    eprintln!(
        "{} coloured pixels in the chart area of {} ({} without scripts)",
        drawn,
        shot.display(),
        undrawn
    );
}
