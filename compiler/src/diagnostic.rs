//! Diagnostics as data: a stable code, a message, labelled spans and hints.
//! They are rendered once, here, with ariadne (for the CLI and the REPL);
//! the LSP converts the same values into LSP diagnostics.

use crate::ast::Span;
use std::ops::Range;

/// Identifies a source file within one compilation ([`SourceMap`] index).
pub type FileId = usize;

/// A source file: its display path and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as shown in diagnostics.
    pub path: String,
    /// Full text.
    pub text: String,
}

/// All files of one compilation; `FileId` indexes into it.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// The files, by id.
    pub files: Vec<SourceFile>,
}

impl SourceMap {
    /// Adds a file and returns its id.
    pub fn add(&mut self, path: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push(SourceFile {
            path: path.into(),
            text: text.into(),
        });
        self.files.len() - 1
    }

    /// `(line, column)`, both 1-based, of a byte offset (column counts
    /// characters).
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let text = &self.files[file].text;
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit_once('\n')
            .map_or(before, |(_, l)| l)
            .chars()
            .count()
            + 1;
        (line, col)
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
        let cache = ariadne::sources(
            sources
                .files
                .iter()
                .map(|f| (f.path.clone(), f.text.clone())),
        );
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = report.finish().write(cache, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn clamp(sources: &SourceMap, file: FileId, span: Span) -> Range<usize> {
    let len = sources.files.get(file).map_or(0, |f| f.text.len());
    let start = span.start.min(len);
    start..span.end.clamp(start, len)
}
