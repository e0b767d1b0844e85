//! Type errors as data, rendered once into [`Diagnostic`]s. Each variant has
//! a stable code; `docs/errors.md` lists them all.

use crate::ast::{Name, Span};
use crate::check::Checker;
use crate::diagnostic::{Diagnostic, FileId, Fix};
use crate::types::printer::Printer;
use crate::types::Ty;

/// An error found while resolving names or inferring types.
#[derive(Debug, Clone)]
pub enum TypeError {
    /// E0100 / E0101: the expression at `span` has type `actual` where
    /// `expected` was required (or unifying them builds an infinite type).
    Mismatch {
        /// File.
        file: FileId,
        /// The offending expression.
        span: Span,
        /// What the context requires.
        expected: Ty,
        /// What the expression has.
        actual: Ty,
        /// Occurs-check failure rather than a clash.
        occurs: bool,
        /// A fix to suggest.
        hint: Option<String>,
    },
    /// E0102: unknown value name.
    UnboundValue {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The name.
        name: Name,
        /// Closest name in scope.
        suggestion: Option<String>,
    },
    /// E0103: unknown constructor.
    UnboundCtor {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The name.
        name: Name,
        /// Closest constructor in scope.
        suggestion: Option<String>,
    },
    /// E0104: unknown type name.
    UnboundType {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The name.
        name: Name,
        /// Closest type in scope.
        suggestion: Option<String>,
    },
    /// E0105: unknown module.
    UnknownModule {
        /// File.
        file: FileId,
        /// Where (the qualified name, which starts with the module).
        span: Span,
        /// The module.
        name: String,
        /// Closest module name known.
        suggestion: Option<String>,
    },
    /// E0106: constructor applied to the wrong number of arguments.
    CtorArity {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The constructor.
        name: String,
        /// Declared arity.
        expected: usize,
        /// Given.
        found: usize,
    },
    /// E0107: type constructor given the wrong number of parameters.
    TypeArity {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The type.
        name: String,
        /// Declared.
        expected: usize,
        /// Given.
        found: usize,
    },
    /// E0108: unknown record field.
    UnboundField {
        /// File.
        file: FileId,
        /// Where (ends with the field's name).
        span: Span,
        /// The field.
        name: String,
        /// Closest field name in scope.
        suggestion: Option<String>,
    },
    /// E0109: record expression without some fields.
    MissingFields {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The record type.
        record: String,
        /// Missing field names.
        fields: Vec<String>,
    },
    /// E0110: a variable bound twice in one pattern.
    DuplicateBinding {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The variable.
        name: String,
    },
    /// E0111: the sides of an or-pattern bind different variables.
    OrPatternVars {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// A variable bound on one side only.
        name: String,
    },
    /// E0112: `let rec` of something other than a function.
    BadLetRec {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
    },
    /// E0113: applying a value that is not a function.
    NotAFunction {
        /// File.
        file: FileId,
        /// The function expression.
        span: Span,
        /// Its type.
        ty: Ty,
        /// How many arguments were given.
        args: usize,
        /// The first argument too many.
        applied_span: Span,
    },
    /// E0114: a type variable not among the declaration's parameters.
    UnboundTypeVar {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The variable.
        name: String,
        /// The type being defined.
        type_name: String,
        /// Its parameters with the unbound variable added.
        params: Vec<String>,
    },
    /// E0115: a name defined twice where it must be unique.
    DuplicateDefinition {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// "field", "constructor" or "type".
        what: &'static str,
        /// The name.
        name: String,
    },
    /// E0117: a function applied to more arguments than it takes.
    TooManyArguments {
        /// File.
        file: FileId,
        /// The function.
        span: Span,
        /// Its type.
        ty: Ty,
        /// How many arguments it takes.
        expected: usize,
        /// The first argument too many.
        extra_span: Span,
    },
    /// E0150: an argument with a label the applied function's type does
    /// not have.
    UnknownLabel {
        /// File.
        file: FileId,
        /// The labelled argument.
        span: Span,
        /// The function.
        fn_span: Span,
        /// Its type.
        ty: Ty,
        /// The label as written: `~x` or `?x`.
        label: String,
        /// The labels the function does have, as written.
        labels: Vec<String>,
    },
    /// E0151: `?x:e` (an option) given for a parameter `~x` that is not
    /// optional.
    OptionalToPlain {
        /// File.
        file: FileId,
        /// The argument.
        span: Span,
        /// The function.
        fn_span: Span,
        /// Its type.
        ty: Ty,
        /// The label as written: `?x`.
        label: String,
        /// Its name: `x`.
        name: String,
    },
    /// E0118: a type abbreviation that expands to itself.
    CyclicAbbreviation {
        /// File.
        file: FileId,
        /// The definition.
        span: Span,
        /// The type.
        name: String,
    },
    /// E0123: a `Printf`/`Format` format that is not a literal, or is
    /// malformed (`crate::printf`).
    BadFormat {
        /// File.
        file: FileId,
        /// The format (or the call).
        span: Span,
        /// What is wrong, naming the conversion.
        message: String,
    },
    /// E0124: `exception p` in the arms of something other than a
    /// `match`.
    MisplacedExceptionArm {
        /// File.
        file: FileId,
        /// The arm's pattern.
        span: Span,
        /// Where it is (`function`, `try`, `receive`).
        context: &'static str,
    },
    /// E0122: a destructuring `let` or parameter pattern that can fail.
    RefutablePattern {
        /// File.
        file: FileId,
        /// The pattern.
        span: Span,
        /// A value it does not match.
        missing: String,
    },
    /// E0120: a `match` that does not cover every value.
    NonExhaustive {
        /// File.
        file: FileId,
        /// The `match ... with` head.
        span: Span,
        /// A value no arm matches, as source text.
        missing: String,
        /// Where an arm for it goes: the end of the last arm.
        insert_at: usize,
        /// The start of the last arm's pattern (its line's indentation is
        /// the new arm's).
        last_arm: usize,
    },
    /// E0121: an arm that can never be selected.
    UnusedArm {
        /// File.
        file: FileId,
        /// Its pattern.
        span: Span,
    },
    /// E0116: a field that the record type does not have.
    FieldNotInRecord {
        /// File.
        file: FileId,
        /// Where.
        span: Span,
        /// The field.
        field: String,
        /// The record type.
        record: String,
        /// The record's field closest to `field`.
        suggestion: Option<String>,
    },
}

/// The fix replacing the last `name.len()` bytes of `span` (a name,
/// maybe qualified: `List.mapp`) by `new`.
fn rename_fix(file: FileId, span: Span, name: &str, new: &str) -> Fix {
    let start = span.end.saturating_sub(name.len()).max(span.start);
    Fix {
        title: format!("Replace with `{new}`"),
        file,
        span: Span::new(start, span.end),
        replacement: new.to_string(),
        indent_like: None,
    }
}

/// The fix replacing the first `name.len()` bytes of `span` (a field
/// name, alone or followed by `= e` or a pattern) by `new`.
fn field_fix(file: FileId, span: Span, name: &str, new: &str) -> Fix {
    Fix {
        title: format!("Replace with `{new}`"),
        file,
        span: Span::new(span.start, (span.start + name.len()).min(span.end)),
        replacement: new.to_string(),
        indent_like: None,
    }
}

impl TypeError {
    /// Renders the error, printing types with the user's names.
    pub fn to_diagnostic(&self, c: &mut Checker) -> Diagnostic {
        use TypeError::*;
        match self {
            Mismatch {
                file,
                span,
                expected,
                actual,
                occurs,
                hint,
            } => {
                let mut p = Printer::new();
                let exp = c.show_with(&mut p, *expected);
                let act = c.show_with(&mut p, *actual);
                let mut d = if *occurs {
                    Diagnostic::error(
                        "E0101",
                        "Infinite type",
                        *file,
                        *span,
                        format!("this has type `{act}`, which would have to contain itself as `{exp}`"),
                    )
                } else {
                    Diagnostic::error(
                        "E0100",
                        "Type mismatch",
                        *file,
                        *span,
                        format!("expected `{exp}`, found `{act}`"),
                    )
                };
                if let Some(h) = hint {
                    d = d.with_hint(h.clone());
                }
                if hint.is_none() && !*occurs {
                    if let Some(h) = missing_labelled_hint(c, *expected, *actual) {
                        d = d.with_hint(h);
                    }
                }
                if exp == act && !*occurs {
                    d = d.with_hint(
                        "these are two different types with the same name: a later `type` definition shadows the earlier one, and values of the old type do not fit the new one",
                    );
                }
                d
            }
            UnboundValue {
                file,
                span,
                name,
                suggestion,
            } => {
                let d = Diagnostic::error(
                    "E0102",
                    format!("Unknown variable `{name}`"),
                    *file,
                    *span,
                    "not found in this scope",
                );
                match suggestion {
                    Some(s) => d
                        .with_hint(format!("did you mean `{s}`?"))
                        .with_fix(rename_fix(*file, *span, &name.name, s)),
                    None => d,
                }
            }
            UnboundCtor {
                file,
                span,
                name,
                suggestion,
            } => {
                let d = Diagnostic::error(
                    "E0103",
                    format!("Unknown constructor `{name}`"),
                    *file,
                    *span,
                    "no type defines this constructor",
                );
                match suggestion {
                    Some(s) => d
                        .with_hint(format!("did you mean `{s}`?"))
                        .with_fix(rename_fix(*file, *span, &name.name, s)),
                    None => d,
                }
            }
            UnboundType {
                file,
                span,
                name,
                suggestion,
            } => {
                let d = Diagnostic::error(
                    "E0104",
                    format!("Unknown type `{name}`"),
                    *file,
                    *span,
                    "no such type",
                );
                match suggestion {
                    Some(s) => d
                        .with_hint(format!("did you mean `{s}`?"))
                        .with_fix(rename_fix(*file, *span, &name.name, s)),
                    None => d,
                }
            }
            UnknownModule {
                file,
                span,
                name,
                suggestion,
            } => {
                let d = Diagnostic::error(
                    "E0105",
                    format!("Unknown module `{name}`"),
                    *file,
                    *span,
                    "no such module",
                );
                match suggestion {
                    Some(s) => d.with_hint(format!("did you mean `{s}`?")).with_fix(Fix {
                        title: format!("Replace with `{s}`"),
                        file: *file,
                        span: Span::new(span.start, span.start + name.len()),
                        replacement: s.clone(),
                        indent_like: None,
                    }),
                    None => d.with_hint(format!(
                        "a module `{name}` is a file `{}` beside the program, or a standard module",
                        crate::modules::file_of_module(name)
                    )),
                }
            }
            CtorArity {
                file,
                span,
                name,
                expected,
                found,
            } => Diagnostic::error(
                "E0106",
                format!("Constructor `{name}` expects {expected} argument(s), but is applied to {found}"),
                *file,
                *span,
                format!("{found} given here"),
            )
            .with_hint(if *expected > 1 {
                format!("write the arguments as a tuple: `{name} ({})`", vec!["_"; *expected].join(", "))
            } else if *expected == 1 {
                format!("`{name}` takes one argument: `{name} x`")
            } else {
                format!("`{name}` is a constant: write it alone")
            }),
            TypeArity {
                file,
                span,
                name,
                expected,
                found,
            } => Diagnostic::error(
                "E0107",
                format!("Type `{name}` expects {expected} parameter(s), but is given {found}"),
                *file,
                *span,
                "wrong number of type parameters",
            ),
            UnboundField {
                file,
                span,
                name,
                suggestion,
            } => {
                let d = Diagnostic::error(
                    "E0108",
                    format!("Unknown record field `{name}`"),
                    *file,
                    *span,
                    "no record type has this field",
                );
                match suggestion {
                    Some(s) => d
                        .with_hint(format!("did you mean `{s}`?"))
                        .with_fix(field_fix(*file, *span, name, s)),
                    None => d,
                }
            }
            MissingFields {
                file,
                span,
                record,
                fields,
            } => Diagnostic::error(
                "E0109",
                format!("Missing fields in a record of type `{record}`"),
                *file,
                *span,
                format!("missing {}", fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")),
            )
            .with_hint("every field must be given, or copy the others with `{ r with ... }`"),
            DuplicateBinding { file, span, name } => Diagnostic::error(
                "E0110",
                format!("Variable `{name}` is bound several times in this pattern"),
                *file,
                *span,
                "bound again here",
            ),
            OrPatternVars { file, span, name } => Diagnostic::error(
                "E0111",
                format!("Variable `{name}` must occur on both sides of this `|` pattern"),
                *file,
                *span,
                "the alternatives bind different variables",
            ),
            BadLetRec { file, span } => Diagnostic::error(
                "E0112",
                "This kind of expression is not allowed as right-hand side of `let rec`",
                *file,
                *span,
                "`let rec` defines functions",
            )
            .with_hint("write `let rec f x = ...`; values that are not functions need no `rec`"),
            NotAFunction {
                file,
                span,
                ty,
                args,
                applied_span,
            } => {
                let t = c.show(*ty);
                Diagnostic::error(
                    "E0113",
                    "This is not a function; it cannot be applied",
                    *file,
                    *span,
                    format!("this has type `{t}`"),
                )
                .with_label(*file, *applied_span, format!("applied to {args} argument(s)"))
            }
            UnboundTypeVar {
                file,
                span,
                name,
                type_name,
                params,
            } => {
                let ps: Vec<String> = params.iter().map(|p| format!("'{p}")).collect();
                let head = if ps.len() == 1 {
                    format!("{} {type_name}", ps[0])
                } else {
                    format!("({}) {type_name}", ps.join(", "))
                };
                // `Checker::declare_exception` checks arguments as a
                // declaration of `exn`, which has no parameters.
                if type_name == "exn" {
                    return Diagnostic::error(
                        "E0114",
                        format!("The type variable `'{name}` is unbound in this exception"),
                        *file,
                        *span,
                        "an exception's arguments cannot be polymorphic",
                    )
                    .with_hint("use a concrete type, as OCaml requires");
                }
                Diagnostic::error(
                    "E0114",
                    format!("The type variable `'{name}` is unbound in this type declaration"),
                    *file,
                    *span,
                    "not a parameter of the type",
                )
                .with_hint(format!("add it to the parameters: `type {head} = ...`"))
            }
            DuplicateDefinition {
                file,
                span,
                what,
                name,
            } => Diagnostic::error(
                "E0115",
                format!("The {what} `{name}` is defined twice"),
                *file,
                *span,
                "defined again here",
            ),
            NonExhaustive {
                file,
                span,
                missing,
                insert_at,
                last_arm,
            } => Diagnostic::error(
                "E0120",
                "This match is not exhaustive",
                *file,
                *span,
                format!("`{missing}` is not matched"),
            )
            .with_hint(format!("add an arm for `{missing}`, or a catch-all `| _ -> ...`"))
            .with_fix(Fix {
                title: format!("Add the missing case `{missing}`"),
                file: *file,
                span: Span::new(*insert_at, *insert_at),
                replacement: format!("| {missing} -> failwith \"TODO\""),
                indent_like: Some(*last_arm),
            }),
            TooManyArguments {
                file,
                span,
                ty,
                expected,
                extra_span,
            } => {
                let t = c.show(*ty);
                Diagnostic::error(
                    "E0117",
                    format!("This function takes {expected} argument(s) but is applied to more"),
                    *file,
                    *extra_span,
                    "this argument is one too many",
                )
                .with_label(*file, *span, format!("this has type `{t}`"))
                .with_hint("check the parentheses: an argument may belong to an inner call")
            }
            UnknownLabel {
                file,
                span,
                fn_span,
                ty,
                label,
                labels,
            } => {
                let t = c.show(*ty);
                let d = Diagnostic::error(
                    "E0150",
                    format!("This function has no parameter labelled `{label}`"),
                    *file,
                    *span,
                    format!("this argument cannot be applied with label `{label}`"),
                )
                .with_label(*file, *fn_span, format!("this has type `{t}`"));
                let bare = |l: &str| l.trim_start_matches(['~', '?']).to_string();
                let names: Vec<String> = labels.iter().map(|l| bare(l)).collect();
                match crate::check::closest(&bare(label), &names) {
                    Some(s) => {
                        let full = labels.iter().find(|l| bare(l) == s).cloned().unwrap_or(s);
                        d.with_hint(format!("did you mean `{full}`?"))
                    }
                    None if labels.is_empty() => {
                        d.with_hint("its parameters have no labels: pass the argument without one")
                    }
                    None => d.with_hint(format!("its labels are {}", labels.join(", "))),
                }
            }
            OptionalToPlain {
                file,
                span,
                fn_span,
                ty,
                label,
                name,
            } => {
                let t = c.show(*ty);
                Diagnostic::error(
                    "E0151",
                    format!("The parameter `~{name}` is not optional: it cannot be given as `{label}`"),
                    *file,
                    *span,
                    format!("`{label}:` passes an option"),
                )
                .with_label(*file, *fn_span, format!("this has type `{t}`"))
                .with_hint(format!("pass the value itself: `~{name}:…`"))
            }
            CyclicAbbreviation { file, span, name } => Diagnostic::error(
                "E0118",
                format!("The type abbreviation `{name}` is cyclic"),
                *file,
                *span,
                "it expands to itself",
            )
            .with_hint("a recursive type must be a variant or a record: `type t = Leaf | Node of t list`"),
            BadFormat {
                file,
                span,
                message,
            } => Diagnostic::error("E0123", "Invalid format", *file, *span, message.clone()),
            MisplacedExceptionArm {
                file,
                span,
                context,
            } => Diagnostic::error(
                "E0124",
                "An exception pattern outside a `match`",
                *file,
                *span,
                format!("`exception` patterns are not allowed in a `{context}`"),
            )
            .with_hint(match *context {
                "try" => "a `try`'s arms already match exceptions: drop `exception`",
                _ => "use `match ... with exception p -> ...`",
            }),
            RefutablePattern { file, span, missing } => Diagnostic::error(
                "E0122",
                "This pattern does not match every value",
                *file,
                *span,
                format!("`{missing}` is not matched"),
            )
            .with_hint("use `match ... with` to handle the other cases"),
            UnusedArm { file, span } => Diagnostic::error(
                "E0121",
                "This arm is never used",
                *file,
                *span,
                "every value it matches is matched by an earlier arm",
            )
            .with_hint("remove it, or move it before the arm that covers it"),
            FieldNotInRecord {
                file,
                span,
                field,
                record,
                suggestion,
            } => {
                let d = Diagnostic::error(
                    "E0116",
                    format!("The record type `{record}` has no field `{field}`"),
                    *file,
                    *span,
                    "not a field of this record",
                );
                match suggestion {
                    Some(s) => d
                        .with_hint(format!("did you mean `{s}`?"))
                        .with_fix(field_fix(*file, *span, field, s)),
                    None => d,
                }
            }
        }
    }
}

/// For a mismatch where a function with labelled parameters was found
/// instead of a value: which arguments the application left out.
fn missing_labelled_hint(c: &mut Checker, expected: Ty, actual: Ty) -> Option<String> {
    use crate::types::{Label, TyNode};
    if matches!(c.types.node(expected), TyNode::Arrow(..)) {
        return None;
    }
    let mut missing = vec![];
    let mut t = actual;
    while let TyNode::Arrow(l, _, r) = c.types.node(t) {
        match l {
            Label::Named(n) => missing.push(format!("~{}", c.types.label_name(n))),
            Label::Optional(_) => {}
            Label::Positional => missing.push("a positional argument".into()),
        }
        t = r;
    }
    let labelled = matches!(c.types.node(actual), TyNode::Arrow(l, _, _) if l != Label::Positional);
    (labelled && !missing.is_empty()).then(|| {
        format!(
            "this is a partial application: the argument(s) {} are missing",
            missing.join(", ")
        )
    })
}
