//! Diagnostics as data: a stable code, a message, labelled spans and hints.
//! They are rendered once, here, with ariadne (for the CLI and the REPL);
//! the LSP converts the same values into LSP diagnostics.

use crate::ast::Span;
use std::ops::Range;

/// Identifies a source file within one compilation ([`SourceMap`] index).
pub type FileId = usize;

/// A source file: its display path, text, and the index of its line
/// starts (built once, the first time a location in the file is asked
/// for: locations are looked up by binary search instead of counting
/// newlines from the start of the file, which made `caravan run`
/// quadratic in the file's size; and a run that reports nothing about the
/// standard library's files never indexes them).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as shown in diagnostics.
    pub path: String,
    /// Full text: borrowed for the standard library's files (compiled into
    /// the binary), owned for the user's. Do not change it after
    /// [`SourceMap::add`]: the line index is built from it.
    pub text: std::borrow::Cow<'static, str>,
    lines: std::sync::OnceLock<line_index::LineIndex>,
}

impl SourceFile {
    /// The index of the file's line starts, built on first use.
    fn lines(&self) -> &line_index::LineIndex {
        self.lines
            .get_or_init(|| line_index::LineIndex::new(&self.text))
    }
}

/// All files of one compilation; `FileId` indexes into it.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// The files, by id.
    pub files: Vec<SourceFile>,
}

impl SourceMap {
    /// Adds a file and returns its id (`text` is a `String`, or a
    /// `&'static str` kept without a copy).
    pub fn add(
        &mut self,
        path: impl Into<String>,
        text: impl Into<std::borrow::Cow<'static, str>>,
    ) -> FileId {
        self.files.push(SourceFile {
            path: path.into(),
            text: text.into(),
            lines: std::sync::OnceLock::new(),
        });
        self.files.len() - 1
    }

    /// `(line, column)`, both 1-based, of a byte offset (column counts
    /// characters). An offset past the end is taken as the end, one inside
    /// a multi-byte character as that character's start. O(log lines +
    /// non-ASCII characters on the line), once the file's index is built.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let f = &self.files[file];
        let offset = floor_char_boundary(&f.text, offset);
        // `line-index` counts in u32 (as rust-analyzer); a file past 4 GiB
        // is not one anybody compiles, but must not panic.
        let at = line_index::TextSize::new(u32::try_from(offset).unwrap_or(u32::MAX));
        let lines = f.lines();
        let lc = lines
            .try_line_col(at)
            .unwrap_or(line_index::LineCol { line: 0, col: 0 });
        let col = lines
            .to_wide(line_index::WideEncoding::Utf32, lc)
            .map_or(lc.col, |w| w.col);
        (lc.line as usize + 1, col as usize + 1)
    }

    /// `path:line:col` of a span's start.
    pub fn location(&self, file: FileId, span: Span) -> String {
        let (l, c) = self.line_col(file, span.start);
        format!("{}:{l}:{c}", self.files[file].path)
    }
}

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Compilation fails.
    Error,
    /// Reported, compilation goes on.
    Warning,
}

/// A span with a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// Which file.
    pub file: FileId,
    /// Where.
    pub span: Span,
    /// What to say there.
    pub message: String,
}

/// One diagnostic. `labels[0]` is the primary location.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, `E0001`…; see `docs/errors.md`.
    pub code: &'static str,
    /// One-line summary.
    pub message: String,
    /// Labelled spans; the first is primary.
    pub labels: Vec<Label>,
    /// Hints: how to fix it.
    pub hints: Vec<String>,
    /// Edits that fix it, for editors (the language server's code
    /// actions); the CLI shows them as its hints already say them. (A
    /// boxed slice: diagnostics travel in `Result`s, kept small.)
    pub fixes: Box<[Fix]>,
}

/// A machine-applicable fix: replace `span` of `file` with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// What it does, for a menu (`Replace with \`map\``).
    pub title: String,
    /// The file.
    pub file: FileId,
    /// What to replace (empty: insert there).
    pub span: Span,
    /// The new text.
    pub replacement: String,
    /// For an insertion that starts a new line (a match arm): the offset
    /// of a line whose indentation the new line takes. `None`: insert the
    /// replacement as it is.
    pub indent_like: Option<usize>,
}

impl Diagnostic {
    /// An error with a primary label.
    pub fn error(
        code: &'static str,
        message: impl Into<String>,
        file: FileId,
        span: Span,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: vec![Label {
                file,
                span,
                message: label.into(),
            }],
            hints: vec![],
            fixes: Box::new([]),
        }
    }

    /// Adds a machine-applicable fix.
    pub fn with_fix(mut self, fix: Fix) -> Self {
        let mut fixes = std::mem::take(&mut self.fixes).into_vec();
        fixes.push(fix);
        self.fixes = fixes.into_boxed_slice();
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            file,
            span,
            message: message.into(),
        });
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Renders with ariadne; `color` selects ANSI colours (on a terminal).
    pub fn render(&self, sources: &SourceMap, color: bool) -> String {
        render_all(std::slice::from_ref(self), sources, color)
    }

    fn write_to(
        &self,
        sources: &SourceMap,
        color: bool,
        cache: &mut impl ariadne::Cache<String>,
        out: &mut Vec<u8>,
    ) {
        use ariadne::{Color, Config, IndexType, Label as ALabel, Report, ReportKind};
        let kind = match self.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let primary = self.labels.first();
        let (pfile, pspan) =
            primary.map_or((0, 0..0), |l| (l.file, clamp(sources, l.file, l.span)));
        let path = |f: FileId| {
            sources
                .files
                .get(f)
                .map_or("<unknown>".to_string(), |s| s.path.clone())
        };
        let mut report = Report::build(kind, (path(pfile), pspan))
            .with_code(self.code)
            .with_message(&self.message)
            .with_config(
                Config::default()
                    .with_color(color)
                    .with_index_type(IndexType::Byte),
            );
        for (i, l) in self.labels.iter().enumerate() {
            let mut label = ALabel::new((path(l.file), clamp(sources, l.file, l.span)))
                .with_message(&l.message)
                .with_order(i as i32);
            if color {
                label = label.with_color(if i == 0 { Color::Red } else { Color::Blue });
            }
            report.add_label(label);
        }
        for h in &self.hints {
            report.add_help(h);
        }
        // Writing into a Vec cannot fail.
        let _ = report.finish().write(cache, out);
    }
}

/// Renders diagnostics one after the other, as [`Diagnostic::render`]
/// does, sharing ariadne's per-file line tables: a file is split into lines
/// once, and only the files that labels point into are (not the whole
/// standard library, nor a big file once per diagnostic).
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    // Paths may repeat (every REPL phrase is `<repl>`-like): the latest
    // file of a path is the one shown, as before.
    let mut cache = ariadne::FnCache::new(|path: &String| {
        sources
            .files
            .iter()
            .rev()
            .find(|f| f.path == *path)
            .map(|f| f.text.as_ref())
            .ok_or_else(|| format!("no source file {path}"))
    });
    let mut out = Vec::new();
    for d in diags {
        d.write_to(sources, color, &mut cache, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A span as a byte range that is safe to slice the file's text with:
/// within the text, not reversed, and on character boundaries (the start
/// rounded down, the end up), so that a span computed in bytes that ends
/// inside a multi-byte character still covers that character.
fn clamp(sources: &SourceMap, file: FileId, span: Span) -> Range<usize> {
    let text = sources.files.get(file).map_or("", |f| f.text.as_ref());
    let start = floor_char_boundary(text, span.start);
    let end = ceil_char_boundary(text, span.end.max(start));
    start..end
}

/// The largest character boundary of `text` at or before `i` (the end of
/// the text for `i` past it); `str::floor_char_boundary` is unstable.
pub fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest character boundary of `text` at or after `i` (the end of
/// the text for `i` past it).
pub fn ceil_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_and_tolerates_any_offset() {
        let mut sm = SourceMap::default();
        let f = sm.add("a.cvn", "ab\nx\u{e9}y\n\nz");
        assert_eq!(sm.line_col(f, 0), (1, 1));
        assert_eq!(sm.line_col(f, 2), (1, 3));
        assert_eq!(sm.line_col(f, 3), (2, 1));
        assert_eq!(sm.line_col(f, 4), (2, 2));
        // Inside `é` (bytes 4..6): its start.
        assert_eq!(sm.line_col(f, 5), (2, 2));
        assert_eq!(sm.line_col(f, 6), (2, 3));
        assert_eq!(sm.line_col(f, 8), (3, 1));
        assert_eq!(sm.line_col(f, 9), (4, 1));
        assert_eq!(sm.line_col(f, 10), (4, 2));
        assert_eq!(sm.line_col(f, 1000), (4, 2));
        assert_eq!(sm.location(f, Span::new(4, 5)), "a.cvn:2:2");
    }

    /// A location per line of a 200,000-line file: linear, not a scan from
    /// the start of the file per location (that took minutes). The time
    /// bound only detects a hang.
    #[test]
    fn line_col_is_not_a_scan_per_location() {
        let text = "let x = 1 + 2 (* a comment of some length *)\n".repeat(200_000);
        let mut sm = SourceMap::default();
        let f = sm.add("big.cvn", text.clone());
        let t0 = std::time::Instant::now();
        let mut last = (0, 0);
        for (i, _) in text.match_indices('\n') {
            last = sm.line_col(f, i + 1);
            assert!(t0.elapsed().as_secs() < 60, "line_col is too slow");
        }
        assert_eq!(last, (200_001, 1));
    }

    #[test]
    fn render_survives_spans_inside_characters() {
        let mut sm = SourceMap::default();
        let f = sm.add("a.cvn", "let s = \"\u{e9}\u{e9}\"\n");
        for (a, b) in [(10, 11), (11, 13), (9, 100), (13, 12), (200, 300)] {
            let d = Diagnostic::error("E0001", "m", f, Span::new(a, b), "here").with_label(
                f,
                Span::new(b, a),
                "there",
            );
            let out = d.render(&sm, false);
            assert!(out.contains("E0001"), "{out}");
        }
    }
}
