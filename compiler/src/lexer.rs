//! The lexer: source text to tokens, with logos.
//!
//! Tokens carry byte offsets into the source (`(start, token, end)` triples,
//! the shape lalrpop's external-lexer interface expects). Comments nest as in
//! OCaml (`(* a (* b *) c *)`) and may contain string literals. A lexical error
//! (an unknown character, an unterminated comment or string, a bad escape)
//! is reported as a [`LexError`] with its span; the parser turns it into a
//! diagnostic.

use logos::{Lexer, Logos};

/// A lexical error and where it happened (byte offsets, end exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LexError {
    /// What went wrong, as a sentence fragment ("unterminated comment").
    pub message: String,
    /// Start byte offset.
    pub start: usize,
    /// End byte offset (exclusive).
    pub end: usize,
}

/// One token. Literal payloads are already decoded (escapes resolved,
/// `_` separators removed).
#[derive(Logos, Debug, Clone, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(error = LexError)]
pub enum Tok {
    #[token("(*", skip_comment)]
    Comment,

    #[token("let")]
    Let,
    #[token("rec")]
    Rec,
    #[token("and")]
    And,
    #[token("in")]
    In,
    #[token("fun")]
    Fun,
    #[token("function")]
    Function,
    #[token("match")]
    Match,
    #[token("with")]
    With,
    #[token("when")]
    When,
    #[token("if")]
    If,
    #[token("then")]
    Then,
    #[token("else")]
    Else,
    #[token("type")]
    Type,
    #[token("of")]
    Of,
    #[token("begin")]
    Begin,
    #[token("end")]
    End,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("receive")]
    Receive,
    #[token("after")]
    After,
    #[token("external")]
    External,
    #[token("as")]
    As,
    #[token("assert")]
    Assert,
    #[token("mod")]
    Mod,
    #[token("land")]
    Land,
    #[token("lor")]
    Lor,
    #[token("lxor")]
    Lxor,
    #[token("lsl")]
    Lsl,
    #[token("lsr")]
    Lsr,
    #[token("asr")]
    Asr,
    #[token("_")]
    Underscore,

    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("+.")]
    PlusDot,
    #[token("-.")]
    MinusDot,
    #[token("*.")]
    StarDot,
    #[token("/.")]
    SlashDot,
    #[token("**")]
    StarStar,
    #[token("~-")]
    TildeMinus,
    /// `~` before a label: `~x`, `~(x : t)`.
    #[token("~")]
    Tilde,
    /// `?` before an optional label: `?x`, `?(x = e)`.
    #[token("?")]
    Question,
    /// `~name:` (no spaces, as OCaml's lexer): a labelled argument or
    /// parameter. Made by [`merge_labels`] from `~`, the name and `:`
    /// (logos does not backtrack from `~x` to `~` when no `:` follows).
    Label(String),
    /// `?name:`: an optional argument or parameter, or `?name:t` in a type
    /// (also made by [`merge_labels`]).
    OptLabel(String),
    #[token("~-.")]
    TildeMinusDot,
    #[token("=")]
    Eq,
    #[token("<>")]
    Neq,
    #[token("==")]
    EqEq,
    #[token("!=")]
    BangEq,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("<=")]
    Le,
    #[token(">=")]
    Ge,
    #[token("&&")]
    AmpAmp,
    #[token("||")]
    BarBar,
    #[token("^")]
    Caret,
    #[token("::")]
    ColonColon,
    #[token("@")]
    At,
    #[token("@@")]
    AtAt,
    #[token("|>")]
    PipeGt,
    #[token("->")]
    Arrow,
    #[token("|")]
    Bar,
    #[token(";")]
    Semi,
    #[token(";;")]
    SemiSemi,
    #[token(",")]
    Comma,
    #[token(".")]
    Dot,
    #[token(":")]
    Colon,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,

    /// A user-defined infix operator, by OCaml's first-character classes
    /// (the manual, §7.7): `=… <… >… |… &… $…` compare like `=`. These
    /// have the lowest priority: a fixed operator of the same length
    /// (`=`, `->`, `|>`) is that operator, a longer match (`>>=`) is user
    /// defined.
    #[regex(r"[=<>|&$][!$%&*+\-./:<=>?@^|~]*", |l| l.slice().to_string(), priority = 1)]
    InfixCmp(String),
    /// `@… ^…`: right-associative, as `@` and `^`.
    #[regex(r"[@^][!$%&*+\-./:<=>?@^|~]*", |l| l.slice().to_string(), priority = 1)]
    InfixAt(String),
    /// `+… -…`: as `+`.
    #[regex(r"[+\-][!$%&*+\-./:<=>?@^|~]*", |l| l.slice().to_string(), priority = 1)]
    InfixAdd(String),
    /// `*… /… %…`: as `*`.
    #[regex(r"[*/%][!$%&*+\-./:<=>?@^|~]*", |l| l.slice().to_string(), priority = 1)]
    InfixMul(String),
    /// `**…`: right-associative, as `**`.
    #[regex(r"\*\*[!$%&*+\-./:<=>?@^|~]+", |l| l.slice().to_string(), priority = 2)]
    InfixPow(String),
    #[token("for")]
    For,
    #[token("try")]
    Try,
    #[token("exception")]
    Exception,
    #[token("open")]
    Open,
    #[token("to")]
    To,
    #[token("downto")]
    Downto,
    #[token("do")]
    Do,
    #[token("done")]
    Done,
    /// Reserved (as in OCaml) so that a `while` loop gets its own error.
    #[token("while")]
    While,

    /// A lowercase identifier: a value, a field, a type name.
    #[regex(r"[a-z_][A-Za-z0-9_']*", |l| l.slice().to_string(), priority = 1)]
    LIdent(String),
    /// A capitalised identifier: a constructor or a module name.
    #[regex(r"[A-Z][A-Za-z0-9_']*", |l| l.slice().to_string())]
    UIdent(String),
    /// `Module.name` (a qualified value); payload is (module, name).
    #[regex(r"[A-Z][A-Za-z0-9_']*\.[a-z_][A-Za-z0-9_']*", split_qualified)]
    QLIdent((String, String)),
    /// `Module.Ctor` (a qualified constructor or type); payload is (module, name).
    #[regex(r"[A-Z][A-Za-z0-9_']*\.[A-Z][A-Za-z0-9_']*", split_qualified)]
    QUIdent((String, String)),
    /// A type variable `'a`.
    #[regex(r"'[a-z_][A-Za-z0-9_']*", |l| l.slice()[1..].to_string())]
    TyVar(String),

    #[regex(r"[0-9][0-9_]*", parse_int)]
    #[regex(r"0[xX][0-9a-fA-F][0-9a-fA-F_]*", parse_int)]
    #[regex(r"0[bB][01][01_]*", parse_int)]
    #[regex(r"0[oO][0-7][0-7_]*", parse_int)]
    Int(i64),
    #[regex(r"[0-9][0-9_]*\.[0-9_]*([eE][+-]?[0-9][0-9_]*)?", parse_float)]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9][0-9_]*", parse_float)]
    Float(f64),
    #[regex(
        r"'([^'\\\n]|\\[\\'ntrb \x22]|\\[0-9][0-9][0-9]|\\x[0-9a-fA-F][0-9a-fA-F])'",
        parse_char
    )]
    #[regex(r"'\\[^'\n]{1,4}'", parse_char)]
    Char(u8),
    #[token("\"", lex_string)]
    #[regex(r"\{[a-z_]*\|", lex_quoted_string)]
    Str(Vec<u8>),
}

fn split_qualified(l: &mut Lexer<Tok>) -> (String, String) {
    let s = l.slice();
    let dot = s.find('.').expect("regex guarantees a dot");
    (s[..dot].to_string(), s[dot + 1..].to_string())
}

fn err_here(l: &Lexer<Tok>, message: &str) -> LexError {
    LexError {
        message: message.to_string(),
        start: l.span().start,
        end: l.span().end,
    }
}

fn parse_int(l: &mut Lexer<Tok>) -> Result<i64, LexError> {
    let s: String = l.slice().chars().filter(|&c| c != '_').collect();
    let (digits, radix) = match s.get(..2) {
        Some("0x") | Some("0X") => (&s[2..], 16),
        Some("0b") | Some("0B") => (&s[2..], 2),
        Some("0o") | Some("0O") => (&s[2..], 8),
        _ => (&s[..], 10),
    };
    // Ints are 63-bit, as in OCaml: 4611686018427387903 is the largest literal.
    match u64::from_str_radix(digits, radix) {
        Ok(v) if radix != 10 && v < (1u64 << 63) => Ok(((v << 1) as i64) >> 1),
        Ok(v) if v <= (1u64 << 62) => Ok(v as i64),
        _ => Err(err_here(
            l,
            "integer literal exceeds the range of representable integers of type int",
        )),
    }
}

fn parse_float(l: &mut Lexer<Tok>) -> Result<f64, LexError> {
    let s: String = l.slice().chars().filter(|&c| c != '_').collect();
    s.parse::<f64>()
        .map_err(|_| err_here(l, "malformed float literal"))
}

fn parse_char(l: &mut Lexer<Tok>) -> Result<u8, LexError> {
    let s = l.slice();
    let inner = &s[1..s.len() - 1];
    let bytes = inner.as_bytes();
    if bytes[0] != b'\\' {
        if bytes.len() != 1 {
            return Err(err_here(l, "a char literal holds one byte"));
        }
        return Ok(bytes[0]);
    }
    decode_escape(&inner[1..]).ok_or_else(|| err_here(l, "bad escape in char literal"))
}

fn decode_escape(s: &str) -> Option<u8> {
    let b = s.as_bytes();
    Some(match b.first()? {
        b'n' => b'\n',
        b't' => b'\t',
        b'r' => b'\r',
        b'b' => 8,
        b' ' => b' ',
        b'\\' => b'\\',
        b'\'' => b'\'',
        b'"' => b'"',
        b'x' => u8::from_str_radix(s.get(1..3)?, 16).ok()?,
        b'0'..=b'9' => {
            let v: u32 = s.get(0..3)?.parse().ok()?;
            u8::try_from(v).ok()?
        }
        _ => return None,
    })
}

/// Lexes the rest of a string literal after its opening quote.
fn lex_string(l: &mut Lexer<Tok>) -> Result<Vec<u8>, LexError> {
    let start = l.span().start;
    let rest = l.remainder();
    let bytes = rest.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                l.bump(i + 1);
                return Ok(out);
            }
            b'\\' => {
                let esc = rest.get(i + 1..).unwrap_or("");
                if let Some(nl) = esc.strip_prefix('\n') {
                    // Line continuation: skip the newline and leading blanks.
                    let skipped = nl.len() - nl.trim_start_matches([' ', '\t']).len();
                    i += 2 + skipped;
                    continue;
                }
                let width = match esc.as_bytes().first() {
                    Some(b'x') => 3,
                    Some(b'0'..=b'9') => 3,
                    _ => 1,
                };
                match decode_escape(esc) {
                    Some(c) => out.push(c),
                    None => {
                        // The escape is counted in bytes: `\é` must still
                        // end on a character boundary.
                        let end = crate::diagnostic::ceil_char_boundary(rest, i + 1 + width);
                        return Err(LexError {
                            message: "bad escape sequence in string".into(),
                            start: start + 1 + i,
                            end: start + 1 + end,
                        });
                    }
                }
                i += 1 + width;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(LexError {
        message: "unterminated string literal".into(),
        start,
        end: start + 1,
    })
}

/// Lexes the rest of a quoted string `{id|...|id}` after its opening
/// `{id|`: the bytes up to the first `|id}`, as written (no escapes).
fn lex_quoted_string(l: &mut Lexer<Tok>) -> Result<Vec<u8>, LexError> {
    let open = l.slice();
    let close = format!("|{}}}", &open[1..open.len() - 1]);
    let rest = l.remainder();
    match rest.find(&close) {
        Some(i) => {
            let bytes = rest.as_bytes()[..i].to_vec();
            l.bump(i + close.len());
            Ok(bytes)
        }
        None => Err(LexError {
            message: "unterminated string literal".into(),
            start: l.span().start,
            end: l.span().end,
        }),
    }
}

/// Skips a (nested) comment after its opening `(*`; string literals inside
/// comments are skipped whole, as OCaml does.
fn skip_comment(l: &mut Lexer<Tok>) -> logos::FilterResult<(), LexError> {
    let start = l.span().start;
    let rest = l.remainder();
    match comment_rest_len(rest.as_bytes()) {
        Some(n) => {
            l.bump(n);
            logos::FilterResult::Skip
        }
        None => {
            l.bump(rest.len());
            logos::FilterResult::Error(LexError {
                message: "unterminated comment".into(),
                start,
                end: start + 2,
            })
        }
    }
}

/// The length of the rest of a comment whose opening `(*` has been read:
/// up to and including the `*)` that closes it (comments nest; a string
/// literal inside is skipped whole). `None` when the comment is not closed.
fn comment_rest_len(bytes: &[u8]) -> Option<usize> {
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'(', Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (b'*', Some(b')')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            (b'"', _) => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// The length in bytes of the comment at the start of `text` (which must
/// begin with `(*`), as the lexer skips it; `None` when it is not closed.
/// The formatter uses it to find comments between tokens.
pub fn comment_len(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("(*")?;
    comment_rest_len(rest.as_bytes()).map(|n| n + 2)
}

/// Tokenises `src` into `(start, token, end)` triples for the parser.
/// Lexing stops at the first error.
pub fn tokenize(src: &str) -> Vec<Result<(usize, Tok, usize), LexError>> {
    let mut out = Vec::new();
    let mut lex = Tok::lexer(src);
    while let Some(tok) = lex.next() {
        let span = lex.span();
        match tok {
            Ok(t) => out.push(Ok((span.start, t, span.end))),
            Err(mut e) => {
                if e.message.is_empty() {
                    e.message = format!("unexpected character `{}`", &src[span.clone()]);
                    e.start = span.start;
                    e.end = span.end;
                }
                out.push(Err(e));
                break;
            }
        }
    }
    merge_labels(out, |r| r.as_ref().ok(), Ok)
}

/// Turns `~` `name` `:` written without spaces into one [`Tok::Label`]
/// (and `?name:` into [`Tok::OptLabel`]), as OCaml's lexer does.
fn merge_labels<T>(
    items: Vec<T>,
    get: impl Fn(&T) -> Option<&(usize, Tok, usize)>,
    make: impl Fn((usize, Tok, usize)) -> T,
) -> Vec<T> {
    let is_label = |w: &[T]| match (get(&w[0]), get(&w[1]), get(&w[2])) {
        (
            Some((_, Tok::Tilde | Tok::Question, e0)),
            Some((s1, Tok::LIdent(_), e1)),
            Some((s2, Tok::Colon, _)),
        ) => e0 == s1 && e1 == s2,
        _ => false,
    };
    if !items.windows(3).any(is_label) {
        return items;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut it = items.into_iter();
    let mut window: std::collections::VecDeque<T> = Default::default();
    loop {
        while window.len() < 3 {
            match it.next() {
                Some(x) => window.push_back(x),
                None => break,
            }
        }
        if window.is_empty() {
            break;
        }
        if window.len() == 3 && is_label(window.make_contiguous()) {
            let (start, sigil) = match get(&window[0]) {
                Some((s, t, _)) => (*s, matches!(t, Tok::Tilde)),
                None => unreachable!("checked by is_label"),
            };
            let name = match get(&window[1]) {
                Some((_, Tok::LIdent(n), _)) => n.clone(),
                _ => unreachable!("checked by is_label"),
            };
            let end = get(&window[2]).map_or(start, |t| t.2);
            window.clear();
            let tok = if sigil {
                Tok::Label(name)
            } else {
                Tok::OptLabel(name)
            };
            out.push(make((start, tok, end)));
        } else if let Some(x) = window.pop_front() {
            out.push(x);
        }
    }
    out
}

/// Tokenises `src`, skipping what does not lex (for error-tolerant
/// parsing): the tokens, and every lexical error.
pub fn tokenize_lossy(src: &str) -> (Vec<(usize, Tok, usize)>, Vec<LexError>) {
    let mut toks = Vec::new();
    let mut errs = Vec::new();
    let mut lex = Tok::lexer(src);
    while let Some(tok) = lex.next() {
        let span = lex.span();
        match tok {
            Ok(t) => toks.push((span.start, t, span.end)),
            Err(mut e) => {
                if e.message.is_empty() {
                    e.message = format!("unexpected character `{}`", &src[span.clone()]);
                    e.start = span.start;
                    e.end = span.end;
                }
                errs.push(e);
            }
        }
    }
    (merge_labels(toks, |t| Some(t), |t| t), errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).into_iter().map(|r| r.unwrap().1).collect()
    }

    #[test]
    fn literals_and_idents() {
        assert_eq!(
            toks("let x = 100_000 + 'a' in List.map 1.5e3 \"a\\n\" 'b Some"),
            vec![
                Tok::Let,
                Tok::LIdent("x".into()),
                Tok::Eq,
                Tok::Int(100_000),
                Tok::Plus,
                Tok::Char(b'a'),
                Tok::In,
                Tok::QLIdent(("List".into(), "map".into())),
                Tok::Float(1500.0),
                Tok::Str(b"a\n".to_vec()),
                Tok::TyVar("b".into()),
                Tok::UIdent("Some".into()),
            ]
        );
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(
            toks(r#"{|a\n"b|} {id|x|}y|id} 1"#),
            vec![
                Tok::Str(br#"a\n"b"#.to_vec()),
                Tok::Str(b"x|}y".to_vec()),
                Tok::Int(1),
            ]
        );
        let r = tokenize("{|open");
        assert_eq!(
            r.last().unwrap().as_ref().unwrap_err().message,
            "unterminated string literal"
        );
    }

    #[test]
    fn user_defined_operators() {
        assert_eq!(
            toks("a >>= b |> c -| d ** e **! f <> g"),
            vec![
                Tok::LIdent("a".into()),
                Tok::InfixCmp(">>=".into()),
                Tok::LIdent("b".into()),
                Tok::PipeGt,
                Tok::LIdent("c".into()),
                Tok::InfixAdd("-|".into()),
                Tok::LIdent("d".into()),
                Tok::StarStar,
                Tok::LIdent("e".into()),
                Tok::InfixPow("**!".into()),
                Tok::LIdent("f".into()),
                Tok::Neq,
                Tok::LIdent("g".into()),
            ]
        );
    }

    #[test]
    fn nested_comments() {
        assert_eq!(
            toks("1 (* a (* b *) \"*)\" c *) 2"),
            vec![Tok::Int(1), Tok::Int(2)]
        );
        let r = tokenize("1 (* open");
        assert_eq!(
            r.last().unwrap().as_ref().unwrap_err().message,
            "unterminated comment"
        );
    }

    #[test]
    fn comment_lengths() {
        assert_eq!(comment_len("(* a (* b *) \"*)\" c *) 2"), Some(22));
        assert_eq!(comment_len("(* open"), None);
        assert_eq!(comment_len("x"), None);
    }

    #[test]
    fn escape_error_spans_end_on_char_boundaries() {
        let r = tokenize("let s = \"\\\u{e9}\"");
        let e = r.last().unwrap().as_ref().unwrap_err();
        assert_eq!((e.start, e.end), (9, 12), "{e:?}");
        let r = tokenize("\"\\x\u{e9}\u{e9}\"");
        let e = r.last().unwrap().as_ref().unwrap_err();
        assert_eq!((e.start, e.end), (1, 5), "{e:?}");
    }

    #[test]
    fn errors_have_spans() {
        let r = tokenize("let x = `");
        let e = r.last().unwrap().as_ref().unwrap_err();
        assert_eq!((e.start, e.end), (8, 9));
        assert!(e.message.contains('`'));
    }
}
