//! Functions whose stack frame is larger than the 64 KiB the VM keeps
//! below a process's stack limit (`caravan_vm::stack::MAX_UNCHECKED_FRAME`,
//! docs/vm-abi.md "Large frames"): 9,000 values live at once make a
//! 72 KB frame. A process entering one near the end of its stack slot
//! gets its stack grown first; one whose frames pass the whole-stack
//! limit crashes alone with `"stack overflow"`.
//!
//! Before the fix, Cranelift's prologue made the frame before the
//! function's stack check: entered within about 8 KB of the limit, the
//! frame reached past the slot's guard page, and the VM aborted ("a
//! process ran into its stack guard page") or the frame overwrote the
//! slot below.

mod support;

use std::fmt::Write;
use std::time::Duration;
use support::{stderr, stdout, Run};

/// The optimised binary when CI built one (compiling the 9,000-value
/// function takes 7 s there, 11 s in a debug build), else this build's.
fn bin() -> Option<String> {
    std::env::var("CARAVAN_RELEASE_BIN")
        .or_else(|_| std::env::var("CARAVAN_TORTURE_BIN"))
        .ok()
}

/// `big x`: `n` values, each from the last, all used at the end in
/// reverse order (so all are live at once and spilled).
fn big(n: usize) -> String {
    let mut s = String::from("let big x =\n  let a0 = x * 3 + 1 in\n");
    for i in 1..n {
        writeln!(s, "  let a{i} = a{} * 3 + {} in", i - 1, i % 7).unwrap();
    }
    let terms: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    writeln!(s, "  {}{}", terms.join(" - ("), ")".repeat(n - 1)).unwrap();
    s
}

const MAIN: &str = r#"
let rec deep n x = if n = 0 then big x else 1 + deep (n - 1) x

(* Each depth in a fresh process, so that [big] is entered at every
   distance from the slot's stack limit, in steps of 13 calls. *)
let rec sweep expected d bad =
  if d > 20_000 then bad
  else
    let p = spawn (fun _ -> if deep d 5 - d <> expected then failwith "wrong") in
    match Process.join p with
    | Normal -> sweep expected (d + 13) bad
    | _ -> sweep expected (d + 13) (bad + 1)

(* A frame of [big] per level: the stack grows to its limit. *)
let rec down n = big n - down (n + 1)

let () =
  let neighbours =
    List.init 50 (fun _ -> spawn (fun (me : int pid) -> receive me with (k : int) -> ignore k))
  in
  let expected = big 5 in
  Printf.printf "depths with a wrong result: %d\n" (sweep expected 0 0);
  List.iter (fun p -> send p 0) neighbours;
  let normal =
    List.filter (fun p -> match Process.join p with Normal -> true | _ -> false) neighbours
  in
  Printf.printf "neighbours exited normally: %d\n" (List.length normal);
  let d = spawn (fun _ -> ignore (down 0)) in
  (match Process.join d with
  | Crashed m -> print_endline ("down: crashed: " ^ m)
  | _ -> print_endline "down: ?");
  print_endline "end"
"#;

#[test]
fn large_frames_grow_the_stack_before_they_are_made() {
    let dir = std::env::temp_dir().join(format!("caravan-frames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("large_frames.cvn");
    std::fs::write(&path, format!("{}{MAIN}", big(9000))).unwrap();
    let bin = bin();
    // Also with stacks moving every few calls (stack torture): a large
    // frame's `caravan_rt_stack_reserve` then moves the stack too.
    for env in [&[][..], &[("CARAVAN_STACK_TORTURE", "1")][..]] {
        let o = Run {
            opts: &["--max-stack-mb", "8"],
            bin: bin.as_deref(),
            env,
            ..Default::default()
        }
        .file(path.to_str().unwrap(), Duration::from_secs(300));
        let err = stderr(&o);
        assert_eq!(
            stdout(&o),
            "depths with a wrong result: 0\n\
             neighbours exited normally: 50\n\
             down: crashed: stack overflow\n\
             end\n",
            "{env:?}: stderr: {err}"
        );
        assert!(o.status.success(), "{env:?}: {:?}: {err}", o.status);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
