//! Code generation: the typed program to native code with Cranelift's JIT.
//!
//! - Every Caravan function is a Cranelift function with the tail calling
//!   convention (`CallConv::Tail`), signature `(proc, env, a1..an) -> value`
//!   (all `i64`), so tail calls — direct, mutual and through closures — use
//!   `return_call` and never grow the stack.
//! - Closure conversion: a closure is a heap block `[code, arity, free
//!   variables...]` (tag 247, see `docs/vm-abi.md`); a function reads its
//!   free variables from `env`. Top-level functions have no free variables
//!   and a static closure in the data section.
//! - Calls: a known function applied to exactly its arity is a direct call;
//!   otherwise the call site checks the closure's arity inline and falls
//!   back to a generated `apply_n` helper that builds partial applications
//!   or applies over-saturated calls (OCaml's `caml_applyN` / `caml_curryN`
//!   scheme, Leroy 1990, "The ZINC experiment").
//! - Every function counts a reduction and checks its stack before its
//!   first call on each path (at entry, unless a call-free condition,
//!   scrutinee or binding comes first; a path that calls nothing checks
//!   nothing), in one test: it raises the process's trip point and
//!   compares the stack pointer with it (`Process::trip`, after Go's
//!   `stackguard0`); below it, a cold block grows the stack or settles the
//!   count and yields when the slice's reductions (BEAM `CONTEXT_REDS`)
//!   ran out.
//! - Inlining: a call whose callee returns at once on a tiny pure test
//!   tests it at the call site (partial inlining of the base case); a
//!   call of a small function (top-level or local `let rec`) from its own
//!   body is a copy of the body, one level deep (recursive inlining, as
//!   GCC's `max-inline-recursive-depth`): fib makes half the calls.
//! - Pattern matching is compiled arm by arm into tests on tags and
//!   immediates (a backtracking automaton, Augustsson 1985).
//!
//! Only the functions the program reaches are compiled.

mod expr;
mod inspect;
mod runtime;

use crate::diagnostic::SourceMap;
use crate::typed::*;
use crate::types::TyNode;
use caravan_vm::value as v;
use cranelift_codegen::ir::{types::I64, AbiParam, Signature};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{ArenaMemoryProvider, JITBuilder, JITModule};
use cranelift_module::{DataDescription, DataId, FuncId, Linkage, Module};
use std::collections::{HashMap, HashSet, VecDeque};

pub use runtime::RUNTIME_FUNCTIONS;

/// Functions take at most this many parameters directly; longer
/// `fun a b c ...` chains are split into nested closures.
pub const MAX_ARITY: usize = 12;

/// A compiled program in JIT memory. Keep it alive while code runs.
pub struct Compiled {
    /// Owns the code and data.
    pub session: Session,
    /// The System V trampoline the VM enters processes through.
    pub entry: caravan_vm::EntryFn,
    /// The static closure of the program's initialisation function.
    pub main_closure: u64,
    /// Number of Cranelift functions compiled.
    pub functions_compiled: usize,
}

/// A compilation error (a bug or a resource limit, never a user error:
/// those are reported by the checker).
#[derive(Debug)]
pub struct CodegenError(pub String);

impl std::fmt::Display for CodegenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code generation failed: {}", self.0)
    }
}

impl<E: std::error::Error> From<E> for CodegenError {
    fn from(e: E) -> Self {
        CodegenError(format!("{e:?}"))
    }
}

/// How much work Cranelift spends on a function.
///
/// The idea of tiers is the JITs' (V8's Sparkplug before TurboFan,
/// HotSpot's C1 before C2), here decided statically by a function's role
/// rather than by counting calls: code that runs once or is a few
/// instructions of glue gains nothing from optimisation, and in a short
/// program its compile time is most of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// `opt_level = speed` with regalloc2's backtracking allocator: the
    /// program's functions and the generated helpers (`apply_n`,
    /// partial-application entries, runtime trampolines, extern wrappers,
    /// the entry trampoline). The helpers are few instructions but on hot
    /// paths: compiled at baseline, a partial-application entry spilled
    /// its arguments and a trampoline saved four callee-saved registers
    /// instead of one.
    Optimized,
    /// `opt_level = none` with the single-pass register allocator: the
    /// init function (the top level, run once; one per REPL phrase) when it
    /// has at most [`BASELINE_MAX_VALUES`] SSA values. On hello world,
    /// where init is the largest function, Cranelift's passes took 2.0 ms
    /// instead of 2.4.
    Baseline,
}

/// The largest init function (in SSA values) compiled at
/// [`Tier::Baseline`]. The single-pass allocator gives every spilled value
/// its own stack slot, so a baseline frame grows with the function: the
/// 200,000-call top level of `tests/deep_inputs.rs` got a 1.6 MB frame
/// (0x186af0 bytes; 0x30 with the backtracking allocator), past the 64 KiB
/// the VM keeps below the stack limit (the prologue checks the stack
/// pointer after the frame is allocated), and crashed with a stack
/// overflow. At 1,000 values a frame stays far below
/// that, even with a few machine registers' worth of temporaries per value.
pub(crate) const BASELINE_MAX_VALUES: usize = 1_000;

/// Options for code generation.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Omit the reduction check in function prologues (only for measuring
    /// the cost of preemption; such code cannot be preempted).
    pub no_reductions: bool,
    /// Allocate only through the runtime (no inline bump allocation), so
    /// that with the VM's torture mode every allocation collects.
    pub gc_torture: bool,
}

/// What the code generator knows about a lambda it must compile.
pub(crate) struct PendingFn {
    pub func: FuncId,
    pub lambda: TLambda,
    /// Free variables in env order, with what is known about each.
    pub free: Vec<(VarId, Option<(FuncId, usize)>)>,
    /// For `let rec` members: the variable naming the function itself,
    /// bound to `env`.
    pub self_var: Option<(VarId, FuncId, usize)>,
}

/// Program-wide code generation state.
pub(crate) struct Gen {
    pub module: JITModule,
    /// The ISA of [`Tier::Baseline`] (the module's own is the optimising
    /// one).
    pub baseline_isa: cranelift_codegen::isa::OwnedTargetIsa,
    /// The optimising ISA's flags with `opt_level = none`: compiles a
    /// [`Tier::Optimized`] function after [`Gen::define_function`] has run
    /// Cranelift's mid-end itself and put every stack-slot address next to
    /// its use ([`stack_addrs_at_their_uses`]).
    pub late_isa: cranelift_codegen::isa::OwnedTargetIsa,
    /// The program so far (the REPL appends phrases to it).
    pub program: TProgram,
    /// All sources.
    pub sources: SourceMap,
    /// The checker (types and declarations, for `inspect` and
    /// specialisation).
    pub checker: crate::check::Checker,
    /// Items before this index are already compiled.
    pub items_done: usize,
    /// The entry trampoline, once made.
    pub entry: Option<FuncId>,
    /// What the next initialisation function returns instead of `()`.
    pub init_result: Option<TExpr>,
    pub opts: Options,
    /// Imported runtime functions by symbol.
    pub imports: HashMap<String, FuncId>,
    /// Top-level functions: global -> (func, arity).
    pub global_fns: HashMap<GlobalId, (FuncId, usize)>,
    /// Their static closures, made when first needed.
    pub global_closures: HashMap<GlobalId, DataId>,
    /// Their lambdas, compiled when first referenced.
    pub global_lambdas: HashMap<GlobalId, TLambda>,
    /// Global value slots.
    pub global_slots: HashMap<GlobalId, DataId>,
    /// Wrappers for externs used as values: extern -> (func, static closure).
    pub extern_wrappers: HashMap<ExternId, (FuncId, DataId)>,
    /// `apply_n` helpers.
    pub apply_fns: HashMap<usize, FuncId>,
    /// Partial-application entry points `(stored, remaining)`.
    pub pap_fns: HashMap<(usize, usize), FuncId>,
    /// Interned string literals.
    pub strings: HashMap<Vec<u8>, DataId>,
    /// Interned float literals (by bits).
    pub floats: HashMap<u64, DataId>,
    /// Read-only data declared since the last finalisation, whose ranges
    /// the VM is told of ([`Gen::note_static_data`]).
    static_data: Vec<DataId>,
    /// This session's span of static data in the VM
    /// (`caravan_vm::heap::new_static_span`), if it got one.
    static_span: Option<usize>,
    /// Interned location strings.
    pub locs: HashMap<String, DataId>,
    /// Source locations of call sites, by the index their calls carry as
    /// Cranelift source locations (`SourceLoc::new(index)`).
    pub call_locs: Vec<Loc>,
    /// Index of each location in `call_locs`.
    pub call_loc_ids: HashMap<Loc, u32>,
    /// Work list of lambdas to compile.
    pub queue: VecDeque<PendingFn>,
    /// Which globals' lambdas are already queued.
    pub queued_globals: HashSet<GlobalId>,
    /// Helpers requested but not yet generated.
    pub pending_apply: Vec<usize>,
    pub pending_pap: Vec<(usize, usize)>,
    pub pending_wrappers: Vec<ExternId>,
    /// The compilation context functions are built in, reused (boxed: a
    /// `Context` is 7 KB, and every frame that held or moved one by value
    /// touched that much more of the main thread's stack); `None` while a
    /// function is being built ([`Gen::take_context`]).
    pub ctx: Option<Box<cranelift_codegen::Context>>,
    pub fctx: cranelift_frontend::FunctionBuilderContext,
    pub compiled: usize,
    pub next_name: usize,
    /// The largest arity of a Caravan function declared so far: every
    /// closure's code is one, so no closure has a larger arity.
    pub max_arity: usize,
    /// `CARAVAN_DUMP`, read once: the part of a function name whose code
    /// to print ([`Gen::define_function`]).
    pub dump: Option<String>,
    /// Whether every function of the program is compiled in one go
    /// ([`compile`]), so `apply_n` knows every closure arity there will be
    /// ([`Gen::max_arity`]); the REPL compiles phrase after phrase.
    pub closed_world: bool,
    /// Type descriptors for `inspect` call sites.
    pub descs: inspect::DescBuilder,
    /// Stack maps of functions compiled but not yet registered with the
    /// collector: (function, code size, [(return offset, frame size,
    /// slot offsets)], call-site locations, exception handlers).
    pub pending_maps: Vec<CompiledMaps>,
    /// The allocation trampoline (records the frame pointer for the
    /// collector, then calls `caravan_rt_alloc_gc`).
    pub trampolines: HashMap<String, FuncId>,
    /// Trampolines declared but not defined yet: (symbol, parameters).
    pub pending_tramps: Vec<(String, usize)>,
    /// The first trampoline compiled for each parameter count, whose code
    /// the others of that count reuse ([`runtime::TrampolineTemplate`]).
    pub tramp_templates: HashMap<usize, runtime::TrampolineTemplate>,
    /// Functions with large frames whose checking entry is not defined
    /// yet ([`Gen::define_function`]).
    pub pending_frame_checks: Vec<FrameCheck>,
}

/// A function whose frame is larger than
/// [`caravan_vm::stack::MAX_UNCHECKED_FRAME`]: its code is defined as
/// `body`, and `entry` (the id its callers and closures use) checks that
/// `frame` bytes fit above the stack limit before it tail-calls `body`.
pub(crate) struct FrameCheck {
    pub entry: FuncId,
    pub body: FuncId,
    pub sig: Signature,
    /// Bytes below the caller's SP the body's frame takes.
    pub frame: usize,
    /// The function's definition, for a `"stack overflow"` crash.
    pub loc: Loc,
}

/// A safepoint of one function: (return offset in the function, frame size
/// FP − SP, offsets from SP of the slots holding values), bytes.
pub(crate) type SafepointMap = (u32, u32, Vec<u32>);

/// What a just-compiled function tells the VM: (function, code size,
/// stack maps, call-site locations, exception handler sites).
pub(crate) type CompiledMaps = (
    FuncId,
    u32,
    Vec<SafepointMap>,
    Vec<SiteLoc>,
    Vec<HandlerSite>,
);

/// A call inside a `try` body: (return offset, handler offset, the frame's
/// FP − SP at the call), offsets from the start of the function.
pub(crate) type HandlerSite = (u32, u32, u32);

/// Code of one function that calls from a known source location: (start,
/// end) offsets in the function, and the index in `Gen::call_locs`.
pub(crate) type SiteLoc = (u32, u32, u32);

/// The signature of a Caravan function of `arity` parameters.
pub(crate) fn caravan_sig(arity: usize) -> Signature {
    let mut s = Signature::new(CallConv::Tail);
    for _ in 0..arity + 2 {
        s.params.push(AbiParam::new(I64));
    }
    s.returns.push(AbiParam::new(I64));
    s
}

/// The signature by which generated code calls a trampoline: `n` `i64`
/// parameters returning one `i64`, in the tail convention — a callee of a
/// `try_call` must clobber every register on its exceptional edge, so
/// that resuming at a handler restores only SP and FP (`caravan_vm::exn`).
pub(crate) fn trampoline_sig(n: usize) -> Signature {
    let mut s = Signature::new(CallConv::Tail);
    for _ in 0..n {
        s.params.push(AbiParam::new(I64));
    }
    s.returns.push(AbiParam::new(I64));
    s
}

/// A System V signature of `n` `i64` parameters returning one `i64`.
pub(crate) fn sysv_sig(n: usize) -> Signature {
    let mut s = Signature::new(CallConv::SystemV);
    for _ in 0..n {
        s.params.push(AbiParam::new(I64));
    }
    s.returns.push(AbiParam::new(I64));
    s
}

/// Block header word (see `docs/vm-abi.md`).
pub(crate) fn header(tag: u8, wosize: usize) -> u64 {
    ((wosize as u64) << 10) | tag as u64
}

/// A code generator that lives across compilations: the REPL compiles
/// each phrase into the same JIT module, so earlier definitions stay
/// callable. [`compile`] is one session used once.
pub struct Session {
    gen: Box<Gen>,
}

// SAFETY: the JIT module's raw pointers refer to its own code and data,
// which are immutable once finalised; a session is used by one thread at a
// time (it is moved, never shared).
unsafe impl Send for Session {}

impl Session {
    /// A session whose code can call `symbols` (runtime symbol names and
    /// addresses: the VM's and the stdlib builtins').
    pub fn new(
        program: TProgram,
        checker: crate::check::Checker,
        sources: SourceMap,
        symbols: &[(&'static str, *const u8)],
        opts: Options,
    ) -> Result<Session, CodegenError> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed")?;
        flags.set("preserve_frame_pointers", "true")?;
        flags.set("use_colocated_libcalls", "false")?;
        flags.set("is_pic", "false")?;
        // Cranelift's IR verifier checks every function before it is
        // compiled: in debug builds (every test of the compiler runs one)
        // and with CARAVAN_VERIFY=1; release builds skip it, as wasmtime's
        // do by default (it was 5-10 % of hello world's compile time).
        let verify = cfg!(debug_assertions) || std::env::var_os("CARAVAN_VERIFY").is_some();
        flags.set("enable_verifier", if verify { "true" } else { "false" })?;
        // One host detection serves both tiers: `cranelift_native::builder`
        // probes the CPU's features (CPUID, which traps to the hypervisor
        // in a VM) and was 1.6 % of hello world's samples when called twice.
        let host = cranelift_native::builder().map_err(|m| CodegenError(m.to_string()))?;
        let isa = host.finish(settings::Flags::new(flags.clone()))?;
        flags.set("opt_level", "none")?;
        let late_isa = host.finish(settings::Flags::new(flags.clone()))?;
        flags.set("regalloc_algorithm", "single_pass")?;
        let baseline_isa = host.finish(settings::Flags::new(flags))?;
        let mut jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        for (name, ptr) in symbols {
            jb.symbol(*name, *ptr);
        }
        // One arena keeps every call relocation within +-2 GiB.
        jb.memory_provider(Box::new(
            ArenaMemoryProvider::new_with_size(1 << 30).map_err(|e| CodegenError(e.to_string()))?,
        ));
        let module = JITModule::new(jb);
        Ok(Session {
            gen: Box::new(Gen {
                module,
                baseline_isa,
                late_isa,
                program,
                sources,
                checker,
                items_done: 0,
                entry: None,
                init_result: None,
                descs: inspect::DescBuilder::new(),
                pending_maps: vec![],
                trampolines: HashMap::new(),
                pending_tramps: vec![],
                tramp_templates: HashMap::new(),
                opts,
                imports: HashMap::new(),
                global_fns: HashMap::new(),
                global_closures: HashMap::new(),
                global_lambdas: HashMap::new(),
                global_slots: HashMap::new(),
                extern_wrappers: HashMap::new(),
                apply_fns: HashMap::new(),
                pap_fns: HashMap::new(),
                strings: HashMap::new(),
                floats: HashMap::new(),
                static_data: vec![],
                static_span: caravan_vm::heap::new_static_span(),
                locs: HashMap::new(),
                call_locs: vec![],
                call_loc_ids: HashMap::new(),
                queue: VecDeque::new(),
                queued_globals: HashSet::new(),
                pending_apply: vec![],
                pending_pap: vec![],
                pending_wrappers: vec![],
                pending_frame_checks: vec![],
                ctx: None,
                fctx: cranelift_frontend::FunctionBuilderContext::new(),
                compiled: 0,
                next_name: 0,
                max_arity: 0,
                dump: std::env::var("CARAVAN_DUMP").ok(),
                closed_world: false,
            }),
        })
    }

    /// The program so far, the checker and the sources (the REPL checks
    /// new phrases with them before calling [`Session::compile_new_items`]).
    pub fn parts(&mut self) -> (&mut TProgram, &mut crate::check::Checker, &mut SourceMap) {
        (
            &mut self.gen.program,
            &mut self.gen.checker,
            &mut self.gen.sources,
        )
    }

    /// Compiles the program's items not compiled yet into one function and
    /// returns its static closure (a value to run with the entry
    /// trampoline, whose result is `()`).
    pub fn compile_new_items(&mut self) -> Result<u64, CodegenError> {
        self.compile_new_items_returning(None)
    }

    /// As [`Session::compile_new_items`], the function returning `result`
    /// (evaluated after the items) instead of `()`.
    pub fn compile_new_items_returning(
        &mut self,
        result: Option<TExpr>,
    ) -> Result<u64, CodegenError> {
        let g = &mut self.gen;
        g.init_result = result;
        // Names for `Printexc.to_string` and crash reports.
        for (id, name) in &g.program.exceptions {
            caravan_vm::exn::register_name(*id, name);
        }
        g.declare_globals()?;
        let init = g.compile_init()?;
        g.items_done = g.program.items.len();
        g.drain()?;
        if g.entry.is_none() {
            let e = g.compile_entry()?;
            g.entry = Some(e);
            g.drain()?;
        }
        g.module.finalize_definitions()?;
        g.note_static_data();
        g.register_stack_maps();
        caravan_vm::term::desc::append(std::mem::take(&mut g.descs.descs));
        g.descs = inspect::DescBuilder::new();
        let (init_closure, _) = g.module.get_finalized_data(init);
        Ok(init_closure as u64 + 8)
    }

    /// The System V trampoline the VM enters processes through.
    pub fn entry(&self) -> caravan_vm::EntryFn {
        let e = self.gen.entry.expect("compile_new_items ran");
        let ptr = self.gen.module.get_finalized_function(e);
        // SAFETY: `entry` was compiled with the System V signature
        // `(i64, i64, i64) -> i64` that `EntryFn` describes.
        unsafe { std::mem::transmute::<*const u8, caravan_vm::EntryFn>(ptr) }
    }

    /// Number of Cranelift functions compiled so far.
    pub fn functions_compiled(&self) -> usize {
        self.gen.compiled
    }
}

/// Compiles a checked program: a [`Session`] used once.
pub fn compile(
    program: TProgram,
    checker: crate::check::Checker,
    sources: SourceMap,
    symbols: &[(&'static str, *const u8)],
    opts: Options,
) -> Result<Compiled, CodegenError> {
    let mut session = Session::new(program, checker, sources, symbols, opts)?;
    session.gen.closed_world = true;
    let main_closure = session.compile_new_items()?;
    Ok(Compiled {
        entry: session.entry(),
        main_closure,
        functions_compiled: session.functions_compiled(),
        session,
    })
}

impl Gen {
    pub(crate) fn fresh_name(&mut self, base: &str) -> String {
        self.next_name += 1;
        let clean: String = base
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("cvn{}_{clean}", self.next_name)
    }

    /// Declares a Caravan function.
    pub(crate) fn declare_fn(&mut self, name: &str, arity: usize) -> Result<FuncId, CodegenError> {
        self.max_arity = self.max_arity.max(arity);
        let n = self.fresh_name(name);
        Ok(self
            .module
            .declare_function(&n, Linkage::Local, &caravan_sig(arity))?)
    }

    /// A static closure `[header, code, arity]` for a function without
    /// free variables.
    pub(crate) fn static_closure(
        &mut self,
        func: FuncId,
        arity: usize,
    ) -> Result<DataId, CodegenError> {
        let id = self.declare_static_data()?;
        let mut d = DataDescription::new();
        let mut bytes = Vec::with_capacity(24);
        bytes.extend_from_slice(&header(v::TAG_CLOSURE, 2).to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&(((arity as u64) << 1) | 1).to_le_bytes());
        d.define(bytes.into_boxed_slice());
        d.set_align(8);
        let fref = self.module.declare_func_in_data(func, &mut d);
        d.write_function_addr(8, fref);
        self.module.define_data(id, &d)?;
        Ok(id)
    }

    /// A read-only data object holding blocks (or bytes) of the program;
    /// its address range is given to the VM after finalisation
    /// ([`caravan_vm::heap::note_static_data`]): the deep copy must not
    /// write into it.
    fn declare_static_data(&mut self) -> Result<DataId, CodegenError> {
        let id = self.module.declare_anonymous_data(false, false)?;
        self.static_data.push(id);
        Ok(id)
    }

    /// Tells the VM where the static data finalised since the last call
    /// lies.
    fn note_static_data(&mut self) {
        for id in self.static_data.drain(..) {
            let (p, len) = self.module.get_finalized_data(id);
            let (lo, hi) = (p as u64, p as u64 + len as u64);
            match self.static_span {
                // SAFETY: the data lies in this session's JIT arena (one
                // reservation, `ArenaMemoryProvider`), which cranelift-jit
                // never unmaps once finalised; the arena holds only code,
                // these read-only blocks and global cells (which no value
                // points at).
                Some(span) => unsafe { caravan_vm::heap::note_static_span(span, lo, hi) },
                None => caravan_vm::heap::note_static_data(lo, hi),
            }
        }
    }

    fn declare_globals(&mut self) -> Result<(), CodegenError> {
        // Borrowed out and put back, not copied: items may be large.
        let items = std::mem::take(&mut self.program.items);
        let r = self.declare_items(&items[self.items_done..]);
        self.program.items = items;
        r
    }

    fn declare_items(&mut self, items: &[TItem]) -> Result<(), CodegenError> {
        for item in items {
            match item {
                TItem::Functions(fns) => {
                    for (g, lam) in fns {
                        let arity = lam.params.len().min(MAX_ARITY);
                        let func = self.declare_fn(&lam.name, arity)?;
                        self.global_fns.insert(*g, (func, arity));
                        self.global_lambdas.insert(*g, lam.clone());
                    }
                }
                TItem::Value(g, _) => {
                    self.global_slot(*g)?;
                }
                TItem::Destructure(_, _, outs, _) => {
                    for (_, g) in outs {
                        self.global_slot(*g)?;
                    }
                }
                TItem::Effect(_) => {}
            }
        }
        Ok(())
    }

    fn global_slot(&mut self, g: GlobalId) -> Result<DataId, CodegenError> {
        if let Some(&d) = self.global_slots.get(&g) {
            return Ok(d);
        }
        let id = self.module.declare_anonymous_data(true, false)?;
        let mut d = DataDescription::new();
        d.define_zeroinit(8);
        d.set_align(8);
        self.module.define_data(id, &d)?;
        self.global_slots.insert(g, id);
        Ok(id)
    }

    /// Ensures a top-level function's body is queued for compilation.
    /// The static closure of a top-level function (queueing its body).
    pub(crate) fn global_closure(&mut self, g: GlobalId) -> Result<DataId, CodegenError> {
        self.want_global_fn(g);
        if let Some(&d) = self.global_closures.get(&g) {
            return Ok(d);
        }
        let (func, arity) = self.global_fns[&g];
        let d = self.static_closure(func, arity)?;
        self.global_closures.insert(g, d);
        Ok(d)
    }

    pub(crate) fn want_global_fn(&mut self, g: GlobalId) {
        if self.queued_globals.insert(g) {
            let (func, _) = self.global_fns[&g];
            let lambda = self.global_lambdas[&g].clone();
            self.queue.push_back(PendingFn {
                func,
                lambda,
                free: vec![],
                self_var: None,
            });
        }
    }

    /// The program's initialisation function: evaluates every top-level
    /// item in order. Returns its static closure.
    fn compile_init(&mut self) -> Result<DataId, CodegenError> {
        let func = self.declare_fn("init", 1)?;
        let clo = self.static_closure(func, 1)?;
        let unit_param = self.program.num_vars; // a var id no item uses
        let body = TExpr::Imm(0);
        let lambda = TLambda {
            params: vec![unit_param],
            param_tys: vec![],
            body: Box::new(body),
            name: "init".into(),
            span: Default::default(),
            file: usize::MAX,
        };
        expr::compile_function(self, func, &lambda, &[], None, true)?;
        Ok(clo)
    }

    /// Compiles queued lambdas and helpers until none is left. The
    /// `apply_n` helpers come last: once every lambda is compiled, every
    /// closure arity is known ([`Gen::max_arity`]), and `apply_n` needs
    /// partial-application entries only for arities that exist.
    fn drain(&mut self) -> Result<(), CodegenError> {
        loop {
            if let Some(p) = self.queue.pop_front() {
                expr::compile_function(self, p.func, &p.lambda, &p.free, p.self_var, false)?;
                continue;
            }
            if let Some(x) = self.pending_wrappers.pop() {
                runtime::compile_extern_wrapper(self, x)?;
                continue;
            }
            if let Some((k, m)) = self.pending_pap.pop() {
                runtime::compile_pap(self, k, m)?;
                continue;
            }
            if let Some((sym, n)) = self.pending_tramps.pop() {
                let f = self.trampolines[&sym];
                runtime::compile_gc_trampoline(self, f, &sym, n)?;
                continue;
            }
            if let Some(n) = self.pending_apply.pop() {
                runtime::compile_apply(self, n)?;
                continue;
            }
            if let Some(c) = self.pending_frame_checks.pop() {
                runtime::compile_frame_check(self, c)?;
                continue;
            }
            return Ok(());
        }
    }

    fn compile_entry(&mut self) -> Result<FuncId, CodegenError> {
        runtime::compile_entry(self)
    }

    /// Compiles the function in `ctx` as `func`, at `tier`, and returns
    /// the id its code is defined under: `func`, or — for a Caravan
    /// function (`defined_at`: its definition) whose frame is larger than
    /// [`caravan_vm::stack::MAX_UNCHECKED_FRAME`] — a new id, `func` then
    /// being the entry that checks the frame fits first
    /// ([`runtime::compile_frame_check`], queued). With
    /// `CARAVAN_DUMP=<part of name>`, prints the CLIF and the machine code
    /// of functions whose name contains it: `name` for a lambda, the
    /// linkage name (looked up only then) for a generated helper.
    ///
    /// Errors: Cranelift's, and a helper (no `defined_at`) with a large
    /// frame.
    pub(crate) fn define_function(
        &mut self,
        func: FuncId,
        name: Option<&str>,
        ctx: &mut cranelift_codegen::Context,
        tier: Tier,
        defined_at: Option<Loc>,
    ) -> Result<FuncId, CodegenError> {
        let dumping = self.dump.as_deref().is_some_and(|d| match name {
            Some(n) => n.contains(d),
            None => self
                .module
                .declarations()
                .get_function_decl(func)
                .linkage_name(func)
                .contains(d),
        });
        if dumping {
            ctx.set_disasm(true);
            eprintln!("{} ({tier:?})", ctx.func.display());
        }
        // As `JITModule::define_function`, with the tier's ISA, and at
        // its preferred alignment ([`Gen::relocs_and_align`]).
        let mut ctrl = cranelift_codegen::control::ControlPlane::default();
        let isa = match tier {
            Tier::Optimized => {
                // The mid-end (GVN, LICM) shares one `stack_addr` among
                // the reloads of a stack-map slot; see
                // `stack_addrs_at_their_uses`. `compile` would run it
                // again: the rest of the way is at `opt_level = none`.
                ctx.optimize(self.module.isa(), &mut ctrl)?;
                stack_addrs_at_their_uses(&mut ctx.func);
                &*self.late_isa
            }
            Tier::Baseline => &*self.baseline_isa,
        };
        ctx.compile(isa, &mut ctrl)
            .map_err(|e| CodegenError(format!("{:?}", e.inner)))?;
        let code = ctx.compiled_code().expect("just compiled");
        // Bytes below the caller's SP: the frame under FP, FP and the
        // return address.
        let frame = code
            .buffer
            .frame_layout()
            .map_or(0, |l| l.frame_to_fp_offset as usize)
            + 16;
        let body = if frame <= caravan_vm::stack::MAX_UNCHECKED_FRAME {
            func
        } else {
            let Some(loc) = defined_at else {
                return Err(CodegenError(format!(
                    "a generated helper has a {frame}-byte stack frame"
                )));
            };
            let n = self.fresh_name("large_frame");
            let body = self
                .module
                .declare_function(&n, Linkage::Local, &ctx.func.signature)?;
            self.pending_frame_checks.push(FrameCheck {
                entry: func,
                body,
                sig: ctx.func.signature.clone(),
                frame,
                loc,
            });
            body
        };
        let (relocs, align) = self.relocs_and_align(ctx, code, body, tier);
        self.module
            .define_function_bytes(body, align, code.code_buffer(), &relocs)?;
        if dumping {
            if let Some(text) = ctx.compiled_code().and_then(|c| c.vcode.clone()) {
                eprintln!("{text}");
            }
        }
        Ok(body)
    }

    /// The compilation context to build a function in: the one kept from
    /// the last function (cleared), or a new one when none is kept (the
    /// first function, or one built while another is being built). Give it
    /// back with [`Gen::keep_context`].
    pub(crate) fn take_context(&mut self) -> Box<cranelift_codegen::Context> {
        self.ctx
            .take()
            .unwrap_or_else(|| Box::new(self.module.make_context()))
    }

    /// Clears `ctx` and keeps it for the next function.
    pub(crate) fn keep_context(&mut self, mut ctx: Box<cranelift_codegen::Context>) {
        self.module.clear_context(&mut ctx);
        self.ctx = Some(ctx);
    }

    /// The ISA that compiles functions of `tier`.
    fn tier_isa(&self, tier: Tier) -> &dyn cranelift_codegen::isa::TargetIsa {
        match tier {
            Tier::Optimized => self.module.isa(),
            Tier::Baseline => &*self.baseline_isa,
        }
    }

    /// The relocations of `code` (compiled from `ctx` as `func`) and the
    /// alignment to define it at: the tier ISA's preferred function
    /// alignment (32 bytes on x86-64, after wasmtime#8573) where the JIT
    /// uses the minimum (1 byte): fib started 12 bytes into a cache line
    /// in one build and 34 in the next, its placement depending on what
    /// was compiled before it.
    pub(crate) fn relocs_and_align(
        &self,
        ctx: &cranelift_codegen::Context,
        code: &cranelift_codegen::CompiledCode,
        func: FuncId,
        tier: Tier,
    ) -> (Vec<cranelift_module::ModuleReloc>, u64) {
        let relocs = code
            .buffer
            .relocs()
            .iter()
            .map(|r| cranelift_module::ModuleReloc::from_mach_reloc(r, &ctx.func, func))
            .collect();
        let align = self.tier_isa(tier).function_alignment().preferred as u64;
        (relocs, align.max(code.buffer.alignment as u64))
    }

    /// Hands the stack maps of newly finalised functions to the collector.
    fn register_stack_maps(&mut self) {
        let mut ranges = vec![];
        let mut maps = vec![];
        let mut sites_at = vec![];
        let mut texts: HashMap<u32, std::sync::Arc<str>> = HashMap::new();
        let mut handlers = vec![];
        for (func, size, sites, locs, hs) in std::mem::take(&mut self.pending_maps) {
            let base = self.module.get_finalized_function(func) as u64;
            for (ret, at, frame) in hs {
                handlers.push(caravan_vm::exn::Handler {
                    pc: base + ret as u64,
                    handler: base + at as u64,
                    frame_size: frame,
                });
            }
            ranges.push((base, base + size as u64));
            for (off, frame, slots) in sites {
                maps.push(caravan_vm::gc::StackMap {
                    pc: base + off as u64,
                    frame_size: frame,
                    offsets: slots,
                });
            }
            for (start, end, id) in locs {
                let Some(&loc) = self.call_locs.get(id as usize) else {
                    continue;
                };
                if loc.file >= self.sources.files.len() {
                    continue;
                }
                let text = texts
                    .entry(id)
                    .or_insert_with(|| self.sources.location(loc.file, loc.span).into())
                    .clone();
                sites_at.push(caravan_vm::locations::CallSite {
                    start: base + start as u64,
                    end: base + end as u64,
                    location: text,
                });
            }
        }
        caravan_vm::gc::register_code(&ranges, maps);
        caravan_vm::exn::register_handlers(handlers);
        caravan_vm::locations::register(sites_at);
    }

    /// Records a just-defined function's code size and stack maps (call
    /// right after `define_function`, before the context is cleared).
    pub(crate) fn note_compiled(&mut self, func: FuncId, ctx: &cranelift_codegen::Context) {
        if let Some(code) = ctx.compiled_code() {
            let size = code.code_buffer().len() as u32;
            let handlers = code
                .buffer
                .call_sites()
                .filter_map(|site| {
                    let h = site.exception_handlers.iter().find_map(|h| match h {
                        cranelift_codegen::FinalizedMachExceptionHandler::Default(off) => {
                            Some(*off)
                        }
                        _ => None,
                    })?;
                    Some((site.ret_addr, h, site.frame_offset?))
                })
                .collect();
            let sites = code
                .buffer
                .user_stack_maps()
                .iter()
                .map(|(off, frame, map)| (*off, *frame, map.entries().map(|(_, o)| o).collect()))
                .collect();
            let locs = code
                .buffer
                .get_srclocs_sorted()
                .iter()
                .filter(|l| !l.loc.is_default())
                .map(|l| (l.start, l.end, l.loc.bits()))
                .collect();
            self.pending_maps.push((func, size, sites, locs, handlers));
        }
    }

    /// The index of `loc` among the call-site locations (for
    /// `FunctionBuilder::set_srcloc`).
    pub(crate) fn call_loc_id(&mut self, loc: Loc) -> u32 {
        if let Some(&i) = self.call_loc_ids.get(&loc) {
            return i;
        }
        let i = self.call_locs.len() as u32;
        self.call_locs.push(loc);
        self.call_loc_ids.insert(loc, i);
        i
    }

    /// The trampoline through which generated code calls a runtime
    /// function that may collect (`symbol`, `n` parameters, System V): it
    /// records its frame pointer for the collector.
    pub(crate) fn gc_trampoline(&mut self, symbol: &str, n: usize) -> Result<FuncId, CodegenError> {
        if let Some(&f) = self.trampolines.get(symbol) {
            return Ok(f);
        }
        let f = self.module.declare_function(
            &format!("{symbol}__trampoline"),
            Linkage::Local,
            &trampoline_sig(n),
        )?;
        self.trampolines.insert(symbol.to_string(), f);
        self.pending_tramps.push((symbol.to_string(), n));
        Ok(f)
    }

    /// The `apply_n` helper.
    pub(crate) fn apply_fn(&mut self, n: usize) -> Result<FuncId, CodegenError> {
        if let Some(&f) = self.apply_fns.get(&n) {
            return Ok(f);
        }
        let f = self.declare_fn(&format!("apply{n}"), n)?;
        self.apply_fns.insert(n, f);
        self.pending_apply.push(n);
        Ok(f)
    }

    /// The entry point of a partial application storing `k` arguments and
    /// waiting for `m` more.
    pub(crate) fn pap_fn(&mut self, k: usize, m: usize) -> Result<FuncId, CodegenError> {
        if let Some(&f) = self.pap_fns.get(&(k, m)) {
            return Ok(f);
        }
        let f = self.declare_fn(&format!("pap{k}_{m}"), m)?;
        self.pap_fns.insert((k, m), f);
        self.pending_pap.push((k, m));
        Ok(f)
    }

    /// The static closure wrapping an extern used as a value.
    pub(crate) fn extern_wrapper(&mut self, x: ExternId) -> Result<DataId, CodegenError> {
        if let Some(&(_, d)) = self.extern_wrappers.get(&x) {
            return Ok(d);
        }
        let info = &self.program.externs[x as usize];
        let arity = info.arity.clamp(1, MAX_ARITY);
        let name = info.name.clone();
        let f = self.declare_fn(&format!("ext_{name}"), arity)?;
        let d = self.static_closure(f, arity)?;
        self.extern_wrappers.insert(x, (f, d));
        self.pending_wrappers.push(x);
        Ok(d)
    }

    /// A runtime function imported by symbol (System V).
    pub(crate) fn import(&mut self, symbol: &str, nparams: usize) -> Result<FuncId, CodegenError> {
        if let Some(&f) = self.imports.get(symbol) {
            return Ok(f);
        }
        let f = self
            .module
            .declare_function(symbol, Linkage::Import, &sysv_sig(nparams))?;
        self.imports.insert(symbol.to_string(), f);
        Ok(f)
    }

    /// Read-only data holding a string value (header, length, bytes).
    pub(crate) fn string_data(&mut self, s: &[u8]) -> Result<DataId, CodegenError> {
        if let Some(&d) = self.strings.get(s) {
            return Ok(d);
        }
        let bytes = s;
        let words = bytes.len().div_ceil(8);
        let mut out = Vec::with_capacity(16 + words * 8);
        out.extend_from_slice(&header(v::TAG_STRING, 1 + words).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
        out.resize(16 + words * 8, 0);
        let id = self.declare_static_data()?;
        let mut d = DataDescription::new();
        d.define(out.into_boxed_slice());
        d.set_align(8);
        self.module.define_data(id, &d)?;
        self.strings.insert(s.to_vec(), id);
        Ok(id)
    }

    /// Read-only data holding a constant block tree (see
    /// [`expr::is_constant`]): returns the data object and the byte offset
    /// of the root block's first field. Blocks are laid out breadth-first;
    /// pointers between them are relocations within the object.
    pub(crate) fn constant_data(&mut self, e: &TExpr) -> Result<(DataId, u32), CodegenError> {
        enum Word {
            Raw(u64),
            Internal(usize),
            External(DataId),
        }
        let id = self.declare_static_data()?;
        let mut words: Vec<Word> = vec![];
        // (expression, index of the word that must point at it)
        let mut queue: std::collections::VecDeque<(&TExpr, Option<usize>)> =
            std::collections::VecDeque::new();
        queue.push_back((e, None));
        let mut root_off = 0;
        while let Some((e, slot)) = queue.pop_front() {
            let TExpr::Block(tag, fields) = e else {
                continue;
            };
            words.push(Word::Raw(header(*tag as u8, fields.len())));
            let first = words.len();
            match slot {
                Some(s) => words[s] = Word::Internal(first * 8),
                None => root_off = first * 8,
            }
            for f in fields {
                let w = match f {
                    TExpr::Imm(n) => Word::Raw((n.wrapping_shl(1) | 1) as u64),
                    TExpr::Str(s) => Word::External(self.string_data(s)?),
                    TExpr::Float(x) => Word::External(self.float_data(*x)?),
                    TExpr::Block(..) => {
                        queue.push_back((f, Some(words.len())));
                        Word::Raw(0)
                    }
                    _ => return Err(CodegenError("non-constant in constant data".into())),
                };
                words.push(w);
            }
        }
        let mut d = DataDescription::new();
        let mut bytes = Vec::with_capacity(words.len() * 8);
        for w in &words {
            let raw = match w {
                Word::Raw(x) => *x,
                _ => 0,
            };
            bytes.extend_from_slice(&raw.to_le_bytes());
        }
        d.define(bytes.into_boxed_slice());
        d.set_align(8);
        let me = self.module.declare_data_in_data(id, &mut d);
        for (i, w) in words.iter().enumerate() {
            match w {
                Word::Internal(off) => d.write_data_addr((i * 8) as u32, me, *off as i64),
                Word::External(other) => {
                    let gv = self.module.declare_data_in_data(*other, &mut d);
                    d.write_data_addr((i * 8) as u32, gv, 8);
                }
                Word::Raw(_) => {}
            }
        }
        self.module.define_data(id, &d)?;
        Ok((id, root_off as u32))
    }

    /// Read-only data holding a boxed float.
    pub(crate) fn float_data(&mut self, f: f64) -> Result<DataId, CodegenError> {
        if let Some(&d) = self.floats.get(&f.to_bits()) {
            return Ok(d);
        }
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&header(v::TAG_FLOAT, 1).to_le_bytes());
        out.extend_from_slice(&f.to_bits().to_le_bytes());
        let id = self.declare_static_data()?;
        let mut d = DataDescription::new();
        d.define(out.into_boxed_slice());
        d.set_align(8);
        self.module.define_data(id, &d)?;
        self.floats.insert(f.to_bits(), id);
        Ok(id)
    }

    /// A NUL-terminated `file:line:col` for crash messages.
    pub(crate) fn loc_data(&mut self, loc: Loc) -> Result<DataId, CodegenError> {
        let text = if loc.file < self.sources.files.len() {
            self.sources.location(loc.file, loc.span)
        } else {
            String::new()
        };
        if let Some(&d) = self.locs.get(&text) {
            return Ok(d);
        }
        let mut bytes = text.clone().into_bytes();
        bytes.push(0);
        let id = self.declare_static_data()?;
        let mut d = DataDescription::new();
        d.define(bytes.into_boxed_slice());
        self.module.define_data(id, &d)?;
        self.locs.insert(text, id);
        Ok(id)
    }

    /// Whether values of type `t` are always immediates compared as
    /// integers (`int`, `char`, `bool`, `unit`).
    pub(crate) fn is_immediate_type(&mut self, t: crate::types::Ty) -> bool {
        use crate::types::builtin::*;
        match self.checker.types.node(t) {
            TyNode::Con(id, _) => matches!(id, INT | CHAR | BOOL | UNIT),
            _ => false,
        }
    }

    /// Whether `t` is `float`.
    pub(crate) fn is_float_type(&mut self, t: crate::types::Ty) -> bool {
        matches!(
            self.checker.types.node(t),
            TyNode::Con(crate::types::builtin::FLOAT, _)
        )
    }

    /// Whether the final result of an extern's type is `unit` (its runtime
    /// function returns nothing useful).
    pub(crate) fn extern_returns_unit(&mut self, x: ExternId) -> bool {
        let info = &self.program.externs[x as usize];
        let (mut t, arity) = (info.ty, info.arity);
        for _ in 0..arity {
            match self.checker.types.node(t) {
                TyNode::Arrow(_, _, r) => t = r,
                _ => break,
            }
        }
        matches!(
            self.checker.types.node(t),
            TyNode::Con(crate::types::builtin::UNIT, _)
        )
    }
}

/// Gives every use of a stack-slot address its own `stack_addr`, placed
/// right before the using instruction.
///
/// A process's stack moves when it grows (`caravan_vm::stackgrow`, Go's
/// copying stacks), which is sound only if no address into the stack is
/// live across a call: the grower relocates the frame-pointer chain and
/// nothing else. Generated code takes no addresses of its own, but
/// `cranelift_frontend` spills the values a stack map names into stack
/// slots and reloads them through `stack_addr` + `load`. Cranelift's
/// mid-end treats `stack_addr` as pure, so GVN merges the reloads'
/// addresses and LICM hoists them, and a load the x86-64 backend folds
/// into an ALU instruction takes its address in a register: the merged
/// address then lives across calls in a callee-saved register (`leaq
/// 0x20(%rsp), %rbx` before a call, `addq (%rbx), %rcx` after it). Once
/// the stack has moved, such a reload reads the old stack: values from
/// before the move, and pointers the collector has since forwarded.
///
/// Run after `Context::optimize` and before lowering with no mid-end
/// (`opt_level = none`): every address is then computed from the stack
/// pointer at its use, after any call before it. The addresses the mid-end
/// shared are left without uses, and lowering skips them.
fn stack_addrs_at_their_uses(func: &mut cranelift_codegen::ir::Function) {
    use cranelift_codegen::cursor::{Cursor, FuncCursor};
    use cranelift_codegen::ir::{InstBuilder, InstructionData, ValueDef};
    let mut pos = FuncCursor::new(func);
    while pos.next_block().is_some() {
        while let Some(inst) = pos.next_inst() {
            for i in 0..pos.func.dfg.inst_args(inst).len() {
                let arg = pos.func.dfg.inst_args(inst)[i];
                let ValueDef::Result(def, _) = pos.func.dfg.value_def(arg) else {
                    continue;
                };
                if let InstructionData::StackAddr {
                    stack_slot, offset, ..
                } = pos.func.dfg.insts[def]
                {
                    let ty = pos.func.dfg.value_type(arg);
                    let fresh = pos.ins().stack_addr(ty, stack_slot, offset);
                    pos.func.dfg.inst_args_mut(inst)[i] = fresh;
                }
            }
            // Branch arguments are not rewritten: none may carry an address.
            debug_assert!(
                pos.func.dfg.inst_values(inst).all(|v| {
                    let ValueDef::Result(def, _) = pos.func.dfg.value_def(v) else {
                        return true;
                    };
                    if !matches!(pos.func.dfg.insts[def], InstructionData::StackAddr { .. }) {
                        return true;
                    }
                    // Its `stack_addr` is one of those just before it.
                    let mut prev = pos.func.layout.prev_inst(inst);
                    while let Some(q) = prev {
                        if q == def {
                            return true;
                        }
                        if !matches!(pos.func.dfg.insts[q], InstructionData::StackAddr { .. }) {
                            break;
                        }
                        prev = pos.func.layout.prev_inst(q);
                    }
                    false
                }),
                "a stack address used away from its stack_addr"
            );
        }
    }
}
