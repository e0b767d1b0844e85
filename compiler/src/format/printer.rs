//! The syntax tree as a document of the `pretty` crate (Wadler's algebra:
//! text, line breaks that a group lays out flat or broken, nesting).
//!
//! Parentheses are not in the tree, so the printer puts back exactly those
//! the grammar needs. It mirrors `parser.lalrpop`: every expression is
//! printed in a context made of a precedence level (what may stand there
//! without parentheses) and the grammar's flags (which constructs that
//! extend to the right may end it: `a` an arm list, `o` an open `let`/`fun`
//! body, `i` an `if` without `else`, `e` an `if ... else`).

use super::comments::{Comment, Placement};
use crate::ast::*;
use crate::lexer::Tok;
use pretty::RcDoc;

/// A document.
pub(super) type Doc = RcDoc<'static, ()>;

/// A text printed as written in the source, behind a placeholder while the
/// document is laid out (comments and multi-line strings).
pub(super) struct Verbatim {
    /// The source text.
    pub text: String,
    /// For a comment: its column in the source (its continuation lines
    /// move with it) and whether it was a trailing comment.
    pub comment: Option<(usize, bool)>,
}

// ---------------------------------------------------------------- contexts

/// Which right-extending constructs may end an expression in a position
/// (the grammar's `Seq<F>` flags).
#[derive(Clone, Copy)]
struct Flags(u8);

const FA: u8 = 1;
const FO: u8 = 2;
const FI: u8 = 4;
const FE: u8 = 8;
const ALL: Flags = Flags(FA | FO | FI | FE);
const NONE: Flags = Flags(0);
const IE: Flags = Flags(FI | FE);
const OE: Flags = Flags(FO | FE);
const OIE: Flags = Flags(FO | FI | FE);

// Expression levels, loosest first (the grammar's nonterminals).
const SEQ: u8 = 0;
const TUPLE: u8 = 1;
const OR: u8 = 2;
const AND: u8 = 3;
const CMP: u8 = 4;
const CONCAT: u8 = 5;
const CONS: u8 = 6;
const ADD: u8 = 7;
const MUL: u8 = 8;
const POW: u8 = 9;
const UNARY: u8 = 10;
const APP: u8 = 11;
/// An argument: a dotted expression or a bare constructor.
const ARG: u8 = 12;
const DOT: u8 = 13;

// Pattern levels.
const P_ALIAS: u8 = 0;
const P_OR: u8 = 1;
const P_TUPLE: u8 = 2;
const P_CONS: u8 = 3;
const P_APP: u8 = 4;
const P_ATOM: u8 = 5;

// Type levels.
const T_ARROW: u8 = 0;
const T_TUPLE: u8 = 1;
const T_APP: u8 = 2;

/// The level of an infix operator applied as `a op b`.
fn infix_level(op: &str) -> Option<u8> {
    Some(match op {
        "=" | "<>" | "<" | ">" | "<=" | ">=" | "==" | "!=" | "|>" => CMP,
        "^" | "@" | "@@" => CONCAT,
        "+" | "-" | "+." | "-." => ADD,
        "*" | "/" | "*." | "/." | "mod" | "land" | "lor" | "lxor" => MUL,
        "**" | "lsl" | "lsr" | "asr" => POW,
        "~-" | "~-." => return None,
        // A user-defined operator: the level of its first character's
        // class (the lexer's `Infix*` tokens).
        _ if op.starts_with("**") => POW,
        _ => match op.as_bytes().first()? {
            b'*' | b'/' | b'%' => MUL,
            b'+' | b'-' => ADD,
            b'@' | b'^' => CONCAT,
            b'=' | b'<' | b'>' | b'|' | b'&' | b'$' => CMP,
            _ => return None,
        },
    })
}

fn right_assoc(level: u8) -> bool {
    matches!(level, OR | AND | CONCAT | CONS | POW)
}

/// `a op b` of any kind: level, operator, operands.
fn binop_parts(e: &Expr) -> Option<(u8, &str, &Expr, &Expr)> {
    match e {
        Expr::BinOp(BinOp::Or, a, b, _) => Some((OR, "||", a, b)),
        Expr::BinOp(BinOp::And, a, b, _) => Some((AND, "&&", a, b)),
        Expr::Cons(a, b, _) => Some((CONS, "::", a, b)),
        Expr::App(f, args, _) if args.len() == 2 => match &**f {
            Expr::Var(n, _) if n.module.is_none() => {
                infix_level(&n.name).map(|l| (l, n.name.as_str(), &args[0], &args[1]))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `-e` / `-.e`: the unary operator's function name and operand.
fn unary_parts(e: &Expr) -> Option<(&str, &Expr)> {
    match e {
        Expr::App(f, args, _) if args.len() == 1 => match &**f {
            Expr::Var(n, _) if n.module.is_none() && (n.name == "~-" || n.name == "~-.") => {
                Some((n.name.as_str(), &args[0]))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `s.[i]`, which the parser turns into `String.get s i` whose function
/// spans the whole expression.
fn string_get_parts(e: &Expr) -> Option<(&Expr, &Expr)> {
    match e {
        Expr::App(f, args, span) if args.len() == 2 => match &**f {
            Expr::Var(n, vs)
                if vs == span && n.module.as_deref() == Some("String") && n.name == "get" =>
            {
                Some((&args[0], &args[1]))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The flag a construct that extends to the right needs (0 for others).
fn open_flag(e: &Expr) -> u8 {
    match e {
        Expr::Let(..) | Expr::Fun(..) => FO,
        Expr::Open(_, _, false, _) => FO,
        Expr::Match(..) | Expr::Function(..) | Expr::Receive(..) | Expr::Try(..) => FA,
        Expr::If(_, _, Some(_), _) => FE,
        Expr::If(_, _, None, _) => FI,
        _ => 0,
    }
}

/// An operator's name as a value: `(+)`, `( * )` (a `(*` would open a
/// comment), `(mod)`.
fn operator_value(name: &str) -> String {
    if name.starts_with('*') {
        format!("( {name} )")
    } else {
        format!("({name})")
    }
}

fn is_operator(name: &str) -> bool {
    !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        || matches!(
            name,
            "mod" | "land" | "lor" | "lxor" | "lsl" | "lsr" | "asr"
        )
}

fn value_name(name: &str) -> String {
    if is_operator(name) {
        operator_value(name)
    } else {
        name.to_string()
    }
}

// ---------------------------------------------------------------- combinators

fn t(s: impl Into<String>) -> Doc {
    RcDoc::text(s.into())
}
fn nil() -> Doc {
    RcDoc::nil()
}
/// A space, or a line break.
fn line() -> Doc {
    RcDoc::line()
}
/// Nothing, or a line break.
fn line_() -> Doc {
    RcDoc::line_()
}
fn hard() -> Doc {
    RcDoc::hardline()
}
/// Nothing, but the enclosing groups cannot be laid out flat.
fn break_parent() -> Doc {
    nil().flat_alt(RcDoc::fail())
}
/// `broken` when the enclosing group is broken, else `flat`.
fn alt(broken: &str, flat: &str) -> Doc {
    t(broken).flat_alt(t(flat))
}
/// `d` with its continuation lines indented to the column where it starts.
fn align(d: Doc) -> Doc {
    RcDoc::column(move |col| {
        let d = d.clone();
        RcDoc::nesting(move |nest| d.clone().nest(col as isize - nest as isize))
    })
}
fn join(docs: Vec<Doc>, sep: Doc) -> Doc {
    let mut out = nil();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out = out.append(sep.clone());
        }
        out = out.append(d);
    }
    out
}

// ---------------------------------------------------------------- the printer

/// Turns one parsed file into a document, taking its comments along.
pub(super) struct Printer<'s> {
    src: &'s str,
    toks: Vec<(usize, Tok, usize)>,
    comments: Vec<Comment>,
    /// The first comment not printed yet.
    next_comment: usize,
    /// Texts behind placeholders, by index.
    pub verbatim: Vec<Verbatim>,
    /// The two characters that delimit a placeholder (absent from `src`).
    pub sentinels: (char, char),
}

impl<'s> Printer<'s> {
    pub fn new(
        src: &'s str,
        toks: Vec<(usize, Tok, usize)>,
        comments: Vec<Comment>,
        sentinels: (char, char),
    ) -> Self {
        Printer {
            src,
            toks,
            comments,
            next_comment: 0,
            verbatim: Vec::new(),
            sentinels,
        }
    }

    /// A text of the source kept as written, behind a placeholder as wide
    /// as its first line.
    fn placeholder(&mut self, text: &str, comment: Option<(usize, bool)>) -> Doc {
        let index = self.verbatim.len();
        self.verbatim.push(Verbatim {
            text: text.to_string(),
            comment,
        });
        let width = text.split('\n').next().unwrap_or("").chars().count();
        let ph = format!("{}{index}{}", self.sentinels.0, self.sentinels.1);
        RcDoc::new(pretty::Doc::RenderLen(
            width,
            RcDoc::new(pretty::Doc::OwnedText(ph.into_boxed_str())),
        ))
    }

    fn comment_text(&mut self, i: usize) -> Doc {
        let c = &self.comments[i];
        let (text, column, trailing) =
            (c.text.clone(), c.column, c.placement == Placement::Trailing);
        self.placeholder(&text, Some((column, trailing)))
    }

    /// The comments that start before `pos` and are not printed yet, each
    /// followed by a space (inline) or a line break.
    fn comments_before(&mut self, pos: usize) -> Doc {
        let mut out = nil();
        while let Some(c) = self.comments.get(self.next_comment) {
            if c.start >= pos {
                break;
            }
            let placement = c.placement;
            let i = self.next_comment;
            self.next_comment += 1;
            let text = self.comment_text(i);
            out = out.append(text).append(match placement {
                Placement::Inline => t(" "),
                Placement::OwnLine | Placement::Trailing => hard(),
            });
        }
        out
    }

    /// The comments before a closing bracket at `close` that are not
    /// printed yet, after the last element: inline, at the end of its line
    /// (which then breaks), or on lines of their own.
    fn comments_before_close(&mut self, close: Option<usize>) -> Doc {
        let Some(close) = close else {
            return nil();
        };
        let mut out = nil();
        while let Some(c) = self.comments.get(self.next_comment) {
            if c.start >= close {
                break;
            }
            let placement = c.placement;
            let i = self.next_comment;
            self.next_comment += 1;
            let text = self.comment_text(i);
            out = match placement {
                Placement::Inline => out.append(t(" ")).append(text),
                Placement::Trailing => out.append(t(" ")).append(text).append(break_parent()),
                Placement::OwnLine => out.append(hard()).append(text),
            };
        }
        out
    }

    /// Where the token `tok` starts if it is the first at or after `pos`
    /// (`after`) or the last before `pos`.
    fn closer(&self, pos: usize, tok: Tok, after: bool) -> Option<usize> {
        let i = self.token_at(pos);
        let i = if after { i } else { i.checked_sub(1)? };
        match self.toks.get(i) {
            Some((s, t, _)) if *t == tok => Some(*s),
            _ => None,
        }
    }

    /// The index of the first token at or after `pos`.
    fn token_at(&self, pos: usize) -> usize {
        self.toks.partition_point(|&(s, _, _)| s < pos)
    }

    /// A literal as written: the text of its token, with the sign of the
    /// `-` in front of it (`-1`, `- 1` and `-(1)` all print `-1`).
    fn literal_text(&self, lit: &Lit, span: Span) -> String {
        let mut i = self.token_at(span.start);
        let mut minus = 0;
        while let Some((s, tok, e)) = self.toks.get(i) {
            if *s >= span.end {
                break;
            }
            match tok {
                Tok::Minus => minus += 1,
                Tok::Int(_) | Tok::Float(_) | Tok::Str(_) | Tok::Char(_) => {
                    let sign = if minus % 2 == 1 { "-" } else { "" };
                    return format!("{sign}{}", &self.src[*s..*e]);
                }
                _ => {}
            }
            i += 1;
        }
        match lit {
            Lit::Bool(true) => "true".into(),
            Lit::Bool(false) => "false".into(),
            Lit::Unit => "()".into(),
            Lit::Int(n) => n.to_string(),
            Lit::Float(f) => format!("{f:?}"),
            Lit::Str(s) => format!("{:?}", String::from_utf8_lossy(s)),
            Lit::Char(c) => format!("'{}'", *c as char),
        }
    }

    fn literal(&mut self, lit: &Lit, span: Span) -> Doc {
        let text = self.literal_text(lit, span);
        if text.contains('\n') {
            self.placeholder(&text, None)
        } else {
            t(text)
        }
    }

    fn is_negative_literal(&self, e: &Expr) -> bool {
        match e {
            Expr::Lit(l, s) => self.literal_text(l, *s).starts_with('-'),
            _ => false,
        }
    }

    // ------------------------------------------------------------ files

    /// The whole file: items and the comments between them, with one blank
    /// line where the source had one or more.
    pub fn module(&mut self, m: &Module) -> Doc {
        let mut out = nil();
        // End of the last element printed and whether it was an item.
        let mut prev: Option<(usize, bool)> = None;
        for (i, item) in m.items.iter().enumerate() {
            let span = item_span(item);
            out = out.append(self.top_comments(&mut prev, span.start));
            out = out.append(self.separator(prev, span.start, true));
            out = out.append(self.item(item));
            // A toplevel expression must follow `;;` (or start the file):
            // the item before it ends with `;;`, and so does the
            // expression itself unless it ends the file.
            let next_is_expr = matches!(m.items.get(i + 1), Some(Item::Expr(_)));
            let is_expr = matches!(item, Item::Expr(_)) && i + 1 < m.items.len();
            if next_is_expr || is_expr {
                out = out.append(t(";;"));
            }
            prev = Some((span.end, true));
        }
        out.append(self.top_comments(&mut prev, usize::MAX))
    }

    fn top_comments(&mut self, prev: &mut Option<(usize, bool)>, before: usize) -> Doc {
        let mut out = nil();
        while let Some(c) = self.comments.get(self.next_comment) {
            if c.start >= before {
                break;
            }
            let (start, end) = (c.start, c.end);
            let i = self.next_comment;
            self.next_comment += 1;
            out = out.append(self.separator(*prev, start, false));
            out = out.append(self.comment_text(i));
            *prev = Some((end, false));
        }
        out
    }

    /// What goes between the previous top-level element and one starting
    /// at `start`: nothing before the first, a space when a comment shares
    /// a line with its neighbour, else a line break and, where the source
    /// had a blank line, one blank line.
    fn separator(&self, prev: Option<(usize, bool)>, start: usize, is_item: bool) -> Doc {
        let Some((end, prev_item)) = prev else {
            return nil();
        };
        let gap = &self.src[end.min(start)..start];
        let newlines = gap.matches('\n').count();
        if newlines == 0 && !(prev_item && is_item) {
            t(" ")
        } else if newlines >= 2 {
            hard().append(hard())
        } else {
            hard()
        }
    }

    fn item(&mut self, item: &Item) -> Doc {
        match item {
            Item::Let(rec, bindings, _) => self.bindings(*rec, bindings, true),
            Item::Type(defs, _) => {
                let mut out = nil();
                for (i, d) in defs.iter().enumerate() {
                    if i > 0 {
                        out = out
                            .append(hard())
                            .append(self.comments_before(d.span.start))
                            .append(t("and "));
                    } else {
                        out = out.append(t("type "));
                    }
                    out = out.append(self.type_def(d));
                }
                out
            }
            Item::External(name, ty, _, span) => {
                let ty = self.ty(ty, T_ARROW);
                // The symbol as written: the item's last token.
                let last = self.token_at(span.end).saturating_sub(1);
                let sym = self
                    .toks
                    .get(last)
                    .map(|&(s, _, e)| self.src[s..e].to_string())
                    .unwrap_or_default();
                t(format!("external {} :", value_name(name)))
                    .append(line().append(ty).append(t(format!(" = {sym}"))).nest(2))
                    .group()
            }
            Item::Open(m, _) => t(format!("open {m}")),
            Item::Exception(name, args, _) => {
                let mut d = t(format!("exception {name}"));
                if !args.is_empty() {
                    let docs: Vec<Doc> = args.iter().map(|f| self.ty(f, T_APP)).collect();
                    d = d.append(t(" of ")).append(join(docs, t(" * ")));
                }
                d.group()
            }
            Item::Expr(e) => self.expr(e, SEQ, ALL),
        }
    }

    // ------------------------------------------------------------ bindings

    /// `let [rec] b1 and b2`: at top level one binding per line; in an
    /// expression, grouped and followed by `in` (on the last binding's line
    /// if that fits, else on a line of its own).
    fn bindings(&mut self, rec: bool, bindings: &[Binding], top: bool) -> Doc {
        let mut out = nil();
        for (i, b) in bindings.iter().enumerate() {
            if i == 0 {
                out = out.append(t(if rec { "let rec " } else { "let " }));
            } else {
                let sep = if top { hard() } else { line() };
                out = out
                    .append(sep)
                    .append(self.comments_before(b.span.start))
                    .append(t("and "));
            }
            let last = i + 1 == bindings.len();
            out = out.append(self.binding(b, !top && last));
        }
        out
    }

    /// `f x y : t = body`, `(a, b) = e`, with ` in` after it if `with_in`.
    fn binding(&mut self, b: &Binding, with_in: bool) -> Doc {
        let mut e = &b.expr;
        let head = match &b.pat {
            Pat::Var(name, span) => {
                let mut head = self.comments_before(span.start).append(t(value_name(name)));
                // `let f x = e` (not `let f = fun x -> e`): the function's
                // span starts at its first parameter.
                if let Expr::Fun(ps, body, fspan) = e {
                    let tok = self.token_at(fspan.start);
                    if !matches!(self.toks.get(tok), Some((_, Tok::Fun, _))) {
                        for p in ps {
                            head = head.append(t(" ")).append(self.param(p));
                        }
                        e = body;
                    }
                }
                // `let x : t = e`: the annotation spans only `e`.
                if let Expr::Annot(inner, ty, aspan) = e {
                    if *aspan == inner.span() {
                        head = head.append(t(" : ")).append(self.ty(ty, T_ARROW));
                        e = inner;
                    }
                }
                head
            }
            p => self.let_pat(p),
        };
        let suffix = if with_in {
            hard().append(t("in")).flat_alt(t(" in"))
        } else {
            nil()
        };
        head.append(t(" ="))
            .append(line().append(self.expr(e, SEQ, ALL)).nest(2))
            .append(suffix)
            .group()
    }

    /// A `let` left-hand side other than a variable (the grammar's
    /// `LetPat`).
    fn let_pat(&mut self, p: &Pat) -> Doc {
        match p {
            Pat::Alias(q, name, span) => {
                let c = self.comments_before(span.start);
                c.append(self.let_pat(q)).append(t(format!(" as {name}")))
            }
            Pat::Ctor(c, Some(arg), span) => {
                let cm = self.comments_before(span.start);
                cm.append(t(c.to_string()))
                    .append(t(" "))
                    .append(self.pat(arg, P_ATOM))
            }
            Pat::Var(..) => {
                let c = self.comments_before(p.span().start);
                c.append(t("(")).append(self.pat_inner(p)).append(t(")"))
            }
            _ => self.pat(p, P_ATOM),
        }
    }

    // ------------------------------------------------------------ expressions

    /// The level at which `e` prints without parentheses.
    fn prec(&self, e: &Expr) -> u8 {
        if let Some((level, ..)) = binop_parts(e) {
            return level;
        }
        if unary_parts(e).is_some() {
            return UNARY;
        }
        if string_get_parts(e).is_some() {
            return DOT;
        }
        match e {
            Expr::Seq(..) => SEQ,
            Expr::Let(..)
            | Expr::Fun(..)
            | Expr::Match(..)
            | Expr::Function(..)
            | Expr::Receive(..)
            | Expr::Try(..)
            | Expr::If(..) => UNARY,
            Expr::Open(_, _, false, _) => UNARY,
            Expr::App(..) | Expr::Ctor(_, Some(_), _) | Expr::Assert(..) => APP,
            Expr::Ctor(_, None, _) => ARG,
            Expr::Lit(..) if self.is_negative_literal(e) => UNARY,
            _ => DOT,
        }
    }

    fn needs_parens(&self, e: &Expr, level: u8, flags: Flags) -> bool {
        self.prec(e) < level || open_flag(e) & !flags.0 != 0
    }

    /// `e` where the grammar allows expressions of `level` ending as
    /// `flags` allows, parenthesised if it needs to be.
    fn expr(&mut self, e: &Expr, level: u8, flags: Flags) -> Doc {
        crate::stack::deep(|| self.expr_at(e, level, flags))
    }

    /// [`Printer::expr`]'s body (on a stack with room for it).
    fn expr_at(&mut self, e: &Expr, level: u8, flags: Flags) -> Doc {
        let c = self.comments_before(e.span().start);
        if self.needs_parens(e, level, flags) {
            let inner = self.expr_inner(e, ALL);
            // A function's body is indented from the line, not the `(`.
            let inner = match e {
                Expr::Fun(..) | Expr::Function(..) => inner,
                _ => align(inner),
            };
            let close = self.closer(e.span().end, Tok::RParen, true);
            let close = self.comments_before_close(close);
            c.append(t("(")).append(inner).append(close).append(t(")"))
        } else {
            c.append(self.expr_inner(e, flags))
        }
    }

    fn expr_inner(&mut self, e: &Expr, flags: Flags) -> Doc {
        if let Some((level, ..)) = binop_parts(e) {
            return self.chain(e, level, flags);
        }
        if let Some((op, x)) = unary_parts(e) {
            let starts_with_minus = self.is_negative_literal(x) || unary_parts(x).is_some();
            let (sym, space) = match (op, x) {
                ("~-", Expr::Lit(..)) => ("~-", true),
                ("~-", _) => ("-", starts_with_minus),
                (_, x) => ("-.", starts_with_minus || matches!(x, Expr::Lit(..))),
            };
            let operand = self.expr(x, UNARY, flags);
            return t(sym)
                .append(if space { t(" ") } else { nil() })
                .append(operand);
        }
        if let Some((s, i)) = string_get_parts(e) {
            let s = self.expr(s, DOT, NONE);
            let i = self.expr(i, SEQ, ALL);
            return s.append(t(".[")).append(i).append(t("]"));
        }
        match e {
            Expr::Lit(l, span) => self.literal(l, *span),
            Expr::Var(n, _) => match &n.module {
                Some(_) => t(n.to_string()),
                None => t(value_name(&n.name)),
            },
            Expr::Ctor(c, None, _) => t(c.to_string()),
            Expr::Ctor(c, Some(arg), _) => {
                let arg = self.expr(arg, ARG, NONE);
                t(format!("{c} ")).append(arg)
            }
            Expr::Assert(arg, _) => {
                let arg = self.expr(arg, ARG, NONE);
                t("assert ").append(arg)
            }
            Expr::App(f, args, _) => self.app(f, args),
            Expr::Labelled(l, arg, _) => {
                let (sigil, n) = match l {
                    ArgLabel::Optional(n) => ("?", n.as_str()),
                    ArgLabel::Labelled(n) => ("~", n.as_str()),
                    ArgLabel::Positional => ("", ""),
                };
                match &**arg {
                    Expr::Var(v, _) if v.module.is_none() && v.name == n => {
                        t(format!("{sigil}{n}"))
                    }
                    arg => {
                        let arg = self.expr(arg, ARG, NONE);
                        t(format!("{sigil}{n}:")).append(arg)
                    }
                }
            }
            Expr::Fun(ps, body, _) => self.fun(ps, body, flags),
            Expr::Function(arms, _) => {
                let arms = self.arms(arms, None, flags);
                t("function").append(arms).group()
            }
            Expr::Match(scrut, arms, _) => {
                let s = self.expr(scrut, SEQ, ALL);
                let arms = self.arms(arms, None, flags);
                t("match ")
                    .append(s)
                    .append(t(" with"))
                    .append(arms)
                    .group()
            }
            Expr::Open(m, body, true, _) => {
                let b = self.expr(body, SEQ, ALL);
                t(format!("{m}.("))
                    .append(line_().append(b).nest(2))
                    .append(line_())
                    .append(t(")"))
                    .group()
            }
            Expr::Open(m, body, false, _) => {
                let body = self.expr(body, SEQ, flags);
                t(format!("let open {m} in")).append(hard()).append(body)
            }
            Expr::Try(body, arms, _) => {
                let b = self.expr(body, SEQ, ALL);
                let arms = self.arms(arms, None, flags);
                t("try ").append(b).append(t(" with")).append(arms).group()
            }
            Expr::Receive(me, arms, after, _) => {
                let s = self.expr(me, SEQ, ALL);
                let after = after.as_ref().map(|(t, e)| (&**t, &**e));
                let arms = self.arms(arms, after, flags);
                t("receive ")
                    .append(s)
                    .append(t(" with"))
                    .append(arms)
                    .group()
            }
            Expr::Let(rec, bindings, body, _) => {
                let head = self.bindings(*rec, bindings, false).group();
                let body = self.expr(body, SEQ, flags);
                head.append(hard()).append(body)
            }
            Expr::If(c, a, b, _) => self.if_(c, a, b.as_deref(), flags).group(),
            Expr::Seq(..) => {
                let mut items = vec![];
                let mut cur = e;
                while let Expr::Seq(a, b, _) = cur {
                    items.push(&**a);
                    cur = b;
                }
                let mut out = nil();
                for a in items {
                    out = out
                        .append(self.expr(a, TUPLE, IE))
                        .append(t(";"))
                        .append(hard());
                }
                out.append(self.expr(cur, SEQ, flags))
            }
            Expr::Tuple(es, span) => {
                let n = es.len();
                let mut docs = vec![];
                for (i, x) in es.iter().enumerate() {
                    let f = if i + 1 == n { ALL } else { NONE };
                    docs.push(self.expr(x, OR, f));
                }
                let close = self.closer(span.end, Tok::RParen, false);
                let close = self.comments_before_close(close);
                t("(")
                    .append(line_().append(join(docs, t(",").append(line()))).nest(2))
                    .append(close)
                    .append(line_())
                    .append(t(")"))
                    .group()
            }
            Expr::List(es, span) => {
                if es.is_empty() {
                    return self.comments_before(span.end).append(t("[]"));
                }
                let docs: Vec<Doc> = es.iter().map(|x| self.expr(x, TUPLE, IE)).collect();
                let close = self.closer(span.end, Tok::RBracket, false);
                let close = self.comments_before_close(close);
                t("[")
                    .append(line_().append(join(docs, t(";").append(line()))).nest(2))
                    .append(alt(";", ""))
                    .append(close)
                    .append(line_())
                    .append(t("]"))
                    .group()
            }
            Expr::Record(base, fields, span) => {
                let open = match base {
                    Some(b) => {
                        let b = self.expr(b, DOT, NONE);
                        t("{ ").append(b).append(t(" with"))
                    }
                    None => t("{"),
                };
                let mut docs = vec![];
                for (name, v, span) in fields {
                    let c = self.comments_before(span.start);
                    let pun = matches!(v, Expr::Var(n, _) if n.module.is_none() && &n.name == name);
                    docs.push(if pun {
                        c.append(t(name.clone()))
                    } else {
                        let v = self.expr(v, TUPLE, IE);
                        c.append(t(format!("{name} = "))).append(v)
                    });
                }
                let close = self.closer(span.end, Tok::RBrace, false);
                let close = self.comments_before_close(close);
                open.append(line().append(join(docs, t(";").append(line()))).nest(2))
                    .append(alt(";", ""))
                    .append(close)
                    .append(line())
                    .append(t("}"))
                    .group()
            }
            Expr::Field(r, f, _) => {
                let r = self.expr(r, DOT, NONE);
                r.append(t(format!(".{f}")))
            }
            Expr::Annot(x, ty, _) => {
                let x = self.expr(x, SEQ, ALL);
                let ty = self.ty(ty, T_ARROW);
                t("(").append(x).append(t(" : ")).append(ty).append(t(")"))
            }
            Expr::For(l, span) => {
                let from = self.expr(&l.from, SEQ, ALL);
                let to = self.expr(&l.to, SEQ, ALL);
                let body = self.expr(&l.body, SEQ, ALL);
                let close = self.closer(span.end, Tok::Done, false);
                let close = self.comments_before_close(close);
                let dir = if l.up { " to " } else { " downto " };
                t(format!("for {} = ", l.var))
                    .append(from)
                    .append(t(dir))
                    .append(to)
                    .append(t(" do"))
                    .append(line().append(body).append(close).nest(2))
                    .append(line())
                    .append(t("done"))
                    .group()
            }
            Expr::BinOp(..) | Expr::Cons(..) => unreachable!("handled by chain"),
        }
    }

    /// A chain of operators of one level, `a + b - c` or `x |> f |> g`:
    /// on one line if it fits, else one operand per line with its
    /// operator in front (`@@` stays at the end of its line).
    fn chain(&mut self, e: &Expr, level: u8, flags: Flags) -> Doc {
        // (operator, operand) after the first operand, in source order.
        let mut rest: Vec<(&str, &Expr)> = vec![];
        let first;
        if right_assoc(level) {
            let mut lefts: Vec<(&Expr, &str)> = vec![];
            let mut cur = e;
            while let Some((l, op, a, b)) = binop_parts(cur) {
                if l != level {
                    break;
                }
                lefts.push((a, op));
                cur = b;
            }
            first = lefts[0].0;
            for i in 0..lefts.len() {
                let operand = lefts.get(i + 1).map_or(cur, |x| x.0);
                rest.push((lefts[i].1, operand));
            }
        } else {
            let mut cur = e;
            while let Some((l, op, a, b)) = binop_parts(cur) {
                if l != level {
                    break;
                }
                rest.push((op, b));
                cur = a;
            }
            rest.reverse();
            first = cur;
        }
        let n = rest.len();
        let (first_level, last_level, other_level) = if right_assoc(level) {
            (level + 1, level, level + 1)
        } else {
            (level, level + 1, level + 1)
        };
        let mut out = self.expr(first, first_level, NONE);
        for (i, (op, x)) in rest.into_iter().enumerate() {
            let last = i + 1 == n;
            let (l, f) = if last {
                (last_level, flags)
            } else {
                (other_level, NONE)
            };
            if op == "@@" {
                let x = self.expr(x, l, f);
                out = out.append(t(" @@ ")).append(x);
            } else {
                let c = self.comments_before(x.span().start);
                let x = self.expr(x, l, f);
                out = out
                    .append(line())
                    .append(c)
                    .append(t(format!("{op} ")))
                    .append(x);
            }
        }
        out.group()
    }

    /// `f a b`: on one line if it fits; else, when the last argument is a
    /// function, a list, a record or a tuple, it opens on the first line
    /// (`List.iter (fun x ->`); else one argument per line.
    fn app(&mut self, f: &Expr, args: &[Expr]) -> Doc {
        let f = self.expr(f, DOT, NONE);
        let docs: Vec<Doc> = args.iter().map(|a| self.expr(a, ARG, NONE)).collect();
        let broken = f
            .clone()
            .append(
                docs.iter()
                    .fold(nil(), |acc, d| acc.append(line()).append(d.clone()))
                    .nest(2),
            )
            .group();
        let (last, init) = args.split_last().expect("an application has arguments");
        let simple = |a: &Expr| {
            matches!(
                a,
                Expr::Var(..) | Expr::Lit(..) | Expr::Ctor(_, None, _) | Expr::Field(..)
            )
        };
        let hug = match last {
            Expr::Fun(..) | Expr::Function(..) => Some(2),
            Expr::List(..) | Expr::Record(..) | Expr::Tuple(..) => Some(0),
            _ => None,
        };
        match hug {
            Some(indent) if init.iter().all(simple) => {
                let mut flat = f;
                for d in &docs[..docs.len() - 1] {
                    flat = flat.append(t(" ")).append(d.clone());
                }
                let last = docs.last().expect("an argument").clone();
                flat.append(t(" ")).append(last.nest(indent)).union(broken)
            }
            _ => broken,
        }
    }

    /// `fun p q -> body`, the body on the next line when it does not fit.
    fn fun(&mut self, ps: &[Param], body: &Expr, flags: Flags) -> Doc {
        let mut head = t("fun");
        for p in ps {
            head = head.append(t(" ")).append(self.param(p));
        }
        let body = self.expr(body, SEQ, flags);
        head.append(t(" ->"))
            .append(line().append(body).nest(2))
            .group()
    }

    /// A parameter: `p`, `~x`, `~x:p`, `~(x : t)`, `?x`, `?(x = e)`,
    /// `?x:(p = e)`.
    fn param(&mut self, p: &Param) -> Doc {
        // `(x : t)` is written inside the label's own parentheses.
        let (inner, annot) = match &p.pat {
            Pat::Annot(q, ty, _) => (&**q, Some(ty)),
            pat => (pat, None),
        };
        let punned = |name: &str| matches!(inner, Pat::Var(v, _) if v == name);
        let open = |me: &mut Self, head: Doc| -> Doc {
            let head = head.append(me.pat(inner, P_ALIAS));
            match annot {
                Some(ty) => head.append(t(" : ")).append(me.ty(ty, T_ARROW)),
                None => head,
            }
        };
        match (&p.label, &p.default) {
            (ArgLabel::Positional, _) => self.pat(&p.pat, P_ATOM),
            (ArgLabel::Labelled(n), _) if punned(n) && annot.is_none() => t(format!("~{n}")),
            (ArgLabel::Labelled(n), _) if punned(n) => open(self, t("~(")).append(t(")")),
            (ArgLabel::Labelled(n), _) => t(format!("~{n}:")).append(self.pat(&p.pat, P_ATOM)),
            (ArgLabel::Optional(n), None) if punned(n) && annot.is_none() => t(format!("?{n}")),
            (ArgLabel::Optional(n), None) => t(format!("?{n}:")).append(self.pat(&p.pat, P_ATOM)),
            (ArgLabel::Optional(n), Some(d)) => {
                let head = if punned(n) {
                    t("?(")
                } else {
                    t(format!("?{n}:("))
                };
                let head = open(self, head);
                let d = self.expr(d, SEQ, ALL);
                head.append(t(" = ")).append(d).append(t(")"))
            }
        }
    }

    /// The arms of `match`, `function`, `receive`: each on its own line
    /// starting with `|`, unless the whole construct fits on one line.
    fn arms(&mut self, arms: &[Arm], after: Option<(&Expr, &Expr)>, flags: Flags) -> Doc {
        let total = arms.len() + usize::from(after.is_some());
        let mut out = nil();
        for (i, arm) in arms.iter().enumerate() {
            let body_flags = if i + 1 == total { flags } else { OIE };
            let c = self.comments_before(arm.pat.span().start);
            let bar = if i == 0 { alt("| ", "") } else { t("| ") };
            let exn = if arm.exception {
                t("exception ")
            } else {
                nil()
            };
            let mut head = c
                .append(bar)
                .append(exn)
                .append(self.pat(&arm.pat, P_ALIAS));
            if let Some(g) = &arm.guard {
                head = head.append(t(" when ")).append(self.expr(g, SEQ, ALL));
            }
            let body = self.expr(&arm.body, SEQ, body_flags);
            out = out
                .append(line())
                .append(head)
                .append(t(" ->"))
                .append(line().append(body).nest(4).group());
        }
        if let Some((timeout, body)) = after {
            let c = self.comments_before(timeout.span().start);
            let bar = if arms.is_empty() {
                alt("| ", "")
            } else {
                t("| ")
            };
            let timeout = self.expr(timeout, TUPLE, IE);
            let body = self.expr(body, SEQ, flags);
            out = out
                .append(line())
                .append(c)
                .append(bar)
                .append(t("after "))
                .append(timeout)
                .append(t(" ->"))
                .append(line().append(body).nest(4).group());
        }
        out
    }

    /// `if c then a else b`, broken as `if c then a` / `else b`, a branch
    /// that does not fit going to its own lines; an `else if` chain is one
    /// group (every `else` on its own line, or none); a sequence in a
    /// branch is a `begin ... end` block. Not grouped: the caller groups.
    fn if_(&mut self, c: &Expr, a: &Expr, b: Option<&Expr>, flags: Flags) -> Doc {
        let cond = self.expr(c, SEQ, ALL);
        let head = t("if ").append(cond).append(t(" then"));
        match b {
            None => {
                let a = self.branch(a, flags);
                head.append(a)
            }
            Some(b) => {
                let block = matches!(a, Expr::Seq(..));
                let a = self.branch(a, OE);
                let b = match b {
                    Expr::If(c2, a2, b2, span) if !self.needs_parens(b, TUPLE, flags) => {
                        let cm = self.comments_before(span.start);
                        t(" ")
                            .append(cm)
                            .append(self.if_(c2, a2, b2.as_deref(), flags))
                    }
                    _ => self.branch(b, flags),
                };
                // `end else` after a `begin ... end` block.
                let sep = if block { t(" ") } else { line() };
                head.append(a).append(sep).append(t("else")).append(b)
            }
        }
    }

    fn branch(&mut self, e: &Expr, flags: Flags) -> Doc {
        if let Expr::Seq(..) = e {
            let c = self.comments_before(e.span().start);
            let body = self.expr_inner(e, ALL);
            let close = self
                .closer(e.span().end, Tok::End, true)
                .or_else(|| self.closer(e.span().end, Tok::RParen, true));
            let close = self.comments_before_close(close);
            t(" begin")
                .append(hard().append(c).append(body).append(close).nest(2))
                .append(hard())
                .append(t("end"))
        } else {
            let e = self.expr(e, TUPLE, flags);
            line().append(e).nest(2).group()
        }
    }

    // ------------------------------------------------------------ patterns

    fn pat_prec(&self, p: &Pat) -> u8 {
        match p {
            Pat::Alias(..) => P_ALIAS,
            Pat::Or(..) => P_OR,
            Pat::Cons(..) => P_CONS,
            Pat::Ctor(_, Some(_), _) => P_APP,
            // `Some (-1)`, not `Some -1`.
            Pat::Lit(l, s) if self.literal_text(l, *s).starts_with('-') => P_APP,
            _ => P_ATOM,
        }
    }

    fn pat(&mut self, p: &Pat, level: u8) -> Doc {
        let c = self.comments_before(p.span().start);
        if self.pat_prec(p) < level {
            c.append(t("(")).append(self.pat_inner(p)).append(t(")"))
        } else {
            c.append(self.pat_inner(p))
        }
    }

    fn pat_inner(&mut self, p: &Pat) -> Doc {
        match p {
            Pat::Wild(_) => t("_"),
            Pat::Var(n, _) => t(value_name(n)),
            Pat::Lit(l, s) => self.literal(l, *s),
            Pat::Tuple(ps, span) => {
                let docs: Vec<Doc> = ps.iter().map(|q| self.pat(q, P_CONS)).collect();
                let close = self.closer(span.end, Tok::RParen, true);
                let close = self.comments_before_close(close);
                t("(")
                    .append(line_().append(join(docs, t(",").append(line()))).nest(2))
                    .append(close)
                    .append(line_())
                    .append(t(")"))
                    .group()
            }
            Pat::Ctor(c, None, _) => t(c.to_string()),
            Pat::Ctor(c, Some(a), _) => {
                let a = self.pat(a, P_ATOM);
                t(format!("{c} ")).append(a)
            }
            Pat::Cons(a, b, _) => {
                let a = self.pat(a, P_APP);
                let b = self.pat(b, P_CONS);
                a.append(t(" :: ")).append(b)
            }
            Pat::List(ps, span) => {
                if ps.is_empty() {
                    return self.comments_before(span.end).append(t("[]"));
                }
                let docs: Vec<Doc> = ps.iter().map(|q| self.pat(q, P_CONS)).collect();
                let close = self.closer(span.end, Tok::RBracket, false);
                let close = self.comments_before_close(close);
                t("[")
                    .append(line_().append(join(docs, t(";").append(line()))).nest(2))
                    .append(alt(";", ""))
                    .append(close)
                    .append(line_())
                    .append(t("]"))
                    .group()
            }
            Pat::Record(fields, open, span) => {
                let mut docs = vec![];
                for (name, q, span) in fields {
                    let c = self.comments_before(span.start);
                    let pun = matches!(q, Pat::Var(n, _) if n == name);
                    docs.push(if pun {
                        c.append(t(name.clone()))
                    } else {
                        let q = self.pat(q, P_ALIAS);
                        c.append(t(format!("{name} = "))).append(q)
                    });
                }
                if *open {
                    docs.push(t("_"));
                }
                let close = self.closer(span.end, Tok::RBrace, false);
                let close = self.comments_before_close(close);
                t("{")
                    .append(line().append(join(docs, t(";").append(line()))).nest(2))
                    .append(alt(";", ""))
                    .append(close)
                    .append(line())
                    .append(t("}"))
                    .group()
            }
            Pat::Or(a, b, _) => {
                let a = self.pat(a, P_OR);
                let b = self.pat(b, P_TUPLE);
                a.append(t(" | ")).append(b)
            }
            Pat::Alias(q, name, _) => {
                let q = self.pat(q, P_ALIAS);
                q.append(t(format!(" as {name}")))
            }
            Pat::Annot(q, ty, _) => {
                let q = self.pat(q, P_ALIAS);
                let ty = self.ty(ty, T_ARROW);
                t("(").append(q).append(t(" : ")).append(ty).append(t(")"))
            }
        }
    }

    // ------------------------------------------------------------ types

    fn ty(&mut self, ty: &TypeExpr, level: u8) -> Doc {
        let c = self.comments_before(ty.span().start);
        let prec = match ty {
            TypeExpr::Arrow(..) => T_ARROW,
            TypeExpr::Tuple(..) => T_TUPLE,
            _ => T_APP,
        };
        let inner = match ty {
            TypeExpr::Var(v, _) => t(format!("'{v}")),
            TypeExpr::Con(n, args, _) => match args.as_slice() {
                [] => t(n.to_string()),
                [a] => self.ty(a, T_APP).append(t(format!(" {n}"))),
                args => {
                    let docs: Vec<Doc> = args.iter().map(|a| self.ty(a, T_ARROW)).collect();
                    t("(")
                        .append(join(docs, t(", ")))
                        .append(t(format!(") {n}")))
                }
            },
            TypeExpr::Arrow(a, b, _) => {
                let a = self.ty(a, T_TUPLE);
                let b = self.ty(b, T_ARROW);
                a.append(t(" ->")).append(line()).append(b).group()
            }
            TypeExpr::Tuple(ts, _) => {
                let docs: Vec<Doc> = ts.iter().map(|a| self.ty(a, T_APP)).collect();
                join(docs, t(" * "))
            }
            TypeExpr::Paren(inner, _) => {
                let inner = self.ty(inner, T_ARROW);
                t("(").append(inner).append(t(")"))
            }
            TypeExpr::Labelled(l, inner, _) => {
                let label = match l {
                    ArgLabel::Optional(n) => format!("?{n}:"),
                    ArgLabel::Labelled(n) => format!("{n}:"),
                    ArgLabel::Positional => String::new(),
                };
                t(label).append(self.ty(inner, T_TUPLE))
            }
        };
        if prec < level {
            c.append(t("(")).append(inner).append(t(")"))
        } else {
            c.append(inner)
        }
    }

    fn type_def(&mut self, d: &TypeDef) -> Doc {
        let params = match d.params.as_slice() {
            [] => String::new(),
            [p] => format!("'{p} "),
            ps => format!(
                "({}) ",
                ps.iter()
                    .map(|p| format!("'{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let head = t(format!("{params}{}", d.name));
        match &d.body {
            TypeBody::Abstract => head,
            TypeBody::Alias(ty) => {
                let ty = self.ty(ty, T_ARROW);
                head.append(t(" ="))
                    .append(line().append(ty).nest(2))
                    .group()
            }
            TypeBody::Variant(ctors) => {
                let mut body = nil();
                for (i, (name, fields, span)) in ctors.iter().enumerate() {
                    let c = self.comments_before(span.start);
                    let bar = if i == 0 { alt("| ", "") } else { t("| ") };
                    let mut ctor = c.append(bar).append(t(name.clone()));
                    if !fields.is_empty() {
                        let docs: Vec<Doc> = fields.iter().map(|f| self.ty(f, T_APP)).collect();
                        ctor = ctor.append(t(" of ")).append(join(docs, t(" * ")));
                    }
                    body = body.append(line()).append(ctor);
                }
                head.append(t(" =")).append(body.nest(2)).group()
            }
            TypeBody::Record(fields) => {
                let mut docs = vec![];
                for (name, ty, span) in fields {
                    let c = self.comments_before(span.start);
                    let ty = self.ty(ty, T_ARROW);
                    docs.push(c.append(t(format!("{name} : "))).append(ty));
                }
                let close = self.closer(d.span.end, Tok::RBrace, false);
                let close = self.comments_before_close(close);
                head.append(t(" = {"))
                    .append(line().append(join(docs, t(";").append(line()))).nest(2))
                    .append(alt(";", ""))
                    .append(close)
                    .append(line())
                    .append(t("}"))
                    .group()
            }
        }
    }
}

fn item_span(item: &Item) -> Span {
    match item {
        Item::Let(_, _, s)
        | Item::Type(_, s)
        | Item::External(_, _, _, s)
        | Item::Exception(_, _, s)
        | Item::Open(_, s) => *s,
        Item::Expr(e) => e.span(),
    }
}
