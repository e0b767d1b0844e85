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
    Value(Value, DescId, bool),
    Text(&'static str),
}

/// Renders `v` of type `d` (`arg`: in argument position, so compound
/// values get parentheses).
pub fn render(table: &[Desc], v: Value, d: DescId, arg: bool) -> String {
    let mut out = String::new();
    let mut work = vec![Task::Value(v, d, arg)];
    while let Some(t) = work.pop() {
        match t {
            Task::Text(s) => out.push_str(s),
            Task::Value(x, d, arg) => step(table, x, d, arg, &mut out, &mut work),
        }
    }
    out
}

fn push_seq(work: &mut Vec<Task>, items: Vec<(Value, DescId)>, sep: &'static str, arg: bool) {
    for (i, (x, d)) in items.into_iter().enumerate().rev() {
        work.push(Task::Value(x, d, arg));
        if i > 0 {
            work.push(Task::Text(sep));
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

fn step(table: &[Desc], x: Value, d: DescId, arg: bool, out: &mut String, work: &mut Vec<Task>) {
    let desc = table.get(d as usize).unwrap_or(&Desc::Poly);
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
            let s = crate::builtins::format_float(f);
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
        Desc::Pid(_) | Desc::ProcessId => out.push_str(&format!("<0.{}>", int_of(x))),
        Desc::Reply(_) => out.push_str("<reply>"),
        Desc::Abstract(name) => out.push_str(&format!("<{name}>")),
        Desc::List(e) => {
            let mut items = vec![];
            let mut cur = x;
            while cur != v::UNIT {
                // SAFETY: a non-empty list is a cons block [head, tail].
                unsafe {
                    items.push((v::field(cur, 0), *e));
                    cur = v::field(cur, 1);
                }
            }
            out.push('[');
            work.push(Task::Text("]"));
            push_seq(work, items, "; ", false);
        }
        Desc::Tuple(ds) => {
            // SAFETY: a tuple is a block with one field per component.
            let items = ds
                .iter()
                .enumerate()
                .map(|(i, d)| (unsafe { v::field(x, i) }, *d))
                .collect();
            out.push('(');
            work.push(Task::Text(")"));
            push_seq(work, items, ", ", false);
        }
        Desc::Record(fs, _) => {
            out.push_str("{ ");
            work.push(Task::Text(" }"));
            for (i, (name, d)) in fs.iter().enumerate().rev() {
                // SAFETY: a record is a block with one field per label.
                work.push(Task::Value(unsafe { v::field(x, i) }, *d, false));
                work.push(Task::Text(leak_label(name)));
                if i > 0 {
                    work.push(Task::Text("; "));
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
                work.push(Task::Text(")"));
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
                work.push(Task::Value(y, d, true));
            } else {
                out.push('(');
                work.push(Task::Text(")"));
                push_seq(work, items, ", ", false);
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
