//! `caravan fmt` on every `.cvn` file of the repository (examples, tests,
//! benchmarks, the standard library, the differential corpus): formatting
//! keeps the syntax tree (spans aside) and every comment, and a second
//! pass changes nothing. Files that do not parse (diagnostic fixtures) must
//! be refused.

use caravan_compiler::format::{comments, format_source, WIDTH};
use caravan_compiler::parse::parse_module;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn cvn_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            cvn_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "cvn") {
            out.push(p);
        }
    }
}

/// Every `.cvn` under the directories that hold Caravan source.
fn corpus() -> Vec<PathBuf> {
    let mut files = vec![];
    for d in ["examples", "tests", "bench", "stdlib/src/cvn", "lsp/tests"] {
        cvn_files(&repo().join(d), &mut files);
    }
    files.sort();
    files
}

/// The tree's `Debug` text without its spans.
fn erase_spans(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find("Span { start: ") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("a closed span") + i + 1;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn tree(src: &str) -> String {
    let m = parse_module(0, src).expect("parses");
    erase_spans(&format!("{:?}", m.items))
}

/// A comment's text with each line's indentation dropped (continuation
/// lines move with the comment).
fn normalise(comment: &str) -> String {
    comment
        .lines()
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn formatting_keeps_trees_and_comments_and_is_idempotent() {
    let files = corpus();
    assert!(files.len() > 300, "only {} files found", files.len());
    let mut failures = vec![];
    let (mut formatted, mut refused, mut long_lines) = (0, 0, 0);
    for path in &files {
        let name = path
            .strip_prefix(repo())
            .unwrap_or(path)
            .display()
            .to_string();
        let src = std::fs::read_to_string(path).expect("readable");
        let once = match format_source(&src) {
            Ok(s) => s,
            Err(_) => {
                refused += 1;
                assert!(parse_module(0, &src).is_err(), "{name}");
                continue;
            }
        };
        formatted += 1;
        if parse_module(0, &once).is_err() {
            failures.push(format!(
                "{name}: the formatted text does not parse:\n{once}"
            ));
            continue;
        }
        let (t1, t2) = (tree(&src), tree(&once));
        if t1 != t2 {
            let first = t1
                .bytes()
                .zip(t2.bytes())
                .take_while(|(x, y)| x == y)
                .count();
            let from = first.saturating_sub(300);
            failures.push(format!(
                "{name}: the tree changed:\n{once}\n--- source tree\n{}\n--- formatted tree\n{}",
                &t1[from..(first + 100).min(t1.len())],
                &t2[from..(first + 100).min(t2.len())]
            ));
            continue;
        }
        let before: Vec<String> = comments(&src).iter().map(|c| normalise(c)).collect();
        let after: Vec<String> = comments(&once).iter().map(|c| normalise(c)).collect();
        if before != after {
            failures.push(format!(
                "{name}: comments changed: {before:?}\n-> {after:?}\n{once}"
            ));
            continue;
        }
        let twice = format_source(&once).expect("formatted text parses");
        if twice != once {
            failures.push(format!(
                "{name}: a second pass changed it:\n--- first\n{once}\n--- second\n{twice}"
            ));
        }
        long_lines += once.lines().filter(|l| l.chars().count() > WIDTH).count();
    }
    eprintln!(
        "{formatted} files formatted, {refused} refused (syntax errors), {long_lines} lines over {WIDTH} columns"
    );
    assert!(
        failures.is_empty(),
        "{} of {formatted} files:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
