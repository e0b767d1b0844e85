//! The language server's state and answers, synchronous and independent of
//! the transport: open documents, analyses (one per open file, checked as
//! a program's main file with its sibling modules), and every request
//! turned into compiler queries. [`crate::run_stdio`] runs one `Engine` on
//! a thread of its own.

use crate::text::LineIndex;
use caravan_compiler::ast::Span;
use caravan_compiler::diagnostic::{self as cd, FileId};
use caravan_compiler::driver::{analyze, Analysis};
use caravan_compiler::ide;
use caravan_compiler::query;
use caravan_compiler::types::env::OccKind;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tower_lsp::lsp_types::*;

/// An open document.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Its URI as the client sent it.
    pub uri: Url,
    /// Current text.
    pub text: String,
    /// The client's version.
    pub version: i32,
}

/// The server's state: documents, cached analyses, the stdlib directory.
pub struct Engine {
    docs: HashMap<String, Doc>,
    cache: HashMap<String, Analysis>,
    stdlib_dir: Option<PathBuf>,
    roots: Vec<PathBuf>,
    /// Diagnostics last published for files that are not open.
    published: HashMap<Url, Vec<Diagnostic>>,
}

/// `text` after one content change (a range edit, or the whole text).
pub fn apply_change(text: &str, c: &TextDocumentContentChangeEvent) -> String {
    match c.range {
        None => c.text.clone(),
        Some(r) => {
            let li = LineIndex::new(text);
            let start = li.offset(r.start);
            let end = li.offset(r.end).max(start);
            let mut out = String::with_capacity(text.len() + c.text.len());
            out.push_str(&text[..start]);
            out.push_str(&c.text);
            out.push_str(&text[end..]);
            out
        }
    }
}

/// The key of a document: its file path, or the URI when it is not a file.
pub fn key_of(uri: &Url) -> String {
    match uri.to_file_path() {
        Ok(p) => p.display().to_string(),
        Err(()) => uri.to_string(),
    }
}

const STDLIB_KEY: &str = "<stdlib>";
/// At most this many files are read for workspace symbols.
const MAX_FILES: usize = 2000;
/// At most this many files of a directory are checked as programs that may
/// use a definition (references, rename).
const MAX_PROGRAMS: usize = 200;

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// An engine with no documents; writes the standard library's sources
    /// to the cache directory (`$XDG_CACHE_HOME/caravan/stdlib/`, else
    /// `~/.cache/caravan/stdlib/`, else the temporary directory) so that
    /// go-to-definition can open them.
    pub fn new() -> Engine {
        Engine {
            docs: HashMap::new(),
            cache: HashMap::new(),
            stdlib_dir: write_stdlib(),
            roots: vec![],
            published: HashMap::new(),
        }
    }

    /// The directory holding the standard library's sources.
    pub fn stdlib_dir(&self) -> Option<&Path> {
        self.stdlib_dir.as_deref()
    }

    /// Sets the workspace folders (for workspace symbols).
    pub fn set_roots(&mut self, roots: Vec<PathBuf>) {
        self.roots = roots;
    }

    /// Opens or replaces a document.
    pub fn set_doc(&mut self, uri: Url, text: String, version: i32) {
        self.docs.insert(key_of(&uri), Doc { uri, text, version });
        self.cache.clear();
    }

    /// Applies a `didChange`'s edits in order (incremental sync: each
    /// replaces a range, given in the text as the previous edits left it;
    /// an edit without a range replaces the whole text). A change to a
    /// document that is not open is taken as its whole text when it has
    /// one (else ignored).
    pub fn change_doc(
        &mut self,
        uri: Url,
        changes: Vec<TextDocumentContentChangeEvent>,
        version: i32,
    ) {
        let key = key_of(&uri);
        let mut text = match self.docs.get(&key) {
            Some(d) => d.text.clone(),
            None => match changes.iter().rfind(|c| c.range.is_none()) {
                Some(_) => String::new(),
                None => return,
            },
        };
        for c in changes {
            text = apply_change(&text, &c);
        }
        self.set_doc(uri, text, version);
    }

    /// Closes a document.
    pub fn close_doc(&mut self, uri: &Url) {
        self.docs.remove(&key_of(uri));
        self.cache.clear();
    }

    /// Forgets every analysis (files changed on disk).
    pub fn invalidate(&mut self) {
        self.cache.clear();
    }

    /// The text of an open document.
    pub fn doc_text(&self, uri: &Url) -> Option<&str> {
        self.docs.get(&key_of(uri)).map(|d| d.text.as_str())
    }

    /// `textDocument/formatting`: the whole document replaced by its
    /// formatted text (no edit when it is already formatted); `None` when
    /// the document is not open or does not parse (nothing to format).
    pub fn formatting(&self, uri: &Url) -> Option<Vec<TextEdit>> {
        let text = self.doc_text(uri)?;
        let formatted = caravan_compiler::format::format_source(text).ok()?;
        if formatted == text {
            return Some(vec![]);
        }
        let li = LineIndex::new(text);
        Some(vec![TextEdit {
            range: li.range(0, text.len()),
            new_text: formatted,
        }])
    }

    // -------------------------------------------------------- analyses

    fn stdlib_module_of(&self, key: &str) -> Option<&'static str> {
        let dir = self.stdlib_dir.as_ref()?;
        let p = Path::new(key);
        if p.parent()? != dir {
            return None;
        }
        let name = p.file_name()?.to_str()?;
        caravan_stdlib::MODULES
            .iter()
            .find(|(m, _)| caravan_stdlib::file_name(m) == format!("<stdlib>/{name}"))
            .map(|(m, _)| *m)
    }

    fn text_of(&self, key: &str) -> Option<String> {
        match self.docs.get(key) {
            Some(d) => Some(d.text.clone()),
            None => std::fs::read_to_string(key).ok(),
        }
    }

    fn run_analysis(&self, key: &str, text: &str) -> Analysis {
        let docs = &self.docs;
        let read = |p: &Path| {
            let k = p.display().to_string();
            match docs.get(&k) {
                Some(d) => Some(d.text.clone()),
                None => std::fs::read_to_string(p).ok(),
            }
        };
        analyze(key, text, &read)
    }

    /// The analysis answering for `key` (its cache key) and the file id of
    /// `key` in it: the file checked as a program's main file, or for a
    /// standard library file, the stdlib's own analysis.
    fn ensure(&mut self, key: &str) -> Option<(String, FileId)> {
        if let Some(m) = self.stdlib_module_of(key) {
            if !self.cache.contains_key(STDLIB_KEY) {
                let a = analyze("<stdlib-view>.cvn", "", &|_| None);
                self.cache.insert(STDLIB_KEY.into(), a);
            }
            let a = &self.cache[STDLIB_KEY];
            let name = caravan_stdlib::file_name(m);
            let fid = a.sources.files.iter().position(|f| f.path == name)?;
            return Some((STDLIB_KEY.into(), fid));
        }
        if !self.cache.contains_key(key) {
            let text = self.text_of(key)?;
            let a = self.run_analysis(key, &text);
            self.cache.insert(key.to_string(), a);
        }
        Some((key.to_string(), self.cache[key].main_file))
    }

    /// Runs `f` on the analysis of the document `uri` and its file id.
    fn with<R>(&mut self, uri: &Url, f: impl FnOnce(&mut Analysis, FileId) -> R) -> Option<R> {
        let (ck, fid) = self.ensure(&key_of(uri))?;
        let a = self.cache.get_mut(&ck)?;
        Some(f(a, fid))
    }

    /// The URI of a path of the source map (a user file or `<stdlib>/x.cvn`).
    fn uri_of(&self, path: &str) -> Option<Url> {
        if let Some(d) = self.docs.get(path) {
            return Some(d.uri.clone());
        }
        if let Some(rest) = path.strip_prefix("<stdlib>/") {
            return Url::from_file_path(self.stdlib_dir.as_ref()?.join(rest)).ok();
        }
        Url::from_file_path(path).ok()
    }

    fn location(&self, a: &Analysis, file: FileId, span: Span) -> Option<Location> {
        let f = a.sources.files.get(file)?;
        let uri = self.uri_of(&f.path)?;
        Some(Location::new(
            uri,
            LineIndex::new(&f.text).range(span.start, span.end),
        ))
    }

    /// Files that may be programs using the definitions of `paths`: open
    /// documents and the `.cvn` files beside those paths.
    fn candidate_roots(&self, paths: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = self
            .docs
            .keys()
            .filter(|k| self.stdlib_module_of(k).is_none())
            .cloned()
            .collect();
        let mut dirs: Vec<PathBuf> = vec![];
        for p in paths {
            if let Some(d) = Path::new(p).parent() {
                if !d.as_os_str().is_empty() && !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_path_buf());
                }
            }
        }
        for d in dirs {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut files: Vec<String> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "cvn") && p.is_file())
                .map(|p| p.display().to_string())
                .collect();
            files.sort();
            out.extend(files.into_iter().take(MAX_PROGRAMS));
        }
        out.sort();
        out.dedup();
        out
    }

    // -------------------------------------------------------- diagnostics

    /// Diagnostics to publish: for every open document, those of its own
    /// analysis; for files that are not open but used by an open program
    /// (a sibling module), those found there. Files whose diagnostics went
    /// away get an empty list.
    pub fn diagnostics(&mut self) -> Vec<(Url, Vec<Diagnostic>, Option<i32>)> {
        let keys: Vec<String> = self
            .docs
            .keys()
            .filter(|k| self.stdlib_module_of(k).is_none())
            .cloned()
            .collect();
        let mut own: Vec<(Url, Vec<Diagnostic>, Option<i32>)> = vec![];
        let mut others: HashMap<Url, Vec<Diagnostic>> = HashMap::new();
        for key in keys {
            let Some((ck, _)) = self.ensure(&key) else {
                continue;
            };
            let a = &self.cache[&ck];
            let doc = &self.docs[&key];
            let mut mine = vec![];
            for d in &a.diagnostics {
                let (file, diag) = self.convert(a, d);
                let path = a.sources.files.get(file).map(|f| f.path.as_str());
                if file == a.main_file {
                    push_unique(&mut mine, diag);
                } else if let Some(p) = path {
                    if self.docs.contains_key(p) || p.starts_with("<stdlib>") {
                        continue;
                    }
                    if let Some(uri) = self.uri_of(p) {
                        push_unique(others.entry(uri).or_default(), diag);
                    }
                }
            }
            own.push((doc.uri.clone(), mine, Some(doc.version)));
        }
        let mut out = own;
        let stale: Vec<Url> = self
            .published
            .keys()
            .filter(|u| !others.contains_key(*u))
            .cloned()
            .collect();
        for u in stale {
            self.published.remove(&u);
            if !self.docs.contains_key(&key_of(&u)) {
                out.push((u, vec![], None));
            }
        }
        for (u, ds) in others {
            if self.published.get(&u) != Some(&ds) {
                out.push((u.clone(), ds.clone(), None));
            }
            self.published.insert(u, ds);
        }
        out
    }

    /// A compiler diagnostic as an LSP one, with the file of its primary
    /// label: the message, then the primary label's text and the hints;
    /// secondary labels as related information.
    fn convert(&self, a: &Analysis, d: &cd::Diagnostic) -> (FileId, Diagnostic) {
        let primary = d.labels.first();
        let file = primary.map_or(a.main_file, |l| l.file);
        let range = match primary {
            Some(l) => match a.sources.files.get(l.file) {
                Some(f) => LineIndex::new(&f.text).range(l.span.start, l.span.end),
                None => Range::default(),
            },
            None => Range::default(),
        };
        let mut message = d.message.clone();
        if let Some(l) = primary {
            if !l.message.is_empty() && l.message != d.message {
                message.push('\n');
                message.push_str(&l.message);
            }
        }
        for h in &d.hints {
            message.push_str("\nhelp: ");
            message.push_str(h);
        }
        let related: Vec<DiagnosticRelatedInformation> = d
            .labels
            .iter()
            .skip(1)
            .filter_map(|l| {
                Some(DiagnosticRelatedInformation {
                    location: self.location(a, l.file, l.span)?,
                    message: l.message.clone(),
                })
            })
            .collect();
        let diag = Diagnostic {
            range,
            severity: Some(match d.severity {
                cd::Severity::Error => DiagnosticSeverity::ERROR,
                cd::Severity::Warning => DiagnosticSeverity::WARNING,
            }),
            code: Some(NumberOrString::String(d.code.to_string())),
            code_description: None,
            source: Some("caravan".into()),
            message,
            related_information: (!related.is_empty()).then_some(related),
            tags: None,
            data: None,
        };
        (file, diag)
    }

    // -------------------------------------------------------- semantic tokens

    /// The token types of [`Engine::semantic_tokens`], in the legend's
    /// order.
    pub fn semantic_legend() -> SemanticTokensLegend {
        SemanticTokensLegend {
            token_types: vec![
                SemanticTokenType::KEYWORD,
                SemanticTokenType::COMMENT,
                SemanticTokenType::STRING,
                SemanticTokenType::NUMBER,
                SemanticTokenType::OPERATOR,
                SemanticTokenType::FUNCTION,
                SemanticTokenType::VARIABLE,
                SemanticTokenType::ENUM_MEMBER,
                SemanticTokenType::PROPERTY,
                SemanticTokenType::TYPE,
                SemanticTokenType::NAMESPACE,
                SemanticTokenType::TYPE_PARAMETER,
            ],
            token_modifiers: vec![],
        }
    }

    /// `textDocument/semanticTokens/full`: every token of the document
    /// classified ([`ide::semantic_tokens`]), one LSP token per line of a
    /// token that spans lines (comments, strings), positions in UTF-16.
    pub fn semantic_tokens(&mut self, uri: &Url) -> Option<SemanticTokens> {
        use ide::SemanticKind as K;
        let (ck, fid) = self.ensure(&key_of(uri))?;
        let a = &self.cache[&ck];
        let text = &a.sources.files[fid].text;
        let li = LineIndex::new(text);
        let mut data = vec![];
        let (mut last_line, mut last_start) = (0u32, 0u32);
        for (span, kind) in ide::semantic_tokens(a, fid) {
            let ty = match kind {
                K::Keyword => 0,
                K::Comment => 1,
                K::String => 2,
                K::Number => 3,
                K::Operator => 4,
                K::Function => 5,
                K::Variable => 6,
                K::Constructor => 7,
                K::Field => 8,
                K::Type => 9,
                K::Module => 10,
                K::TypeParameter => 11,
            };
            let mut start = span.start.min(text.len());
            let end = span.end.min(text.len());
            while start < end {
                let line_end = text[start..end].find('\n').map_or(end, |i| start + i);
                let (p0, p1) = (li.position(start), li.position(line_end));
                if p1.character > p0.character {
                    let delta_line = p0.line - last_line;
                    let delta_start = if delta_line == 0 {
                        p0.character - last_start
                    } else {
                        p0.character
                    };
                    data.push(SemanticToken {
                        delta_line,
                        delta_start,
                        length: p1.character - p0.character,
                        token_type: ty,
                        token_modifiers_bitset: 0,
                    });
                    (last_line, last_start) = (p0.line, p0.character);
                }
                start = line_end + 1;
            }
        }
        Some(SemanticTokens {
            result_id: None,
            data,
        })
    }

    // -------------------------------------------------------- code actions

    /// `textDocument/codeAction`: the fixes of the diagnostics in `range`
    /// (the compiler's [`cd::Fix`]es: a name's closest spelling, the
    /// missing cases of a `match`), as quick fixes.
    pub fn code_actions(&mut self, uri: &Url, range: Range) -> Vec<CodeActionOrCommand> {
        let Some((ck, fid)) = self.ensure(&key_of(uri)) else {
            return vec![];
        };
        let a = &self.cache[&ck];
        let text = &a.sources.files[fid].text;
        let li = LineIndex::new(text);
        let (from, to) = (li.offset(range.start), li.offset(range.end));
        let mut out = vec![];
        for d in &a.diagnostics {
            let Some(primary) = d.labels.first() else {
                continue;
            };
            // Diagnostics that touch the range (an empty range: the cursor).
            if primary.file != fid || primary.span.end < from || primary.span.start > to {
                continue;
            }
            let (_, lsp_diag) = self.convert(a, d);
            for fix in d.fixes.iter().filter(|f| f.file == fid) {
                let (at, new_text) = match fix.indent_like {
                    None => (
                        li.range(fix.span.start, fix.span.end),
                        fix.replacement.clone(),
                    ),
                    Some(like) => {
                        let line_start = text[..like.min(text.len())]
                            .rfind('\n')
                            .map_or(0, |i| i + 1);
                        let indent: String = text[line_start..]
                            .chars()
                            .take_while(|c| *c == ' ' || *c == '\t')
                            .collect();
                        let head = &text[line_start..like.min(text.len())];
                        // An arm on the line of `match ... with` (a match on
                        // one line) gets its new arm on that line too.
                        let new_text = if head.contains("match") || head.contains("function") {
                            format!(" {}", fix.replacement)
                        } else {
                            format!("\n{indent}{}", fix.replacement)
                        };
                        (li.range(fix.span.start, fix.span.start), new_text)
                    }
                };
                let mut changes = HashMap::new();
                changes.insert(uri.clone(), vec![TextEdit::new(at, new_text)]);
                out.push(CodeActionOrCommand::CodeAction(CodeAction {
                    title: fix.title.clone(),
                    kind: Some(CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![lsp_diag.clone()]),
                    edit: Some(WorkspaceEdit::new(changes)),
                    is_preferred: Some(true),
                    ..Default::default()
                }));
            }
        }
        out
    }

    // -------------------------------------------------------- hover, definition

    /// The type (and doc comment) of the identifier at `pos`.
    pub fn hover(&mut self, uri: &Url, pos: Position) -> Option<Hover> {
        self.with(uri, |a, fid| {
            let text = a.sources.files[fid].text.clone();
            let li = LineIndex::new(&text);
            let (span, sig, doc) = ide::hover_at(a, fid, li.offset(pos))?;
            let mut value = format!("```caravan\n{sig}\n```");
            if let Some(doc) = doc {
                value.push_str("\n\n---\n\n");
                value.push_str(&doc);
            }
            Some(Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value,
                }),
                range: Some(li.range(span.start, span.end)),
            })
        })?
    }

    /// Where the name at `pos` is defined (a module name: its file).
    pub fn definition(&mut self, uri: &Url, pos: Position) -> Option<Location> {
        let (ck, fid) = self.ensure(&key_of(uri))?;
        let a = &self.cache[&ck];
        let text = &a.sources.files[fid].text;
        let off = LineIndex::new(text).offset(pos);
        let o = query::occurrence_at(a, fid, off)?;
        let written = text.get(o.span.start..o.span.end).unwrap_or("").trim_end();
        if let Some(dot) = written.rfind('.') {
            if off < o.span.start + dot {
                let f = ide::file_of_module(a, &written[..dot])?;
                return self.location(a, f, Span::new(0, 0));
            }
        }
        let (df, ds) = o.def?;
        let dtext = &a.sources.files.get(df)?.text;
        let span = ide::ident_span(dtext, ds, &o.name);
        self.location(a, df, span)
    }

    /// What the name at `pos` names: the path and span of its definition,
    /// its name and kind, and whether it is local to its file.
    fn target(
        &mut self,
        uri: &Url,
        pos: Position,
    ) -> Option<(String, Span, String, OccKind, bool)> {
        let (ck, fid) = self.ensure(&key_of(uri))?;
        let a = &self.cache[&ck];
        let text = &a.sources.files[fid].text;
        let off = LineIndex::new(text).offset(pos);
        let o = query::occurrence_at(a, fid, off)?;
        let def = o.def?;
        let top = std::iter::once(&a.checker.current)
            .chain(a.checker.modules.values())
            .any(|env| env.values.values().any(|v| v.def == Some(def)));
        let local = matches!(o.kind, OccKind::Value | OccKind::Binding) && !top;
        let path = a.sources.files.get(def.0)?.path.clone();
        Some((path, def.1, o.name.clone(), o.kind, local))
    }

    /// Every occurrence of what `target` names, over the programs that may
    /// use it: `(path, identifier span)`, the definition included.
    fn occurrences(
        &mut self,
        uri: &Url,
        target: &(String, Span, String, OccKind, bool),
    ) -> Vec<(String, Span)> {
        let (path, span, name, _, local) = target;
        let roots = if *local {
            vec![key_of(uri)]
        } else {
            self.candidate_roots(&[path, &key_of(uri)])
        };
        let mut out: Vec<(String, Span)> = vec![];
        for root in roots {
            let Some((ck, _)) = self.ensure(&root) else {
                continue;
            };
            let a = &self.cache[&ck];
            let Some(tf) = a.sources.files.iter().position(|f| f.path == *path) else {
                continue;
            };
            let def = (tf, *span);
            let dtext = &a.sources.files[tf].text;
            out.push((path.clone(), ide::ident_span(dtext, *span, name)));
            for o in a.checker.index.iter().filter(|o| o.def == Some(def)) {
                let f = &a.sources.files[o.file];
                out.push((f.path.clone(), ide::ident_span(&f.text, o.span, name)));
            }
        }
        out.sort_by(|x, y| (&x.0, x.1.start).cmp(&(&y.0, y.1.start)));
        out.dedup();
        out
    }

    /// Every reference to the name at `pos`, across the files of the
    /// programs that use it.
    pub fn references(&mut self, uri: &Url, pos: Position, include_decl: bool) -> Vec<Location> {
        let Some(t) = self.target(uri, pos) else {
            return vec![];
        };
        let occs = self.occurrences(uri, &t);
        let mut texts: HashMap<String, String> = HashMap::new();
        let mut out = vec![];
        for (path, span) in occs {
            if !include_decl && path == t.0 && span.start >= t.1.start && span.end <= t.1.end {
                continue;
            }
            if let Some(loc) = self.location_by_path(&mut texts, &path, span) {
                out.push(loc);
            }
        }
        out
    }

    fn location_by_path(
        &self,
        texts: &mut HashMap<String, String>,
        path: &str,
        span: Span,
    ) -> Option<Location> {
        if !texts.contains_key(path) {
            let text = if let Some(rest) = path.strip_prefix("<stdlib>/") {
                caravan_stdlib::MODULES
                    .iter()
                    .find(|(m, _)| caravan_stdlib::file_name(m) == format!("<stdlib>/{rest}"))
                    .map(|(_, t)| t.to_string())
            } else {
                self.text_of(path)
            };
            texts.insert(path.to_string(), text?);
        }
        let uri = self.uri_of(path)?;
        Some(Location::new(
            uri,
            LineIndex::new(&texts[path]).range(span.start, span.end),
        ))
    }

    // -------------------------------------------------------- rename

    /// The identifier at `pos` if it can be renamed.
    pub fn prepare_rename(&mut self, uri: &Url, pos: Position) -> Result<Range, String> {
        let t = self
            .target(uri, pos)
            .ok_or_else(|| "no name here".to_string())?;
        check_renamable(&t)?;
        let (ck, fid) = self.ensure(&key_of(uri)).ok_or("no file")?;
        let a = &self.cache[&ck];
        let text = &a.sources.files[fid].text;
        let li = LineIndex::new(text);
        let o = query::occurrence_at(a, fid, li.offset(pos)).ok_or("no name here")?;
        let s = ide::ident_span(text, o.span, &o.name);
        Ok(li.range(s.start, s.end))
    }

    /// Renames what the name at `pos` names to `new` in every file using
    /// it; refuses invalid names and names that would clash.
    pub fn rename(&mut self, uri: &Url, pos: Position, new: &str) -> Result<WorkspaceEdit, String> {
        let t = self
            .target(uri, pos)
            .ok_or_else(|| "no name here".to_string())?;
        check_renamable(&t)?;
        let (path, span, old, _, local) = &t;
        if !ide::is_value_name(new) {
            return Err(format!("`{new}` is not a valid value name"));
        }
        if new == old {
            return Ok(WorkspaceEdit::default());
        }
        let roots = if *local {
            vec![key_of(uri)]
        } else {
            self.candidate_roots(&[path, &key_of(uri)])
        };
        for root in &roots {
            let Some((ck, _)) = self.ensure(root) else {
                continue;
            };
            let a = &self.cache[&ck];
            let Some(tf) = a.sources.files.iter().position(|f| f.path == *path) else {
                continue;
            };
            if let Some(why) = ide::rename_clash(a, (tf, *span), old, new) {
                return Err(format!("cannot rename `{old}` to `{new}`: {why}"));
            }
        }
        let occs = self.occurrences(uri, &t);
        let mut texts: HashMap<String, String> = HashMap::new();
        let mut changes: HashMap<Url, Vec<TextEdit>> = HashMap::new();
        for (p, s) in occs {
            let Some(text) = self.text_of(&p) else {
                continue;
            };
            // Only spans that spell the old name (not an operator's
            // parenthesised form, say).
            if text.get(s.start..s.end) != Some(old.as_str()) {
                continue;
            }
            texts.insert(p.clone(), text);
            if let Some(loc) = self.location_by_path(&mut texts, &p, s) {
                changes.entry(loc.uri).or_default().push(TextEdit {
                    range: loc.range,
                    new_text: new.to_string(),
                });
            }
        }
        Ok(WorkspaceEdit {
            changes: Some(changes),
            ..Default::default()
        })
    }

    // -------------------------------------------------------- symbols

    /// The outline of a document.
    pub fn document_symbols(&mut self, uri: &Url) -> Vec<DocumentSymbol> {
        self.with(uri, |a, fid| {
            let text = a.sources.files[fid].text.clone();
            let li = LineIndex::new(&text);
            ide::document_symbols(a, fid)
                .iter()
                .map(|s| doc_symbol(&li, s))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Top-level definitions of the workspace's files (and the standard
    /// library) whose name contains `query` (case-insensitive).
    pub fn workspace_symbols(&mut self, query: &str) -> Vec<SymbolInformation> {
        let q = query.to_lowercase();
        let mut files: Vec<String> = self
            .docs
            .keys()
            .filter(|k| self.stdlib_module_of(k).is_none())
            .cloned()
            .collect();
        for r in &self.roots {
            collect_cvn(r, 0, &mut files);
        }
        files.sort();
        files.dedup();
        let mut sources: Vec<(Option<Url>, String, String)> = files
            .into_iter()
            .take(MAX_FILES)
            .filter_map(|k| {
                let text = self.text_of(&k)?;
                let module = module_name_of_path(&k);
                Some((self.uri_of(&k), module, text))
            })
            .collect();
        if let Some(dir) = &self.stdlib_dir {
            for (m, src) in caravan_stdlib::MODULES {
                let name = caravan_stdlib::file_name(m);
                let p = dir.join(name.trim_start_matches("<stdlib>/"));
                sources.push((Url::from_file_path(p).ok(), m.to_string(), src.to_string()));
            }
        }
        let mut out = vec![];
        for (uri, module, text) in sources {
            let Some(uri) = uri else { continue };
            let (m, _) = caravan_compiler::parse::parse_module_recovering(0, &text);
            let li = LineIndex::new(&text);
            let mut syms = ide::module_symbols(&text, &m);
            let children: Vec<ide::Symbol> = syms.iter().flat_map(|s| s.children.clone()).collect();
            syms.extend(children);
            for s in syms {
                if !s.name.to_lowercase().contains(&q) {
                    continue;
                }
                #[allow(deprecated)]
                out.push(SymbolInformation {
                    name: s.name.clone(),
                    kind: symbol_kind(s.kind),
                    tags: None,
                    deprecated: None,
                    location: Location::new(
                        uri.clone(),
                        li.range(s.name_span.start, s.name_span.end),
                    ),
                    container_name: Some(module.clone()),
                });
                if out.len() >= 1000 {
                    return out;
                }
            }
        }
        out
    }

    // -------------------------------------------------------- completion

    /// Completion at `pos`: after `Module.` its members; after `r.` the
    /// fields of `r`'s record type; otherwise the names in scope,
    /// constructors and modules.
    pub fn completion(&mut self, uri: &Url, pos: Position) -> Vec<CompletionItem> {
        let key = key_of(uri);
        let Some((ck, fid)) = self.ensure(&key) else {
            return vec![];
        };
        let text = self.cache[&ck].sources.files[fid].text.clone();
        let li = LineIndex::new(&text);
        let off = li.offset(pos);
        let before = &text[..off];
        let prefix_start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| ide::is_ident_char(*c))
            .last()
            .map_or(off, |(i, _)| i);
        let mut items: Vec<query::Completion> = vec![];
        if before[..prefix_start].ends_with('.') {
            let dot = prefix_start - 1;
            let qstart = before[..dot]
                .char_indices()
                .rev()
                .take_while(|(_, c)| ide::is_ident_char(*c))
                .last()
                .map_or(dot, |(i, _)| i);
            let qual = &text[qstart..dot];
            if qual.starts_with(|c: char| c.is_ascii_uppercase()) {
                items = self.module_members(&ck, fid, &key, qual);
            } else if !qual.is_empty() {
                let a = self.cache.get_mut(&ck).expect("cached");
                items = query::fields_of_type_at(a, fid, dot - 1);
                if items.is_empty() && ck != STDLIB_KEY {
                    // The file may not parse with the dot: ask without it.
                    let patched = format!("{}{}", &text[..dot], &text[off..]);
                    let mut pa = self.run_analysis(&key, &patched);
                    let pf = pa.main_file;
                    items = query::fields_of_type_at(&mut pa, pf, dot - 1);
                }
                if items.is_empty() {
                    let a = self.cache.get_mut(&ck).expect("cached");
                    items = ide::all_record_fields(a, fid)
                        .into_iter()
                        .map(|(name, detail)| query::Completion {
                            name,
                            detail,
                            kind: query::CompletionKind::Field,
                            doc: None,
                        })
                        .collect();
                }
            }
        } else {
            let a = self.cache.get_mut(&ck).expect("cached");
            let in_scope = a
                .checker
                .scopes
                .iter()
                .any(|s| s.file == fid && s.span.start <= off && off <= s.span.end);
            let broken = !a.diagnostics.is_empty();
            if !in_scope && broken && ck != STDLIB_KEY {
                // A half-typed expression: complete as if a hole stood at
                // the cursor, so the enclosing definition checks.
                for patched in holes(&text, prefix_start, off) {
                    let mut pa = self.run_analysis(&key, &patched);
                    let pf = pa.main_file;
                    let hole = prefix_start + 1;
                    if pa
                        .checker
                        .scopes
                        .iter()
                        .any(|s| s.file == pf && s.span.start <= hole && hole <= s.span.end)
                    {
                        items = query::completions_at(&mut pa, pf, hole, None);
                        break;
                    }
                }
            }
            if items.is_empty() {
                let a = self.cache.get_mut(&ck).expect("cached");
                items = query::completions_at(a, fid, off, None);
            }
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, c)| CompletionItem {
                kind: Some(match c.kind {
                    query::CompletionKind::Value if c.detail.contains("->") => {
                        CompletionItemKind::FUNCTION
                    }
                    query::CompletionKind::Value => CompletionItemKind::VARIABLE,
                    query::CompletionKind::Ctor => CompletionItemKind::ENUM_MEMBER,
                    query::CompletionKind::Module => CompletionItemKind::MODULE,
                    query::CompletionKind::Field => CompletionItemKind::FIELD,
                }),
                label: c.name,
                detail: Some(c.detail),
                documentation: c.doc.map(|d| {
                    Documentation::MarkupContent(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: d,
                    })
                }),
                sort_text: Some(format!("{i:05}")),
                ..Default::default()
            })
            .collect()
    }

    fn module_members(
        &mut self,
        ck: &str,
        fid: FileId,
        key: &str,
        module: &str,
    ) -> Vec<query::Completion> {
        let a = self.cache.get_mut(ck).expect("cached");
        let items = query::completions_at(a, fid, 0, Some(module));
        if !items.is_empty() || ck == STDLIB_KEY {
            return items;
        }
        // A sibling module the broken file does not (yet) load.
        let dir = Path::new(key)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        // `fooBar.cvn`, else `FooBar.cvn` (as the compiler looks them up).
        let mut found = None;
        for f in caravan_compiler::modules::files_of_module(module) {
            let sib = dir.join(f).display().to_string();
            if sib == key {
                return vec![];
            }
            if let Some((sk, _)) = self.ensure(&sib) {
                found = Some(sk);
                break;
            }
        }
        let Some(sk) = found else {
            return vec![];
        };
        let a = self.cache.get_mut(&sk).expect("cached");
        let mut vals: Vec<(String, caravan_compiler::types::Ty)> = a
            .checker
            .current
            .values
            .iter()
            .map(|(n, v)| (n.clone(), v.ty))
            .collect();
        vals.sort();
        let mut out: Vec<query::Completion> = vals
            .into_iter()
            .map(|(n, t)| query::Completion {
                name: n,
                detail: a.checker.show(t),
                kind: query::CompletionKind::Value,
                doc: None,
            })
            .collect();
        let mut ctors: Vec<(String, usize)> = a
            .checker
            .current
            .ctors
            .iter()
            .map(|(n, c)| (n.clone(), *c))
            .collect();
        ctors.sort();
        for (n, ci) in ctors {
            let ty = a.checker.ctors[ci].type_id;
            out.push(query::Completion {
                name: n,
                detail: a.checker.type_name(ty),
                kind: query::CompletionKind::Ctor,
                doc: None,
            });
        }
        out
    }

    // -------------------------------------------------------- hints, signatures

    /// Inferred types of `let` bindings and parameters within `range`.
    pub fn inlay_hints(&mut self, uri: &Url, range: Range) -> Vec<InlayHint> {
        self.with(uri, |a, fid| {
            let text = a.sources.files[fid].text.clone();
            let li = LineIndex::new(&text);
            let span = Span::new(li.offset(range.start), li.offset(range.end));
            ide::inlay_hints(a, fid, span)
                .into_iter()
                .map(|h| InlayHint {
                    position: li.position(h.offset),
                    label: InlayHintLabel::String(h.label),
                    kind: Some(InlayHintKind::TYPE),
                    text_edits: None,
                    tooltip: None,
                    padding_left: Some(false),
                    padding_right: Some(false),
                    data: None,
                })
                .collect()
        })
        .unwrap_or_default()
    }

    /// The signature of the function applied at `pos`.
    pub fn signature_help(&mut self, uri: &Url, pos: Position) -> Option<SignatureHelp> {
        let key = key_of(uri);
        let (ck, fid) = self.ensure(&key)?;
        let text = self.cache[&ck].sources.files[fid].text.clone();
        let li = LineIndex::new(&text);
        let off = li.offset(pos);
        let a = self.cache.get_mut(&ck)?;
        let mut sig = ide::signature_help(a, fid, off);
        if sig.is_none() && !a.diagnostics.is_empty() && ck != STDLIB_KEY {
            for patched in holes(&text, off, off) {
                let mut pa = self.run_analysis(&key, &patched);
                let pf = pa.main_file;
                // The hole is an argument: the cursor is on it.
                sig = ide::signature_help(&mut pa, pf, off + 1);
                if sig.is_some() {
                    break;
                }
            }
        }
        let sig = sig?;
        let utf16 = |b: usize| sig.label[..b].encode_utf16().count() as u32;
        let params = sig
            .params
            .iter()
            .map(|(s, e)| ParameterInformation {
                label: ParameterLabel::LabelOffsets([utf16(*s), utf16(*e)]),
                documentation: None,
            })
            .collect();
        Some(SignatureHelp {
            signatures: vec![SignatureInformation {
                label: sig.label.clone(),
                documentation: sig.doc.clone().map(|d| {
                    Documentation::MarkupContent(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: d,
                    })
                }),
                parameters: Some(params),
                active_parameter: Some(sig.active as u32),
            }],
            active_signature: Some(0),
            active_parameter: Some(sig.active as u32),
        })
    }
}

/// `text` with `start..end` replaced by a hole `()`, then also closing up
/// to three parentheses: versions of a half-typed file that may parse.
fn holes(text: &str, start: usize, end: usize) -> impl Iterator<Item = String> + '_ {
    (0..4).map(move |k| format!("{}(){}{}", &text[..start], ")".repeat(k), &text[end..]))
}

fn check_renamable(t: &(String, Span, String, OccKind, bool)) -> Result<(), String> {
    let (path, _, name, kind, _) = t;
    if !matches!(kind, OccKind::Value | OccKind::Binding) {
        return Err("only values can be renamed".into());
    }
    if path.starts_with("<stdlib>") {
        return Err(format!("`{name}` is defined in the standard library"));
    }
    if !ide::is_value_name(name) {
        return Err(format!("`{name}` cannot be renamed"));
    }
    Ok(())
}

fn push_unique(v: &mut Vec<Diagnostic>, d: Diagnostic) {
    if !v
        .iter()
        .any(|x| x.range == d.range && x.code == d.code && x.message == d.message)
    {
        v.push(d);
    }
}

fn symbol_kind(k: ide::SymbolKind) -> SymbolKind {
    match k {
        ide::SymbolKind::Function | ide::SymbolKind::External => SymbolKind::FUNCTION,
        ide::SymbolKind::Value => SymbolKind::VARIABLE,
        ide::SymbolKind::Variant => SymbolKind::ENUM,
        ide::SymbolKind::Record => SymbolKind::STRUCT,
        ide::SymbolKind::Type => SymbolKind::TYPE_PARAMETER,
        ide::SymbolKind::Constructor => SymbolKind::ENUM_MEMBER,
        ide::SymbolKind::Field => SymbolKind::FIELD,
    }
}

fn doc_symbol(li: &LineIndex, s: &ide::Symbol) -> DocumentSymbol {
    let range = li.range(s.span.start, s.span.end);
    let mut sel = li.range(s.name_span.start, s.name_span.end);
    if sel.start < range.start || sel.end > range.end {
        sel = range;
    }
    #[allow(deprecated)]
    DocumentSymbol {
        name: s.name.clone(),
        detail: s.detail.clone(),
        kind: symbol_kind(s.kind),
        tags: None,
        deprecated: None,
        range,
        selection_range: sel,
        children: (!s.children.is_empty())
            .then(|| s.children.iter().map(|c| doc_symbol(li, c)).collect()),
    }
}

/// `Geometry` for `.../geometry.cvn`.
fn module_name_of_path(p: &str) -> String {
    let stem = Path::new(p)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let mut c = stem.chars();
    match c.next() {
        Some(f) => format!("{}{}", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

fn collect_cvn(dir: &Path, depth: usize, out: &mut Vec<String>) {
    if depth > 6 || out.len() >= MAX_FILES {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    let mut seen = HashSet::new();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if p.is_dir() {
            if seen.insert(p.clone()) {
                collect_cvn(&p, depth + 1, out);
            }
        } else if p.extension().is_some_and(|e| e == "cvn") {
            out.push(p.display().to_string());
        }
        if out.len() >= MAX_FILES {
            return;
        }
    }
}

/// Writes the standard library's sources to the cache directory, returning
/// it (`None` when no directory can be written).
fn write_stdlib() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    let candidates = base
        .map(|b| b.join("caravan").join("stdlib"))
        .into_iter()
        .chain(std::iter::once(
            std::env::temp_dir().join("caravan").join("stdlib"),
        ));
    'dirs: for dir in candidates {
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        for (m, src) in caravan_stdlib::MODULES {
            let name = caravan_stdlib::file_name(m);
            let p = dir.join(name.trim_start_matches("<stdlib>/"));
            if std::fs::read_to_string(&p).ok().as_deref() == Some(*src) {
                continue;
            }
            if std::fs::write(&p, src).is_err() {
                continue 'dirs;
            }
        }
        return Some(dir);
    }
    None
}
