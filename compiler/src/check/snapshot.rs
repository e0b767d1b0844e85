//! The checker's state once the prelude is checked, as plain data that
//! serialises ([`CheckedPrelude`]): what [`crate::prelude`] writes to the
//! cache and loads back instead of parsing and checking the prelude again.

use super::{Checker, NEXT_EXCEPTION};
use crate::ast::Span;
use crate::diagnostic::FileId;
use crate::typed::TProgram;
use crate::types::env::{CtorInfo, ModuleEnv, TypeDecl};
use crate::types::{TypeId, Types};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Every part of a [`Checker`] that checking a module leaves behind: the
/// type arena, the declarations, the finished modules and the typed
/// program. The rest of the checker is scratch state of the module being
/// checked, empty again once a module is done.
#[derive(Serialize, Deserialize)]
pub(crate) struct CheckedPrelude {
    types: Types,
    decls: Vec<TypeDecl>,
    ctors: Vec<CtorInfo>,
    modules: HashMap<String, ModuleEnv>,
    prelude: ModuleEnv,
    program: TProgram,
    field_defs: HashMap<(TypeId, usize), (FileId, Span)>,
    /// The next exception id to hand out (the prelude's own exceptions
    /// have the VM's fixed ids; this is the process-wide counter after it).
    next_exception: u32,
}

impl Checker {
    /// The state after the prelude (and nothing else) was checked without
    /// the semantic index. `None` if the checker is not in that state: it
    /// has errors, or indexed, or checked other modules.
    pub(crate) fn into_checked_prelude(self) -> Option<CheckedPrelude> {
        let only_prelude = self.modules.len() == 1 && self.modules.contains_key("Prelude");
        let scratch_empty = self.locals.len() == 0
            && self.level == 0
            && self.opened.is_empty()
            && self.current_typedef.is_none();
        if !self.errors.is_empty() || self.record_index || !only_prelude || !scratch_empty {
            return None;
        }
        Some(CheckedPrelude {
            types: self.types,
            decls: self.decls,
            ctors: self.ctors,
            modules: self.modules,
            prelude: self.prelude,
            program: self.program,
            field_defs: self.field_defs,
            next_exception: NEXT_EXCEPTION.load(Ordering::Relaxed),
        })
    }

    /// A checker (without the semantic index) in the state
    /// [`Checker::into_checked_prelude`] saved: as if it had just checked
    /// the prelude. Exceptions declared from now on get ids past those the
    /// saved state handed out.
    pub(crate) fn from_checked_prelude(s: CheckedPrelude) -> Checker {
        NEXT_EXCEPTION.fetch_max(s.next_exception, Ordering::Relaxed);
        let mut c = Checker::new();
        c.record_index = false;
        c.types = s.types;
        c.decls = s.decls;
        c.ctors = s.ctors;
        c.modules = s.modules;
        c.prelude = s.prelude;
        c.program = s.program;
        c.field_defs = s.field_defs;
        c
    }
}
