//! Prints types in OCaml syntax with the user's own type names; variables
//! are named `'a`, `'b`, … in order of appearance, and the same
//! [`Printer`] keeps names consistent across the types of one diagnostic.

use super::{Label, Ty, TyNode, Types, GENERIC};
use std::collections::HashMap;

/// Names variables consistently across several types.
#[derive(Default)]
pub struct Printer {
    names: HashMap<Ty, String>,
    /// Print non-generalised variables as `'_weak1`, `'_weak2`, … (as
    /// OCaml's toplevel): numbered once per type arena, so a weak
    /// variable has the same name in every `val` line, `:type` and hover
    /// that shows it, until its first use fixes it.
    pub mark_weak: bool,
    /// With `mark_weak`, only variables numbered below this are weak:
    /// those made later are an expression's own, fresh from instantiating
    /// a polymorphic type (`:type List.map` is `('a -> 'b) -> ...`).
    pub weak_before: Option<u32>,
}

fn var_name(n: usize) -> String {
    let letter = (b'a' + (n % 26) as u8) as char;
    if n < 26 {
        letter.to_string()
    } else {
        format!("{letter}{}", n / 26)
    }
}

impl Printer {
    /// A fresh printer.
    pub fn new() -> Printer {
        Printer::default()
    }

    /// Renders `t`; `type_name` gives the display name of a type id.
    pub fn print(&mut self, types: &mut Types, t: Ty, type_name: &dyn Fn(u32) -> String) -> String {
        let mut out = String::new();
        self.go(types, t, 0, type_name, &mut out);
        out
    }

    // prec: 0 = top (arrow allowed), 1 = tuple component, 2 = argument.
    fn go(
        &mut self,
        types: &mut Types,
        t: Ty,
        prec: u8,
        tn: &dyn Fn(u32) -> String,
        out: &mut String,
    ) {
        crate::stack::deep(|| self.go_inner(types, t, prec, tn, out))
    }

    fn go_inner(
        &mut self,
        types: &mut Types,
        t: Ty,
        prec: u8,
        tn: &dyn Fn(u32) -> String,
        out: &mut String,
    ) {
        let r = types.repr(t);
        match types.node(r) {
            TyNode::Var { level, id, .. } => {
                if level != GENERIC && self.mark_weak && self.weak_before.is_none_or(|b| id < b) {
                    out.push_str(&format!("'_weak{}", types.weak_number(r)));
                    return;
                }
                let n = self.names.len();
                let name = self.names.entry(r).or_insert_with(|| var_name(n));
                out.push('\'');
                out.push_str(name);
            }
            TyNode::Con(id, args) => {
                match args.len() {
                    0 => {}
                    1 => {
                        self.go(types, args[0], 2, tn, out);
                        out.push(' ');
                    }
                    _ => {
                        out.push('(');
                        for (i, a) in args.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            self.go(types, *a, 0, tn, out);
                        }
                        out.push_str(") ");
                    }
                }
                out.push_str(&tn(id));
            }
            TyNode::Arrow(l, a, b) => {
                if prec > 0 {
                    out.push('(');
                }
                let mut a = a;
                match l {
                    Label::Positional => {}
                    Label::Named(n) => {
                        out.push_str(types.label_name(n));
                        out.push(':');
                    }
                    Label::Optional(n) => {
                        out.push('?');
                        out.push_str(types.label_name(n));
                        out.push(':');
                        // The parameter is a `t option`: OCaml shows `t`.
                        if let TyNode::Con(id, args) = types.node(a) {
                            if args.len() == 1 && tn(id) == "option" {
                                a = args[0];
                            }
                        }
                    }
                }
                self.go(types, a, 1, tn, out);
                out.push_str(" -> ");
                self.go(types, b, 0, tn, out);
                if prec > 0 {
                    out.push(')');
                }
            }
            TyNode::Tuple(xs) => {
                if prec > 1 {
                    out.push('(');
                }
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" * ");
                    }
                    self.go(types, *x, 2, tn, out);
                }
                if prec > 1 {
                    out.push(')');
                }
            }
        }
    }
}
