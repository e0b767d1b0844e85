//! How the toplevel cuts its input into phrases: lines go into a queue
//! (a line typed, or every line of a paste, or lines typed ahead while a
//! phrase ran), and phrases come out in order, so no input is lost and a
//! paste of N phrases runs N phrases.
//!
//! The rules, for typed and pasted input alike:
//!
//! - `;;` ends a phrase, also in the middle of a line: `let a = 1;; a + 1;;`
//!   is two phrases, as in OCaml's toplevel.
//! - A line that is a complete phrase by itself runs at once, unless the
//!   next line (already there, in a paste) continues it: it is indented or
//!   starts with a token that cannot start a phrase (`|`, `in`, `else`,
//!   an operator, …).
//! - A phrase that started incomplete (`let rec f n =`) goes on until an
//!   empty line, `;;`, or — once it is complete — an unindented line that
//!   starts a new phrase (so pasted definitions need no blank line
//!   between them). An empty line followed, in the same paste, by an
//!   indented line is a blank line inside the phrase.
//! - An empty line that ends a phrase still incomplete reports it
//!   (`Input::Unfinished`) instead of waiting for more.
//! - `:command` lines are commands when no phrase is open.

use std::collections::VecDeque;

/// What a phrase's text is, to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A whole phrase.
    Complete,
    /// The beginning of one: more input could complete it.
    Incomplete,
    /// A syntax error that more input cannot fix.
    Error,
}

/// What the toplevel does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `:name arg` (trimmed).
    Command(String),
    /// A phrase to compile and run.
    Phrase(String),
    /// A phrase ended (by an empty line or the end of input) while still
    /// incomplete.
    Unfinished(String),
}

/// The queue of lines and the phrase being read.
#[derive(Debug, Default)]
pub struct Reader {
    pending: VecDeque<String>,
    buffer: String,
}

impl Reader {
    /// Adds input: one line, or several (a paste), split at newlines.
    pub fn push(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        self.pending.extend(text.split('\n').map(str::to_string));
    }

    /// Whether a phrase is open (the prompt shows that more is expected).
    pub fn continuing(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Forgets the open phrase and every queued line (Ctrl-C).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.buffer.clear();
    }

    /// The phrase open at the end of input, if any.
    pub fn finish(&mut self, parse: &dyn Fn(&str) -> Parse) -> Option<Input> {
        if self.buffer.trim().is_empty() {
            self.buffer.clear();
            return None;
        }
        let text = std::mem::take(&mut self.buffer);
        Some(match parse(&text) {
            Parse::Incomplete => Input::Unfinished(text),
            _ => Input::Phrase(text),
        })
    }

    /// The next command or phrase, or `None` when more lines are needed.
    pub fn next(&mut self, parse: &dyn Fn(&str) -> Parse) -> Option<Input> {
        loop {
            let mut line = self.pending.pop_front()?;
            if self.buffer.is_empty() {
                let t = line.trim();
                if t.is_empty() {
                    continue;
                }
                if t.starts_with(':') {
                    return Some(Input::Command(t.to_string()));
                }
            }
            let mut parts = split_after_double_semis(&line);
            if parts.len() > 1 {
                line = parts.remove(0);
                for p in parts.into_iter().rev() {
                    self.pending.push_front(p.trim_start().to_string());
                }
            }
            if line.trim_end().ends_with(";;") {
                self.append(&line);
                return Some(Input::Phrase(std::mem::take(&mut self.buffer)));
            }
            if line.trim().is_empty() {
                // A blank line inside a pasted phrase, or the end of one.
                if self
                    .pending
                    .front()
                    .is_some_and(|n| !n.trim().is_empty() && n.starts_with(char::is_whitespace))
                {
                    self.buffer.push('\n');
                    continue;
                }
                let text = std::mem::take(&mut self.buffer);
                return Some(match parse(&text) {
                    Parse::Incomplete => Input::Unfinished(text),
                    _ => Input::Phrase(text),
                });
            }
            if !self.buffer.is_empty()
                && !continues(&line)
                && parse(&self.buffer) == Parse::Complete
            {
                self.pending.push_front(line);
                return Some(Input::Phrase(std::mem::take(&mut self.buffer)));
            }
            let first = self.buffer.is_empty();
            self.append(&line);
            match parse(&self.buffer) {
                Parse::Error => return Some(Input::Phrase(std::mem::take(&mut self.buffer))),
                Parse::Incomplete => {}
                Parse::Complete if first => {
                    if !self.pending.front().is_some_and(|n| continues(n)) {
                        return Some(Input::Phrase(std::mem::take(&mut self.buffer)));
                    }
                }
                // A phrase that spans lines goes on until it is ended.
                Parse::Complete => {}
            }
        }
    }

    fn append(&mut self, line: &str) {
        if !self.buffer.is_empty() {
            self.buffer.push('\n');
        }
        self.buffer.push_str(line);
    }
}

/// Whether `line` continues the phrase before it rather than starting a
/// new one: it is indented, or starts with what cannot start a phrase.
fn continues(line: &str) -> bool {
    if line.starts_with(char::is_whitespace) {
        return !line.trim().is_empty();
    }
    const WORDS: &[&str] = &[
        "in", "and", "else", "then", "with", "end", "done", "do", "of", "when", "after", "to",
        "downto", "or", "mod", "land", "lor", "lxor", "lsl", "lsr", "asr",
    ];
    const SYMBOLS: &[&str] = &[
        "|", ")", "]", "}", ";", "->", "&&", "^", "@", "::", "+", "-", "*", "/", "=", "<", ">",
        ",", ".", "!=", ":",
    ];
    let word: String = line
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '\'')
        .collect();
    if !word.is_empty() {
        return WORDS.contains(&word.as_str());
    }
    SYMBOLS.iter().any(|s| line.starts_with(s))
}

/// Splits `line` after each `;;` outside strings, characters and
/// comments: `let a = 1;; a + 1;;` gives `let a = 1;;` and ` a + 1;;`.
pub fn split_after_double_semis(line: &str) -> Vec<String> {
    let b = line.as_bytes();
    let mut out = vec![];
    let mut start = 0;
    let mut i = 0;
    let mut depth = 0usize; // comment nesting
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if depth > 0 {
            if c == b'(' && b.get(i + 1) == Some(&b'*') {
                depth += 1;
                i += 1;
            } else if c == b'*' && b.get(i + 1) == Some(&b')') {
                depth -= 1;
                i += 1;
            } else if c == b'"' {
                // OCaml lexes strings inside comments too.
                in_string = true;
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'(' if b.get(i + 1) == Some(&b'*') => {
                    depth = 1;
                    i += 1;
                }
                // A character literal: 'x', '\n', '\'' (not a type
                // variable such as 'a, which has no closing quote).
                b'\'' => {
                    if b.get(i + 1) == Some(&b'\\') {
                        if let Some(j) = b[i + 2..].iter().position(|&x| x == b'\'') {
                            i += 2 + j;
                        }
                    } else if b.get(i + 2) == Some(&b'\'') {
                        i += 2;
                    }
                }
                b';' if b.get(i + 1) == Some(&b';') => {
                    out.push(line[start..i + 2].to_string());
                    i += 1;
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if start < line.len() && !line[start..].trim().is_empty() {
        out.push(line[start..].to_string());
    }
    if out.is_empty() {
        out.push(line.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in parser: a phrase is complete when its parentheses
    /// balance and it does not end with `=` or `in` or `then`; `!!` is a
    /// syntax error.
    fn parse(t: &str) -> Parse {
        if t.contains("!!") {
            return Parse::Error;
        }
        let open = t.matches('(').count() as i64 - t.matches(')').count() as i64;
        let t = t.trim_end().trim_end_matches(";;").trim_end();
        if open > 0 || t.ends_with('=') || t.ends_with(" in") || t.ends_with("then") {
            Parse::Incomplete
        } else {
            Parse::Complete
        }
    }

    fn all(text: &str) -> Vec<Input> {
        let mut r = Reader::default();
        r.push(text);
        let mut out = vec![];
        while let Some(i) = r.next(&parse) {
            out.push(i);
        }
        out.extend(r.finish(&parse));
        out
    }

    fn phrases(v: &[&str]) -> Vec<Input> {
        v.iter().map(|s| Input::Phrase(s.to_string())).collect()
    }

    #[test]
    fn lines_written_at_once_are_all_phrases() {
        assert_eq!(
            all("let a = 1\nlet b = 2\na + b\n"),
            phrases(&["let a = 1", "let b = 2", "a + b"])
        );
    }

    #[test]
    fn several_phrases_on_one_line() {
        assert_eq!(
            all("let a = 1;; a + 1;;"),
            phrases(&["let a = 1;;", "a + 1;;"])
        );
        assert_eq!(all("let a = 1;; a + 1"), phrases(&["let a = 1;;", "a + 1"]));
        assert_eq!(
            all("print_string \";;\";; (* ;; *) 1;;"),
            phrases(&["print_string \";;\";;", "(* ;; *) 1;;"])
        );
        assert_eq!(all("let c = ';';; c;;"), phrases(&["let c = ';';;", "c;;"]));
    }

    #[test]
    fn a_pasted_definition_then_an_expression() {
        let paste = "let rec fact n =\n  if n = 0 then 1\n  else n * fact (n - 1)\nfact 5\n";
        assert_eq!(
            all(paste),
            phrases(&[
                "let rec fact n =\n  if n = 0 then 1\n  else n * fact (n - 1)",
                "fact 5"
            ])
        );
    }

    #[test]
    fn a_complete_line_continued_by_the_next_in_a_paste() {
        assert_eq!(
            all("let x = 1\n  + 2\nx\n"),
            phrases(&["let x = 1\n  + 2", "x"])
        );
        assert_eq!(
            all("let f x = match x with\n| 0 -> 1\n| _ -> 2\n"),
            phrases(&["let f x = match x with\n| 0 -> 1\n| _ -> 2"])
        );
    }

    #[test]
    fn blank_lines_inside_a_pasted_phrase() {
        assert_eq!(
            all("let f x =\n  let y = 1 in\n\n  x + y\n\nf 1\n"),
            phrases(&["let f x =\n  let y = 1 in\n\n  x + y", "f 1"])
        );
    }

    #[test]
    fn typed_lines_wait_for_more_then_an_empty_line_ends() {
        let mut r = Reader::default();
        r.push("let rec fact n =");
        assert_eq!(r.next(&parse), None);
        assert!(r.continuing());
        r.push("  if n = 0 then 1");
        assert_eq!(r.next(&parse), None);
        r.push("  else n * fact (n - 1)");
        assert_eq!(r.next(&parse), None);
        r.push("");
        assert_eq!(
            r.next(&parse),
            Some(Input::Phrase(
                "let rec fact n =\n  if n = 0 then 1\n  else n * fact (n - 1)".into()
            ))
        );
        assert!(!r.continuing());
    }

    #[test]
    fn an_empty_line_ends_an_incomplete_phrase() {
        assert_eq!(
            all("let x =\n\n1 + 1\n"),
            vec![
                Input::Unfinished("let x =".into()),
                Input::Phrase("1 + 1".into())
            ]
        );
    }

    #[test]
    fn commands_and_errors() {
        assert_eq!(
            all(":type x\n1 !! 2\n3\n"),
            vec![
                Input::Command(":type x".into()),
                Input::Phrase("1 !! 2".into()),
                Input::Phrase("3".into())
            ]
        );
    }
}
