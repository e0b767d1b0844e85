//! The comments of a file, found between its tokens, and where each stood
//! on its line (which decides where the printer puts it back).

use crate::lexer::{self, Tok};

/// Where a comment stood relative to the code around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Code follows it on its line (`f (* why *) x`): printed inline,
    /// before the next node.
    Inline,
    /// Alone on its line (a doc comment, a section header): printed on a
    /// line of its own before the next node.
    OwnLine,
    /// After code, ending its line (`let x = 1 (* why *)`): printed at the
    /// end of the line that holds the code before it.
    Trailing,
}

/// One comment of the source.
#[derive(Debug, Clone)]
pub struct Comment {
    /// Byte offset of its `(*`.
    pub start: usize,
    /// Byte offset one past its `*)`.
    pub end: usize,
    /// Its text, `(*` to `*)` inclusive.
    pub text: String,
    /// Where it stood.
    pub placement: Placement,
    /// The column (in characters) of its `(*` in the source.
    pub column: usize,
}

/// The tokens of `src` (which lexes: the caller parsed it first) and its
/// comments in source order. Comments are what lies between tokens besides
/// white space, so string and char literals that contain `(*` are never
/// mistaken for one.
pub fn scan(src: &str) -> (Vec<(usize, Tok, usize)>, Vec<Comment>) {
    let toks: Vec<(usize, Tok, usize)> = lexer::tokenize(src)
        .into_iter()
        .map_while(Result::ok)
        .collect();
    let mut comments = Vec::new();
    let mut gap_start = 0;
    let bounds = toks
        .iter()
        .map(|&(s, _, e)| (s, e))
        .chain(std::iter::once((src.len(), src.len())));
    for (tok_start, tok_end) in bounds {
        find_in_gap(src, gap_start, tok_start, &mut comments);
        gap_start = tok_end;
    }
    (toks, comments)
}

/// Collects the comments of `src[from..to]`, a stretch of white space and
/// comments.
fn find_in_gap(src: &str, from: usize, to: usize, out: &mut Vec<Comment>) {
    let mut i = from;
    while i < to {
        let rest = &src[i..to];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if i >= to {
            break;
        }
        let Some(len) = lexer::comment_len(&src[i..to]) else {
            // Not a comment: cannot happen for text that lexes.
            break;
        };
        let (start, end) = (i, i + len);
        let line_start = src[..start].rfind('\n').map_or(0, |n| n + 1);
        let code_before = !src[line_start..start].trim().is_empty();
        let line_end = src[end..].find('\n').map_or(src.len(), |n| end + n);
        let code_after = !src[end..line_end].trim().is_empty();
        let placement = match (code_before, code_after) {
            (_, true) => Placement::Inline,
            (true, false) => Placement::Trailing,
            (false, false) => Placement::OwnLine,
        };
        out.push(Comment {
            start,
            end,
            text: src[start..end].to_string(),
            placement,
            column: src[line_start..start].chars().count(),
        });
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comments_not_strings() {
        let src = "(* head *)\nlet s = \"(* no *)\" (* tail *)\nlet c = '(' (* a *) + 1\n";
        let (_, cs) = scan(src);
        let texts: Vec<(&str, Placement)> =
            cs.iter().map(|c| (c.text.as_str(), c.placement)).collect();
        assert_eq!(
            texts,
            [
                ("(* head *)", Placement::OwnLine),
                ("(* tail *)", Placement::Trailing),
                ("(* a *)", Placement::Inline),
            ]
        );
        assert_eq!(cs[1].column, 19);
    }
}
