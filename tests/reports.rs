//! The verdict reports — `comment.md`, `junit.xml`, `diff.html` — rendered
//! from verdicts that `compare` judged, checked against snapshot files in
//! `tests/snapshots/` (review changes with `cargo insta review`, or run with
//! `INSTA_UPDATE=always` and read the diff) and for the properties that
//! must hold whatever the numbers: size, escaping, self-containment.
//! `tests/consumers.rs` parses the same files with independent parsers.

mod verdict_fixture;

use cacherate::analysis::Verdict;
use cacherate::report::markdown::{self, GITHUB_COMMENT_LIMIT, Links, MARKER};
use cacherate::report::{diff_html, junit};
use verdict_fixture::{Change, HOSTILE_MODEL};

fn run_link() -> Links {
    Links {
        run_url: Some("https://github.com/acme/serving/actions/runs/42".into()),
    }
}

#[test]
fn the_mixed_fixture_has_every_verdict() {
    let verdict = verdict_fixture::mixed();
    let seen: Vec<Verdict> = verdict
        .curves
        .iter()
        .flat_map(|c| c.verdict.points.iter().map(|p| p.verdict))
        .collect();
    for expected in [
        Verdict::Pass,
        Verdict::Regressed,
        Verdict::Improved,
        Verdict::Inconclusive,
        Verdict::Error,
        Verdict::Insufficient,
    ] {
        assert!(seen.contains(&expected), "no {expected:?} in {seen:?}");
    }
    assert_eq!(verdict.overall.verdict, Verdict::Regressed);
    let point = |context: u64, rate: u32, metric: &str| {
        let curve = verdict
            .curves
            .iter()
            .find(|c| c.context_size == context && c.verdict.metric.name() == metric)
            .unwrap();
        let name = cacherate::store::PointId::new(context, rate).key();
        let point = curve
            .verdict
            .points
            .iter()
            .find(|p| p.point == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", curve.verdict.points));
        (curve.gated, point.clone())
    };
    // Cache rates are fractions, as runs store them: the 50 % point that
    // the server served 30 % of from cache is 20 points off (the limit is
    // 5), the 100 % one at 99.2 % within it.
    for figures in &verdict.points {
        assert_eq!(
            figures.target_cache_rate,
            f64::from(figures.cache_hit_rate) / 100.0,
            "{}",
            figures.point
        );
    }
    let (_, gap) = point(32000, 50, "input_throughput");
    assert_eq!(gap.verdict, Verdict::Error);
    assert_eq!(
        gap.reason.as_deref(),
        Some("cache hit rate is 20.0 points off the requested one (limit 5.0)")
    );
    assert_eq!(
        point(32000, 100, "input_throughput").1.verdict,
        Verdict::Pass
    );
    assert!(
        verdict
            .overall
            .errors
            .iter()
            .any(|e| e.starts_with("ctx32000/cache50/")),
        "{:?}",
        verdict.overall.errors
    );
    // An insufficient verdict of a gated metric, with its reason; the
    // same point's TTFT p95 rose by half, but that metric is not gated.
    let (gated, insufficient) = point(32000, 0, "output_throughput");
    assert!(gated);
    assert_eq!(insufficient.verdict, Verdict::Insufficient);
    assert!(
        insufficient
            .reason
            .as_deref()
            .unwrap()
            .contains("sample 1 is 0"),
        "{:?}",
        insufficient.reason
    );
    let (gated, p95) = point(32000, 0, "ttft_p95");
    assert!(!gated);
    assert_eq!(p95.verdict, Verdict::Regressed);
    assert!(
        !verdict
            .overall
            .regressed
            .iter()
            .any(|n| n.contains("ttft_p95")),
        "an ungated metric fails nothing: {:?}",
        verdict.overall.regressed
    );
    assert_eq!(
        verdict
            .gated_metrics
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>(),
        ["input_throughput", "output_throughput", "ttft_p50"]
    );
}

#[test]
fn comment_md_snapshot() {
    let comment = markdown::render(&verdict_fixture::mixed(), &run_link());
    insta::assert_snapshot!("comment_mixed.md", comment);
}

#[test]
fn comment_md_without_changes_or_ci_links_snapshot() {
    let verdict =
        verdict_fixture::verdict("Qwen/Qwen3-8B", &[4096], &[0, 50, 100], |_, _| Change::SAME);
    let comment = markdown::render(&verdict, &Links::default());
    insta::assert_snapshot!("comment_pass.md", comment);
}

#[test]
fn junit_xml_snapshot() {
    let xml = junit::render(&verdict_fixture::mixed()).unwrap();
    insta::assert_snapshot!("junit_mixed.xml", String::from_utf8(xml).unwrap());
}

#[test]
fn diff_html_snapshot() {
    let html = diff_html::render(&verdict_fixture::mixed()).unwrap();
    insta::assert_snapshot!("diff_mixed.html", html);
}

/// Every `src`, `href` or `action` attribute of the page's tags (text is
/// escaped, so a tag is what lies between `<` and `>`).
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        for attribute in tag.split_whitespace().skip(1) {
            let name = attribute
                .split('=')
                .next()
                .unwrap_or_default()
                .to_lowercase();
            if ["src", "href", "xlink:href", "action", "srcset"].contains(&name.as_str()) {
                out.push(attribute.to_string());
            }
        }
    }
    out
}

#[test]
fn diff_html_is_self_contained_and_escapes_the_model_everywhere() {
    let html = diff_html::render(&verdict_fixture::mixed()).unwrap();
    assert!(
        references(&html).is_empty(),
        "the page refers to {:?}",
        references(&html)
    );
    assert!(!html.contains("url("), "no CSS that loads anything");
    assert!(!html.contains("@import"));
    assert!(!html.to_lowercase().contains("<script"), "no script at all");
    assert!(!html.contains("<img"));
    let escaped = "evil&lt;script&gt;alert(1)&lt;&#x2f;script&gt;";
    // Title, header, provenance of both sides (the server's model too).
    assert!(
        html.matches(escaped).count() >= 4,
        "the model id is shown, escaped, wherever it appears"
    );
    assert!(!html.contains(HOSTILE_MODEL));
    assert!(html.contains("Content-Security-Policy"));
    // The baseline's `refreshed_by` is escaped too.
    assert!(html.contains("&lt;img src=x&gt;"));
    // The curve-level verdicts come before the per-point table.
    let curves = html.find("<h2>Curves</h2>").unwrap();
    let points = html.find("<h2>Points</h2>").unwrap();
    assert!(curves < points);
    // Each point's row is colour-coded by its verdict.
    for class in [
        "v-regressed",
        "v-improved",
        "v-inconclusive",
        "v-error",
        "v-pass",
    ] {
        assert!(html.contains(&format!("<tr class=\"{class}\">")), "{class}");
    }
    // One chart per context and metric.
    assert_eq!(html.matches("<svg ").count(), 12);
}

#[test]
fn comment_md_neutralises_what_servers_and_baselines_supply() {
    let comment = markdown::render(&verdict_fixture::mixed(), &run_link());
    assert!(comment.starts_with(MARKER));
    assert!(!comment.contains("<script"));
    assert!(!comment.contains("<img"));
    assert!(!comment.contains("@octocat"), "no mention");
    assert!(!comment.contains("@admin"), "no mention");
    let links = comment
        .match_indices("](")
        .filter(|(i, _)| !comment[..*i].ends_with('\\'))
        .count();
    assert_eq!(links, 1, "only the run's link: {comment}");
    assert!(!comment.contains("https://evil"), "no autolink");
    assert!(!comment.contains("www.evil"), "no autolink");
    assert!(comment.contains("](https://github.com/acme/serving/actions/runs/42)"));
}

#[test]
fn comment_md_stays_under_githubs_limit_for_a_21_by_4_sweep() {
    let cases = [
        ("mixed", verdict_fixture::sweep_21x4_mixed()),
        (
            "every point regressed",
            verdict_fixture::sweep_21x4(|_, _| Change::factors([0.8, 0.8, 1.3, 1.3])),
        ),
        (
            "nothing changed",
            verdict_fixture::sweep_21x4(|_, _| Change::SAME),
        ),
    ];
    for (name, verdict) in cases {
        assert_eq!(verdict.points.len(), 84, "{name}");
        let comment = markdown::render(&verdict, &run_link());
        let chars = comment.chars().count();
        // GitHub counts UTF-16 units; our emoji take two.
        let units = comment.encode_utf16().count();
        assert!(
            units < GITHUB_COMMENT_LIMIT,
            "{name}: {chars} characters, {units} UTF-16 units"
        );
        assert!(comment.contains("<details>"), "{name}");
        assert!(
            comment.trim_end().ends_with("</sub>"),
            "{name}: the footer stays"
        );
        // Whole: nothing left out, every point verdict (84 points × 4
        // metrics) and every curve's (4 contexts × 4 metrics) a row of
        // its own.
        assert!(!comment.contains("rows are not shown"), "{name}");
        let (points, curves) = verdict_rows(&comment);
        assert_eq!((points.len(), curves.len()), (336, 16), "{name}");
        assert_eq!(
            points
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            336,
            "{name}: a point verdict twice"
        );
    }
}

/// Rows of a comment's verdict tables, as (point or curve, metric).
type Rows = Vec<(String, String)>;

/// The verdict rows of a comment's tables: (point, metric) of each point
/// row, (curve, metric) of each curve row.
fn verdict_rows(comment: &str) -> (Rows, Rows) {
    let (mut points, mut curves) = (Vec::new(), Vec::new());
    let mut is_curve = false;
    for line in comment.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
        if cells[0] == "| verdict" {
            is_curve = cells[1] == "curve";
            continue;
        }
        if cells[0].starts_with("| ---") {
            continue;
        }
        let row = (cells[1].to_string(), cells[2].to_string());
        if is_curve {
            curves.push(row);
        } else {
            points.push(row);
        }
    }
    (points, curves)
}

/// A shown figure ("12345 tok/s", "0.645 s") and the half of its last
/// printed digit.
fn shown(cell: &str) -> (f64, f64) {
    let (number, _) = cell.split_once(' ').unwrap_or((cell, ""));
    let value: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("not a figure: {cell}"));
    let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
    (value, 0.5 * 10f64.powi(-(decimals as i32)))
}

#[test]
fn every_rows_change_is_the_change_of_the_figures_it_shows() {
    let verdict = verdict_fixture::mixed();
    // In verdict.json, exactly.
    let mut estimates = 0;
    for curve in &verdict.curves {
        for point in &curve.verdict.points {
            let Some(e) = &point.estimate else { continue };
            let (b, c) = (e.baseline_geomean.unwrap(), e.current_geomean.unwrap());
            assert!(
                (100.0 * (c / b - 1.0) - e.change_pct).abs() < 1e-9,
                "{} {}: {c} / {b} against {}",
                point.point,
                curve.verdict.metric.name(),
                e.change_pct
            );
            estimates += 1;
        }
    }
    assert!(estimates >= 20, "only {estimates} estimates");
    // In the comment, within what printing rounds away.
    let comment = markdown::render(&verdict, &run_link());
    let mut checked = 0;
    for line in comment.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
        if cells.len() < 9 || cells[1] == "point" || cells[0].starts_with("| ---") {
            continue;
        }
        let Some(change) = cells[5].strip_suffix(" %") else {
            continue;
        };
        // Point rows only (`ctx512/cache50`; a curve row is `ctx512`).
        if cells[3] == "-" || !cells[1].contains('/') {
            continue;
        }
        let change: f64 = change.parse().unwrap();
        let ((b, db), (c, dc)) = (shown(cells[3]), shown(cells[4]));
        let slack = 100.0 * (c / b) * (db / b + dc / c) + 0.05 + 1e-9;
        assert!(
            (100.0 * (c / b - 1.0) - change).abs() <= slack,
            "{line}: {c} / {b} is not {change} %"
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} rows checked in\n{comment}");
    assert!(comment.contains("geometric means of the per-sample values"));
}

#[test]
fn a_comment_that_does_not_fit_says_what_it_left_out() {
    let verdict = verdict_fixture::sweep_21x4(|_, _| Change::factors([0.8, 0.8, 1.3, 1.3]));
    let comment = markdown::render_with_budget(&verdict, &run_link(), 8_000);
    assert!(comment.chars().count() <= 8_000);
    assert!(comment.contains("rows are not shown"), "{comment}");
    assert!(comment.contains("</details>"), "the folds stay closed");
    assert!(comment.contains("](https://github.com/acme/serving/actions/runs/42)"));
    // The regressions come first: they are what survives the cut.
    let first_row = comment
        .lines()
        .find(|l| l.starts_with("| 🔴"))
        .expect("a regressed row");
    assert!(first_row.contains("regressed"));
}
