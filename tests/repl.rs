//! The REPL driven through a pseudo-terminal (expectrl), as a user would:
//! definitions persisting, errors, multi-line input, processes across
//! phrases, `:type`, `:load`, completion, Ctrl-C.

use expectrl::session::OsSession as Session;
use expectrl::{ControlCode, Expect};
use std::process::Command;
use std::time::Duration;

fn repl() -> Session {
    let home = std::env::temp_dir().join(format!("caravan-repl-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caravan"));
    cmd.arg("repl")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("NO_COLOR", "1");
    let mut s = expectrl::Session::spawn(cmd).expect("spawn caravan repl");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("# ").expect("first prompt");
    s
}

fn line(s: &mut Session, input: &str, expect: &str) {
    s.send_line(input).unwrap();
    if let Err(e) = s.expect(expect) {
        panic!("after {input:?}: expected {expect:?}: {e}");
    }
}

#[test]
fn definitions_persist_between_phrases() {
    let mut s = repl();
    line(&mut s, "let x = 40", "val x : int = 40");
    line(
        &mut s,
        "let add a b = a + b",
        "val add : int -> int -> int = <fun>",
    );
    line(&mut s, "add x 2", "- : int = 42");
    line(
        &mut s,
        "type shape = Circle of float | Square of float",
        "type shape",
    );
    line(
        &mut s,
        "[Circle 1.5; Square 2.0]",
        "- : shape list = [Circle 1.5; Square 2.]",
    );
    s.send_line(":quit").unwrap();
}

#[test]
fn a_type_error_then_a_correct_phrase() {
    let mut s = repl();
    line(
        &mut s,
        "let y : int = \"no\"",
        "expected `int`, found `string`",
    );
    line(&mut s, "let y = 7", "val y : int = 7");
    line(&mut s, "y * 6", "- : int = 42");
    s.send_line(":quit").unwrap();
}

#[test]
fn multi_line_input_continues_until_complete() {
    let mut s = repl();
    // A phrase that starts incomplete is read until an empty line or `;;`.
    // (Each line is typed after the previous one was read, as a user
    // would: the line editor drops typeahead it has not read yet.)
    let typed = |s: &mut Session, l: &str| {
        s.send_line(l).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    };
    typed(&mut s, "let rec fact n =");
    typed(&mut s, "  if n = 0 then 1");
    typed(&mut s, "  else n * fact (n - 1)");
    line(&mut s, "", "val fact : int -> int = <fun>");
    typed(&mut s, "let double x =");
    line(&mut s, "  2 * x;;", "val double : int -> int = <fun>");
    line(&mut s, "fact 10;;", "- : int = 3628800");
    s.send_line(":quit").unwrap();
}

#[test]
fn a_spawned_counter_answers_calls_across_phrases() {
    let mut s = repl();
    line(
        &mut s,
        "type msg = Incr of int | Get of int reply",
        "type msg",
    );
    line(
        &mut s,
        "let rec counter self n = receive self with Incr k -> counter self (n + k) | Get r -> reply r n; counter self n",
        "val counter : msg pid -> int -> 'a = <fun>",
    );
    line(
        &mut s,
        "let c = spawn (fun self -> counter self 0)",
        "val c : msg pid = <0.",
    );
    line(&mut s, "send c (Incr 5)", "- : unit = ()");
    line(&mut s, "send c (Incr 37)", "- : unit = ()");
    line(&mut s, "call c (fun r -> Get r) 1000", "- : int = 42");
    // The counter is listed, waiting in its receive.
    line(&mut s, ":processes", "waiting");
    s.expect("process(es)").unwrap();
    s.send_line(":quit").unwrap();
}

#[test]
fn type_and_load_commands() {
    let mut s = repl();
    line(
        &mut s,
        ":type List.map",
        "- : ('a -> 'b) -> 'a list -> 'b list",
    );
    line(
        &mut s,
        ":load tests/programs/multifile/util.cvn",
        "val double : int -> int = <fun>",
    );
    line(&mut s, "double 21", "- : int = 42");
    s.send_line(":quit").unwrap();
}

#[test]
fn a_crashing_phrase_keeps_the_repl_alive() {
    let mut s = repl();
    line(&mut s, "let z = failwith \"boom\"", "crashed: boom");
    line(&mut s, "1 + 1", "- : int = 2");
    s.send_line(":quit").unwrap();
}

#[test]
fn completion_after_module_dot() {
    let mut s = repl();
    s.send("List.partit").unwrap();
    s.send("\t").unwrap();
    line(
        &mut s,
        " (fun x -> x > 1) [1; 2; 3]",
        "- : int list * int list = ([2; 3], [1])",
    );
    s.send_line(":quit").unwrap();
}

#[test]
fn ctrl_c_interrupts_a_running_phrase() {
    let mut s = repl();
    line(
        &mut s,
        "let rec spin () = spin ()",
        "val spin : unit -> 'a = <fun>",
    );
    s.send_line("spin ()").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.send(ControlCode::EndOfText).unwrap();
    s.expect("Interrupted.").expect("interrupted");
    line(&mut s, "6 * 7", "- : int = 42");
    s.send_line(":quit").unwrap();
}

#[test]
fn lines_written_at_once_all_run_in_order() {
    let mut s = repl();
    // Three lines in one write, as a terminal without bracketed paste
    // delivers a paste: none is lost.
    s.send("let a = 1\nlet b = 2\na + b + 39\n").unwrap();
    s.expect("val a : int = 1").unwrap();
    s.expect("val b : int = 2").unwrap();
    s.expect("- : int = 42").unwrap();
    s.send_line(":quit").unwrap();
}

#[test]
fn lines_typed_while_a_phrase_runs_are_kept() {
    let mut s = repl();
    s.send_line("Process.sleep 1500").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_line("40 + 2").unwrap();
    s.send_line("\"after\"").unwrap();
    s.expect("- : unit = ()").unwrap();
    s.expect("- : int = 42").unwrap();
    s.expect("- : string = \"after\"").unwrap();
    s.send_line(":quit").unwrap();
}

#[test]
fn a_bracketed_paste_of_several_phrases_runs_each() {
    let mut s = repl();
    let paste = "let rec fact n =\n  if n = 0 then 1\n  else n * fact (n - 1)\nlet x = 5\nfact x";
    s.send(format!("\x1b[200~{paste}\x1b[201~\r")).unwrap();
    s.expect("val fact : int -> int = <fun>").unwrap();
    s.expect("val x : int = 5").unwrap();
    s.expect("- : int = 120").unwrap();
    line(&mut s, "x + 1", "- : int = 6");
    s.send_line(":quit").unwrap();
}

#[test]
fn several_phrases_on_one_line() {
    let mut s = repl();
    s.send_line("let a = 1;; a + 1;;").unwrap();
    s.expect("val a : int = 1").unwrap();
    s.expect("- : int = 2").unwrap();
    s.send_line(":quit").unwrap();
}

#[test]
fn values_print_as_utop_does() {
    let mut s = repl();
    line(&mut s, "0.1 +. 0.2", "- : float = 0.30000000000000004");
    line(
        &mut s,
        "[0.1; 1.; 1e20]",
        "- : float list = [0.1; 1.; 1e+20]",
    );
    line(
        &mut s,
        "Map.of_list [(2, \"b\"); (1, \"a\")]",
        "- : (int, string) Map.t = Map.of_list [(1, \"a\"); (2, \"b\")]",
    );
    // A long value is cut, not printed whole.
    line(
        &mut s,
        "List.init 1000000 (fun i -> i)",
        "296; 297; 298; ...]",
    );
    line(
        &mut s,
        "type t = A | B of int * string | C of t list",
        "type t = A | B of int * string | C of t list",
    );
    s.send_line(":quit").unwrap();
}

#[test]
fn weak_variables_have_one_name_everywhere() {
    let mut s = repl();
    line(
        &mut s,
        "let q = spawn (fun _ -> ())",
        "val q : '_weak1 pid = <0.",
    );
    line(&mut s, ":type q", "- : '_weak1 pid");
    // A polymorphic function's type is not weak.
    line(&mut s, ":type List.rev", "- : 'a list -> 'a list");
    line(&mut s, "send q 1", "- : unit = ()");
    line(&mut s, ":type q", "- : int pid");
    s.send_line(":quit").unwrap();
}

#[test]
fn an_empty_line_ends_an_incomplete_phrase() {
    let mut s = repl();
    s.send_line("let x =").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    line(&mut s, "", "unexpected end of phrase");
    line(&mut s, "7 * 6", "- : int = 42");
    s.send_line(":quit").unwrap();
}

#[test]
fn history_is_saved_as_it_is_entered() {
    let home = std::env::temp_dir().join(format!("caravan-repl-home-{}", std::process::id()));
    let mut s = repl();
    let marker = format!("let hist_{} = 1", std::process::id());
    line(&mut s, &marker, "val hist_");
    // Before the REPL ends: the file has it already.
    let text = std::fs::read_to_string(home.join("data/caravan/history")).unwrap_or_default();
    assert!(text.contains(&marker), "history: {text:?}");
    s.send_line(":quit").unwrap();
}

#[test]
fn tab_lists_every_candidate() {
    let mut s = repl();
    s.send("List.fil").unwrap();
    s.send("\t").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.send("\t").unwrap();
    s.expect("List.filter_map").unwrap();
    s.expect("List.filteri").unwrap();
    // The line still holds the common prefix, `List.filter`.
    line(&mut s, "i (fun i _ -> i > 0) [5; 6]", "- : int list = [6]");
    s.send_line(":quit").unwrap();
}

#[test]
fn processes_show_their_memory() {
    let mut s = repl();
    line(
        &mut s,
        "let p = spawn (fun self -> receive self with () -> ())",
        "val p",
    );
    // The new process may not have run yet (then it shows `runnable` and
    // no sizes): ask again until it waits in its `receive`.
    let mut row = String::new();
    for _ in 0..50 {
        s.send_line(":processes").unwrap();
        let found = s
            .expect(expectrl::Regex(r"(waiting|runnable) +0 +[^\n]*"))
            .unwrap();
        row = String::from_utf8_lossy(found.get(0).unwrap_or_default()).into_owned();
        s.expect("process(es)").unwrap();
        if row.starts_with("waiting") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Sizes with their units, never a rounded-down "0 KiB".
    let cols: Vec<&str> = row.split_whitespace().collect();
    let sized = matches!(cols.as_slice(),
        ["waiting", "0", reds, size, "B" | "KiB" | "MiB"]
            if reds.parse::<u64>().is_ok() && size.parse::<f64>().is_ok());
    assert!(sized, "unexpected :processes row {row:?}");
    s.send_line(":quit").unwrap();
}

#[test]
fn a_store_made_at_the_prompt_belongs_to_the_session() {
    let mut s = repl();
    line(&mut s, "let s = Store.create ()", "val s");
    // The phrase's process is over: the store lives on, as an ETS table
    // made in the Erlang shell.
    line(&mut s, "Store.put s \"a\" 1", "- : unit = ()");
    line(&mut s, "Store.get s \"a\"", "- : int option = Some 1");
    // Usable from a process spawned later too.
    line(
        &mut s,
        "Process.join (spawn (fun _ -> Store.put s \"b\" 2))",
        "- : exit_reason = Normal",
    );
    line(&mut s, "Store.size s", "- : int = 2");
    s.send_line(":quit").unwrap();
}
