//! Parsing entry points: source text to [`ast::Module`] or REPL phrases,
//! with lexical and syntax errors as [`Diagnostic`]s.

use crate::ast;
use crate::diagnostic::{Diagnostic, FileId};
use crate::lexer::{self, LexError, Tok};
use crate::parser;
use lalrpop_util::ParseError;

/// Why a parse failed.
#[derive(Debug, Clone)]
pub struct ParseFailure {
    /// The rendered-once error.
    pub diagnostic: Diagnostic,
    /// True when the input ended before the phrase was complete (the REPL
    /// then asks for another line).
    pub incomplete: bool,
}

/// Parses a whole file.
pub fn parse_module(file: FileId, src: &str) -> Result<ast::Module, ParseFailure> {
    let toks = prepare(lexer::tokenize(src));
    let mut errors = vec![];
    parser::ModuleParser::new()
        .parse(&mut errors, toks)
        .map_err(|e| failure(file, src, e))
}

/// Parses a whole file, recovering from syntax errors: returns the items
/// that parse and a diagnostic per error (for the language server, which
/// must work on half-typed files).
pub fn parse_module_recovering(file: FileId, src: &str) -> (ast::Module, Vec<Diagnostic>) {
    let (toks, lex_errors) = lexer::tokenize_lossy(src);
    let toks = prepare(toks.into_iter().map(Ok).collect());
    let mut errors = vec![];
    let result = parser::RecoveringModuleParser::new().parse(&mut errors, toks);
    let mut diags: Vec<Diagnostic> = lex_errors
        .into_iter()
        .map(|e| failure(file, src, ParseError::User { error: e }).diagnostic)
        .collect();
    diags.extend(
        errors
            .into_iter()
            .map(|r| failure(file, src, r.error).diagnostic),
    );
    match result {
        Ok(m) => (m, diags),
        Err(e) => {
            diags.push(failure(file, src, e).diagnostic);
            (ast::Module::default(), diags)
        }
    }
}

/// Parses one REPL phrase: definitions, or a single expression.
pub fn parse_phrase(file: FileId, src: &str) -> Result<Vec<ast::Item>, ParseFailure> {
    let toks = prepare(lexer::tokenize(src));
    let mut errors = vec![];
    parser::PhraseParser::new()
        .parse(&mut errors, toks)
        .map_err(|e| failure(file, src, e))
}

type Token = Result<(usize, Tok, usize), LexError>;

/// What the grammar does not need to see, taken out of the token stream
/// (the tokens stay as written for the formatter, which scans them
/// itself):
/// - attributes, `[@inline]`, `[@@deriving show]`, `[@@@warning "-8"]`:
///   accepted and ignored, as OCaml ignores the ones it does not know;
/// - a `;` that ends a sequence right before `)`, `;;`, `in`, `end`,
///   `done`, the next arm's `|` or the end of the input (OCaml's
///   `seq_expr: expr SEMI`).
///   Before anything that may start an expression the `;` stays a
///   sequence, as in OCaml (`let () = f ();` then `let y = 2` is a syntax
///   error there too).
fn prepare(toks: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if let Ok((_, Tok::LBracket, _)) = &toks[i] {
            let attribute = match toks.get(i + 1) {
                Some(Ok((_, Tok::At | Tok::AtAt, _))) => true,
                Some(Ok((_, Tok::InfixAt(s), _))) => s.starts_with('@'),
                _ => false,
            };
            if attribute {
                let mut depth = 0usize;
                let mut j = i;
                while let Some(Ok((_, t, _))) = toks.get(j) {
                    match t {
                        Tok::LBracket => depth += 1,
                        Tok::RBracket => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                    if depth == 0 {
                        break;
                    }
                }
                i = j;
                continue;
            }
        }
        if let Ok((_, Tok::Semi, _)) = &toks[i] {
            let ends = match toks.get(i + 1) {
                None => true,
                Some(Ok((_, t, _))) => matches!(
                    t,
                    Tok::RParen | Tok::SemiSemi | Tok::In | Tok::End | Tok::Done | Tok::Bar
                ),
                Some(Err(_)) => false,
            };
            if ends {
                i += 1;
                continue;
            }
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LIdent(s) | Tok::UIdent(s) => format!("`{s}`"),
        Tok::QLIdent((m, n)) | Tok::QUIdent((m, n)) => format!("`{m}.{n}`"),
        Tok::InfixCmp(s)
        | Tok::InfixAt(s)
        | Tok::InfixAdd(s)
        | Tok::InfixMul(s)
        | Tok::InfixPow(s) => {
            format!("`{s}`")
        }
        Tok::TyVar(v) => format!("`'{v}`"),
        Tok::Int(n) => format!("`{n}`"),
        Tok::Float(f) => format!("`{f}`"),
        Tok::Char(_) => "a char literal".into(),
        Tok::Str(_) => "a string literal".into(),
        other => {
            let s = format!("{other:?}");
            format!("`{}`", token_text(other).unwrap_or(&s))
        }
    }
}

fn token_text(t: &Tok) -> Option<&'static str> {
    Some(match t {
        Tok::Let => "let",
        Tok::Rec => "rec",
        Tok::And => "and",
        Tok::In => "in",
        Tok::Fun => "fun",
        Tok::Function => "function",
        Tok::Match => "match",
        Tok::With => "with",
        Tok::When => "when",
        Tok::If => "if",
        Tok::Then => "then",
        Tok::Else => "else",
        Tok::Type => "type",
        Tok::Of => "of",
        Tok::Begin => "begin",
        Tok::End => "end",
        Tok::Receive => "receive",
        Tok::After => "after",
        Tok::RParen => ")",
        Tok::LParen => "(",
        Tok::RBracket => "]",
        Tok::LBracket => "[",
        Tok::RBrace => "}",
        Tok::LBrace => "{",
        Tok::Semi => ";",
        Tok::SemiSemi => ";;",
        Tok::Comma => ",",
        Tok::Bar => "|",
        Tok::Arrow => "->",
        Tok::Eq => "=",
        Tok::Colon => ":",
        Tok::Dot => ".",
        Tok::True => "true",
        Tok::False => "false",
        Tok::External => "external",
        Tok::As => "as",
        Tok::Assert => "assert",
        Tok::Mod => "mod",
        Tok::Land => "land",
        Tok::Lor => "lor",
        Tok::Lxor => "lxor",
        Tok::Lsl => "lsl",
        Tok::Lsr => "lsr",
        Tok::Asr => "asr",
        Tok::Underscore => "_",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::PlusDot => "+.",
        Tok::MinusDot => "-.",
        Tok::StarDot => "*.",
        Tok::SlashDot => "/.",
        Tok::StarStar => "**",
        Tok::TildeMinus => "~-",
        Tok::Tilde => "~",
        Tok::Question => "?",
        Tok::TildeMinusDot => "~-.",
        Tok::Neq => "<>",
        Tok::EqEq => "==",
        Tok::BangEq => "!=",
        Tok::Lt => "<",
        Tok::Gt => ">",
        Tok::Le => "<=",
        Tok::Ge => ">=",
        Tok::AmpAmp => "&&",
        Tok::BarBar => "||",
        Tok::Caret => "^",
        Tok::ColonColon => "::",
        Tok::At => "@",
        Tok::AtAt => "@@",
        Tok::PipeGt => "|>",
        Tok::For => "for",
        Tok::Try => "try",
        Tok::Exception => "exception",
        Tok::Open => "open",
        Tok::To => "to",
        Tok::Downto => "downto",
        Tok::Do => "do",
        Tok::Done => "done",
        Tok::While => "while",
        Tok::Comment => "(*",
        _ => return None,
    })
}

fn expected_list(expected: &[String]) -> Option<String> {
    // lalrpop lists terminals as written in the grammar (`"in"`, `LIDENT`).
    let nice: Vec<String> = expected
        .iter()
        .filter_map(|e| match e.as_str() {
            "LIDENT" => Some("a name".to_string()),
            "UIDENT" => Some("a constructor".to_string()),
            "QLIDENT" | "QUIDENT" | "TYVAR" | "INT" | "FLOAT" | "CHAR" | "STRING" => None,
            s => Some(format!("`{}`", s.trim_matches('"'))),
        })
        .collect();
    if nice.is_empty() || nice.len() > 8 {
        return None;
    }
    Some(nice.join(", "))
}

fn failure(file: FileId, src: &str, e: ParseError<usize, Tok, LexError>) -> ParseFailure {
    let mut incomplete = false;
    let diagnostic = match e {
        ParseError::User { error } => {
            // An unterminated comment or string at the end means more input
            // may complete it.
            incomplete = error.message.starts_with("unterminated");
            Diagnostic::error(
                "E0001",
                format!("lexical error: {}", error.message),
                file,
                ast::Span::new(error.start, error.end),
                error.message.clone(),
            )
        }
        ParseError::InvalidToken { location } => Diagnostic::error(
            "E0001",
            "lexical error: invalid token",
            file,
            ast::Span::new(location, location + 1),
            "this token is not valid here",
        ),
        ParseError::UnrecognizedEof { location, expected } => {
            incomplete = true;
            let mut d = Diagnostic::error(
                "E0003",
                "syntax error: unexpected end of input",
                file,
                ast::Span::new(location, location),
                "the phrase is incomplete here",
            );
            if let Some(list) = expected_list(&expected) {
                d = d.with_hint(format!("expected one of {list}"));
            }
            d
        }
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            let mut d = Diagnostic::error(
                "E0002",
                format!("syntax error: unexpected {}", describe(&tok)),
                file,
                ast::Span::new(l, r),
                "unexpected here",
            );
            if let Some(list) = expected_list(&expected) {
                d = d.with_hint(format!("expected one of {list}"));
            }
            if matches!(tok, Tok::While) {
                d = Diagnostic::error(
                    "E0002",
                    "syntax error: Caravan has no `while` loops",
                    file,
                    ast::Span::new(l, r),
                    "a `while` loop needs mutable state, which Caravan does not have",
                )
                .with_hint(
                    "without `ref`s or mutable fields its condition could never change: write the loop as a tail-recursive function, or as `for i = a to b do ... done`",
                );
            }
            d
        }
        ParseError::ExtraToken { token: (l, tok, r) } => Diagnostic::error(
            "E0002",
            format!("syntax error: unexpected {}", describe(&tok)),
            file,
            ast::Span::new(l, r),
            "unexpected here",
        ),
    };
    // Byte offsets from the lexer and parser (`location + 1` above) need
    // not fall on character boundaries: round them outwards.
    let mut diagnostic = diagnostic;
    for l in &mut diagnostic.labels {
        l.span = char_aligned(src, l.span);
    }
    ParseFailure {
        diagnostic,
        incomplete,
    }
}

/// `span` widened to the character boundaries of `src` around it (and
/// clipped to the text).
fn char_aligned(src: &str, span: ast::Span) -> ast::Span {
    use crate::diagnostic::{ceil_char_boundary, floor_char_boundary};
    let start = floor_char_boundary(src, span.start);
    ast::Span::new(start, ceil_char_boundary(src, span.end.max(start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> ast::Module {
        match parse_module(0, src) {
            Ok(m) => m,
            Err(e) => panic!("{src}\n{:?}", e.diagnostic),
        }
    }

    #[test]
    fn language_md_section_1() {
        let m = ok(r#"
(* comments nest (* like this *) *)
type shape =
  | Circle of float
  | Rect of float * float

type point = { x : int; y : int }

type 'a tree = Leaf | Node of 'a tree * 'a * 'a tree

let area s =
  match s with
  | Circle r -> 3.14159 *. r *. r
  | Rect (w, h) -> w *. h

let rec fib n = if n < 2 then n else fib (n - 1) + fib (n - 2)

let rec insert x t =
  match t with
  | Leaf -> Node (Leaf, x, Leaf)
  | Node (l, y, r) when x < y -> Node (insert x l, y, r)
  | Node (l, y, r) -> Node (l, y, insert x r)

let moved p = { p with x = p.x + 1 }

let () =
  print_endline (string_of_int (fib 30));
  [3; 1; 2] |> List.map (fun x -> x * 2) |> List.iter (fun x -> print_int x)
"#);
        assert_eq!(m.items.len(), 8);
    }

    #[test]
    fn language_md_section_2() {
        ok(r#"
type msg =
  | Ping of msg pid
  | Pong
  | Stop

let rec ponger self =
  receive self with
  | Ping from -> send from Pong; ponger self
  | Stop -> ()
  | after 5000 -> print_endline "idle for 5 s"; ponger self

let rec pinger self peer n =
  if n = 0 then send peer Stop
  else begin
    send peer (Ping self);
    receive self with
    | Pong -> pinger self peer (n - 1)
  end

let () =
  let p = spawn ponger in
  let q = spawn (fun self -> pinger self p 100_000) in
  let _ = Process.join q in
  print_endline "done"
"#);
    }

    #[test]
    fn nested_match_takes_following_arms() {
        let m = ok("let f x y = match x with A -> 1 | B -> match y with C -> 2 | D -> 3");
        let ast::Item::Let(_, b, _) = &m.items[0] else {
            panic!()
        };
        let ast::Expr::Fun(_, body, _) = &b[0].expr else {
            panic!()
        };
        let ast::Expr::Match(_, arms, _) = &**body else {
            panic!()
        };
        assert_eq!(arms.len(), 2);
    }

    #[test]
    fn error_spans_fall_on_char_boundaries() {
        for src in [
            "let s = \"\\\u{e9}\"",
            "let x = 1 \u{e9}\u{e9}",
            "let \u{e9} = 1",
        ] {
            let d = parse_module(0, src).unwrap_err().diagnostic;
            for l in &d.labels {
                assert!(
                    src.is_char_boundary(l.span.start) && src.is_char_boundary(l.span.end),
                    "{src:?}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn incomplete_input_is_flagged() {
        let e = parse_phrase(0, "let x = ").unwrap_err();
        assert!(e.incomplete);
        let e = parse_phrase(0, "let x = )").unwrap_err();
        assert!(!e.incomplete);
        assert_eq!(e.diagnostic.code, "E0002");
    }

    #[test]
    fn recovery_keeps_the_items_that_parse() {
        let (m, diags) =
            parse_module_recovering(0, "let a = 1\nlet b = = 2\nlet c = $ 3\nlet d = 4\n");
        assert!(diags.len() >= 2, "{diags:?}");
        let names: Vec<String> = m
            .items
            .iter()
            .filter_map(|i| match i {
                ast::Item::Let(_, b, _) => match &b[0].pat {
                    ast::Pat::Var(n, _) => Some(n.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert!(
            names.contains(&"a".to_string()) && names.contains(&"d".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn not_equal_is_named_by_its_symbol() {
        let m = ok("let a = 1 <> 2\nlet b = (<>)");
        let debug = format!("{:?}", m.items);
        assert_eq!(debug.matches("name: \"<>\"").count(), 2, "{debug}");
    }

    #[test]
    fn precedence() {
        let m =
            ok("let x = 1 + 2 * 3 :: [] @ [4]\nlet y = f @@ fun x -> x; 2\nlet z = if a then b; c");
        assert_eq!(m.items.len(), 3);
        let ast::Item::Let(_, b, _) = &m.items[2] else {
            panic!()
        };
        assert!(matches!(b[0].expr, ast::Expr::Seq(..)));
    }
}
