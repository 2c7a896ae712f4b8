//! The dependency rules of `../shared/design/LAYOUT.md`, read off the
//! source: every `crate::…` path in a module of `src/` must name a module
//! that module may use. A run's data flows settings → workload → client →
//! runner → store, a verdict's store → baseline → analysis → report →
//! github; lower layers never reach up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules every module may use: errors, exit codes, the raw request
/// record, the seeded rng, the KV-size arithmetic, how enums are named,
/// and the plain option values (`cli::values`, named `cli_values` here).
const LEAVES: &[&str] = &[
    "error",
    "exit",
    "record",
    "rng",
    "kvsize",
    "names",
    "cli_values",
];

/// What each top-level module may use besides itself and the leaves.
const MAY_USE: &[(&str, &[&str])] = &[
    // Thin: read inputs, call the library, write outputs.
    (
        "commands",
        &[
            "analysis", "baseline", "cli", "client", "doctor", "github", "progress", "report",
            "runner", "serve", "settings", "sim", "stats", "store", "workload",
        ],
    ),
    // The embedded simulator is started by the runner when no endpoint is
    // given (runner/embedded.rs), the `--serve` server when one is named
    // (runner/served.rs).
    (
        "runner",
        &[
            "settings", "workload", "client", "stats", "store", "progress", "sim", "serve",
            "doctor",
        ],
    ),
    // The server under test as a process: it asks the server, through the
    // client, whether it is ready, and knows nothing of runs.
    ("serve", &["client"]),
    // What a sweep needs of a server, asked through the client's side
    // calls; the tokenizer and the probe's text come from the workload.
    ("doctor", &["client", "workload"]),
    ("store", &["stats"]),
    ("stats", &[]),
    ("client", &[]),
    ("workload", &["settings", "client"]),
    // `sim`'s configuration is the `cacherate sim` subcommand's clap type.
    ("cli", &["sim"]),
    ("settings", &["cli"]),
    ("baseline", &["store", "stats"]),
    ("analysis", &["baseline", "store", "stats"]),
    // `stats`: the figure types store's results carry (no statistics of
    // its own are computed there).
    ("report", &["analysis", "store", "stats"]),
    ("github", &["settings"]),
    ("sim", &[]),
    // The progress display keeps a live TTFT histogram.
    ("progress", &["stats"]),
    ("error", &[]),
    ("exit", &[]),
    ("record", &[]),
    ("rng", &[]),
    ("kvsize", &[]),
    ("names", &[]),
];

/// The top-level module a file of `src/` belongs to (`None`: the crate
/// root, `lib.rs` and `main.rs`, which wire every module).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    if name == "lib" || name == "main" {
        return None;
    }
    if relative.starts_with("cli/values.rs") {
        return Some("cli_values".into());
    }
    Some(name)
}

/// Product code without its comments, line by line, up to the file's
/// `#[cfg(test)] mod …` (tests may drive a module through any other; a
/// `//` inside a string literal cuts the line, which only loses text).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines[i].trim() == "#[cfg(test)]"
                && lines[i + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|next| {
                        next.trim_start().starts_with("mod ") || next.contains(") mod ")
                    })
        })
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let code = match line.find("//") {
                Some(at) => &line[..at],
                None => line,
            };
            (i + 1, code.to_string())
        })
        .collect()
}

/// The modules a line names through `crate::` (other top-level modules
/// are always named so: `super::` stays inside a module).
fn named_modules(line: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = &rest[..at];
        let after = &rest[at + "crate::".len()..];
        // `$crate::` in a macro is the crate too; `foo_crate::` is not.
        if before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            rest = after;
            continue;
        }
        if after.starts_with('{') {
            return Err("a `use crate::{…}` group: write one `use` per module".into());
        }
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name == "cli" && after[name.len()..].starts_with("::values") {
            found.push("cli_values".into());
        } else if !name.is_empty() {
            found.push(name);
        }
        rest = after;
    }
    Ok(found)
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// Every `(file:line, module, named module)` the rules forbid.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let known: BTreeSet<&str> = MAY_USE
        .iter()
        .map(|(m, _)| *m)
        .chain(LEAVES.iter().copied())
        .collect();
    let mut problems = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap().to_path_buf();
        if relative.file_name().is_some_and(|name| name == "tests.rs") {
            continue;
        }
        let Some(module) = module_of(&relative) else {
            continue;
        };
        let allowed: Vec<&str> = if module == "cli_values" {
            Vec::new()
        } else {
            match MAY_USE.iter().find(|(m, _)| *m == module) {
                Some((_, allowed)) => allowed.to_vec(),
                None => {
                    problems.push(format!(
                        "{}: module `{module}` is not in the table of tests/layout.rs (and \
                         LAYOUT.md): say what it may use",
                        relative.display()
                    ));
                    continue;
                }
            }
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in code_lines(&text) {
            let named = match named_modules(&line) {
                Ok(named) => named,
                Err(why) => {
                    problems.push(format!("{}:{number}: {why}", relative.display()));
                    continue;
                }
            };
            for used in named {
                let fine = used == module
                    || (module == "cli" && used == "cli_values")
                    || (module == "cli_values" && used == "cli_values")
                    || LEAVES.contains(&used.as_str())
                    || allowed.contains(&used.as_str());
                if !fine {
                    let what = if known.contains(used.as_str()) {
                        "may not use"
                    } else {
                        "uses a module the table does not know,"
                    };
                    problems.push(format!(
                        "{}:{number}: `{module}` {what} `{used}`: {}",
                        relative.display(),
                        line.trim()
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn modules_use_only_what_the_layout_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&src);
    assert!(
        problems.is_empty(),
        "{} dependencies break the rules of LAYOUT.md:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_reader_sees_a_forbidden_use_and_a_use_group() {
    // The check itself: a store file that reaches up into settings, and a
    // runner file with a `use crate::{…}` group it cannot read.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::create_dir_all(src.join("runner/plan")).unwrap();
    std::fs::write(
        src.join("store/schema.rs"),
        "//! Uses crate::settings only in a comment.\nuse crate::settings::Workload;\n\
         use crate::stats::Latency;\n#[cfg(test)]\nmod tests {\n    use crate::runner::x;\n}\n",
    )
    .unwrap();
    std::fs::write(
        src.join("runner/plan/peak.rs"),
        "use crate::{report, store};\nuse super::Outcome;\nuse crate::store::Results;\n",
    )
    .unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod store;\nuse crate::report;\n").unwrap();
    let problems = violations(src);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("runner/plan/peak.rs:1: a `use crate::{…}` group"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with("store/schema.rs:2: `store` may not use `settings`"),
        "{}",
        problems[1]
    );
}
