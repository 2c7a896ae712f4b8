//! `comment.md`: the verdict as GitHub-flavoured markdown for a pull
//! request comment and the job's step summary. One line says the verdict
//! with its counts, a table shows what changed, the rest folds into
//! `<details>`; the text stays under GitHub's 65 536-character limit for a
//! comment however large the sweep, saying what it left out. Every string
//! that a server or a baseline supplied goes through [`md_text`], so it
//! cannot mention anyone, link, embed an image or inject HTML.

use crate::analysis::document::VerdictFile;
use crate::analysis::{Estimate, Verdict};

use super::verdict_view::{self, CurveRow, Row, format_value};

/// The hidden first line that `cacherate comment` finds its earlier
/// comment by.
pub const MARKER: &str = "<!-- cacherate-verdict -->";

/// GitHub refuses a comment body of 65 536 characters or more.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// What the renderer aims to stay under: the limit less room for a
/// marker the comment command might add and for characters GitHub counts
/// twice (emoji outside the basic plane are two UTF-16 units).
pub const BUDGET: usize = 60_000;

/// Links the comment may carry, from the CI environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    /// The workflow run that holds the artifacts, e.g.
    /// `https://github.com/OWNER/NAME/actions/runs/123`.
    pub run_url: Option<String>,
}

impl Links {
    /// The run's page from `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY` and
    /// `GITHUB_RUN_ID` as GitHub Actions sets them; `None` unless all three
    /// are there and look like what GitHub sets.
    pub fn from_actions_env(get: impl Fn(&str) -> Option<String>) -> Links {
        let run_url = (|| {
            let server = get("GITHUB_SERVER_URL")?;
            let repository = get("GITHUB_REPOSITORY")?;
            let run_id = get("GITHUB_RUN_ID")?;
            let server = server.trim_end_matches('/');
            let server_ok = (server.starts_with("https://") || server.starts_with("http://"))
                && server.len() > "https://".len()
                && server[server.find("//")? + 2..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '/'));
            let repo_ok = repository.split_once('/').is_some_and(|(owner, name)| {
                [owner, name].iter().all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                })
            });
            let id_ok = !run_id.is_empty() && run_id.chars().all(|c| c.is_ascii_digit());
            (server_ok && repo_ok && id_ok)
                .then(|| format!("{server}/{repository}/actions/runs/{run_id}"))
        })();
        Links { run_url }
    }
}

/// Text from outside (a model id, a baseline name, a reason) made inert in
/// GitHub markdown, also inside a table cell: no HTML (`<`, `>`, `&` become
/// entities), no markdown syntax (`\`, `` ` ``, `*`, `_`, `[`, `]`, `|`,
/// `~`, `!`, `#` are backslash-escaped), no line breaks, no `@mention`, and
/// no autolinked URL, `www.` domain or e-mail address: GitHub links those
/// in text nodes after the markdown is parsed, so escapes cannot stop it;
/// a zero-width space after `@` and inside `://` and `www.` does (the same
/// trick Dependabot uses for the handles in its release notes).
pub fn md_text(text: &str) -> String {
    const ZWSP: char = '\u{200B}';
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                out.push('@');
                out.push(ZWSP);
            }
            ':' if chars.get(i + 1) == Some(&'/') && chars.get(i + 2) == Some(&'/') => {
                out.push(ZWSP);
                out.push(':');
            }
            '.' if i >= 3 && chars[i - 3..i].iter().all(|c| c.eq_ignore_ascii_case(&'w')) => {
                out.push(ZWSP);
                out.push('.');
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn icon(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅",
        Verdict::Regressed => "🔴",
        Verdict::Improved => "🟢",
        Verdict::Inconclusive => "🟡",
        Verdict::Error => "⛔",
        Verdict::Insufficient => "⚪",
    }
}

fn verdict_cell(verdict: Verdict, gated: bool) -> String {
    format!(
        "{} {}{}",
        icon(verdict),
        verdict.name(),
        if gated { "" } else { " (not gated)" }
    )
}

/// The verdict cell, marking a pass over a significant change inside the
/// tolerance (the analysis gives such a pass a reason).
fn verdict_with_note(
    verdict: Verdict,
    gated: bool,
    estimate: Option<&Estimate>,
    reason: Option<&str>,
) -> String {
    let mut cell = verdict_cell(verdict, gated);
    if verdict == Verdict::Pass && estimate.is_some() && reason.is_some() {
        cell.push_str(", a significant change inside the tolerance");
    }
    cell
}

const POINT_HEADER: &str = "| verdict | point | metric | baseline | current | change | interval | tolerance | MDE |\n\
                            | --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |\n";

fn point_row(row: &Row<'_>) -> String {
    let value = |v: Option<f64>| v.map_or("-".to_string(), |v| format_value(row.metric, v));
    let (change, interval, mde) =
        verdict_view::estimate_cells(row.estimate, row.reason.map(md_text));
    let verdict = verdict_with_note(row.verdict, row.gated, row.estimate, row.reason);
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | ±{:.0} % | {} |\n",
        verdict,
        md_text(row.point),
        verdict_view::metric_slug(row.metric),
        value(row.baseline_value()),
        value(row.current_value()),
        change,
        interval,
        row.tolerance_pct,
        mde,
    )
}

const CURVE_HEADER: &str = "| verdict | curve | metric | points | change | interval | tolerance | MDE |\n\
                            | --- | --- | --- | ---: | ---: | --- | ---: | ---: |\n";

fn curve_row(row: &CurveRow<'_>) -> String {
    let (change, interval, mde) =
        verdict_view::estimate_cells(row.estimate, row.reason.map(md_text));
    format!(
        "| {} | ctx{} | {} | {} | {} | {} | ±{:.0} % | {} |\n",
        verdict_with_note(row.verdict, row.gated, row.estimate, row.reason),
        row.context_size,
        verdict_view::metric_slug(row.metric),
        row.points,
        change,
        interval,
        row.tolerance_pct,
        mde,
    )
}

/// Text that grows up to a number of characters, and counts what it had
/// to leave out.
struct Budget {
    out: String,
    chars: usize,
    limit: usize,
    dropped: usize,
}

impl Budget {
    fn push(&mut self, text: &str) {
        self.chars += text.chars().count();
        self.out.push_str(text);
    }

    /// Adds `text` if it fits in what is left after `reserve` characters.
    fn try_push(&mut self, text: &str, reserve: usize) -> bool {
        let n = text.chars().count();
        if self.chars + n + reserve <= self.limit {
            self.chars += n;
            self.out.push_str(text);
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

/// Characters kept free for what closes the comment: the truncation note,
/// the closing tags, the footer.
const RESERVE: usize = 1_500;

fn ordered_changes<'a>(rows: &'a [Row<'a>]) -> Vec<&'a Row<'a>> {
    let rank = |r: &Row<'_>| match (r.gated, r.verdict) {
        (true, Verdict::Regressed) => 0,
        (true, Verdict::Error | Verdict::Insufficient) => 1,
        (true, Verdict::Improved) => 2,
        (false, _) => 3,
        _ => 4,
    };
    let mut changes: Vec<&Row<'_>> = rows.iter().filter(|r| r.is_change()).collect();
    changes.sort_by_key(|r| rank(r));
    changes
}

/// The whole comment, marker first.
pub fn render(verdict: &VerdictFile, links: &Links) -> String {
    render_with_budget(verdict, links, BUDGET)
}

/// [`render`] under another size limit (tests use a small one).
pub fn render_with_budget(verdict: &VerdictFile, links: &Links, limit: usize) -> String {
    let rows = verdict_view::rows(verdict);
    let curves = verdict_view::curve_rows(verdict);
    let mut b = Budget {
        out: String::new(),
        chars: 0,
        limit,
        dropped: 0,
    };
    b.push(MARKER);
    b.push("\n");
    headline(&mut b, verdict, &curves);
    changes(&mut b, &rows, &curves);
    the_rest(&mut b, &rows, &curves);
    warnings(&mut b, &verdict.warnings);
    if let Some(time) = &verdict.time {
        b.try_push(
            &format!(
                "Time {}. Samples per point: {}.\n\n",
                time.line(),
                md_text(&time.samples_line())
            ),
            RESERVE,
        );
    }
    footer(&mut b, verdict, links);
    b.out
}

fn changed(curve: &CurveRow<'_>) -> bool {
    matches!(curve.verdict, Verdict::Regressed | Verdict::Improved)
}

/// The one line that says it all (verdict and counts), the summary, and
/// what was held against what.
fn headline(b: &mut Budget, verdict: &VerdictFile, curves: &[CurveRow<'_>]) {
    let overall = &verdict.overall;
    let counts = verdict_view::counts(overall).join(" · ");
    let gated_total: usize = overall.counts.values().sum();
    let curve_changes = curves.iter().filter(|c| c.gated && changed(c)).count();
    b.push(&format!(
        "### {} cacherate: {} — {} of {} gated point verdicts{}\n\n",
        icon(overall.verdict),
        overall.verdict.name(),
        if counts.is_empty() {
            "none".into()
        } else {
            counts
        },
        gated_total,
        if curve_changes > 0 {
            format!(
                "; {curve_changes} curve{} changed",
                if curve_changes == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    ));
    b.push(&format!("{}\n\n", md_text(&overall.summary)));
    let tolerances = &verdict.policy.tolerances;
    b.push(&format!(
        "Model {} against baseline **{}** ({} run{}, {}, refreshed by {}) at {:.0} % confidence; \
         tolerances ±{:.0} % throughput, ±{:.0} % TTFT p50, ±{:.0} % TTFT p95. {}.\n\n",
        md_text(&verdict.run.model),
        md_text(&verdict.baseline.name),
        verdict.baseline.runs,
        if verdict.baseline.runs == 1 { "" } else { "s" },
        md_text(&verdict.baseline.created_at),
        md_text(&verdict.baseline.refreshed_by),
        verdict.policy.confidence * 100.0,
        tolerances.throughput * 100.0,
        tolerances.ttft_p50 * 100.0,
        tolerances.ttft_p95 * 100.0,
        capitalized(verdict_view::VALUES_NOTE),
    ));
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A table of curves and one of points, each with its header, as far as
/// the budget goes.
fn tables(b: &mut Budget, curves: &[&CurveRow<'_>], points: &[&Row<'_>]) {
    if !curves.is_empty() {
        b.push(CURVE_HEADER);
        for row in curves {
            b.try_push(&curve_row(row), RESERVE);
        }
        b.push("\n");
    }
    if !points.is_empty() {
        b.push(POINT_HEADER);
        for row in points {
            b.try_push(&point_row(row), RESERVE);
        }
        b.push("\n");
    }
}

/// What changed, compact.
fn changes(b: &mut Budget, rows: &[Row<'_>], curves: &[CurveRow<'_>]) {
    let points = ordered_changes(rows);
    let changed_curves: Vec<&CurveRow<'_>> = curves.iter().filter(|c| changed(c)).collect();
    if points.is_empty() && changed_curves.is_empty() {
        b.push("No point and no curve changed beyond its tolerance.\n\n");
    } else {
        tables(b, &changed_curves, &points);
    }
}

/// The rest, folded.
fn the_rest(b: &mut Budget, rows: &[Row<'_>], curves: &[CurveRow<'_>]) {
    let rest: Vec<&Row<'_>> = rows.iter().filter(|r| !r.is_change()).collect();
    let other_curves: Vec<&CurveRow<'_>> = curves.iter().filter(|c| !changed(c)).collect();
    if rest.is_empty() && other_curves.is_empty() {
        return;
    }
    b.push(&format!(
        "<details><summary>The other {} point verdicts and {} curves</summary>\n\n",
        rest.len(),
        other_curves.len()
    ));
    tables(b, &other_curves, &rest);
    b.push("</details>\n\n");
}

fn warnings(b: &mut Budget, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    b.push(&format!(
        "<details><summary>⚠️ {} warning{}</summary>\n\n",
        warnings.len(),
        if warnings.len() == 1 { "" } else { "s" }
    ));
    for warning in warnings {
        b.try_push(&format!("- {}\n", md_text(warning)), RESERVE);
    }
    b.push("\n</details>\n\n");
}

/// What was left out, where everything is, and the versions.
fn footer(b: &mut Budget, verdict: &VerdictFile, links: &Links) {
    if b.dropped > 0 {
        let note = format!(
            "**{} rows are not shown**: a comment holds at most {} characters. Every verdict \
             is in `diff.html`, `junit.xml` and `verdict.json`.\n\n",
            b.dropped, GITHUB_COMMENT_LIMIT
        );
        b.push(&note);
    }
    let files = "`compare/diff.html` (curves and every verdict), `compare/junit.xml`, \
                 `compare/verdict.json`";
    match &links.run_url {
        Some(url) => b.push(&format!(
            "Artifacts of [this workflow run]({url}): {files}.\n",
        )),
        None => b.push(&format!("In the run directory: {files}.\n")),
    }
    b.push(&format!(
        "<sub>cacherate {} · verdict.json schema {}</sub>\n",
        md_text(&verdict.tool_version),
        verdict.schema_version
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_inert() {
        let hostile = "<script>alert(1)</script> @octocat [x](http://evil) ![i](y) `c` |a| \
                       www.evil.com a&b\nnext";
        let text = md_text(hostile);
        for bad in ["<", ">", "@octocat", "http://", "www.", "\n"] {
            assert!(!text.contains(bad), "{bad} in {text}");
        }
        assert!(text.contains("&lt;script&gt;"));
        assert!(text.contains("\\[x\\]"));
        assert!(text.contains("\\|a\\|"));
        assert!(text.contains("\\`c\\`"));
        assert!(text.contains("a&amp;b"));
    }

    #[test]
    fn the_run_link_needs_all_three_variables_and_sane_values() {
        fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            }
        }
        let good = [
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/serving"),
            ("GITHUB_RUN_ID", "42"),
        ];
        assert_eq!(
            Links::from_actions_env(env(&good)).run_url.as_deref(),
            Some("https://github.com/acme/serving/actions/runs/42")
        );
        assert_eq!(Links::from_actions_env(env(&good[..2])).run_url, None);
        let bad = [
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/serving)[x](y"),
            ("GITHUB_RUN_ID", "42"),
        ];
        assert_eq!(Links::from_actions_env(env(&bad)).run_url, None);
    }
}
