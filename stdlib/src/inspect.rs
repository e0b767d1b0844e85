//! `inspect : 'a -> string`: renders any value in source syntax.
//!
//! Values are untagged at run time (`Leaf`, `0`, `false` and `[]` are the
//! same word), so the compiler passes, at each call site, a description of
//! the argument's static type: an index into a global, append-only table of
//! [`Desc`] nodes (recursive types make the table a cyclic graph). A value
//! whose type is still polymorphic prints as `<poly>`, as in OCaml's
//! toplevel. The printer is iterative (an explicit work list), so deep
//! values never overflow the process stack.

use caravan_vm::value::{self as v, float_of, int_of, string_bytes, Value};
use caravan_vm::{alloc_string, Process};

pub use caravan_vm::term::desc::{append, next_id, Desc, DescId};

enum Task {
    /// A value, its type, whether it is in argument position, its depth.
    Value(Value, DescId, bool, usize),
    Text(&'static str),
}

/// How much of a value to print: past `depth` nested constructors, or
/// once `length` values have been printed, the rest is `...` (OCaml's
/// toplevel `#print_depth` and `#print_length`, whose defaults these are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nesting depth printed.
    pub depth: usize,
    /// Values printed in all.
    pub length: usize,
}

impl Limits {
    /// No limit (`inspect`).
    pub const NONE: Limits = Limits {
        depth: usize::MAX,
        length: usize::MAX,
    };
    /// The REPL's and `Assert`'s: OCaml's toplevel defaults, depth 100 and
    /// 300 values, so a million-node tree prints one screen, not 21 MB.
    pub const TOPLEVEL: Limits = Limits {
        depth: 100,
        length: 300,
    };
}

/// Renders `v` of type `d` (`arg`: in argument position, so compound
/// values get parentheses).
pub fn render(table: &[Desc], v: Value, d: DescId, arg: bool) -> String {
    render_limited(table, v, d, arg, Limits::NONE)
}

/// [`render`] within `limits`.
pub fn render_limited(table: &[Desc], v: Value, d: DescId, arg: bool, limits: Limits) -> String {
    let mut r = Renderer {
        table,
        out: String::new(),
        work: vec![Task::Value(v, d, arg, 0)],
        limits,
        printed: 0,
    };
    while let Some(t) = r.work.pop() {
        match t {
            Task::Text(s) => r.out.push_str(s),
            Task::Value(x, d, arg, depth) => {
                if depth > r.limits.depth || r.printed >= r.limits.length {
                    r.out.push_str("...");
                } else {
                    r.printed += 1;
                    r.step(x, d, arg, depth);
                }
            }
        }
    }
    r.out
}

struct Renderer<'a> {
    table: &'a [Desc],
    out: String,
    work: Vec<Task>,
    limits: Limits,
    /// Values printed so far.
    printed: usize,
}

impl Renderer<'_> {
    /// How many more elements of a sequence are worth collecting: those
    /// past the length limit print as one `...`.
    fn budget(&self) -> usize {
        self.limits.length.saturating_sub(self.printed)
    }

    /// Pushes `items` separated by `sep`, followed by `; ...` when the
    /// sequence was cut (`more`).
    fn push_seq(
        &mut self,
        items: Vec<(Value, DescId)>,
        sep: &'static str,
        arg: bool,
        depth: usize,
        more: bool,
    ) {
        if more {
            self.work.push(Task::Text("..."));
            if !items.is_empty() {
                self.work.push(Task::Text(sep));
            }
        }
        for (i, (x, d)) in items.into_iter().enumerate().rev() {
            self.work.push(Task::Value(x, d, arg, depth + 1));
            if i > 0 {
                self.work.push(Task::Text(sep));
            }
        }
    }
}

/// Writes `bytes` as the inside of a string (`quote` = `"`) or char
/// (`quote` = `'`) literal: valid UTF-8 text as it is (so `"héllo"` stays
/// readable), control characters, DEL and bytes that are not valid UTF-8
/// as OCaml's escapes (`\n`, `\t`, `\r`, `\ddd`). A char is one byte, so
/// a byte of 128 or more in a char literal is always `\ddd`.
fn escape(bytes: &[u8], quote: u8, out: &mut String) {
    let escape_byte = |c: u8, out: &mut String| match c {
        b'\n' => out.push_str("\\n"),
        b'\t' => out.push_str("\\t"),
        b'\r' => out.push_str("\\r"),
        b'\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c as char);
        }
        32..=126 => out.push(c as char),
        c => out.push_str(&format!("\\{c:03}")),
    };
    if quote != b'"' {
        bytes.iter().for_each(|&c| escape_byte(c, out));
        return;
    }
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if ch.is_ascii() {
                escape_byte(ch as u8, out);
            } else if ch.is_control() {
                // C1 controls (U+0080..U+009F): their UTF-8 bytes, escaped.
                let mut buf = [0u8; 4];
                for &b in ch.encode_utf8(&mut buf).as_bytes() {
                    escape_byte(b, out);
                }
            } else {
                out.push(ch);
            }
        }
        chunk.invalid().iter().for_each(|&c| escape_byte(c, out));
    }
}

impl Renderer<'_> {
    fn step(&mut self, x: Value, d: DescId, arg: bool, depth: usize) {
        let table = self.table;
        let desc = table.get(d as usize).unwrap_or(&Desc::Poly);
        let budget = self.budget();
        let out = &mut self.out;
        match desc {
            Desc::Int => {
                let n = int_of(x);
                if n < 0 && arg {
                    out.push_str(&format!("({n})"));
                } else {
                    out.push_str(&n.to_string());
                }
            }
            Desc::Float => {
                // SAFETY: a value of type float is a float block.
                let f = unsafe { float_of(x) };
                let s = crate::builtins::repr_float(f);
                if s.starts_with('-') && arg {
                    out.push_str(&format!("({s})"));
                } else {
                    out.push_str(&s);
                }
            }
            Desc::Bool => out.push_str(if x == v::TRUE { "true" } else { "false" }),
            Desc::Char => {
                out.push('\'');
                escape(&[int_of(x) as u8], b'\'', out);
                out.push('\'');
            }
            Desc::String => {
                out.push('"');
                // SAFETY: a value of type string is a string block.
                escape(unsafe { string_bytes(x) }, b'"', out);
                out.push('"');
            }
            Desc::Unit => out.push_str("()"),
            Desc::Poly | Desc::Pending => out.push_str("<poly>"),
            Desc::Fun => out.push_str("<fun>"),
            Desc::Pid(_) | Desc::ProcessId => {
                match caravan_vm::dist::remote_label(int_of(x) as u64) {
                    // A process of another node: <node.id.serial>, as Erlang
                    // prints a remote pid (with the node's name for its index).
                    Some(l) => out.push_str(&l),
                    None => out.push_str(&format!("<0.{}>", int_of(x))),
                }
            }
            Desc::Reply(_) => out.push_str("<reply>"),
            // An `Int64.t` (the only abstract value with this tag) as its
            // literal in OCaml, as OCaml's toplevel prints it.
            // SAFETY: a value of this type; a block's header is readable.
            Desc::Abstract(_)
                if v::is_block(x) && unsafe { v::header_tag(v::header(x)) } == v::TAG_INT64 =>
            {
                // SAFETY: an `Int64.t` holds its integer in word 0.
                let n = unsafe { v::field(x, 0) } as i64;
                if n < 0 && arg {
                    out.push_str(&format!("({n}L)"));
                } else {
                    out.push_str(&format!("{n}L"));
                }
            }
            Desc::Abstract(name) => out.push_str(&format!("<{name}>")),
            Desc::List(e) => {
                let mut items = vec![];
                let mut cur = x;
                while cur != v::UNIT && items.len() < budget {
                    // SAFETY: a non-empty list is a cons block [head, tail].
                    unsafe {
                        items.push((v::field(cur, 0), *e));
                        cur = v::field(cur, 1);
                    }
                }
                out.push('[');
                self.work.push(Task::Text("]"));
                self.push_seq(items, "; ", false, depth, cur != v::UNIT);
            }
            Desc::Map(k, val) => {
                // In-order walk of `Node (l, k, v, r, h)` / `Empty` (an
                // immediate), with an explicit stack.
                let mut items = vec![];
                let mut stack = vec![];
                let mut cur = x;
                while items.len() < budget {
                    if !v::is_immediate(cur) {
                        stack.push(cur);
                        // SAFETY: a map node is a block of five fields.
                        cur = unsafe { v::field(cur, 0) };
                        continue;
                    }
                    let Some(n) = stack.pop() else { break };
                    // SAFETY: as above.
                    unsafe {
                        items.push((v::field(n, 1), v::field(n, 2)));
                        cur = v::field(n, 3);
                    }
                }
                let more = !stack.is_empty() || !v::is_immediate(cur);
                if arg {
                    out.push('(');
                    self.work.push(Task::Text(")"));
                }
                out.push_str("Map.of_list [");
                self.work.push(Task::Text("]"));
                if more {
                    self.work.push(Task::Text("; ..."));
                }
                let (k, val) = (*k, *val);
                for (i, (kx, vx)) in items.into_iter().enumerate().rev() {
                    self.work.push(Task::Text(")"));
                    self.work.push(Task::Value(vx, val, false, depth + 1));
                    self.work.push(Task::Text(", "));
                    self.work.push(Task::Value(kx, k, false, depth + 1));
                    self.work.push(Task::Text("("));
                    if i > 0 {
                        self.work.push(Task::Text("; "));
                    }
                }
            }
            Desc::Tuple(ds) => {
                // SAFETY: a tuple is a block with one field per component.
                let items = ds
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (unsafe { v::field(x, i) }, *d))
                    .collect();
                out.push('(');
                self.work.push(Task::Text(")"));
                self.push_seq(items, ", ", false, depth, false);
            }
            Desc::Record(fs, _) => {
                out.push_str("{ ");
                self.work.push(Task::Text(" }"));
                for (i, (name, d)) in fs.iter().enumerate().rev() {
                    // SAFETY: a record is a block with one field per label.
                    let fx = unsafe { v::field(x, i) };
                    self.work.push(Task::Value(fx, *d, false, depth + 1));
                    self.work.push(Task::Text(leak_label(name)));
                    if i > 0 {
                        self.work.push(Task::Text("; "));
                    }
                }
            }
            Desc::Variant { consts, blocks } => {
                if v::is_immediate(x) {
                    let n = int_of(x) as usize;
                    out.push_str(
                        consts
                            .get(n)
                            .map_or("<unknown constructor>", |s| s.as_str()),
                    );
                    return;
                }
                // SAFETY: a non-constant constructor is a block whose tag is
                // its index among the type's block constructors.
                let tag = v::header_tag(unsafe { v::header(x) }) as usize;
                let Some((name, args)) = blocks.get(tag) else {
                    out.push_str("<unknown constructor>");
                    return;
                };
                if arg {
                    out.push('(');
                    self.work.push(Task::Text(")"));
                }
                out.push_str(name);
                out.push(' ');
                // SAFETY: the block has one field per argument.
                let items: Vec<(Value, DescId)> = args
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (unsafe { v::field(x, i) }, *d))
                    .collect();
                if items.len() == 1 {
                    let (y, d) = items[0];
                    self.work.push(Task::Value(y, d, true, depth + 1));
                } else {
                    out.push('(');
                    self.work.push(Task::Text(")"));
                    self.push_seq(items, ", ", false, depth, false);
                }
            }
        }
    }
}

/// Field labels live as long as the table (which is never shrunk); the
/// work list wants `&'static str`, so labels are interned once.
fn leak_label(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static LABELS: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut g = LABELS.lock().unwrap_or_else(|e| e.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    let key = format!("{name} = ");
    if let Some(s) = set.get(key.as_str()) {
        return s;
    }
    let s: &'static str = Box::leak(key.into_boxed_str());
    set.insert(s);
    s
}

/// `inspect v` within the toplevel's [`Limits`] (the REPL's values,
/// `Assert.equal`'s and `Check.forall`'s messages), with the descriptor of
/// `v`'s type (a tagged int).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and `x`
/// has the type `desc` describes.
#[no_mangle]
pub unsafe extern "C" fn caravan_inspect_top(proc: *mut Process, x: Value, desc: Value) -> Value {
    let s = {
        let table = caravan_vm::term::desc::table();
        render_limited(&table, x, int_of(desc) as DescId, false, Limits::TOPLEVEL)
    };
    // SAFETY: generated code passes its own live process.
    alloc_string(unsafe { &mut *proc }, s.as_bytes())
}

/// `inspect v` with the descriptor of `v`'s type (a tagged int).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and `x`
/// has the type `desc` describes.
#[no_mangle]
pub unsafe extern "C" fn caravan_inspect(proc: *mut Process, x: Value, desc: Value) -> Value {
    let s = {
        let table = caravan_vm::term::desc::table();
        render(&table, x, int_of(desc) as DescId, false)
    };
    // SAFETY: generated code passes its own live process.
    alloc_string(unsafe { &mut *proc }, s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[i64]) -> (Vec<Vec<u64>>, Value) {
        // Cons cells as boxed two-field blocks with a header before them.
        let mut cells: Vec<Vec<u64>> = vec![];
        let mut tail = v::UNIT;
        for &n in items.iter().rev() {
            let header = v::make_header(2, 0);
            cells.push(vec![header, v::of_int(n), tail]);
            tail = cells.last().unwrap().as_ptr() as u64 + 8;
        }
        (cells, tail)
    }

    #[test]
    fn long_lists_are_cut_after_the_length_limit() {
        let table = vec![Desc::Int, Desc::List(0)];
        let items: Vec<i64> = (0..1000).collect();
        let (_cells, l) = list(&items);
        let s = render_limited(&table, l, 1, false, Limits::TOPLEVEL);
        assert!(s.starts_with("[0; 1; 2; "), "{s}");
        assert!(s.ends_with("; 297; 298; ...]"), "{s}");
        let small = Limits {
            depth: 10,
            length: 4,
        };
        assert_eq!(render_limited(&table, l, 1, false, small), "[0; 1; 2; ...]");
        let (_c2, short) = list(&[1, 2]);
        assert_eq!(render_limited(&table, short, 1, false, small), "[1; 2]");
        assert_eq!(render(&table, short, 1, false), "[1; 2]");
    }
}
