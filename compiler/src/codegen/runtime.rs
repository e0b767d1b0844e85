//! Generated helpers: `apply_n` (calls of closures whose arity is not
//! known statically), partial-application entry points, wrappers that turn
//! builtins into closures, and the System V entry trampoline the VM calls.

use super::{caravan_sig, CodegenError, Gen, Tier, MAX_ARITY};
use caravan_vm::abi::offsets as off;
use caravan_vm::value as v;
use cranelift_codegen::ir::{
    condcodes::IntCC, types::I64, AbiParam, BlockArg, InstBuilder, MemFlagsData, Signature,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;
use cranelift_module::{FuncId, Linkage, Module, ModuleReloc, ModuleRelocTarget};

/// The runtime functions generated code calls directly (besides those
/// named by `external` declarations), with their parameter counts.
pub const RUNTIME_FUNCTIONS: &[(&str, usize)] = &[
    ("caravan_rt_tick", 2),
    ("caravan_rt_stack_overflow", 2),
    ("caravan_rt_stack_reserve", 3),
    ("caravan_rt_alloc", 3),
    ("caravan_rt_fail", 3),
    ("caravan_rt_failwith", 3),
    ("caravan_rt_raise", 3),
    ("caravan_rt_div_by_zero", 2),
    ("caravan_rt_recv_start", 3),
    ("caravan_rt_recv_next", 2),
    ("caravan_rt_recv_accept", 1),
    ("caravan_rt_equal", 3),
    ("caravan_rt_compare", 3),
    ("caravan_rt_global", 2),
];

const TRUSTED: MemFlagsData = MemFlagsData::trusted();

/// What builds a helper's body: given the entry block's parameters, it
/// emits the instructions.
trait BuildBody:
    FnOnce(&mut Gen, &mut FunctionBuilder, &[cranelift_codegen::ir::Value]) -> Result<(), CodegenError>
{
}

impl<F> BuildBody for F where
    F: FnOnce(
        &mut Gen,
        &mut FunctionBuilder,
        &[cranelift_codegen::ir::Value],
    ) -> Result<(), CodegenError>
{
}

/// Builds a helper with `build` and compiles it (at [`Tier::Optimized`]:
/// helpers are small but on hot paths).
fn define(
    g: &mut Gen,
    func: FuncId,
    sig: Signature,
    build: impl BuildBody,
) -> Result<(), CodegenError> {
    define_keeping(g, func, sig, build, false).map(|_| ())
}

/// A function's code as `define_function_bytes` takes it: bytes,
/// relocations, alignment.
type KeptCode = (Vec<u8>, Vec<ModuleReloc>, u64);

/// [`define`], also returning the function's code as
/// `define_function_bytes` took it when `keep` is set and the function
/// has no stack maps, call-site locations or exception handlers (so that
/// the bytes and relocations are all there is to it).
fn define_keeping(
    g: &mut Gen,
    func: FuncId,
    sig: Signature,
    build: impl BuildBody,
    keep: bool,
) -> Result<Option<KeptCode>, CodegenError> {
    let mut ctx = g.take_context();
    ctx.func.signature = sig;
    let mut fctx = std::mem::take(&mut g.fctx);
    let fconfig = g.module.isa().frontend_config();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        build(g, &mut b, &params)?;
        b.seal_all_blocks();
        b.finalize(fconfig);
    }
    g.fctx = fctx;
    let func = g.define_function(func, None, &mut ctx, Tier::Optimized, None)?;
    g.note_compiled(func, &ctx);
    g.compiled += 1;
    let kept = keep
        .then(|| {
            let plain = g
                .pending_maps
                .last()
                .is_some_and(|m| m.0 == func && m.2.is_empty() && m.3.is_empty() && m.4.is_empty());
            let code = ctx.compiled_code()?;
            plain.then(|| {
                let (relocs, align) = g.relocs_and_align(&ctx, code, func, Tier::Optimized);
                (code.code_buffer().to_vec(), relocs, align)
            })
        })
        .flatten();
    g.keep_context(ctx);
    Ok(kept)
}

/// The code of a compiled runtime trampoline ([`compile_gc_trampoline`]),
/// kept to define the other trampolines of the same parameter count with:
/// they differ only in the function they call, one relocation. hello
/// world has five trampolines of two parameter counts; compiling each took
/// 26-88 µs, copying one a few.
pub(crate) struct TrampolineTemplate {
    bytes: Vec<u8>,
    relocs: Vec<ModuleReloc>,
    align: u64,
    /// The runtime function the template calls.
    target: FuncId,
}

/// `apply_n(proc, clo, a1..an)`: applies a closure of any arity to `n`
/// arguments — exact call, partial application, or over-application.
///
/// A program compiled in one go has partial-application branches only up
/// to its largest closure arity (hello world's `apply1` has none, and
/// compiling its eleven partial-application entries was 0.3 ms of the
/// run); the REPL's cover every arity up to [`MAX_ARITY`]. An arity
/// matched by no branch traps, as before.
pub(crate) fn compile_apply(g: &mut Gen, n: usize) -> Result<(), CodegenError> {
    let func = g.apply_fns[&n];
    let top = if g.closed_world {
        g.max_arity.min(MAX_ARITY)
    } else {
        MAX_ARITY
    };
    // Helpers that this one needs are declared before building.
    let mut paps = vec![];
    for m in 1..=top.saturating_sub(n) {
        paps.push((m, g.pap_fn(n, m)?));
    }
    let mut overs = vec![];
    for k in 1..n {
        overs.push((k, g.apply_fn(n - k)?));
    }
    // Partial applications are allocated by the collecting allocator (the
    // arguments are declared for the stack maps, so they survive it).
    let alloc = g.gc_trampoline("caravan_rt_alloc_gc", 3)?;
    define(g, func, caravan_sig(n), |g, b, params| {
        let proc_ = params[0];
        let clo = params[1];
        let a = &params[2..];
        // Arguments stay live across the call of an over-application.
        for &v in &params[1..] {
            b.declare_value_needs_stack_map(v);
        }
        let arity = b.ins().load(I64, TRUSTED, clo, off::CLOSURE_ARITY);
        let arity = b.ins().sshr_imm_s(arity, 1);
        // Exact.
        let exact = b.create_block();
        let next = b.create_block();
        let c = b.ins().icmp_imm_s(IntCC::Equal, arity, n as i64);
        b.ins().brif(c, exact, &[], next, &[]);
        b.switch_to_block(exact);
        let code = b.ins().load(I64, TRUSTED, clo, off::CLOSURE_CODE);
        let sig = b.import_signature(caravan_sig(n));
        let mut all = vec![proc_, clo];
        all.extend_from_slice(a);
        b.ins().return_call_indirect(sig, code, &all);
        b.switch_to_block(next);
        // Too few arguments: build a partial application.
        for (m, pap) in &paps {
            let yes = b.create_block();
            let no = b.create_block();
            let c = b.ins().icmp_imm_s(IntCC::Equal, arity, (n + m) as i64);
            b.ins().brif(c, yes, &[], no, &[]);
            b.switch_to_block(yes);
            let aref = g.module.declare_func_in_func(alloc, b.func);
            let tag = b.ins().iconst(I64, v::TAG_CLOSURE as i64);
            let size = b.ins().iconst(I64, (3 + n) as i64);
            let call = b.ins().call(aref, &[proc_, tag, size]);
            let blk = b.inst_results(call)[0];
            let pref = g.module.declare_func_in_func(*pap, b.func);
            let code = b.ins().func_addr(I64, pref);
            b.ins().store(TRUSTED, code, blk, 0);
            let rem = b.ins().iconst(I64, ((*m as i64) << 1) | 1);
            b.ins().store(TRUSTED, rem, blk, 8);
            b.ins().store(TRUSTED, clo, blk, 16);
            for (i, x) in a.iter().enumerate() {
                b.ins().store(TRUSTED, *x, blk, (24 + 8 * i) as i32);
            }
            b.ins().return_(&[blk]);
            b.switch_to_block(no);
        }
        // Too many: call with the first `k`, apply the result to the rest.
        for (k, rest_apply) in &overs {
            let yes = b.create_block();
            let no = b.create_block();
            let c = b.ins().icmp_imm_s(IntCC::Equal, arity, *k as i64);
            b.ins().brif(c, yes, &[], no, &[]);
            b.switch_to_block(yes);
            let code = b.ins().load(I64, TRUSTED, clo, off::CLOSURE_CODE);
            let sig = b.import_signature(caravan_sig(*k));
            let mut first = vec![proc_, clo];
            first.extend_from_slice(&a[..*k]);
            let call = b.ins().call_indirect(sig, code, &first);
            let r = b.inst_results(call)[0];
            let rref = g.module.declare_func_in_func(*rest_apply, b.func);
            let mut rest = vec![proc_, r];
            rest.extend_from_slice(&a[*k..]);
            b.ins().return_call(rref, &rest);
            b.switch_to_block(no);
        }
        b.ins()
            .trap(cranelift_codegen::ir::TrapCode::unwrap_user(1));
        Ok(())
    })
}

/// The code of a partial application holding `k` arguments and waiting for
/// `m`: `[code, m, closure, a1..ak]`.
pub(crate) fn compile_pap(g: &mut Gen, k: usize, m: usize) -> Result<(), CodegenError> {
    let func = g.pap_fns[&(k, m)];
    define(g, func, caravan_sig(m), |_g, b, params| {
        let proc_ = params[0];
        let pap = params[1];
        let clo = b.ins().load(I64, TRUSTED, pap, 16);
        let mut all = vec![proc_, clo];
        for i in 0..k {
            all.push(b.ins().load(I64, TRUSTED, pap, (24 + 8 * i) as i32));
        }
        all.extend_from_slice(&params[2..]);
        let code = b.ins().load(I64, TRUSTED, clo, off::CLOSURE_CODE);
        let sig = b.import_signature(caravan_sig(k + m));
        b.ins().return_call_indirect(sig, code, &all);
        Ok(())
    })
}

/// A closure body calling a builtin (or an intrinsic) with its parameters.
pub(crate) fn compile_extern_wrapper(g: &mut Gen, x: u32) -> Result<(), CodegenError> {
    let (func, _) = g.extern_wrappers[&x];
    super::expr::wrapper_body(g, func, x)
}

/// A trampoline for a runtime function or builtin that may allocate,
/// collect, switch, crash or raise (`symbol`, `n` parameters; called in
/// the tail convention, calling the target in System V's): it
/// stores its own frame pointer in the process (`exit_fp`, offset 32) —
/// whose saved return address and frame link lead into the generated code
/// that called it — and calls the target, which may walk those frames with
/// their stack maps (to collect, or to find the source location of a crash;
/// wasmtime's exit trampolines do the same). On the way back, if the
/// target's allocations took the heap past its threshold (`gc_pending`,
/// offset 40), it collects with the result as a root
/// (`caravan_rt_gc_after`); then it clears `exit_fp`.
pub(crate) fn compile_gc_trampoline(
    g: &mut Gen,
    func: FuncId,
    symbol: &str,
    n: usize,
) -> Result<(), CodegenError> {
    let target = g.import(symbol, n)?;
    if let Some(t) = g.tramp_templates.get(&n) {
        let relocs: Vec<ModuleReloc> = t
            .relocs
            .iter()
            .map(|r| ModuleReloc {
                name: if refers_to(r, t.target) {
                    ModuleRelocTarget::from(target)
                } else {
                    r.name.clone()
                },
                ..r.clone()
            })
            .collect();
        g.module
            .define_function_bytes(func, t.align, &t.bytes, &relocs)?;
        g.pending_maps
            .push((func, t.bytes.len() as u32, vec![], vec![], vec![]));
        g.compiled += 1;
        return Ok(());
    }
    let after = g.import("caravan_rt_gc_after", 2)?;
    let kept = define_keeping(
        g,
        func,
        super::trampoline_sig(n),
        |g, b, params| {
            let proc_ = params[0];
            let fp = b.ins().get_frame_pointer(I64);
            b.ins().store(TRUSTED, fp, proc_, off::EXIT_FP);
            let tref = g.module.declare_func_in_func(target, b.func);
            let call = b.ins().call(tref, params);
            let r = b.inst_results(call)[0];
            let collect = b.create_block();
            let done = b.create_block();
            let out = b.append_block_param(done, I64);
            b.set_cold_block(collect);
            let pending = b.ins().load(I64, TRUSTED, proc_, off::GC_PENDING);
            b.ins()
                .brif(pending, collect, &[], done, &[BlockArg::Value(r)]);
            b.switch_to_block(collect);
            let aref = g.module.declare_func_in_func(after, b.func);
            let call = b.ins().call(aref, &[proc_, r]);
            let moved = b.inst_results(call)[0];
            b.ins().jump(done, &[BlockArg::Value(moved)]);
            b.switch_to_block(done);
            let zero = b.ins().iconst(I64, 0);
            b.ins().store(TRUSTED, zero, proc_, off::EXIT_FP);
            b.ins().return_(&[out]);
            Ok(())
        },
        true,
    )?;
    // The template must call `target` through exactly one relocation, and
    // refer to nothing of its own (an offset in the function would name
    // this function, not the copy).
    if let Some((bytes, relocs, align)) = kept {
        let own = |r: &ModuleReloc| matches!(r.name, ModuleRelocTarget::FunctionOffset(..));
        if relocs.iter().filter(|r| refers_to(r, target)).count() == 1 && !relocs.iter().any(own) {
            g.tramp_templates.insert(
                n,
                TrampolineTemplate {
                    bytes,
                    relocs,
                    align,
                    target,
                },
            );
        }
    }
    Ok(())
}

/// True if relocation `r` refers to function `f`.
fn refers_to(r: &ModuleReloc, f: FuncId) -> bool {
    matches!(r.name, ModuleRelocTarget::User { namespace: 0, index } if index == f.as_u32())
}

/// `entry(proc, closure, arg) -> value` with the System V convention: the
/// VM's way into generated code.
pub(crate) fn compile_entry(g: &mut Gen) -> Result<FuncId, CodegenError> {
    let mut sig = Signature::new(CallConv::SystemV);
    for _ in 0..3 {
        sig.params.push(AbiParam::new(I64));
    }
    sig.returns.push(AbiParam::new(I64));
    let func = g
        .module
        .declare_function("caravan_entry", Linkage::Local, &sig)?;
    let apply1 = g.apply_fn(1)?;
    define(g, func, sig, |g, b, params| {
        let aref = g.module.declare_func_in_func(apply1, b.func);
        let call = b.ins().call(aref, params);
        let r = b.inst_results(call)[0];
        b.ins().return_(&[r]);
        Ok(())
    })?;
    Ok(func)
}

/// The entry of a function whose frame is larger than
/// [`caravan_vm::stack::MAX_UNCHECKED_FRAME`] (`docs/vm-abi.md`, "Large
/// frames"): compares `sp - frame` with the stack limit, has the stack
/// grown until the frame fits when it does not (`caravan_rt_stack_reserve`,
/// which crashes the process with `"stack overflow"` past the whole-stack
/// limit), then tail-calls the function's code. The body's own prologue
/// check then runs with its frame above the limit, as a small function's
/// does; without this entry, such a frame reached past the slot's guard
/// page (the VM aborted, or the frame overwrote the slot below). After
/// Go's prologue for frames larger than `StackBig`.
pub(crate) fn compile_frame_check(g: &mut Gen, c: super::FrameCheck) -> Result<(), CodegenError> {
    let reserve = g.gc_trampoline("caravan_rt_stack_reserve", 3)?;
    let loc = g.loc_data(c.loc)?;
    define(g, c.entry, c.sig, |g, b, params| {
        let proc_ = params[0];
        // The arguments are live across the call (which may collect).
        for &v in &params[1..] {
            b.declare_value_needs_stack_map(v);
        }
        let grow = b.create_block();
        let go = b.create_block();
        b.set_cold_block(grow);
        let sp = b.ins().get_stack_pointer(I64);
        let low = b.ins().iadd_imm_s(sp, -(c.frame as i64));
        let limit = b.ins().load(I64, TRUSTED, proc_, off::STACK_LIMIT);
        let short = b.ins().icmp(IntCC::UnsignedLessThan, low, limit);
        b.ins().brif(short, grow, &[], go, &[]);
        b.switch_to_block(grow);
        let rref = g.module.declare_func_in_func(reserve, b.func);
        let gv = g.module.declare_data_in_func(loc, b.func);
        let lv = b.ins().symbol_value(I64, gv);
        let bytes = b.ins().iconst(I64, c.frame as i64);
        let call = b.ins().call(rref, &[proc_, lv, bytes]);
        let unit = b.inst_results(call)[0];
        b.declare_value_needs_stack_map(unit);
        b.ins().jump(go, &[]);
        b.switch_to_block(go);
        let bref = g.module.declare_func_in_func(c.body, b.func);
        b.ins().return_call(bref, params);
        Ok(())
    })
}
