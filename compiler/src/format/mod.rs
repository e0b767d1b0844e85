//! `caravan fmt`: one canonical layout for Caravan source, in the spirit
//! of ocamlformat's default profile and `gleam format`.
//!
//! The formatter knows only syntax. It parses the file, turns the tree
//! into a document of Wadler's algebra ("A prettier printer", 2003, as the
//! `pretty` crate implements it: text, line breaks that an enclosing group
//! lays out either all flat or all broken, nesting) and lays that out in
//! [`WIDTH`] columns. Parentheses are put back where the grammar needs them
//! (the tree has none); literals print as written (`100_000`, escapes).
//!
//! Comments are not in the tree: they are found between the tokens
//! ([`comments::scan`]) and each is printed before the first node that
//! starts after it — on its own line if it stood alone, inline if code
//! followed it, and at the end of the line of the code before it if it
//! ended such a line. No comment is dropped or moved past another, and a
//! doc comment stays above its item. At top level one blank line is kept
//! where the source had one or more.
//!
//! Formatting is idempotent: the layout depends only on the tree and on
//! where each comment stood, which formatting preserves. The tests run
//! every `.cvn` of the repository through it and check that the tree
//! (spans aside) and the comments are unchanged and that a second pass
//! changes nothing.

mod comments;
mod printer;

use crate::parse::{self, ParseFailure};
use printer::{Printer, Verbatim};

/// The line width the layout aims at (as ocamlformat's and Gleam's).
pub const WIDTH: usize = 80;

/// Formats a whole file. Returns the canonical text (ending with one
/// newline, or empty for a file with neither code nor comments), or the
/// syntax error that stopped the parse (then there is nothing to format).
pub fn format_source(src: &str) -> Result<String, ParseFailure> {
    let module = parse::parse_module(0, src)?;
    let (toks, comments) = comments::scan(src);
    let sentinels = sentinels(src);
    let mut printer = Printer::new(src, toks, comments, sentinels);
    let doc = printer.module(&module);
    let mut out = String::new();
    doc.render_fmt(WIDTH, &mut out)
        .expect("rendering into a String cannot fail");
    Ok(finish(&out, &printer.verbatim, sentinels))
}

/// The comments of `src` in order, as written (for tools and tests that
/// check that formatting keeps every comment). `src` must lex.
pub fn comments(src: &str) -> Vec<String> {
    comments::scan(src).1.into_iter().map(|c| c.text).collect()
}

/// Two characters of the private use area that `src` does not contain,
/// to delimit placeholders.
fn sentinels(src: &str) -> (char, char) {
    let mut free = ('\u{E000}'..='\u{F8FF}').filter(|c| !src.contains(*c));
    let open = free
        .next()
        .expect("a source without every private-use character");
    let close = free
        .next()
        .expect("a source without every private-use character");
    (open, close)
}

/// The index of the placeholder that makes up `s` exactly, if it does.
fn whole_placeholder(s: &str, (open, close): (char, char)) -> Option<usize> {
    s.strip_prefix(open)?.strip_suffix(close)?.parse().ok()
}

/// From the laid-out document to the final text: trailing comments move to
/// the end of the line before them, trailing white space goes, and the
/// placeholders are replaced by their texts (a multi-line comment's
/// continuation lines move with its first line).
fn finish(rendered: &str, verbatim: &[Verbatim], sentinels: (char, char)) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in rendered.split('\n') {
        let trimmed = line.trim();
        let trailing = whole_placeholder(trimmed, sentinels)
            .and_then(|i| verbatim.get(i))
            .is_some_and(|v| v.comment.is_some_and(|(_, trailing)| trailing));
        if trailing {
            if let Some(prev) = lines.last_mut().filter(|l| !l.trim().is_empty()) {
                prev.truncate(prev.trim_end().len());
                prev.push(' ');
                prev.push_str(trimmed);
                continue;
            }
        }
        lines.push(line.trim_end().to_string());
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let first = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let laid_out = lines[first..].join("\n");

    let mut out = String::with_capacity(laid_out.len() + 64);
    let mut column = 0usize;
    let mut chars = laid_out.chars();
    while let Some(c) = chars.next() {
        if c == sentinels.0 {
            let digits: String = chars.by_ref().take_while(|&c| c != sentinels.1).collect();
            let v = &verbatim[digits.parse::<usize>().expect("a placeholder index")];
            let text = match v.comment {
                Some((from, _)) => reindent(&v.text, from, column),
                None => v.text.clone(),
            };
            match text.rfind('\n') {
                Some(nl) => column = text[nl + 1..].chars().count(),
                None => column += text.chars().count(),
            }
            out.push_str(&text);
        } else {
            if c == '\n' {
                column = 0;
            } else {
                column += 1;
            }
            out.push(c);
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// A comment moved from column `from` to column `to`: its continuation
/// lines move by as much (as far as their leading spaces allow).
fn reindent(text: &str, from: usize, to: usize) -> String {
    if from == to || !text.contains('\n') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.trim().is_empty() {
                if to > from {
                    out.extend(std::iter::repeat_n(' ', to - from));
                    out.push_str(line);
                } else {
                    let spaces = line.len() - line.trim_start_matches(' ').len();
                    out.push_str(&line[spaces.min(from - to)..]);
                }
            }
            continue;
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(src: &str) -> String {
        match format_source(src) {
            Ok(s) => s,
            Err(e) => panic!("{src}\n{:?}", e.diagnostic),
        }
    }

    #[test]
    fn reindents_comment_continuations() {
        assert_eq!(reindent("(* a\n     b *)", 4, 0), "(* a\n b *)");
        assert_eq!(reindent("(* a\n b *)", 0, 2), "(* a\n   b *)");
        assert_eq!(reindent("(* a\n\n b *)", 0, 2), "(* a\n\n   b *)");
    }

    #[test]
    fn short_things_stay_on_one_line() {
        assert_eq!(
            fmt("let   f x=x+1\nlet l = [ 1 ;2;3 ]\ntype t = A|B of int\n"),
            "let f x = x + 1\nlet l = [1; 2; 3]\ntype t = A | B of int\n"
        );
    }

    #[test]
    fn empty_file() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n(* only *)\n\n"), "(* only *)\n");
    }
}
