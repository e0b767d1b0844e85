//! Lowering of expressions and patterns to Cranelift IR, one function at a
//! time.

use super::{caravan_sig, CodegenError, Gen, PendingFn, Tier, MAX_ARITY};
use crate::typed::*;
use caravan_vm::abi::offsets as off;
use caravan_vm::value as v;
use cranelift_codegen::ir::{
    condcodes::{FloatCC, IntCC},
    types::{F64, I64},
    Block, BlockArg, ExceptionTableData, ExceptionTableItem, FuncRef, InstBuilder, MemFlagsData,
    SigRef, Value,
};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::{DataId, FuncId, Module};
use std::collections::{HashMap, HashSet};

/// What a variable is bound to in the function being compiled.
#[derive(Clone, Copy)]
struct Var {
    value: Value,
    /// A closure whose code is known: direct calls with this arity.
    known: Option<(FuncId, usize)>,
}

/// Per-function lowering state.
struct Fx<'a, 'g> {
    g: &'g mut Gen,
    b: FunctionBuilder<'a>,
    proc_: Value,
    vars: HashMap<VarId, Var>,
    funcs: HashMap<FuncId, FuncRef>,
    sigs: HashMap<usize, SigRef>,
    /// The source location of the function being compiled: what its calls
    /// without a location of their own (the allocator's slow path) carry.
    fn_loc: cranelift_codegen::ir::SourceLoc,
    /// The `try` bodies being compiled, innermost last: the block the
    /// exceptional edges of their calls go to (one parameter, the
    /// exception) and the handler's own block, which a `raise` in the body
    /// jumps to directly.
    handlers: Vec<(Block, Block)>,
    /// The prologue's checks ([`Fx::prologue`]) not yet emitted on the
    /// path being compiled, with the function's location: set at the entry
    /// of a function whose checks are deferred to the first call on each
    /// path ([`Fx::tail`]).
    pending_check: Option<Loc>,
    /// The function being compiled (its own calls are what
    /// [`Fx::unroll`] inlines).
    func: FuncId,
    /// Its parameters and body, when [`Fx::unroll`] may copy them into its
    /// calls of itself ([`unrollable`]); taken while a copy is compiled
    /// (one level: the copy's calls are calls).
    own: Option<(Vec<VarId>, Box<TExpr>)>,
}

/// The target of a call [`Fx::call`] emits.
#[derive(Clone, Copy)]
enum Callee {
    /// A function known at compile time.
    Direct(FuncRef),
    /// A code pointer with this signature.
    Indirect(SigRef, Value),
}

fn args(vals: &[Value]) -> Vec<BlockArg> {
    vals.iter().map(|&v| BlockArg::Value(v)).collect()
}

const TRUSTED: MemFlagsData = MemFlagsData::trusted();

/// A callee's base case, as [`Fx::inline_base_case`] tests it at a call.
enum BaseTest {
    /// `if c then r else …` (true) or `if c then … else r` (false).
    If(Box<TExpr>, Box<TExpr>, bool),
    /// `match params[i] with pat -> r | …`, `pat` a constant.
    Pat(usize, TPat, TExpr),
}

/// Size limit, in expression nodes, of a callee's test and base case that
/// [`Fx::inline_base_case`] copies into its callers.
const TINY_NODES: usize = 8;

/// Size limit, in expression nodes, of a function body that [`Fx::unroll`]
/// copies into the function's own calls.
const UNROLL_NODES: usize = 40;

/// Compiles `lambda` into `func`. `free` lists its free variables in env
/// order. With `init`, the body is the program's top-level items instead.
pub(crate) fn compile_function(
    g: &mut Gen,
    func: FuncId,
    lambda: &TLambda,
    free: &[(VarId, Option<(FuncId, usize)>)],
    self_var: Option<(VarId, FuncId, usize)>,
    init: bool,
) -> Result<(), CodegenError> {
    let arity = lambda.params.len().min(MAX_ARITY);
    let mut ctx = g.take_context();
    ctx.func.signature = caravan_sig(arity);
    // Named as the module declared it, so that a dump (`CARAVAN_DUMP`)
    // shows the function's calls of itself as such.
    ctx.func.name = cranelift_codegen::ir::UserFuncName::user(0, func.as_u32());
    let mut fctx = std::mem::take(&mut g.fctx);
    let fconfig = g.module.isa().frontend_config();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let params = b.block_params(entry).to_vec();
        let proc_ = params[0];
        let env = params[1];
        let mut fx = Fx {
            g,
            b,
            proc_,
            vars: HashMap::new(),
            funcs: HashMap::new(),
            sigs: HashMap::new(),
            fn_loc: Default::default(),
            handlers: vec![],
            pending_check: None,
            func,
            own: (!init && lambda.params.len() <= MAX_ARITY && unrollable(&lambda.body))
                .then(|| (lambda.params.clone(), lambda.body.clone())),
        };
        let loc = Loc {
            file: lambda.file,
            span: lambda.span,
        };
        if lambda.file != usize::MAX {
            fx.fn_loc = cranelift_codegen::ir::SourceLoc::new(fx.g.call_loc_id(loc));
            fx.no_loc();
        }
        // A function body's checks wait for its first call on each path
        // (`Fx::tail`); the top level and the functions of over
        // `MAX_ARITY` parameters check at entry.
        if init || lambda.params.len() > MAX_ARITY {
            fx.prologue(loc)?;
        } else {
            fx.pending_check = Some(loc);
        }
        // Every value that may point into the heap is declared, so that the
        // collector finds (and updates) it in this frame's stack maps.
        fx.b.declare_value_needs_stack_map(params[1]);
        for (i, &v) in params[2..].iter().enumerate() {
            let immediate = lambda
                .param_tys
                .get(i)
                .is_some_and(|&t| fx.g.is_immediate_type(t));
            if !immediate {
                fx.b.declare_value_needs_stack_map(v);
            }
        }
        for (i, (var, known)) in free.iter().enumerate() {
            let val =
                fx.b.ins()
                    .load(I64, TRUSTED, env, off::CLOSURE_ENV + 8 * i as i32);
            fx.b.declare_value_needs_stack_map(val);
            fx.vars.insert(
                *var,
                Var {
                    value: val,
                    known: *known,
                },
            );
        }
        if let Some((var, f, arity)) = self_var {
            fx.vars.insert(
                var,
                Var {
                    value: env,
                    known: Some((f, arity)),
                },
            );
        }
        // Parameters beyond MAX_ARITY arrive through a nested closure.
        let direct = &lambda.params[..arity];
        for (i, p) in direct.iter().enumerate() {
            fx.vars.insert(
                *p,
                Var {
                    value: params[2 + i],
                    known: None,
                },
            );
        }
        if init {
            fx.init_items()?;
        } else if lambda.params.len() > MAX_ARITY {
            let rest = TLambda {
                params: lambda.params[MAX_ARITY..].to_vec(),
                param_tys: lambda
                    .param_tys
                    .get(MAX_ARITY..)
                    .map(|t| t.to_vec())
                    .unwrap_or_default(),
                body: lambda.body.clone(),
                name: lambda.name.clone(),
                span: lambda.span,
                file: lambda.file,
            };
            let clo = fx.lambda(&rest)?;
            fx.b.ins().return_(&[clo]);
        } else {
            fx.tail(&lambda.body)?;
        }
        fx.b.seal_all_blocks();
        fx.b.finalize(fconfig);
    }
    g.fctx = fctx;
    let tier = if init && ctx.func.dfg.num_values() <= super::BASELINE_MAX_VALUES {
        Tier::Baseline
    } else {
        Tier::Optimized
    };
    let loc = Loc {
        file: lambda.file,
        span: lambda.span,
    };
    let body = g
        .define_function(func, Some(&lambda.name), &mut ctx, tier, Some(loc))
        .map_err(|e| CodegenError(format!("{}: {}", lambda.name, e.0)))?;
    g.note_compiled(body, &ctx);
    g.compiled += 1;
    g.keep_context(ctx);
    Ok(())
}

impl Fx<'_, '_> {
    fn func_ref(&mut self, f: FuncId) -> FuncRef {
        if let Some(&r) = self.funcs.get(&f) {
            return r;
        }
        let r = self.g.module.declare_func_in_func(f, self.b.func);
        self.funcs.insert(f, r);
        r
    }

    /// Emits a call of generated code (a Caravan function, an `apply`
    /// helper or a trampoline) and returns its result. Inside a `try` body
    /// it is a `try_call` whose exceptional edge goes to the innermost
    /// handler, registered with the VM so that a raise below finds it
    /// (`caravan_vm::exn`); elsewhere a plain call, which costs nothing
    /// extra.
    fn call(&mut self, callee: Callee, args: &[Value]) -> Value {
        let Some(&(entry, _)) = self.handlers.last() else {
            let c = match callee {
                Callee::Direct(f) => self.b.ins().call(f, args),
                Callee::Indirect(sig, code) => self.b.ins().call_indirect(sig, code, args),
            };
            return self.b.inst_results(c)[0];
        };
        let normal = self.b.create_block();
        let ret = self.b.append_block_param(normal, I64);
        let sig = match callee {
            Callee::Direct(f) => self.b.func.dfg.ext_funcs[f].signature,
            Callee::Indirect(sig, _) => sig,
        };
        let dfg = &mut self.b.func.dfg;
        let ok = dfg.block_call(normal, &[BlockArg::TryCallRet(0)]);
        let raised = dfg.block_call(entry, &[BlockArg::TryCallExn(0)]);
        let table = dfg.exception_tables.push(ExceptionTableData::new(
            sig,
            ok,
            [ExceptionTableItem::Default(raised)],
        ));
        match callee {
            Callee::Direct(f) => self.b.ins().try_call(f, args, table),
            Callee::Indirect(_, code) => self.b.ins().try_call_indirect(code, args, table),
        };
        self.b.switch_to_block(normal);
        ret
    }

    /// Opens a `try` body: calls emitted until [`Fx::leave_try`] go to a new
    /// handler.
    fn enter_try(&mut self) {
        let entry = self.b.create_block();
        let e = self.b.append_block_param(entry, I64);
        self.b.declare_value_needs_stack_map(e);
        self.b.set_cold_block(entry);
        let (handler, _) = self.join_block();
        self.handlers.push((entry, handler));
    }

    /// Closes the innermost `try` body, whose code must end in a
    /// terminator, and switches to its handler's block: returns the
    /// exception, the handler's parameter. The exceptional edges of the
    /// body's calls arrive at a block of their own that goes on to the
    /// handler, which the body's direct `raise`s jump to as well.
    fn leave_try(&mut self) -> Value {
        let (entry, handler) = self.handlers.pop().expect("a try body is open");
        self.b.switch_to_block(entry);
        let e = self.b.block_params(entry)[0];
        self.b.ins().jump(handler, &args(&[e]));
        self.b.switch_to_block(handler);
        self.b.block_params(handler)[0]
    }

    /// A `try` ([`TExpr::Try`]). The body is never in tail position (its
    /// calls must come back to this frame's handler); the handler and the
    /// `ok` continuation are when the `try` is (`tail`: the block is
    /// terminated and `None` returned).
    fn try_(
        &mut self,
        body: &TExpr,
        ok: Option<&(VarId, Box<TExpr>)>,
        exn: VarId,
        handler: &TExpr,
        tail: bool,
    ) -> Result<Option<Value>, CodegenError> {
        self.enter_try();
        let val = self.expr(body)?;
        // The body's value goes on outside the `try`.
        let (okb, okv) = self.join_block();
        self.b.ins().jump(okb, &args(&[val]));
        let e = self.leave_try();
        self.vars.insert(
            exn,
            Var {
                value: e,
                known: None,
            },
        );
        let join = (!tail).then(|| self.join_block());
        self.finish(handler, join)?;
        self.b.switch_to_block(okb);
        match ok {
            Some((x, k)) => {
                self.vars.insert(
                    *x,
                    Var {
                        value: okv,
                        known: None,
                    },
                );
                self.finish(k, join)?;
            }
            None => match join {
                Some((j, _)) => {
                    self.b.ins().jump(j, &args(&[okv]));
                }
                None => {
                    self.b.ins().return_(&[okv]);
                }
            },
        }
        Ok(join.map(|(j, r)| {
            self.b.switch_to_block(j);
            r
        }))
    }

    /// Compiles `e` in tail position (`join` is `None`) or jumping with its
    /// value to `join`.
    fn finish(&mut self, e: &TExpr, join: Option<(Block, Value)>) -> Result<(), CodegenError> {
        match join {
            None => self.tail(e),
            Some((j, _)) => {
                let v = self.expr(e)?;
                self.b.ins().jump(j, &args(&[v]));
                Ok(())
            }
        }
    }

    /// `raise exn` where its handler is known: a jump inside this function
    /// when a `try` body of it is open, else the runtime's unwinder.
    fn raise(&mut self, exn: Value, loc: Loc) -> Result<Value, CodegenError> {
        if let Some(&(_, handler)) = self.handlers.last() {
            self.b.ins().jump(handler, &args(&[exn]));
            // What follows is unreachable; it still needs a block.
            let dead = self.b.create_block();
            self.b.switch_to_block(dead);
            return Ok(self.imm(0));
        }
        let l = self.g.loc_data(loc)?;
        let lv = self.data_addr(l);
        let p = self.proc_;
        self.at(loc);
        let r = self.rt_gc("caravan_rt_raise", &[p, exn, lv]);
        self.no_loc();
        r
    }

    fn sig(&mut self, arity: usize) -> SigRef {
        if let Some(&s) = self.sigs.get(&arity) {
            return s;
        }
        let s = self.b.import_signature(caravan_sig(arity));
        self.sigs.insert(arity, s);
        s
    }

    /// Calls a runtime function; its result is declared for the stack maps
    /// (raw results such as `compare`'s -1/0/1 are odd or zero, which the
    /// collector ignores).
    fn rt(&mut self, symbol: &str, args: &[Value]) -> Result<Value, CodegenError> {
        let f = self.g.import(symbol, args.len())?;
        let r = self.func_ref(f);
        let call = self.b.ins().call(r, args);
        let v = self.b.inst_results(call)[0];
        self.b.declare_value_needs_stack_map(v);
        Ok(v)
    }

    /// Calls a runtime function that may collect, through its trampoline.
    fn rt_gc(&mut self, symbol: &str, args: &[Value]) -> Result<Value, CodegenError> {
        let f = self.g.gc_trampoline(symbol, args.len())?;
        let r = self.func_ref(f);
        let v = self.call(Callee::Direct(r), args);
        self.b.declare_value_needs_stack_map(v);
        Ok(v)
    }

    /// Marks the instructions emitted from now on (the calls of one call
    /// site) with `loc`, so that a crash inside a callee can name the
    /// caller's source location (`caravan_vm::locations`).
    fn at(&mut self, loc: Loc) {
        let id = self.g.call_loc_id(loc);
        self.b.set_srcloc(cranelift_codegen::ir::SourceLoc::new(id));
    }

    /// Ends what [`Fx::at`] began: back to the function's own location.
    fn no_loc(&mut self) {
        self.b.set_srcloc(self.fn_loc);
    }

    /// A join block with one declared value parameter.
    fn join_block(&mut self) -> (Block, Value) {
        let j = self.b.create_block();
        let v = self.b.append_block_param(j, I64);
        self.b.declare_value_needs_stack_map(v);
        (j, v)
    }

    fn data_addr(&mut self, d: DataId) -> Value {
        let gv = self.g.module.declare_data_in_func(d, self.b.func);
        self.b.ins().symbol_value(I64, gv)
    }

    /// A value pointing at the first field of a static block.
    fn static_value(&mut self, d: DataId) -> Value {
        let a = self.data_addr(d);
        self.b.ins().iadd_imm_s(a, 8)
    }

    fn imm(&mut self, n: i64) -> Value {
        self.b.ins().iconst(I64, n.wrapping_shl(1) | 1)
    }

    fn untag(&mut self, x: Value) -> Value {
        self.b.ins().sshr_imm_s(x, 1)
    }

    fn tag(&mut self, x: Value) -> Value {
        let s = self.b.ins().ishl_imm_s(x, 1);
        self.b.ins().bor_imm_s(s, 1)
    }

    fn bool_of(&mut self, c: Value) -> Value {
        let e = self.b.ins().uextend(I64, c);
        let s = self.b.ins().ishl_imm_s(e, 1);
        self.b.ins().bor_imm_s(s, 1)
    }

    /// Reduction count and stack check in one test; yields or grows the
    /// stack in a cold block. Emitted at a function's entry, or where
    /// [`Fx::tail`] deferred it to (the first call on each path).
    ///
    /// The process's trip point (`Process::trip`, docs/vm-abi.md) is an
    /// address that rises by `TRIP_PER_RED` bytes per counted entry, kept
    /// at or above the stack limit. One add to it and one compare of SP
    /// with it both count reductions and check the stack (4 instructions:
    /// `add [proc], 16; mov rsp → r; cmp r, [proc]; jb`), as Go's
    /// `stackguard0` serves both its stack check and its preemption
    /// requests. Below it, the cold block tells the two
    /// apart: SP below the process's real limit is a stack overflow
    /// (`caravan_rt_stack_overflow` grows the stack or crashes);
    /// otherwise `caravan_rt_tick` settles the count and yields when the
    /// slice's reductions ran out. With reductions off, SP is compared
    /// with the limit alone.
    fn prologue(&mut self, loc: Loc) -> Result<(), CodegenError> {
        let p = self.proc_;
        let overflow = self.b.create_block();
        let tick = self.b.create_block();
        let body = self.b.create_block();
        self.b.set_cold_block(overflow);
        self.b.set_cold_block(tick);
        if self.g.opts.no_reductions {
            let sp = self.b.ins().get_stack_pointer(I64);
            let limit = self.b.ins().load(I64, TRUSTED, p, off::STACK_LIMIT);
            let low = self.b.ins().icmp(IntCC::UnsignedLessThan, sp, limit);
            self.b.ins().brif(low, overflow, &[], body, &[]);
        } else {
            let slow = self.b.create_block();
            self.b.set_cold_block(slow);
            // `add qword [proc], 16` (Cranelift fuses load, add and store
            // to one address), then `cmp sp, [proc]`: the reload goes
            // through another address value so that alias analysis does
            // not forward the stored sum, which would keep it in a register
            // and split the fused add.
            let t = self.b.ins().load(I64, TRUSTED, p, off::TRIP);
            let step = caravan_vm::process::TRIP_PER_RED as i64;
            let t1 = self.b.ins().iadd_imm_s(t, step);
            self.b.ins().store(TRUSTED, t1, p, off::TRIP);
            let sp = self.b.ins().get_stack_pointer(I64);
            let q = self.b.ins().iadd_imm_s(p, 8);
            let t2 = self.b.ins().load(I64, TRUSTED, q, off::TRIP - 8);
            let low = self.b.ins().icmp(IntCC::UnsignedLessThan, sp, t2);
            self.b.ins().brif(low, slow, &[], body, &[]);
            self.b.switch_to_block(slow);
            let limit = self.b.ins().load(I64, TRUSTED, p, off::STACK_LIMIT);
            let over = self.b.ins().icmp(IntCC::UnsignedLessThan, sp, limit);
            self.b.ins().brif(over, overflow, &[], tick, &[]);
            self.b.switch_to_block(tick);
            self.rt_gc("caravan_rt_tick", &[p, sp])?;
            self.b.ins().jump(body, &[]);
        }
        self.b.switch_to_block(overflow);
        let l = self.g.loc_data(loc)?;
        let lv = self.data_addr(l);
        // Through a trampoline, so the crash can name the caller's call
        // site (the 64 KiB kept below the stack limit has room for it).
        // Growing the stack moves the trip point to the new stack.
        self.rt_gc("caravan_rt_stack_overflow", &[p, lv])?;
        self.b.ins().jump(body, &[]);
        self.b.switch_to_block(body);
        Ok(())
    }

    /// Allocates a block and fills its fields (see [`Fx::bump`]).
    fn alloc(&mut self, tag: u32, fields: &[Value]) -> Result<Value, CodegenError> {
        let n = fields.len();
        let blk = self.bump(n + 1, "caravan_rt_alloc_gc", &[tag as i64, n as i64])?;
        let h = self.b.ins().iconst(I64, super::header(tag as u8, n) as i64);
        self.b.ins().store(TRUSTED, h, blk, -8);
        for (i, f) in fields.iter().enumerate() {
            self.b.ins().store(TRUSTED, *f, blk, (8 * i) as i32);
        }
        Ok(blk)
    }

    /// Room for `words` words (headers included): inline bump allocation
    /// in the current heap chunk (`heap_ptr`/`heap_limit` at offsets 16/24
    /// of the process), else the runtime's collecting allocator `slow`
    /// called with the process and the constants `slow_args`. Returns the
    /// first block's value (field 0); the caller writes the headers and
    /// fields before anything else can collect.
    fn bump(&mut self, words: usize, slow: &str, slow_args: &[i64]) -> Result<Value, CodegenError> {
        let p = self.proc_;
        let (join, blk) = self.join_block();
        let slow_b = self.b.create_block();
        self.b.set_cold_block(slow_b);
        if self.g.opts.gc_torture {
            self.b.ins().jump(slow_b, &[]);
        } else {
            let hp = self.b.ins().load(I64, TRUSTED, p, off::HEAP_PTR);
            let lim = self.b.ins().load(I64, TRUSTED, p, off::HEAP_LIMIT);
            let new = self.b.ins().iadd_imm_s(hp, 8 * words as i64);
            // No chunk yet is `heap_ptr` = `heap_limit` = 0: full too.
            let full = self.b.ins().icmp(IntCC::UnsignedGreaterThan, new, lim);
            let fast = self.b.create_block();
            self.b.ins().brif(full, slow_b, &[], fast, &[]);
            self.b.switch_to_block(fast);
            self.b.ins().store(TRUSTED, new, p, off::HEAP_PTR);
            let obj = self.b.ins().iadd_imm_s(hp, 8);
            self.b.ins().jump(join, &args(&[obj]));
        }
        // The slow path may collect: it goes through the trampoline that
        // lets the collector walk this frame (the fields to store are
        // declared values, so they are in stack slots it updates).
        self.b.switch_to_block(slow_b);
        let mut call_args = vec![p];
        for &a in slow_args {
            call_args.push(self.b.ins().iconst(I64, a));
        }
        let r = self.rt_gc(slow, &call_args)?;
        self.b.ins().jump(join, &args(&[r]));
        self.b.switch_to_block(join);
        Ok(blk)
    }

    /// Allocates the blocks of `blocks` (each its fields, all with `tag`)
    /// as one piece and fills them in; returns their values. No collection
    /// can run between them: the `let rec` closures patched afterwards to
    /// point at each other stay in one generation (see
    /// `caravan_rt_alloc_group_gc`).
    fn alloc_group(&mut self, tag: u32, blocks: &[Vec<Value>]) -> Result<Vec<Value>, CodegenError> {
        let total: usize = blocks.iter().map(|f| f.len() + 1).sum();
        // The group's first block (its field 0).
        let first = self.bump(total, "caravan_rt_alloc_group_gc", &[total as i64 - 1])?;
        let mut out = vec![];
        let mut at = 0i64;
        for fields in blocks {
            let blk = if at == 0 {
                first
            } else {
                let b = self.b.ins().iadd_imm_s(first, at);
                self.b.declare_value_needs_stack_map(b);
                b
            };
            let h = self
                .b
                .ins()
                .iconst(I64, super::header(tag as u8, fields.len()) as i64);
            self.b.ins().store(TRUSTED, h, blk, -8);
            for (i, f) in fields.iter().enumerate() {
                self.b.ins().store(TRUSTED, *f, blk, (8 * i) as i32);
            }
            out.push(blk);
            at += 8 * (fields.len() as i64 + 1);
        }
        Ok(out)
    }

    fn box_float(&mut self, f: Value) -> Result<Value, CodegenError> {
        let bits = self.b.ins().bitcast(I64, MemFlagsData::new(), f);
        self.alloc(v::TAG_FLOAT as u32, &[bits])
    }

    fn unbox_float(&mut self, x: Value) -> Value {
        self.b.ins().load(F64, TRUSTED, x, 0)
    }

    fn crash(&mut self, msg: &str, loc: Loc) -> Result<Value, CodegenError> {
        let s = self.g.string_data(msg.as_bytes())?;
        let sv = self.static_value(s);
        let l = self.g.loc_data(loc)?;
        let lv = self.data_addr(l);
        let p = self.proc_;
        self.at(loc);
        let r = self.rt_gc("caravan_rt_fail", &[p, sv, lv]);
        self.no_loc();
        r
    }

    fn init_items(&mut self) -> Result<(), CodegenError> {
        let items = self.g.program.items[self.g.items_done..].to_vec();
        for item in &items {
            match item {
                TItem::Functions(_) => {}
                TItem::Value(gid, e) => {
                    let val = self.expr(e)?;
                    let p = self.proc_;
                    let imm = self.rt("caravan_rt_global", &[p, val])?;
                    let slot = self.g.global_slots[gid];
                    let a = self.data_addr(slot);
                    self.b.ins().store(TRUSTED, imm, a, 0);
                }
                TItem::Destructure(e, pat, outs, loc) => {
                    let val = self.expr(e)?;
                    let fail = self.b.create_block();
                    self.b.set_cold_block(fail);
                    self.pattern(pat, val, fail)?;
                    for (var, gid) in outs {
                        let x = self.vars[var].value;
                        let p = self.proc_;
                        let imm = self.rt("caravan_rt_global", &[p, x])?;
                        let slot = self.g.global_slots[gid];
                        let a = self.data_addr(slot);
                        self.b.ins().store(TRUSTED, imm, a, 0);
                    }
                    let cont = self.b.create_block();
                    self.b.ins().jump(cont, &[]);
                    self.b.switch_to_block(fail);
                    self.crash("match failure", *loc)?;
                    self.b.ins().jump(cont, &[]);
                    self.b.switch_to_block(cont);
                }
                TItem::Effect(e) => {
                    self.expr(e)?;
                }
            }
        }
        // The REPL's phrases return the text to print; programs return ().
        match self.g.init_result.take() {
            Some(result) => self.tail(&result)?,
            None => {
                let unit = self.imm(0);
                self.b.ins().return_(&[unit]);
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- tail

    /// Emits `e` in tail position: the block ends with a return or a tail
    /// call.
    fn tail(&mut self, e: &TExpr) -> Result<(), CodegenError> {
        // Deep programs (a 1,000,000-term `1 + 1 + …`) nest this deep.
        crate::stack::deep(|| self.tail_inner(e))
    }

    fn tail_inner(&mut self, e: &TExpr) -> Result<(), CodegenError> {
        if let Some(loc) = self.pending_check {
            if !defers_check(e) {
                self.pending_check = None;
                self.prologue(loc)?;
            }
        }
        match e {
            TExpr::App(f, a, loc, t) => self.apply(f, a, *loc, *t, true).map(|_| ()),
            TExpr::Let(var, rhs, body) => {
                self.bind_let(*var, rhs)?;
                self.tail(body)
            }
            TExpr::LetRec(group, body) => {
                self.letrec(group)?;
                self.tail(body)
            }
            TExpr::Seq(a, b) => {
                self.expr(a)?;
                self.tail(b)
            }
            // `a && b` / `a || b`: `b` is in tail position.
            TExpr::And(a, b) | TExpr::Or(a, b) => {
                let is_and = matches!(e, TExpr::And(..));
                let av = self.expr(a)?;
                let rhs = self.b.create_block();
                let done = self.b.create_block();
                let cond = self.b.ins().icmp_imm_s(IntCC::NotEqual, av, 1);
                if is_and {
                    self.b.ins().brif(cond, rhs, &[], done, &[]);
                } else {
                    self.b.ins().brif(cond, done, &[], rhs, &[]);
                }
                self.b.switch_to_block(done);
                self.b.ins().return_(&[av]);
                self.b.switch_to_block(rhs);
                self.tail(b)
            }
            TExpr::If(c, a, b) => {
                let tb = self.b.create_block();
                let eb = self.b.create_block();
                self.branch(c, tb, eb)?;
                // Each branch starts with the checks still owed here.
                let pending = self.pending_check;
                self.b.switch_to_block(tb);
                self.tail(a)?;
                self.pending_check = pending;
                self.b.switch_to_block(eb);
                self.tail(b)
            }
            TExpr::Match(s, arms, loc) => {
                let sv = self.expr(s)?;
                self.match_arms(sv, arms, *loc, None)?;
                Ok(())
            }
            TExpr::Receive {
                mailbox,
                arms,
                after,
                loc,
            } => {
                self.receive(mailbox, arms, after.as_ref(), *loc, None)?;
                Ok(())
            }
            TExpr::Try {
                body,
                ok,
                exn,
                handler,
            } => {
                self.try_(body, ok.as_ref(), *exn, handler, true)?;
                Ok(())
            }
            e => {
                let val = self.expr(e)?;
                self.b.ins().return_(&[val]);
                Ok(())
            }
        }
    }

    // ---------------------------------------------------------------- values

    fn expr(&mut self, e: &TExpr) -> Result<Value, CodegenError> {
        // Deep programs (a 1,000,000-term `1 + 1 + …`) nest this deep.
        crate::stack::deep(|| self.expr_inner(e))
    }

    fn expr_inner(&mut self, e: &TExpr) -> Result<Value, CodegenError> {
        Ok(match e {
            TExpr::Imm(n) => self.imm(*n),
            TExpr::Float(f) => {
                let d = self.g.float_data(*f)?;
                self.static_value(d)
            }
            TExpr::Str(s) => {
                let d = self.g.string_data(s)?;
                self.static_value(d)
            }
            TExpr::Local(var) => match self.vars.get(var) {
                Some(x) => x.value,
                None => return Err(CodegenError(format!("unbound local {var}"))),
            },
            TExpr::Global(gid) => self.global(*gid)?,
            TExpr::Extern(x) => {
                let d = self.g.extern_wrapper(*x)?;
                self.static_value(d)
            }
            TExpr::App(f, a, loc, t) => self
                .apply(f, a, *loc, *t, false)?
                .expect("non-tail call returns"),
            TExpr::Try {
                body,
                ok,
                exn,
                handler,
            } => self
                .try_(body, ok.as_ref(), *exn, handler, false)?
                .expect("not in tail position"),
            TExpr::CallExtern(x, a, loc) => {
                let mut vals = vec![self.proc_];
                for e in a {
                    vals.push(self.expr(e)?);
                }
                let sym = self.g.program.externs[*x as usize].symbol.clone();
                // Builtins may allocate, collect, switch or crash: through
                // their trampoline, marked with the call's location.
                self.at(*loc);
                let r = self.rt_gc(&sym, &vals)?;
                self.no_loc();
                if self.g.extern_returns_unit(*x) {
                    self.imm(0)
                } else {
                    r
                }
            }
            TExpr::Lambda(l) => self.lambda(l)?,
            TExpr::Let(var, rhs, body) => {
                self.bind_let(*var, rhs)?;
                self.expr(body)?
            }
            TExpr::LetRec(group, body) => {
                self.letrec(group)?;
                self.expr(body)?
            }
            TExpr::Match(s, arms, loc) => {
                let sv = self.expr(s)?;
                let (join, res) = self.join_block();
                self.match_arms(sv, arms, *loc, Some(join))?;
                self.b.switch_to_block(join);
                res
            }
            TExpr::Block(..) if is_constant(e) => {
                let (d, off) = self.g.constant_data(e)?;
                let a = self.data_addr(d);
                self.b.ins().iadd_imm_s(a, off as i64)
            }
            TExpr::Block(tag, fields) => {
                // Right to left, as OCaml evaluates constructor and tuple
                // arguments: in a list literal `[e1; ...; en]` (nested
                // `::` blocks) each element is then evaluated with only
                // the list built so far live, not every element before
                // it. Left to right, `n` elements that call kept up to
                // `n` values live across each call: stack maps and
                // register allocation quadratic or worse (4,000 calls took
                // 6.6 s to compile, 20,000 over 4 minutes).
                let mut vals = vec![];
                for f in fields.iter().rev() {
                    vals.push(self.expr(f)?);
                }
                vals.reverse();
                if vals.is_empty() {
                    self.imm(0)
                } else {
                    self.alloc(*tag, &vals)?
                }
            }
            TExpr::Field(r, i) => {
                let rv = self.expr(r)?;
                let v = self.b.ins().load(I64, TRUSTED, rv, (8 * i) as i32);
                self.b.declare_value_needs_stack_map(v);
                v
            }
            TExpr::Update(r, n, updates) => {
                let rv = self.expr(r)?;
                let mut vals = vec![];
                for i in 0..*n {
                    let v = self.b.ins().load(I64, TRUSTED, rv, (8 * i) as i32);
                    self.b.declare_value_needs_stack_map(v);
                    vals.push(v);
                }
                for (i, e) in updates {
                    vals[*i as usize] = self.expr(e)?;
                }
                self.alloc(0, &vals)?
            }
            TExpr::If(c, a, b) => {
                let tb = self.b.create_block();
                let eb = self.b.create_block();
                let (join, res) = self.join_block();
                self.branch(c, tb, eb)?;
                self.b.switch_to_block(tb);
                let av = self.expr(a)?;
                self.b.ins().jump(join, &args(&[av]));
                self.b.switch_to_block(eb);
                let bv = self.expr(b)?;
                self.b.ins().jump(join, &args(&[bv]));
                self.b.switch_to_block(join);
                res
            }
            TExpr::Seq(a, b) => {
                self.expr(a)?;
                self.expr(b)?
            }
            TExpr::And(a, b) | TExpr::Or(a, b) => {
                let is_and = matches!(e, TExpr::And(..));
                let av = self.expr(a)?;
                let rhs = self.b.create_block();
                let (join, res) = self.join_block();
                let cond = self.b.ins().icmp_imm_s(IntCC::NotEqual, av, 1);
                if is_and {
                    self.b.ins().brif(cond, rhs, &[], join, &args(&[av]));
                } else {
                    self.b.ins().brif(cond, join, &args(&[av]), rhs, &[]);
                }
                self.b.switch_to_block(rhs);
                let bv = self.expr(b)?;
                self.b.ins().jump(join, &args(&[bv]));
                self.b.switch_to_block(join);
                res
            }
            TExpr::Assert(c, loc) => {
                let cv = self.expr(c)?;
                let ok = self.b.create_block();
                let fail = self.b.create_block();
                self.b.set_cold_block(fail);
                let cond = self.b.ins().icmp_imm_s(IntCC::NotEqual, cv, 1);
                self.b.ins().brif(cond, ok, &[], fail, &[]);
                self.b.switch_to_block(fail);
                self.crash("assertion failed", *loc)?;
                self.b.ins().jump(ok, &[]);
                self.b.switch_to_block(ok);
                self.imm(0)
            }
            TExpr::Receive {
                mailbox,
                arms,
                after,
                loc,
            } => {
                let (join, res) = self.join_block();
                self.receive(mailbox, arms, after.as_ref(), *loc, Some(join))?;
                self.b.switch_to_block(join);
                res
            }
            TExpr::Prim(p, a, t, loc) => self.prim(*p, a, *t, *loc)?,
        })
    }

    fn global(&mut self, gid: GlobalId) -> Result<Value, CodegenError> {
        if self.g.global_fns.contains_key(&gid) {
            let clo = self.g.global_closure(gid)?;
            return Ok(self.static_value(clo));
        }
        let slot = self.g.global_slots[&gid];
        let a = self.data_addr(slot);
        let v = self.b.ins().load(I64, TRUSTED, a, 0);
        self.b.declare_value_needs_stack_map(v);
        Ok(v)
    }

    fn bind_let(&mut self, var: VarId, rhs: &TExpr) -> Result<(), CodegenError> {
        let known = match rhs {
            TExpr::Lambda(l) if l.params.len() <= MAX_ARITY => Some(l.params.len()),
            _ => None,
        };
        if let (Some(arity), TExpr::Lambda(l)) = (known, rhs) {
            let (val, func) = self.lambda_with_id(l)?;
            self.vars.insert(
                var,
                Var {
                    value: val,
                    known: Some((func, arity)),
                },
            );
            return Ok(());
        }
        let val = self.expr(rhs)?;
        self.vars.insert(
            var,
            Var {
                value: val,
                known: None,
            },
        );
        Ok(())
    }

    // ---------------------------------------------------------------- closures

    fn lambda(&mut self, l: &TLambda) -> Result<Value, CodegenError> {
        Ok(self.lambda_with_id(l)?.0)
    }

    /// Builds the closure of a function literal (queueing its body).
    fn lambda_with_id(&mut self, l: &TLambda) -> Result<(Value, FuncId), CodegenError> {
        let fv = free_vars(l);
        let arity = l.params.len().min(MAX_ARITY);
        let func = self.g.declare_fn(&l.name, arity)?;
        let free: Vec<(VarId, Option<(FuncId, usize)>)> = fv
            .iter()
            .map(|x| (*x, self.vars.get(x).and_then(|b| b.known)))
            .collect();
        let val = if fv.is_empty() {
            let d = self.g.static_closure(func, arity)?;
            self.static_value(d)
        } else {
            let fref = self.func_ref(func);
            let code = self.b.ins().func_addr(I64, fref);
            let ar = self.imm(arity as i64);
            let mut fields = vec![code, ar];
            for x in &fv {
                fields.push(self.vars[x].value);
            }
            self.alloc(v::TAG_CLOSURE as u32, &fields)?
        };
        self.g.queue.push_back(PendingFn {
            func,
            lambda: l.clone(),
            free,
            self_var: None,
        });
        Ok((val, func))
    }

    /// `let rec` of local functions: closures are allocated first, then
    /// their environments filled in (they may refer to each other).
    fn letrec(&mut self, group: &[(VarId, TLambda)]) -> Result<(), CodegenError> {
        let bound: HashSet<VarId> = group.iter().map(|(x, _)| *x).collect();
        let mut planned = vec![];
        let mut all_fields = vec![];
        for (var, l) in group {
            let arity = l.params.len().min(MAX_ARITY);
            let func = self.g.declare_fn(&l.name, arity)?;
            let mut fv = free_vars(l);
            fv.retain(|x| *x != *var);
            // Order: other group members may appear among the free variables.
            let fref = self.func_ref(func);
            let code = self.b.ins().func_addr(I64, fref);
            let ar = self.imm(arity as i64);
            let mut fields = vec![code, ar];
            let placeholder = self.imm(0);
            for x in &fv {
                fields.push(if bound.contains(x) {
                    placeholder
                } else {
                    self.vars[x].value
                });
            }
            all_fields.push(fields);
            planned.push((var, l, func, arity, fv));
        }
        // One allocation for the whole group: no collection runs before
        // the environments are patched, so the old generation never points
        // into the young one (`caravan_vm::gc::Generations`).
        let closures = if group.len() == 1 {
            vec![self.alloc(v::TAG_CLOSURE as u32, &all_fields[0])?]
        } else {
            self.alloc_group(v::TAG_CLOSURE as u32, &all_fields)?
        };
        let mut made = vec![];
        for ((var, l, func, arity, fv), clo) in planned.into_iter().zip(closures) {
            self.vars.insert(
                *var,
                Var {
                    value: clo,
                    known: Some((func, arity)),
                },
            );
            made.push((*var, func, fv, clo, l));
        }
        for (var, func, fv, clo, l) in made {
            for (i, x) in fv.iter().enumerate() {
                if bound.contains(x) {
                    let other = self.vars[x].value;
                    self.b
                        .ins()
                        .store(TRUSTED, other, clo, off::CLOSURE_ENV + 8 * i as i32);
                }
            }
            // Inside its own body the function refers to itself via `env`.
            let free: Vec<(VarId, Option<(FuncId, usize)>)> = fv
                .iter()
                .map(|x| (*x, self.vars.get(x).and_then(|b| b.known)))
                .collect();
            self.g.queue.push_back(PendingFn {
                func,
                lambda: l.clone(),
                free,
                self_var: Some((var, func, l.params.len().min(MAX_ARITY))),
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- calls

    /// Applies `f` to `a`. In tail position the block is terminated and
    /// `None` returned.
    fn apply(
        &mut self,
        f: &TExpr,
        a: &[TExpr],
        loc: Loc,
        result: crate::types::Ty,
        tail: bool,
    ) -> Result<Option<Value>, CodegenError> {
        let r = self.apply_at(f, a, loc, result, tail);
        self.no_loc();
        r
    }

    /// [`Fx::apply`]'s body: the calls it emits carry `loc`.
    fn apply_at(
        &mut self,
        f: &TExpr,
        a: &[TExpr],
        loc: Loc,
        result: crate::types::Ty,
        tail: bool,
    ) -> Result<Option<Value>, CodegenError> {
        let boxed = !self.g.is_immediate_type(result);
        // Known callee?
        let known: Option<(FuncId, usize, Value)> = match f {
            TExpr::Global(gid) => match self.g.global_fns.get(gid).copied() {
                Some((func, arity)) if arity == a.len() => {
                    // A top-level function has no free variables: its env
                    // is never read, so a direct call passes a register it
                    // already has (the process pointer; not a heap value).
                    self.g.want_global_fn(*gid);
                    Some((func, arity, self.proc_))
                }
                Some((func, arity)) => {
                    let clo = self.g.global_closure(*gid)?;
                    let cv = self.static_value(clo);
                    Some((func, arity, cv))
                }
                None => None,
            },
            TExpr::Local(var) => match self.vars.get(var).copied() {
                Some(Var {
                    value,
                    known: Some((func, arity)),
                }) => Some((func, arity, value)),
                _ => None,
            },
            _ => None,
        };
        let fv = match known {
            Some((_, _, cv)) => cv,
            None => self.expr(f)?,
        };
        let mut vals = vec![];
        for e in a {
            vals.push(self.expr(e)?);
        }
        self.at(loc);
        if let Some((func, arity, _)) = known {
            if func == self.func && arity == vals.len() {
                if let Some(r) = self.unroll(&vals, tail)? {
                    return Ok(r);
                }
            }
        }
        // A base case the callee would return at once: tested here.
        let mut inlined = None;
        if let (TExpr::Global(gid), Some((_, arity, _))) = (f, known) {
            if arity == vals.len() {
                inlined = self.inline_base_case(*gid, &vals, tail, boxed)?;
            }
        }
        if let Some((func, arity, _)) = known {
            if arity == vals.len() {
                let fref = self.func_ref(func);
                let mut call_args = vec![self.proc_, fv];
                call_args.extend(&vals);
                if tail {
                    self.b.ins().return_call(fref, &call_args);
                    return Ok(None);
                }
                let v = self.call(Callee::Direct(fref), &call_args);
                if boxed {
                    self.b.declare_value_needs_stack_map(v);
                }
                if let Some((join, res)) = inlined {
                    self.b.ins().jump(join, &args(&[v]));
                    self.b.switch_to_block(join);
                    return Ok(Some(res));
                }
                return Ok(Some(v));
            }
        }
        self.apply_values(fv, &vals, tail, boxed)
    }

    /// Recursive inlining ("unrolling"): a call of the function being
    /// compiled (top-level or local `let rec`), from its own body, is
    /// replaced by a copy of that body with the arguments for the
    /// parameters, when the body is small ([`UNROLL_NODES`]) and defines no
    /// function, `try` or `receive`. One level only: the copy's own calls
    /// are calls. fib's calls then make half as many frames, returns and
    /// reduction checks — the copy counts no reduction of its own, as the
    /// BEAM counts none for a call its compiler inlined (every cycle of
    /// calls still counts at least one per two calls it makes). A local
    /// function's copy reads the same free variables: it runs in the same
    /// closure. GCC inlines recursive calls the same way
    /// (`max-inline-recursive-depth`); OCaml's flambda has `[@unrolled n]`.
    ///
    /// `Some(r)`: the copy was compiled, `r` as [`Fx::apply`] returns it
    /// (`None` in tail position, where the copy ends its own paths);
    /// `None`: the body does not qualify, or this is already a copy.
    fn unroll(
        &mut self,
        vals: &[Value],
        tail: bool,
    ) -> Result<Option<Option<Value>>, CodegenError> {
        let Some((params, body)) = self.own.take() else {
            return Ok(None);
        };
        if params.len() != vals.len() {
            self.own = Some((params, body));
            return Ok(None);
        }
        // The copy binds the function's own variables (its parameters are
        // the caller's): the caller's bindings come back afterwards.
        let saved = self.vars.clone();
        for (&p, &v) in params.iter().zip(vals) {
            self.vars.insert(
                p,
                Var {
                    value: v,
                    known: None,
                },
            );
        }
        let r = if tail {
            self.tail(&body).map(|()| None)
        } else {
            self.expr(&body).map(Some)
        };
        self.vars = saved;
        self.own = Some((params, body));
        r.map(Some)
    }

    /// Partial inlining of a top-level function's base case at a direct
    /// call of it: when the callee's body is `if c then r else …` (or
    /// `if c then … else r`, or `match p with K -> r | …` for a parameter
    /// `p` and a constant `K`) where `c` and `r` are tiny and pure
    /// ([`tiny_pure`]: integer arithmetic and comparisons of its
    /// parameters and constants), the call site tests `c` on the arguments
    /// itself and, on the base case, has `r` without making the call.
    /// fib's leaves (`if n < 2 then n`) and binary-trees' `check Leaf`,
    /// half of all their calls, so cost a
    /// compare and a branch in the caller instead of a call, a frame and a
    /// return. (The call-free path of the callee counts no reduction
    /// either: nothing observable changes.) GCC calls this partial
    /// inlining (`-fipa-split`, "function splitting").
    ///
    /// On the inlined case: in tail position it returns `r`; otherwise it
    /// jumps with `r` to the returned join block, which the caller's call
    /// path must jump to with the call's result (`boxed`: a result the
    /// collector must see). The current block is then the call path.
    /// `None`: the callee does not qualify, or the call is in tail
    /// position.
    fn inline_base_case(
        &mut self,
        gid: GlobalId,
        vals: &[Value],
        tail: bool,
        boxed: bool,
    ) -> Result<Option<(Block, Value)>, CodegenError> {
        // Out of the map while its body is looked at (`tiny_pure` needs
        // `self`); only the tiny parts are cloned.
        let Some(lam) = self.g.global_lambdas.remove(&gid) else {
            return Ok(None);
        };
        let test = if lam.params.len() == vals.len() && vals.len() <= MAX_ARITY {
            self.base_test(&lam)
        } else {
            None
        };
        let params = lam.params.clone();
        self.g.global_lambdas.insert(gid, lam);
        let Some(test) = test else {
            return Ok(None);
        };
        // The callee's parameters stand for the arguments while its test
        // and base case are compiled here (for a recursive call these are
        // the caller's own parameters: put back afterwards).
        let saved: Vec<(VarId, Option<Var>)> = params
            .iter()
            .zip(vals)
            .map(|(&p, &v)| {
                let old = self.vars.insert(
                    p,
                    Var {
                        value: v,
                        known: None,
                    },
                );
                (p, old)
            })
            .collect();
        let base = self.b.create_block();
        let call = self.b.create_block();
        let leaf = match test {
            BaseTest::If(c, leaf, true) => {
                self.branch(&c, base, call)?;
                *leaf
            }
            BaseTest::If(c, leaf, false) => {
                self.branch(&c, call, base)?;
                *leaf
            }
            BaseTest::Pat(i, pat, leaf) => {
                self.pattern(&pat, vals[i], call)?;
                self.b.ins().jump(base, &[]);
                leaf
            }
        };
        self.b.switch_to_block(base);
        let r = self.expr(&leaf)?;
        for (p, old) in saved {
            match old {
                Some(v) => self.vars.insert(p, v),
                None => self.vars.remove(&p),
            };
        }
        let join = if tail {
            self.b.ins().return_(&[r]);
            None
        } else {
            let j = self.b.create_block();
            let res = self.b.append_block_param(j, I64);
            if boxed {
                self.b.declare_value_needs_stack_map(res);
            }
            self.b.ins().jump(j, &args(&[r]));
            Some((j, res))
        };
        self.b.switch_to_block(call);
        Ok(join)
    }

    /// The base case [`Fx::inline_base_case`] can test at a call of `lam`,
    /// if its body has one.
    fn base_test(&mut self, lam: &TLambda) -> Option<BaseTest> {
        let params = &lam.params;
        match &*lam.body {
            TExpr::If(c, then_, else_) => {
                if !self.tiny_pure(c, params) {
                    None
                } else if self.tiny_pure(then_, params) {
                    Some(BaseTest::If(c.clone(), then_.clone(), true))
                } else if self.tiny_pure(else_, params) {
                    Some(BaseTest::If(c.clone(), else_.clone(), false))
                } else {
                    None
                }
            }
            // `match p with K -> r | …`: the first arm tests a parameter
            // against a constant (an int, a char, a constant constructor)
            // and binds nothing.
            TExpr::Match(scrutinee, arms, _) => {
                let TExpr::Local(x) = **scrutinee else {
                    return None;
                };
                let i = params.iter().position(|p| *p == x)?;
                let [first, _, ..] = &arms[..] else {
                    return None;
                };
                let constant = match &first.pat {
                    TPat::Imm(_) | TPat::Char(_) => true,
                    TPat::Ctor(_, fields) => fields.is_empty(),
                    _ => false,
                };
                if first.guard.is_some() || !constant || !self.tiny_pure(&first.body, params) {
                    return None;
                }
                Some(BaseTest::Pat(i, first.pat.clone(), first.body.clone()))
            }
            _ => None,
        }
    }

    /// True for the expressions [`Fx::inline_base_case`] copies into a
    /// caller: at most [`TINY_NODES`] nodes of constants, the callee's
    /// `params`, and integer arithmetic and comparisons (of immediate
    /// types) that cannot fail, allocate or call.
    fn tiny_pure(&mut self, e: &TExpr, params: &[VarId]) -> bool {
        let g = &mut *self.g;
        small_tree(e, TINY_NODES, |e| match e {
            TExpr::Imm(_) => Some(false),
            TExpr::Local(v) if params.contains(v) => Some(false),
            TExpr::Prim(
                Prim::AddInt
                | Prim::SubInt
                | Prim::MulInt
                | Prim::NegInt
                | Prim::AndInt
                | Prim::OrInt
                | Prim::XorInt
                | Prim::Not,
                ..,
            )
            | TExpr::And(..)
            | TExpr::Or(..) => Some(true),
            TExpr::Prim(p, _, t, _) if p.is_comparison() && g.is_immediate_type(*t) => Some(true),
            _ => None,
        })
    }

    /// Applies a closure value to arguments (generic path).
    fn apply_values(
        &mut self,
        fv: Value,
        vals: &[Value],
        tail: bool,
        boxed: bool,
    ) -> Result<Option<Value>, CodegenError> {
        if vals.len() > MAX_ARITY {
            let r = self
                .apply_values(fv, &vals[..MAX_ARITY], false, true)?
                .expect("non-tail");
            return self.apply_values(r, &vals[MAX_ARITY..], tail, boxed);
        }
        let n = vals.len();
        let arity = self.b.ins().load(I64, TRUSTED, fv, off::CLOSURE_ARITY);
        let exact = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, arity, ((n as i64) << 1) | 1);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        self.b.ins().brif(exact, fast, &[], slow, &[]);
        let mut call_args = vec![self.proc_, fv];
        call_args.extend(vals);
        let sig = self.sig(n);
        let apply = self.g.apply_fn(n)?;
        let aref = self.func_ref(apply);
        if tail {
            self.b.switch_to_block(fast);
            let code = self.b.ins().load(I64, TRUSTED, fv, off::CLOSURE_CODE);
            self.b.ins().return_call_indirect(sig, code, &call_args);
            self.b.switch_to_block(slow);
            self.b.ins().return_call(aref, &call_args);
            return Ok(None);
        }
        let join = self.b.create_block();
        let res = self.b.append_block_param(join, I64);
        if boxed {
            self.b.declare_value_needs_stack_map(res);
        }
        self.b.switch_to_block(fast);
        let code = self.b.ins().load(I64, TRUSTED, fv, off::CLOSURE_CODE);
        let r = self.call(Callee::Indirect(sig, code), &call_args);
        self.b.ins().jump(join, &args(&[r]));
        self.b.switch_to_block(slow);
        let r = self.call(Callee::Direct(aref), &call_args);
        self.b.ins().jump(join, &args(&[r]));
        self.b.switch_to_block(join);
        Ok(Some(res))
    }

    // ---------------------------------------------------------------- patterns

    /// Emits the tests of `pat` against `val`, jumping to `fail` on a
    /// mismatch and binding the pattern's variables on the fall-through
    /// path.
    fn pattern(&mut self, pat: &TPat, val: Value, fail: Block) -> Result<(), CodegenError> {
        // Deep programs (a 1,000,000-term `1 + 1 + …`) nest this deep.
        crate::stack::deep(|| self.pattern_inner(pat, val, fail))
    }

    fn pattern_inner(&mut self, pat: &TPat, val: Value, fail: Block) -> Result<(), CodegenError> {
        match pat {
            TPat::Wild => {}
            TPat::Var(x) => {
                self.vars.insert(
                    *x,
                    Var {
                        value: val,
                        known: None,
                    },
                );
            }
            TPat::Imm(_) | TPat::Char(_) => {
                let n = match pat {
                    TPat::Char(c) => *c as i64,
                    TPat::Imm(n) => *n,
                    _ => 0,
                };
                let c = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::Equal, val, n.wrapping_shl(1) | 1);
                self.cont_if(c, fail);
            }
            TPat::Str(s) => {
                let d = self.g.string_data(s)?;
                let sv = self.static_value(d);
                let p = self.proc_;
                let eq = self.rt("caravan_rt_equal", &[p, val, sv])?;
                let c = self.b.ins().icmp_imm_s(IntCC::Equal, eq, 3);
                self.cont_if(c, fail);
            }
            TPat::Float(f) => {
                let x = self.unbox_float(val);
                let k = self.b.ins().f64const(*f);
                let c = self.b.ins().fcmp(FloatCC::Equal, x, k);
                self.cont_if(c, fail);
            }
            TPat::Ctor(
                CtorRef {
                    repr: CtorRepr::Constant(n),
                    ..
                },
                _,
            ) => {
                let c = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::Equal, val, ((*n as i64) << 1) | 1);
                self.cont_if(c, fail);
            }
            TPat::Ctor(
                CtorRef {
                    repr: CtorRepr::Block(tag, _),
                    sole_block,
                    ..
                },
                fields,
            ) => {
                let low = self.b.ins().band_imm_s(val, 1);
                let is_ptr = self.b.ins().icmp_imm_s(IntCC::Equal, low, 0);
                self.cont_if(is_ptr, fail);
                // The only constructor with arguments: a pointer is this
                // one, its tag needs no test.
                if !sole_block {
                    let hdr = self.b.ins().load(I64, TRUSTED, val, -8);
                    let t = self.b.ins().band_imm_s(hdr, 0xff);
                    let c = self.b.ins().icmp_imm_s(IntCC::Equal, t, *tag as i64);
                    self.cont_if(c, fail);
                }
                self.fields(fields, val, fail)?;
            }
            // An exception is always a block: its constructor is field 0.
            TPat::Ctor(
                CtorRef {
                    repr: CtorRepr::Exn(id, _),
                    ..
                },
                fields,
            ) => {
                let ctor = self.b.ins().load(I64, TRUSTED, val, 0);
                let c = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::Equal, ctor, ((*id as i64) << 1) | 1);
                self.cont_if(c, fail);
                self.fields_from(fields, val, 1, fail)?;
            }
            TPat::Tuple(fields, _) => self.fields(fields, val, fail)?,
            TPat::Alias(p, x) => {
                self.pattern(p, val, fail)?;
                self.vars.insert(
                    *x,
                    Var {
                        value: val,
                        known: None,
                    },
                );
            }
            TPat::Or(a, b) => {
                let mut names = vec![];
                a.vars(&mut names);
                let ok = self.b.create_block();
                let params: Vec<Value> = names
                    .iter()
                    .map(|_| {
                        let v = self.b.append_block_param(ok, I64);
                        self.b.declare_value_needs_stack_map(v);
                        v
                    })
                    .collect();
                let try_b = self.b.create_block();
                self.pattern(a, val, try_b)?;
                let av: Vec<Value> = names.iter().map(|x| self.vars[x].value).collect();
                self.b.ins().jump(ok, &args(&av));
                self.b.switch_to_block(try_b);
                self.pattern(b, val, fail)?;
                let bv: Vec<Value> = names.iter().map(|x| self.vars[x].value).collect();
                self.b.ins().jump(ok, &args(&bv));
                self.b.switch_to_block(ok);
                for (x, p) in names.iter().zip(params) {
                    self.vars.insert(
                        *x,
                        Var {
                            value: p,
                            known: None,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    fn fields(&mut self, fields: &[TPat], val: Value, fail: Block) -> Result<(), CodegenError> {
        self.fields_from(fields, val, 0, fail)
    }

    /// [`Fx::fields`] for the fields from `first` on.
    fn fields_from(
        &mut self,
        fields: &[TPat],
        val: Value,
        first: usize,
        fail: Block,
    ) -> Result<(), CodegenError> {
        for (i, p) in fields.iter().enumerate() {
            if matches!(p, TPat::Wild) {
                continue;
            }
            let f = self
                .b
                .ins()
                .load(I64, TRUSTED, val, (8 * (first + i)) as i32);
            self.b.declare_value_needs_stack_map(f);
            self.pattern(p, f, fail)?;
        }
        Ok(())
    }

    /// Branches on a boolean expression without materialising the bool:
    /// comparisons of immediates become one compare-and-branch, `&&`, `||`
    /// and `not` become control flow.
    fn branch(&mut self, c: &TExpr, yes: Block, no: Block) -> Result<(), CodegenError> {
        // Deep programs (a 1,000,000-term `1 + 1 + …`) nest this deep.
        crate::stack::deep(|| self.branch_inner(c, yes, no))
    }

    fn branch_inner(&mut self, c: &TExpr, yes: Block, no: Block) -> Result<(), CodegenError> {
        match c {
            TExpr::Imm(n) => {
                self.b.ins().jump(if *n != 0 { yes } else { no }, &[]);
            }
            TExpr::Prim(Prim::Not, a, _, _) => self.branch(&a[0], no, yes)?,
            TExpr::And(a, b) => {
                let mid = self.b.create_block();
                self.branch(a, mid, no)?;
                self.b.switch_to_block(mid);
                self.branch(b, yes, no)?;
            }
            TExpr::Or(a, b) => {
                let mid = self.b.create_block();
                self.branch(a, yes, mid)?;
                self.b.switch_to_block(mid);
                self.branch(b, yes, no)?;
            }
            TExpr::Prim(p, a, t, _)
                if p.is_comparison()
                    && a.len() == 2
                    && (matches!(p, Prim::PhysEq | Prim::PhysNe)
                        || self.g.is_immediate_type(*t)) =>
            {
                let x = self.expr(&a[0])?;
                let y = self.expr(&a[1])?;
                let cc = match p {
                    Prim::Equal | Prim::PhysEq => IntCC::Equal,
                    Prim::NotEqual | Prim::PhysNe => IntCC::NotEqual,
                    Prim::Lt => IntCC::SignedLessThan,
                    Prim::Gt => IntCC::SignedGreaterThan,
                    Prim::Le => IntCC::SignedLessThanOrEqual,
                    _ => IntCC::SignedGreaterThanOrEqual,
                };
                let cond = self.b.ins().icmp(cc, x, y);
                self.b.ins().brif(cond, yes, &[], no, &[]);
            }
            c => {
                let v = self.expr(c)?;
                let cond = self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 1);
                self.b.ins().brif(cond, yes, &[], no, &[]);
            }
        }
        Ok(())
    }

    /// Continues in a new block when `c` holds, else jumps to `fail`.
    fn cont_if(&mut self, c: Value, fail: Block) {
        let next = self.b.create_block();
        self.b.ins().brif(c, next, &[], fail, &[]);
        self.b.switch_to_block(next);
    }

    /// Arms of a `match`: each arm's tests, guard and body; bodies jump to
    /// `join` (or are in tail position when `join` is `None`).
    fn match_arms(
        &mut self,
        sv: Value,
        arms: &[TArm],
        loc: Loc,
        join: Option<Block>,
    ) -> Result<(), CodegenError> {
        // Each arm starts with the checks still owed here (`Fx::tail`).
        let pending = self.pending_check;
        for arm in arms {
            let next = self.b.create_block();
            self.pattern(&arm.pat, sv, next)?;
            if let Some(gd) = &arm.guard {
                let pass = self.b.create_block();
                self.branch(gd, pass, next)?;
                self.b.switch_to_block(pass);
            }
            self.pending_check = pending;
            self.arm_body(&arm.body, join)?;
            self.b.switch_to_block(next);
        }
        let r = self.crash("match failure", loc)?;
        match join {
            Some(j) => {
                self.b.ins().jump(j, &args(&[r]));
            }
            None => {
                self.b.ins().return_(&[r]);
            }
        }
        Ok(())
    }

    fn arm_body(&mut self, body: &TExpr, join: Option<Block>) -> Result<(), CodegenError> {
        match join {
            Some(j) => {
                let bv = self.expr(body)?;
                self.b.ins().jump(j, &args(&[bv]));
            }
            None => self.tail(body)?,
        }
        Ok(())
    }

    /// Selective receive (BEAM's loop_rec / remove_message / wait_timeout).
    /// The mailbox expression is evaluated and checked at run time: it must
    /// be the current process's own pid (a receive on another process's
    /// mailbox crashes the receiver at `loc`, LANGUAGE.md §2).
    fn receive(
        &mut self,
        mailbox: &TExpr,
        arms: &[TArm],
        after: Option<&(Box<TExpr>, Box<TExpr>)>,
        loc: Loc,
        join: Option<Block>,
    ) -> Result<(), CodegenError> {
        let mbox = self.expr(mailbox)?;
        let timeout = match after {
            Some((t, _)) => {
                let tv = self.expr(t)?;
                self.untag(tv)
            }
            // No `after`: never time out (`caravan_vm::FOREVER_MS` or more).
            None => self.b.ins().iconst(I64, i64::MAX),
        };
        let p = self.proc_;
        let l = self.g.loc_data(loc)?;
        let lv = self.data_addr(l);
        self.rt("caravan_rt_recv_start", &[p, mbox, lv])?;
        let lp = self.b.create_block();
        self.b.ins().jump(lp, &[]);
        self.b.switch_to_block(lp);
        // Taking a message may collect (adopted messages grow the heap).
        let m = self.rt_gc("caravan_rt_recv_next", &[p, timeout])?;
        let got = self.b.create_block();
        let timed_out = self.b.create_block();
        self.b.ins().brif(m, got, &[], timed_out, &[]);
        self.b.switch_to_block(got);
        for arm in arms {
            let next = self.b.create_block();
            self.pattern(&arm.pat, m, next)?;
            if let Some(gd) = &arm.guard {
                let pass = self.b.create_block();
                self.branch(gd, pass, next)?;
                self.b.switch_to_block(pass);
            }
            self.rt("caravan_rt_recv_accept", &[p])?;
            self.arm_body(&arm.body, join)?;
            self.b.switch_to_block(next);
        }
        self.b.ins().jump(lp, &[]);
        self.b.switch_to_block(timed_out);
        match after {
            Some((_, body)) => self.arm_body(body, join)?,
            None => {
                let u = self.imm(0);
                match join {
                    Some(j) => {
                        self.b.ins().jump(j, &args(&[u]));
                    }
                    None => {
                        self.b.ins().return_(&[u]);
                    }
                }
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- prims

    fn prim(
        &mut self,
        p: Prim,
        a: &[TExpr],
        t: crate::types::Ty,
        loc: Loc,
    ) -> Result<Value, CodegenError> {
        if let Some(target) = p.typed_target() {
            return self.typed_call(p, target, a, t, loc);
        }
        let mut vals = vec![];
        for e in a {
            vals.push(self.expr(e)?);
        }
        prim_op(self, p, &vals, t, loc)
    }

    /// A typed call (`Assert.equal x y` is `Assert.equal_typed d x y`,
    /// `d` the descriptor of the type of `x`; `Check.forall g p` is
    /// `Check.forall_typed d g p`, `d` that of the values `g` makes).
    fn typed_call(
        &mut self,
        p: Prim,
        target: &str,
        a: &[TExpr],
        t: crate::types::Ty,
        loc: Loc,
    ) -> Result<Value, CodegenError> {
        use crate::types::{builtin, TyNode};
        let described = match (p, self.g.checker.types.node(t)) {
            (Prim::CheckForall, TyNode::Con(_, args)) if args.len() == 1 => args[0],
            _ => t,
        };
        let d = self.g.desc_of(described);
        let Some(gid) = self.g.program.globals.iter().position(|g| g.name == target) else {
            return Err(CodegenError(format!("{target} is not defined")));
        };
        let unit = self.g.checker.types.mk(TyNode::Con(builtin::UNIT, vec![]));
        let mut args = vec![TExpr::Imm(d as i64)];
        args.extend(a.iter().cloned());
        let call = TExpr::App(Box::new(TExpr::Global(gid as u32)), args, loc, unit);
        self.expr(&call)
    }
}

/// Emits intrinsic `p` on already evaluated arguments (`t` is the type of
/// the first argument, for specialising comparisons).
fn prim_op(
    fx: &mut Fx,
    p: Prim,
    vals: &[Value],
    t: crate::types::Ty,
    loc: Loc,
) -> Result<Value, CodegenError> {
    use Prim::*;
    let x = vals[0];
    let y = vals.get(1).copied().unwrap_or(x);
    let b = &mut fx.b;
    Ok(match p {
        AddInt => {
            let s = b.ins().iadd(x, y);
            b.ins().iadd_imm_s(s, -1)
        }
        SubInt => {
            let s = b.ins().isub(x, y);
            b.ins().iadd_imm_s(s, 1)
        }
        MulInt => {
            let a = b.ins().sshr_imm_s(x, 1);
            let c = b.ins().iadd_imm_s(y, -1);
            let m = b.ins().imul(a, c);
            b.ins().iadd_imm_s(m, 1)
        }
        DivInt | ModInt => {
            let zero = b.ins().icmp_imm_s(IntCC::Equal, y, 1);
            let bad = b.create_block();
            let ok = b.create_block();
            b.set_cold_block(bad);
            b.ins().brif(zero, bad, &[], ok, &[]);
            b.switch_to_block(bad);
            let l = fx.g.loc_data(loc)?;
            let lv = fx.data_addr(l);
            let pr = fx.proc_;
            fx.at(loc);
            fx.rt_gc("caravan_rt_div_by_zero", &[pr, lv])?;
            fx.no_loc();
            fx.b.ins().jump(ok, &[]);
            fx.b.switch_to_block(ok);
            let a = fx.untag(x);
            let c = fx.untag(y);
            let r = if p == DivInt {
                fx.b.ins().sdiv(a, c)
            } else {
                fx.b.ins().srem(a, c)
            };
            fx.tag(r)
        }
        NegInt => {
            let two = b.ins().iconst(I64, 2);
            b.ins().isub(two, x)
        }
        AndInt => b.ins().band(x, y),
        OrInt => b.ins().bor(x, y),
        XorInt => {
            let r = b.ins().bxor(x, y);
            b.ins().bor_imm_s(r, 1)
        }
        LslInt => {
            let n = b.ins().sshr_imm_s(y, 1);
            let a = b.ins().iadd_imm_s(x, -1);
            let r = b.ins().ishl(a, n);
            b.ins().bor_imm_s(r, 1)
        }
        LsrInt => {
            let n = b.ins().sshr_imm_s(y, 1);
            let r = b.ins().ushr(x, n);
            b.ins().bor_imm_s(r, 1)
        }
        AsrInt => {
            let n = b.ins().sshr_imm_s(y, 1);
            let r = b.ins().sshr(x, n);
            b.ins().bor_imm_s(r, 1)
        }
        AddFloat | SubFloat | MulFloat | DivFloat => {
            let a = fx.unbox_float(x);
            let c = fx.unbox_float(y);
            let r = match p {
                AddFloat => fx.b.ins().fadd(a, c),
                SubFloat => fx.b.ins().fsub(a, c),
                MulFloat => fx.b.ins().fmul(a, c),
                _ => fx.b.ins().fdiv(a, c),
            };
            fx.box_float(r)?
        }
        NegFloat => {
            let a = fx.unbox_float(x);
            let r = fx.b.ins().fneg(a);
            fx.box_float(r)?
        }
        FloatOfInt => {
            let a = fx.untag(x);
            let f = fx.b.ins().fcvt_from_sint(F64, a);
            fx.box_float(f)?
        }
        IntOfFloat => {
            let a = fx.unbox_float(x);
            let i = fx.b.ins().fcvt_to_sint_sat(I64, a);
            fx.tag(i)
        }
        Equal | NotEqual | Lt | Gt | Le | Ge | Compare => {
            if fx.g.is_immediate_type(t) {
                if p == Compare {
                    let gt = fx.b.ins().icmp(IntCC::SignedGreaterThan, x, y);
                    let lt = fx.b.ins().icmp(IntCC::SignedLessThan, x, y);
                    let gt = fx.b.ins().uextend(I64, gt);
                    let lt = fx.b.ins().uextend(I64, lt);
                    let d = fx.b.ins().isub(gt, lt);
                    return Ok(fx.tag(d));
                }
                let cc = match p {
                    Equal => IntCC::Equal,
                    NotEqual => IntCC::NotEqual,
                    Lt => IntCC::SignedLessThan,
                    Gt => IntCC::SignedGreaterThan,
                    Le => IntCC::SignedLessThanOrEqual,
                    _ => IntCC::SignedGreaterThanOrEqual,
                };
                let c = fx.b.ins().icmp(cc, x, y);
                return Ok(fx.bool_of(c));
            }
            if fx.g.is_float_type(t) && p != Compare {
                let a = fx.unbox_float(x);
                let c = fx.unbox_float(y);
                let cc = match p {
                    Equal => FloatCC::Equal,
                    NotEqual => FloatCC::NotEqual,
                    Lt => FloatCC::LessThan,
                    Gt => FloatCC::GreaterThan,
                    Le => FloatCC::LessThanOrEqual,
                    _ => FloatCC::GreaterThanOrEqual,
                };
                let r = fx.b.ins().fcmp(cc, a, c);
                return Ok(fx.bool_of(r));
            }
            let pr = fx.proc_;
            // Through trampolines, marked with the location: comparing
            // functions crashes, and the crash names the caller.
            fx.at(loc);
            let r = match p {
                Equal => fx.rt_gc("caravan_rt_equal", &[pr, x, y])?,
                NotEqual => {
                    let e = fx.rt_gc("caravan_rt_equal", &[pr, x, y])?;
                    let four = fx.b.ins().iconst(I64, 4);
                    fx.b.ins().isub(four, e)
                }
                _ => {
                    let c = fx.rt_gc("caravan_rt_compare", &[pr, x, y])?;
                    if p == Compare {
                        fx.tag(c)
                    } else {
                        let cc = match p {
                            Lt => IntCC::SignedLessThan,
                            Gt => IntCC::SignedGreaterThan,
                            Le => IntCC::SignedLessThanOrEqual,
                            _ => IntCC::SignedGreaterThanOrEqual,
                        };
                        let r = fx.b.ins().icmp_imm_s(cc, c, 0);
                        fx.bool_of(r)
                    }
                }
            };
            fx.no_loc();
            r
        }
        PhysEq => {
            let c = b.ins().icmp(IntCC::Equal, x, y);
            fx.bool_of(c)
        }
        PhysNe => {
            let c = b.ins().icmp(IntCC::NotEqual, x, y);
            fx.bool_of(c)
        }
        Not => {
            let four = b.ins().iconst(I64, 4);
            b.ins().isub(four, x)
        }
        Identity => x,
        Failwith => {
            let l = fx.g.loc_data(loc)?;
            let lv = fx.data_addr(l);
            let pr = fx.proc_;
            fx.at(loc);
            let r = fx.rt_gc("caravan_rt_failwith", &[pr, x, lv])?;
            fx.no_loc();
            r
        }
        Raise => fx.raise(x, loc)?,
        Inspect | InspectTop => {
            let d = fx.g.desc_of(t);
            let dv = fx.imm(d as i64);
            let pr = fx.proc_;
            fx.at(loc);
            let f = if p == Inspect {
                "caravan_inspect"
            } else {
                "caravan_inspect_top"
            };
            let r = fx.rt_gc(f, &[pr, x, dv])?;
            fx.no_loc();
            r
        }
        RegistryGlobal => {
            // `t` is `'m name`: the descriptor of `'m` travels with it.
            let m = match fx.g.checker.types.node(t) {
                crate::types::TyNode::Con(_, args) if args.len() == 1 => args[0],
                _ => t,
            };
            let d = fx.g.desc_of(m);
            let dv = fx.imm(d as i64);
            let pr = fx.proc_;
            fx.rt_gc("caravan_registry_global", &[pr, x, dv])?
        }
        AssertEqual | CheckForall | AssertIsTrue | AssertCrashes => {
            unreachable!("typed calls are lowered by Fx::prim")
        }
    })
}

/// Whether `e` is a literal built only of constants (so it can live in
/// static data, built once at compile time, as OCaml does).
pub(crate) fn is_constant(e: &TExpr) -> bool {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            TExpr::Imm(_) | TExpr::Str(_) | TExpr::Float(_) => {}
            TExpr::Block(_, fs) if !fs.is_empty() => stack.extend(fs.iter()),
            _ => return false,
        }
    }
    true
}

/// Emits a prim inside a generated wrapper function (no static type info).
pub(crate) fn wrapper_body(g: &mut Gen, func: FuncId, x: ExternId) -> Result<(), CodegenError> {
    let info = g.program.externs[x as usize].clone();
    let params: Vec<VarId> = (0..info.arity.max(1))
        .map(|i| u32::MAX - i as u32)
        .collect();
    let args_e: Vec<TExpr> = params
        .iter()
        .take(info.arity)
        .map(|p| TExpr::Local(*p))
        .collect();
    let loc = Loc {
        file: usize::MAX,
        span: Default::default(),
    };
    let body = match info.symbol.strip_prefix('%').and_then(Prim::from_symbol) {
        // The type variable of a generic wrapper: use a fresh one, so
        // comparisons go through the polymorphic runtime function.
        Some(p) => TExpr::Prim(p, args_e, g.checker.types.var(crate::types::GENERIC), loc),
        None => TExpr::CallExtern(x, args_e, loc),
    };
    let lam = TLambda {
        params,
        param_tys: vec![],
        body: Box::new(body),
        name: info.name.clone(),
        span: Default::default(),
        file: usize::MAX,
    };
    compile_function(g, func, &lam, &[], None, false)
}

/// The free variables of a lambda, in first-occurrence order.
fn free_vars(l: &TLambda) -> Vec<VarId> {
    // Variable ids are unique per program, so one `bound` set suffices.
    // What an expression binds around a child is added just before the
    // child is visited, as a recursive walk would; children are visited
    // first to last, each with everything inside it before the next.
    let mut bound: HashSet<VarId> = l.params.iter().copied().collect();
    let mut out = vec![];
    let mut seen = HashSet::new();
    let mut vars = vec![];
    let mut work: Vec<(&TExpr, visit::Binds)> = vec![(&l.body, visit::Binds::Nothing)];
    while let Some((e, binds)) = work.pop() {
        binds.vars(&mut vars);
        bound.extend(vars.drain(..));
        if let TExpr::Local(x) = e {
            if !bound.contains(x) && seen.insert(*x) {
                out.push(*x);
            }
        }
        let first = work.len();
        visit::for_each_child(e, |c, binds| work.push((c, binds)));
        work[first..].reverse();
    }
    out
}

/// True when [`Fx::tail`] may compile `e` before the prologue's checks,
/// leaving them to the parts of `e` in tail position: `e` makes no call
/// before it branches or ends (its condition, scrutinee, guards, bound
/// value or first statement calls nothing, [`calls_nothing`]).
///
/// This is how a path that makes no call skips the reduction count and
/// the stack check: fib's base case `if n < 2 then n` returns without
/// either, and each path that calls still checks once before its first
/// call, so every cycle of calls still counts a reduction per call made
/// (per two calls where [`Fx::unroll`] copied a function into its own
/// calls; LANGUAGE.md §2: preemption by reductions) and every frame that calls
/// has checked its stack. A path that calls nothing ends without growing
/// the stack past its own frame (the VM keeps 64 KiB below the limit for
/// it, as for the runtime's frames). The idea is leaf functions without
/// checks, as in Go (`NOSPLIT` leaves) and OCaml (no poll in a function
/// that neither loops nor allocates), taken per path.
fn defers_check(e: &TExpr) -> bool {
    match e {
        TExpr::If(c, _, _) => calls_nothing(c),
        TExpr::Let(_, a, _) | TExpr::Seq(a, _) | TExpr::And(a, _) | TExpr::Or(a, _) => {
            calls_nothing(a)
        }
        TExpr::Match(s, arms, _) => {
            calls_nothing(s)
                && arms
                    .iter()
                    .all(|a| a.guard.as_ref().is_none_or(calls_nothing))
        }
        e => calls_nothing(e),
    }
}

/// True for a body [`Fx::unroll`] may copy: at most [`UNROLL_NODES`]
/// nodes, none of which defines a function (its code would be compiled
/// twice), handles exceptions or receives (their landing pads and
/// loops are one per site).
fn unrollable(body: &TExpr) -> bool {
    small_tree(body, UNROLL_NODES, |e| match e {
        TExpr::Lambda(_) | TExpr::LetRec(..) | TExpr::Try { .. } | TExpr::Receive { .. } => None,
        _ => Some(true),
    })
}

/// True when `e` has at most `limit` nodes and `node` accepts each one it
/// reaches: `None` rejects the tree, `Some(true)` accepts the node and
/// looks at its children, `Some(false)` accepts it as a leaf. Iterative,
/// and stops at the limit: the terms may be huge.
fn small_tree<'e>(
    e: &'e TExpr,
    limit: usize,
    mut node: impl FnMut(&'e TExpr) -> Option<bool>,
) -> bool {
    let mut work = vec![e];
    let mut nodes = 0;
    while let Some(e) = work.pop() {
        nodes += 1;
        if nodes > limit {
            return false;
        }
        match node(e) {
            None => return false,
            Some(true) => crate::typed::visit::for_each_child(e, |c, _| work.push(c)),
            Some(false) => {}
        }
    }
    true
}

/// True when evaluating `e` never calls generated code, never blocks and
/// never yields: it is built of literals, variables, blocks, fields,
/// branches, bindings and the prims that compile inline or to a leaf of
/// the runtime (arithmetic, comparisons). Anything else (an application,
/// a builtin, a function literal, `receive`, `try`, a raise) counts as a
/// call. Iterative: the terms may nest a million deep.
fn calls_nothing(e: &TExpr) -> bool {
    small_tree(e, usize::MAX, |e| match e {
        TExpr::Imm(_) | TExpr::Float(_) | TExpr::Str(_) | TExpr::Local(_) | TExpr::Global(_) => {
            Some(false)
        }
        TExpr::Block(..)
        | TExpr::Field(..)
        | TExpr::Update(..)
        | TExpr::If(..)
        | TExpr::Seq(..)
        | TExpr::And(..)
        | TExpr::Or(..)
        | TExpr::Let(..)
        | TExpr::Match(..) => Some(true),
        TExpr::Prim(p, ..) if prim_calls_nothing(*p) => Some(true),
        _ => None,
    })
}

/// The prims [`calls_nothing`] accepts: inline arithmetic and comparisons
/// (structural ones call the runtime's `compare`, which calls no generated
/// code).
fn prim_calls_nothing(p: Prim) -> bool {
    use Prim::*;
    p.is_comparison()
        || matches!(
            p,
            AddInt
                | SubInt
                | MulInt
                | DivInt
                | ModInt
                | NegInt
                | AndInt
                | OrInt
                | XorInt
                | LslInt
                | LsrInt
                | AsrInt
                | AddFloat
                | SubFloat
                | MulFloat
                | DivFloat
                | NegFloat
                | Compare
                | Not
                | Identity
                | FloatOfInt
                | IntOfFloat
        )
}
