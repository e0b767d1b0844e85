//! Labelled and optional parameters and arguments, typed as OCaml types
//! them (`typecore.ml`'s `type_application`), and elaborated into
//! positional code so that code generation never sees a label:
//!
//! - `fun ?(x = e) -> body` receives an `'a option` and starts with
//!   `let x = match x with Some v -> v | None -> e`;
//! - `f ~y:2 ~x:1 3` is `f 1 2 3` in the parameters' order, `?w` omitted
//!   before a given positional argument is `None`, `~w:e` for an optional
//!   `?w` is `Some e`;
//! - an application that leaves out a parameter before one it gives
//!   (`f ~y:2` for `f : x:int -> y:int -> int`) is a function of the left
//!   out ones: `let a = 2 in fun x -> f x a`.

use super::Checker;
use crate::ast::{self, ArgLabel, Expr, Span};
use crate::error::TypeError;
use crate::typed::*;
use crate::types::{Label, Ty, TyNode, TypeId, UnifyError};

/// An argument of an application, already inferred.
struct Given {
    label: Label,
    te: TExpr,
    ty: Ty,
    /// The whole argument (`~x:e`).
    span: Span,
    /// Its expression (`e`).
    expr_span: Span,
    /// Whether that expression is a name (see [`Checker::drop_optionals`]).
    is_ident: bool,
}

/// One parameter of the applied function, in order: what it receives.
enum Slot {
    /// An argument (or the `None` of an omitted optional one).
    Arg(TExpr, Ty),
    /// Nothing: the application's result still takes it.
    Omitted(Label, Ty),
}

/// The prelude's `option` type: its id and the indices of `None` and
/// `Some`.
#[derive(Clone, Copy)]
pub(super) struct OptionType {
    id: TypeId,
    none: usize,
    some: usize,
}

impl Checker {
    /// The type label of a parameter or argument label.
    pub(super) fn label_of(&mut self, l: &ArgLabel) -> Label {
        match l {
            ArgLabel::Positional => Label::Positional,
            ArgLabel::Labelled(n) => Label::Named(self.types.label(n)),
            ArgLabel::Optional(n) => Label::Optional(self.types.label(n)),
        }
    }

    /// `~x`, `?x` or nothing, as written in source.
    fn label_text(&self, l: Label) -> String {
        match l {
            Label::Positional => String::new(),
            Label::Named(n) => format!("~{}", self.types.label_name(n)),
            Label::Optional(n) => format!("?{}", self.types.label_name(n)),
        }
    }

    /// The prelude's `option` (also while the prelude itself is checked,
    /// once it has declared it).
    pub(super) fn option_type(&self) -> Option<OptionType> {
        [&self.prelude, &self.current].into_iter().find_map(|env| {
            let some = *env.ctors.get("Some")?;
            let none = *env.ctors.get("None")?;
            let id = self.ctors[some].type_id;
            (self.decls[id as usize].name == "option" && self.ctors[none].type_id == id)
                .then_some(OptionType { id, none, some })
        })
    }

    /// `t option`.
    pub(super) fn option_of(&mut self, t: Ty) -> Ty {
        match self.option_type() {
            Some(o) => self.con(o.id, vec![t]),
            None => self.fresh(),
        }
    }

    /// `None`.
    fn none_expr(&self) -> TExpr {
        match self.option_type().map(|o| self.ctors[o.none].repr) {
            Some(CtorRepr::Constant(n)) => TExpr::Imm(n as i64),
            _ => TExpr::Imm(0),
        }
    }

    /// `Some e`.
    fn some_expr(&self, e: TExpr) -> TExpr {
        match self.option_type().map(|o| self.ctors[o.some].repr) {
            Some(CtorRepr::Block(tag, _)) => TExpr::Block(tag, vec![e]),
            _ => e,
        }
    }

    /// For `?(p = default)`: `match slot with Some v -> v | None ->
    /// default`, the value the pattern is matched with.
    pub(super) fn unwrap_default(&mut self, slot: VarId, default: TExpr, span: Span) -> TExpr {
        let Some(o) = self.option_type() else {
            return default;
        };
        let v = self.new_var();
        let arms = vec![
            TArm {
                pat: TPat::Ctor(self.ctor_ref(o.some), vec![TPat::Var(v)]),
                guard: None,
                body: TExpr::Local(v),
            },
            TArm {
                pat: TPat::Ctor(self.ctor_ref(o.none), vec![]),
                guard: None,
                body: default,
            },
        ];
        TExpr::Match(Box::new(TExpr::Local(slot)), arms, self.loc(span))
    }

    /// Whether the parameters of function type `t` (as far as it is known)
    /// have labels.
    pub(super) fn has_labels(&mut self, mut t: Ty) -> bool {
        while let TyNode::Arrow(l, _, r) = self.types.node(t) {
            if l != Label::Positional {
                return true;
            }
            t = r;
        }
        false
    }

    /// The labels of function type `t`'s parameters, and whether its final
    /// result is still a variable (it may take more).
    fn spine_labels(&mut self, mut t: Ty) -> (Vec<Label>, bool) {
        let mut out = vec![];
        loop {
            match self.types.node(t) {
                TyNode::Arrow(l, _, r) => {
                    out.push(l);
                    t = r;
                }
                TyNode::Var { .. } => return (out, true),
                _ => return (out, false),
            }
        }
    }

    /// `f a1 … an` where an argument is labelled or `f`'s type has labels:
    /// the arguments are matched to the parameters by label, positional
    /// ones in order, as OCaml does; then the application is rewritten
    /// with positional arguments in the parameters' order.
    pub(super) fn infer_labelled_app(
        &mut self,
        f: &Expr,
        tf: TExpr,
        ft: Ty,
        args: &[Expr],
        span: Span,
    ) -> (TExpr, Ty) {
        let mut given: Vec<Option<Given>> = Vec::with_capacity(args.len());
        for a in args {
            let (label, e) = match a {
                Expr::Labelled(l, e, _) => (self.label_of(l), &**e),
                e => (Label::Positional, e),
            };
            let (te, ty) = self.infer(e);
            given.push(Some(Given {
                label,
                te,
                ty,
                span: a.span(),
                expr_span: e.span(),
                is_ident: matches!(e, Expr::Var(..)),
            }));
        }
        // OCaml's rule: a total application of a function whose type is
        // known, all of whose arguments are unlabelled, gives them in order
        // to the non-optional parameters (the labels are omitted).
        let all_positional = given.iter().flatten().all(|g| g.label == Label::Positional);
        let ignore_labels = all_positional && {
            let (ls, open) = self.spine_labels(ft);
            !open
                && ls.iter().filter(|l| !l.is_optional()).count() == given.len()
                && ls.iter().any(|l| *l != Label::Positional)
        };
        // A label the function's (fully known) type does not have is
        // reported alone, as OCaml does, rather than after the positional
        // arguments have been given to the wrong parameters.
        let (spine, open) = self.spine_labels(ft);
        if !open {
            let unknown = given.iter().flatten().find(|g| {
                g.label != Label::Positional && !spine.iter().any(|l| l.name() == g.label.name())
            });
            if let Some(g) = unknown {
                let (span, label) = (g.span, self.label_text(g.label));
                self.unknown_label(f, ft, span, label);
                return (TExpr::Imm(0), self.fresh());
            }
        }
        let mut slots: Vec<Slot> = vec![];
        let mut cur = ft;
        let mut left = given.len();
        while left > 0 {
            match self.types.node(cur) {
                TyNode::Arrow(l, p, r) => {
                    let found = if ignore_labels {
                        if l.is_optional() {
                            None
                        } else {
                            given.iter().position(Option::is_some)
                        }
                    } else {
                        given.iter().position(|g| match (g, l) {
                            (Some(g), Label::Positional) => g.label == Label::Positional,
                            (Some(g), _) => g.label.name().is_some() && g.label.name() == l.name(),
                            (None, _) => false,
                        })
                    };
                    match found {
                        Some(i) => {
                            let g = given[i].take().expect("found among the remaining");
                            left -= 1;
                            let te = self.pass_argument(f, ft, l, p, g);
                            slots.push(Slot::Arg(te, p));
                        }
                        None => {
                            let positional_follows =
                                given.iter().flatten().any(|g| g.label == Label::Positional);
                            if l.is_optional() && (ignore_labels || positional_follows) {
                                slots.push(Slot::Arg(self.none_expr(), p));
                            } else {
                                slots.push(Slot::Omitted(l, p));
                            }
                        }
                    }
                    cur = r;
                }
                TyNode::Var { .. } => {
                    // A function of unknown type takes the rest in order,
                    // with their labels.
                    let i = given.iter().position(Option::is_some).expect("left > 0");
                    let g = given[i].take().expect("some");
                    left -= 1;
                    let res = self.fresh();
                    let arrow = self.types.arrow_l(g.label, g.ty, res);
                    if let Err(e) = self.types.unify(cur, arrow) {
                        self.error(TypeError::Mismatch {
                            file: self.file,
                            span: g.span,
                            expected: cur,
                            actual: arrow,
                            occurs: matches!(e, UnifyError::Occurs(..)),
                            hint: None,
                        });
                    }
                    slots.push(Slot::Arg(g.te, g.ty));
                    cur = res;
                }
                _ => {
                    let g = given.iter().flatten().next().expect("left > 0");
                    let applied = slots.iter().filter(|s| matches!(s, Slot::Arg(..))).count();
                    if g.label != Label::Positional {
                        let (span, label) = (g.span, self.label_text(g.label));
                        self.unknown_label(f, ft, span, label);
                    } else if applied == 0 && slots.is_empty() {
                        self.error(TypeError::NotAFunction {
                            file: self.file,
                            span: f.span(),
                            ty: ft,
                            args: args.len(),
                            applied_span: g.span,
                        });
                    } else {
                        self.error(TypeError::TooManyArguments {
                            file: self.file,
                            span: f.span(),
                            ty: ft,
                            expected: slots.len(),
                            extra_span: g.span,
                        });
                    }
                    return (TExpr::Imm(0), self.fresh());
                }
            }
        }
        let loc = self.loc(span);
        // The parameters left out become the result's.
        let last_arg = slots.iter().rposition(|s| matches!(s, Slot::Arg(..)));
        let gap = slots[..last_arg.map_or(0, |i| i + 1)]
            .iter()
            .any(|s| matches!(s, Slot::Omitted(..)));
        let omitted: Vec<(Label, Ty)> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Omitted(l, t) => Some((*l, *t)),
                Slot::Arg(..) => None,
            })
            .collect();
        let result = omitted
            .iter()
            .rev()
            .fold(cur, |acc, &(l, t)| self.types.arrow_l(l, t, acc));
        if !gap {
            let mut targs = vec![];
            let mut first = None;
            for s in slots {
                if let Slot::Arg(te, t) = s {
                    first.get_or_insert(t);
                    targs.push(te);
                }
            }
            return self.finish_app(tf, targs, result, first, loc);
        }
        // `f ~y:2` leaving `~x` out: `let g = f and a = 2 in fun x -> g x a`.
        let fv = self.new_var();
        let mut lets = vec![(fv, tf)];
        let mut params = vec![];
        let mut param_tys = vec![];
        let mut call_args = vec![];
        for s in slots {
            match s {
                Slot::Arg(te, _) => {
                    let v = self.new_var();
                    lets.push((v, te));
                    call_args.push(TExpr::Local(v));
                }
                Slot::Omitted(_, t) => {
                    let v = self.new_var();
                    params.push(v);
                    param_tys.push(t);
                    call_args.push(TExpr::Local(v));
                }
            }
        }
        let call = TExpr::App(Box::new(TExpr::Local(fv)), call_args, loc, cur);
        let lambda = TExpr::Lambda(TLambda {
            params,
            param_tys,
            body: Box::new(call),
            name: "fun".into(),
            span,
            file: self.file,
        });
        let e = lets.into_iter().rev().fold(lambda, |body, (v, te)| {
            TExpr::Let(v, Box::new(te), Box::new(body))
        });
        (e, result)
    }

    /// E0150 for the argument at `span` labelled `label`, applied to `f`
    /// of type `ft`.
    fn unknown_label(&mut self, f: &Expr, ft: Ty, span: Span, label: String) {
        let labels: Vec<String> = self
            .spine_labels(ft)
            .0
            .into_iter()
            .filter(|l| *l != Label::Positional)
            .map(|l| self.label_text(l))
            .collect();
        self.error(TypeError::UnknownLabel {
            file: self.file,
            span,
            fn_span: f.span(),
            ty: ft,
            label,
            labels,
        });
    }

    /// The argument `g` given to the parameter labelled `l` of type `p`:
    /// checked against it, and wrapped in `Some` for `~x:e` given to an
    /// optional `?x`.
    fn pass_argument(&mut self, f: &Expr, ft: Ty, l: Label, p: Ty, g: Given) -> TExpr {
        let wrap = l.is_optional() && !g.label.is_optional();
        if !l.is_optional() && g.label.is_optional() {
            let label = self.label_text(g.label);
            let name = self
                .types
                .label_name(g.label.name().unwrap_or(0))
                .to_string();
            self.error(TypeError::OptionalToPlain {
                file: self.file,
                span: g.span,
                fn_span: f.span(),
                ty: ft,
                label,
                name,
            });
            return g.te;
        }
        let ident = g.is_ident.then_some(g.expr_span);
        let (te, ty) = self.drop_optionals(ident, g.te, g.ty, p);
        let expected = if wrap {
            match (self.types.node(p), self.option_type()) {
                (TyNode::Con(id, args), Some(o)) if id == o.id && args.len() == 1 => args[0],
                _ => p,
            }
        } else {
            p
        };
        if let Err(e) = self.types.unify(ty, expected) {
            self.error(TypeError::Mismatch {
                file: self.file,
                span: g.expr_span,
                expected,
                actual: ty,
                occurs: matches!(e, UnifyError::Occurs(..)),
                hint: None,
            });
        }
        if wrap {
            self.some_expr(te)
        } else {
            te
        }
    }

    /// A function with optional parameters named as the argument of a
    /// parameter that is a function without them (`List.map f` for `f :
    /// ?scale:int -> int -> int`) is given `None` for them first, as OCaml
    /// does: `f` becomes `f ?scale:None : int -> int`. `ident` is where
    /// the argument is written, if it is a name.
    pub(super) fn drop_optionals(
        &mut self,
        ident: Option<Span>,
        te: TExpr,
        ty: Ty,
        expected: Ty,
    ) -> (TExpr, Ty) {
        let Some(span) = ident else {
            return (te, ty);
        };
        if !matches!(self.types.node(expected), TyNode::Arrow(l, _, _) if !l.is_optional()) {
            return (te, ty);
        }
        let mut nones = 0;
        let mut cur = ty;
        loop {
            match self.types.node(cur) {
                TyNode::Arrow(l, _, r) if l.is_optional() => {
                    nones += 1;
                    cur = r;
                }
                TyNode::Arrow(Label::Positional, _, _) if nones > 0 => break,
                _ => return (te, ty),
            }
        }
        let args = (0..nones).map(|_| self.none_expr()).collect();
        let loc = self.loc(span);
        (TExpr::App(Box::new(te), args, loc, cur), cur)
    }

    /// The parameters of `fun`: each one's label and the type of what the
    /// function receives (`t option` for `?x`).
    pub(super) fn param_type(&mut self, p: &ast::Param, matched: Ty) -> Ty {
        match (&p.label, &p.default) {
            (ArgLabel::Optional(_), Some(_)) => self.option_of(matched),
            (ArgLabel::Optional(_), None) => {
                let inner = self.fresh();
                let opt = self.option_of(inner);
                let _ = self.types.unify(matched, opt);
                matched
            }
            _ => matched,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::driver::check_source;

    /// The printed types of `names` after checking `src`.
    fn types_of(src: &str, names: &[&str]) -> Vec<String> {
        let mut checked = match check_source("labels.cvn", src) {
            Ok(c) => c,
            Err((_, diags)) => panic!("{diags:?}"),
        };
        let c = &mut checked.checker;
        names
            .iter()
            .map(|n| {
                let ty = c.current.values[*n].ty;
                c.show(ty)
            })
            .collect()
    }

    /// The error codes of checking `src`.
    fn error_codes(src: &str) -> Vec<String> {
        match check_source("labels.cvn", src) {
            Ok(_) => vec![],
            Err((_, diags)) => diags.iter().map(|d| d.code.to_string()).collect(),
        }
    }

    #[test]
    fn labelled_arrows_print_as_ocaml_prints_them() {
        let src = "let f ~x ?(y = 1) z = x + y + z\n\
                   let g ?v () = v\n\
                   let h (k : x:int -> ?y:string -> int) = k ~x:1 ~y:\"\"\n\
                   let p ~f:(g : int -> int) = g 1";
        assert_eq!(
            types_of(src, &["f", "g", "h", "p"]),
            [
                "x:int -> ?y:int -> int -> int",
                "?v:'a -> unit -> 'a option",
                "(x:int -> ?y:string -> int) -> int",
                "f:(int -> int) -> int",
            ]
        );
    }

    #[test]
    fn applications_commute_default_and_leave_out_by_label() {
        let src = "let f ~x ?(y = 1) z = x + y + z\n\
                   let s ~a ~b = a - b\n\
                   let total = f 3 ~x:1\n\
                   let commuted = s ~b:1 ~a:2\n\
                   let without_a = s ~b:1\n\
                   let open_y = f ~x:1\n\
                   let omitted = s 1 2\n\
                   let unknown g = g ~k:1 ~j:true";
        assert_eq!(
            types_of(
                src,
                &[
                    "total",
                    "commuted",
                    "without_a",
                    "open_y",
                    "omitted",
                    "unknown"
                ]
            ),
            [
                "int",
                "int",
                "a:int -> int",
                "?y:int -> int -> int",
                "int",
                "(k:int -> j:bool -> 'a) -> 'a",
            ]
        );
    }

    #[test]
    fn label_errors_have_their_codes() {
        let f = "let f ~x ?(y = 1) z = x + y + z\n";
        assert_eq!(error_codes(&format!("{f}let a = f ~w:1 2")), ["E0150"]);
        assert_eq!(
            error_codes(&format!("{f}let a = f ?x:(Some 1) 2")),
            ["E0151"]
        );
        assert_eq!(error_codes(&format!("{f}let a = f ~x:\"s\" 2")), ["E0100"]);
        assert_eq!(
            error_codes(&format!("{f}let a : int = f ~y:2 3")),
            ["E0100"]
        );
        assert_eq!(
            error_codes("let g (k : x:int -> int) = k 1\nlet a = g (fun ~y -> y)"),
            ["E0100"]
        );
    }
}
