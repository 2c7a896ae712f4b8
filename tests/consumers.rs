//! The reports read back by parsers that are not ours: `junit.xml` by
//! `junitparser` (PyPI), `comment.md` by `cmarkgfm` (PyPI: bindings to
//! GitHub's own fork of cmark, with its GFM extensions — tables,
//! autolinks, the tag filter). `.ci/run` installs both into a virtualenv
//! and points `CACHERATE_PYTHON` at it.
//!
//! Without them the tests cannot run. Under CI (`CI=true`) that is a
//! failure that says how to install them; elsewhere the tests are
//! reported as ignored, with a SKIPPED line on stderr — never as passed.
//! That needs to be decided at run time, so this file has its own harness
//! (libtest-mimic, `harness = false`), like `tests/llama.rs`.

mod common;
mod verdict_fixture;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use cacherate::analysis::Verdict;
use cacherate::analysis::document::VerdictFile;
use cacherate::report::markdown::{self, Links};
use common::harness::trial_needing;
use libtest_mimic::{Arguments, Failed};
use verdict_fixture::{Change, JunitCounts};

/// The Python with the parsers: `CACHERATE_PYTHON`, else the virtualenv
/// `.ci/run` makes, else `python3`.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("CACHERATE_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let cache = std::env::var_os("CACHERATE_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cacherate")));
    if let Some(cache) = cache {
        let venv = cache.join("tools/py-venv/bin/python");
        if venv.exists() {
            return venv;
        }
    }
    PathBuf::from("python3")
}

/// Whether `module` imports in [`python`].
fn has_module(module: &str) -> bool {
    Command::new(python())
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a Python script with `input` on stdin; returns stdout.
fn run_python(script: &str, input: &[u8]) -> Result<String, Failed> {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python().display()))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "the Python script failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Reads a JUnit file the way CI report tools do, and prints per suite
/// tests, failures, errors, skipped, and each case's result.
const JUNITPARSER: &str = r#"
import json, sys, tempfile
from junitparser import JUnitXml, TestSuite, Failure, Error, Skipped
with tempfile.NamedTemporaryFile(suffix=".xml", delete=False) as f:
    f.write(sys.stdin.buffer.read())
xml = JUnitXml.fromfile(f.name)
suites = [xml] if isinstance(xml, TestSuite) else list(xml)
out = {}
for suite in suites:
    cases = {}
    counted = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in suite:
        counted["tests"] += 1
        kinds = [type(r).__name__ for r in case.result]
        for r in case.result:
            if isinstance(r, Failure): counted["failures"] += 1
            elif isinstance(r, Error): counted["errors"] += 1
            elif isinstance(r, Skipped): counted["skipped"] += 1
        cases[case.name] = {
            "result": kinds,
            "message": [r.message for r in case.result],
            "system_out": case.system_out,
            "time": case.time,
        }
    out[suite.name] = {
        "declared": {"tests": suite.tests, "failures": suite.failures,
                     "errors": suite.errors, "skipped": suite.skipped},
        "counted": counted,
        "cases": cases,
    }
print(json.dumps(out))
"#;

fn junit_counts_match(verdict: &VerdictFile) -> Result<(), Failed> {
    let xml = cacherate::report::junit::render(verdict).map_err(|e| e.to_string())?;
    let parsed: serde_json::Value =
        serde_json::from_str(&run_python(JUNITPARSER, &xml)?).map_err(|e| e.to_string())?;
    let expected: BTreeMap<String, JunitCounts> = verdict_fixture::expected_junit_counts(verdict);
    let suites = parsed.as_object().ok_or("no suites")?;
    let names: Vec<&String> = suites.keys().collect();
    let expected_names: Vec<&String> = expected.keys().collect();
    if names != expected_names {
        return Err(format!("suites {names:?}, expected {expected_names:?}").into());
    }
    for (name, counts) in &expected {
        let suite = &parsed[name];
        for part in ["declared", "counted"] {
            let got = JunitCounts {
                tests: suite[part]["tests"].as_u64().unwrap_or(u64::MAX) as usize,
                failures: suite[part]["failures"].as_u64().unwrap_or(u64::MAX) as usize,
                errors: suite[part]["errors"].as_u64().unwrap_or(u64::MAX) as usize,
                skipped: suite[part]["skipped"].as_u64().unwrap_or(u64::MAX) as usize,
            };
            if got != *counts {
                return Err(format!("{name} {part}: {got:?}, expected {counts:?}").into());
            }
        }
        // Every case by name, its figures in system-out, its time in seconds.
        let cases = suite["cases"].as_object().ok_or("no cases")?;
        for (case, fields) in cases {
            let pattern_ok = case.starts_with(name.as_str())
                && (case.contains("/cache") || case.contains("/curve/"))
                && ["input_tps", "output_tps", "ttft_p50", "ttft_p95"]
                    .iter()
                    .any(|m| case.ends_with(m));
            if !pattern_ok {
                return Err(format!("test case name {case}").into());
            }
            let out = fields["system_out"].as_str().unwrap_or_default();
            if !out.contains("verdict: ") || !out.contains("tolerance: ") {
                return Err(format!("{case}: system-out {out:?}").into());
            }
            if fields["time"].as_f64() != Some(0.0) {
                return Err(format!("{case}: time {}", fields["time"]).into());
            }
        }
    }
    // Each gated regression is a failure whose message names its figures.
    for curve in verdict.curves.iter().filter(|c| c.gated) {
        let metric = match curve.verdict.metric.name() {
            "input_throughput" => "input_tps",
            "output_throughput" => "output_tps",
            other => other,
        };
        for point in &curve.verdict.points {
            if point.verdict != Verdict::Regressed {
                continue;
            }
            let name = format!("{}/{metric}", point.point);
            let case = &parsed[format!("ctx{}", curve.context_size)]["cases"][&name];
            let message = case["message"][0].as_str().unwrap_or_default();
            if case["result"][0] != "Failure"
                || !message.contains("regressed")
                || !message.contains("tolerance ±")
                || !message.contains("interval [")
            {
                return Err(format!("{name}: {case}").into());
            }
        }
    }
    Ok(())
}

fn junit_xml_is_read_back_by_junitparser() -> Result<(), Failed> {
    junit_counts_match(&verdict_fixture::mixed())?;
    junit_counts_match(&verdict_fixture::sweep_21x4_mixed())
}

/// GitHub's markdown renderer with raw HTML let through (GitHub then
/// sanitises it; we must not rely on that), reporting what matters.
const CMARKGFM: &str = r#"
import json, re, sys, cmarkgfm
from cmarkgfm.cmark import Options
text = sys.stdin.read()
html = cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE)
tables = re.findall(r"<table>.*?</table>", html, re.S)
print(json.dumps({
    "tables": [len(re.findall(r"<tr>", t)) for t in tables],
    "header_cells": [len(re.findall(r"<th", t.split("</thead>")[0])) for t in tables],
    "links": re.findall(r"<a [^>]*href=\"([^\"]*)\"", html),
    "images": len(re.findall(r"<img", html)),
    "scripts": len(re.findall(r"<script", html, re.I)),
    "details": len(re.findall(r"<details>", html)),
    "mention": bool(re.search(r"@(octocat|admin)\b", re.sub(r"<[^>]+>", "", html))),
    "html": html,
}))
"#;

fn comment_md_renders_as_gfm_with_its_tables() -> Result<(), Failed> {
    let run_url = "https://github.com/acme/serving/actions/runs/42";
    let links = Links {
        run_url: Some(run_url.into()),
    };
    let cases = [
        ("mixed", verdict_fixture::mixed()),
        ("21x4", verdict_fixture::sweep_21x4_mixed()),
        (
            "21x4 all regressed",
            verdict_fixture::sweep_21x4(|_, _| Change::factors([0.8, 0.8, 1.3, 1.3])),
        ),
    ];
    for (name, verdict) in cases {
        let comment = markdown::render(&verdict, &links);
        let parsed: serde_json::Value =
            serde_json::from_str(&run_python(CMARKGFM, comment.as_bytes())?)
                .map_err(|e| e.to_string())?;
        let fail = |what: &str| -> Failed {
            format!(
                "{name}: {what}\n--- comment.md\n{comment}\n--- html\n{}",
                parsed["html"]
            )
            .into()
        };
        let rows: Vec<u64> = parsed["tables"]
            .as_array()
            .ok_or_else(|| fail("no tables"))?
            .iter()
            .filter_map(|v| v.as_u64())
            .collect();
        // Every table row of the markdown is a row of a rendered table.
        let markdown_rows = comment
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
            .count() as u64;
        if rows.is_empty() || rows.iter().sum::<u64>() != markdown_rows {
            return Err(fail(&format!(
                "table rows {rows:?}, markdown has {markdown_rows}"
            )));
        }
        let changes = verdict
            .curves
            .iter()
            .flat_map(|c| &c.verdict.points)
            .filter(|p| {
                matches!(
                    p.verdict,
                    Verdict::Regressed | Verdict::Improved | Verdict::Error
                )
            })
            .count();
        if changes > 0 && parsed["header_cells"][0].as_u64() < Some(8) {
            return Err(fail("the change table has too few columns"));
        }
        if parsed["links"] != serde_json::json!([run_url]) {
            return Err(fail(&format!("links {}", parsed["links"])));
        }
        if parsed["images"] != 0 || parsed["scripts"] != 0 {
            return Err(fail("an image or a script"));
        }
        if parsed["mention"] != false {
            return Err(fail("a mention"));
        }
        if parsed["details"].as_u64() < Some(1) {
            return Err(fail("no <details>"));
        }
    }
    Ok(())
}

/// A test of this file.
type Test = fn() -> Result<(), Failed>;

/// The tests, by name, and the Python module each needs.
const TESTS: [(&str, Test, &str); 2] = [
    (
        "junit_xml_is_read_back_by_junitparser",
        junit_xml_is_read_back_by_junitparser,
        "junitparser",
    ),
    (
        "comment_md_renders_as_gfm_with_its_tables",
        comment_md_renders_as_gfm_with_its_tables,
        "cmarkgfm",
    ),
];

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let trials = TESTS
        .iter()
        .map(|&(name, test, module)| {
            let missing = (!args.list && !has_module(module)).then(|| {
                format!(
                    "the Python module `{module}` is not importable by {}: .ci/run installs it \
                     into a virtualenv (pip install {module}) and sets CACHERATE_PYTHON to it",
                    python().display()
                )
            });
            trial_needing(&args, name, missing, test)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
