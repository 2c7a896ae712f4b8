//! `cacherate doctor`'s output: the rows as a table for people, or as
//! JSON for scripts. Renders finished findings; asks nothing.

use serde::Serialize;

use super::finding::{Finding, Findings};

/// Version of the `--json` document.
pub const SCHEMA_VERSION: u32 = 1;

/// The table: one row per check, the fix under each row that is not ok,
/// and a last line that says whether a sweep can run.
pub fn render_table(findings: &Findings) -> String {
    let mut out = format!("cacherate doctor: {}\n", findings.endpoint);
    let width = findings
        .rows
        .iter()
        .map(|row| row.check.name().len())
        .max()
        .unwrap_or(0)
        .max("check".len());
    out.push_str(&format!("{:<width$}  {:<7}  seen\n", "check", "status"));
    for row in &findings.rows {
        out.push_str(&format!(
            "{:<width$}  {:<7}  {}\n",
            row.check.name(),
            row.status.name(),
            row.seen
        ));
        if let Some(fix) = &row.fix {
            out.push_str(&format!("{:<width$}  {:<7}  fix: {fix}\n", "", ""));
        }
    }
    let blocking: Vec<&str> = findings
        .rows
        .iter()
        .filter(|row| row.blocks_sweep)
        .map(|row| row.check.name())
        .collect();
    let optional: Vec<&str> = findings
        .problems()
        .filter(|row| !row.blocks_sweep)
        .map(|row| row.check.name())
        .collect();
    if blocking.is_empty() {
        out.push_str("a sweep can run");
        if !optional.is_empty() {
            out.push_str(&format!(" (not as well without: {})", optional.join(", ")));
        }
        out.push('\n');
    } else {
        out.push_str(&format!(
            "a sweep cannot run: fix {} first\n",
            blocking.join(", ")
        ));
    }
    out
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Document<'a> {
    schema_version: u32,
    endpoint: &'a str,
    server: Option<&'static str>,
    version: Option<&'a str>,
    model: Option<&'a str>,
    sweep_can_run: bool,
    rows: &'a [Finding],
}

/// The findings as one JSON document (pretty-printed, with a newline).
pub fn render_json(findings: &Findings) -> String {
    let document = Document {
        schema_version: SCHEMA_VERSION,
        endpoint: &findings.endpoint,
        server: findings.server.as_ref().map(|s| s.kind.as_str()),
        version: findings
            .server
            .as_ref()
            .and_then(|server| server.version.as_deref()),
        model: findings.model.as_deref(),
        sweep_can_run: findings.sweep_can_run(),
        rows: &findings.rows,
    };
    let mut text = serde_json::to_string_pretty(&document).expect("json serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{Check, Status};

    fn findings(rows: Vec<Finding>) -> Findings {
        Findings {
            endpoint: "http://gpu1:8000".into(),
            server: None,
            model: None,
            rows,
        }
    }

    #[test]
    fn the_table_puts_each_fix_under_its_row_and_ends_with_the_verdict() {
        let text = render_table(&findings(vec![
            Finding::ok(Check::Models, "m"),
            Finding::not_ok(
                Check::Metrics,
                Status::Missing,
                false,
                "not served",
                "--metrics",
            ),
        ]));
        assert_eq!(
            text,
            "cacherate doctor: http://gpu1:8000\n\
             check    status   seen\n\
             models   ok       m\n\
             metrics  missing  not served\n\
             \x20                 fix: --metrics\n\
             a sweep can run (not as well without: metrics)\n"
        );
        let text = render_table(&findings(vec![Finding::not_ok(
            Check::Models,
            Status::Wrong,
            true,
            "unreachable",
            "start it",
        )]));
        assert!(
            text.ends_with("a sweep cannot run: fix models first\n"),
            "{text}"
        );
    }

    #[test]
    fn the_json_document_reads_back() {
        let document: serde_json::Value =
            serde_json::from_str(&render_json(&findings(vec![Finding::not_ok(
                Check::TokenPrompts,
                Status::Wrong,
                true,
                "refused",
                "text",
            )])))
            .unwrap();
        assert_eq!(document["schema_version"], SCHEMA_VERSION);
        assert_eq!(document["sweep_can_run"], false);
        assert_eq!(document["rows"][0]["check"], "token_prompts");
        assert_eq!(document["rows"][0]["status"], "wrong");
        assert_eq!(document["rows"][0]["fix"], "text");
    }
}
