//! Type descriptors for `inspect` call sites: the static type of the
//! argument, turned into the [`Desc`] graph the runtime printer walks.

use super::Gen;
use crate::typed::CtorRepr;
use crate::types::env::TypeKind;
use crate::types::{builtin, Ty, TyNode};
use caravan_vm::term::desc::{Desc, DescId};
use std::collections::HashMap;

/// Descriptors made during one compilation, appended to the global table
/// when code is finalised.
pub(crate) struct DescBuilder {
    base: DescId,
    pub descs: Vec<Desc>,
    memo: HashMap<String, DescId>,
}

impl DescBuilder {
    pub fn new() -> Self {
        DescBuilder {
            base: caravan_vm::term::desc::next_id(),
            descs: vec![],
            memo: HashMap::new(),
        }
    }
}

impl Gen {
    /// A structural key of a resolved type (type ids, not names, so
    /// shadowed types stay apart); variables are all `?`.
    fn type_key(&mut self, t: Ty, out: &mut String) {
        crate::stack::deep(|| self.type_key_inner(t, out))
    }

    fn type_key_inner(&mut self, t: Ty, out: &mut String) {
        match self.checker.types.node(t) {
            TyNode::Var { .. } => out.push('?'),
            TyNode::Arrow(..) => out.push('>'),
            TyNode::Con(id, args) => {
                out.push_str(&format!("#{id}("));
                for a in args {
                    self.type_key(a, out);
                    out.push(',');
                }
                out.push(')');
            }
            TyNode::Tuple(xs) => {
                out.push('*');
                out.push('(');
                for a in xs {
                    self.type_key(a, out);
                    out.push(',');
                }
                out.push(')');
            }
        }
    }

    /// The descriptor of type `t`.
    pub(crate) fn desc_of(&mut self, t: Ty) -> DescId {
        let mut key = String::new();
        self.type_key(t, &mut key);
        if let Some(&d) = self.descs.memo.get(&key) {
            return d;
        }
        let id = self.descs.base + self.descs.descs.len() as DescId;
        self.descs.descs.push(Desc::Pending);
        self.descs.memo.insert(key, id);
        let desc = match self.checker.types.node(t) {
            TyNode::Var { .. } => Desc::Poly,
            TyNode::Arrow(..) => Desc::Fun,
            TyNode::Tuple(xs) => Desc::Tuple(xs.into_iter().map(|x| self.desc_of(x)).collect()),
            TyNode::Con(tid, args) => match tid {
                builtin::INT => Desc::Int,
                builtin::FLOAT => Desc::Float,
                builtin::BOOL => Desc::Bool,
                builtin::CHAR => Desc::Char,
                builtin::STRING => Desc::String,
                builtin::UNIT => Desc::Unit,
                builtin::LIST => Desc::List(self.desc_of(args[0])),
                _ => self.decl_desc(tid, &args),
            },
        };
        self.descs.descs[(id - self.descs.base) as usize] = desc;
        id
    }

    fn decl_desc(&mut self, tid: u32, args: &[Ty]) -> Desc {
        let decl = self.checker.decls[tid as usize].clone();
        if decl.module.as_deref() == Some("Map") && decl.name == "t" && args.len() == 2 {
            return Desc::Map(self.desc_of(args[0]), self.desc_of(args[1]));
        }
        match decl.kind {
            TypeKind::Variant(ctors) => {
                let mut consts = vec![];
                let mut blocks = vec![];
                for ci in ctors {
                    let info = self.checker.ctors[ci].clone();
                    match info.repr {
                        CtorRepr::Constant(_) => consts.push(info.name),
                        CtorRepr::Exn(..) => {}
                        CtorRepr::Block(..) => {
                            let ds = info
                                .args
                                .iter()
                                .map(|&a| {
                                    let t = self.checker.types.subst(a, &decl.params, args);
                                    self.desc_of(t)
                                })
                                .collect();
                            blocks.push((info.name, ds));
                        }
                    }
                }
                Desc::Variant { consts, blocks }
            }
            TypeKind::Record(fields) => Desc::Record(
                fields
                    .into_iter()
                    .map(|(n, ft)| {
                        let t = self.checker.types.subst(ft, &decl.params, args);
                        (n, self.desc_of(t))
                    })
                    .collect(),
                decl.name.clone(),
            ),
            TypeKind::Abstract if decl.name == "pid" && args.len() == 1 => {
                Desc::Pid(self.desc_of(args[0]))
            }
            TypeKind::Abstract if decl.name == "reply" && args.len() == 1 => {
                Desc::Reply(self.desc_of(args[0]))
            }
            TypeKind::Abstract if decl.name == "process_id" => Desc::ProcessId,
            TypeKind::Abstract | TypeKind::Builtin | TypeKind::Alias(_) | TypeKind::Error => {
                Desc::Abstract(decl.name)
            }
        }
    }
}
