//! `caravan fmt`'s layout on representative inputs, as insta snapshots of
//! the input and its formatted text: definitions, long applications,
//! `match`/`receive`/`if`, pipelines, records and lists, and comments in
//! awkward places. Each output is also checked to be a fixed point.

use caravan_compiler::format::format_source;

fn check(name: &str, src: &str) {
    let out = format_source(src).unwrap_or_else(|e| panic!("{name}: {:?}", e.diagnostic));
    let again = format_source(&out).expect("the output parses");
    assert_eq!(again, out, "{name}: a second pass changed it");
    insta::assert_snapshot!(name, format!("{src}\n---- formatted ----\n{out}"));
}

#[test]
fn definitions() {
    check(
        "definitions",
        r#"type shape = Circle of float | Rect of float * float
type 'a tree = Leaf | Node of 'a tree * 'a * 'a tree
type ('k, 'v) entry = { key : 'k; value : 'v; children : ('k, 'v) entry list; callback : int -> unit }
type msg = Ping of msg pid | Pong | Stop | Request of string * (int -> unit) * (string, int) result reply
external link_id : process_id -> unit = "caravan_rt_link"
let area s = match s with Circle r -> 3.14159 *. r *. r | Rect (w, h) -> w *. h
let rec fib n = if n < 2 then n else fib (n - 1) + fib (n - 2)
let moved p = { p with x = p.x + 1 }
let big = 100_000 and small = 0x1F and neg = -1 and s = "tab\tnewline\n" and c = '\''
let (a, b) = (1, 2)
let f : int -> int = fun x -> x
let g (x : int) : int = x
let ( @ ) a b = append a b
let mul = ( * ) and pow = ( ** ) and add = (+)
"#,
    );
}

#[test]
fn control_flow() {
    check(
        "control_flow",
        r#"let rec insert x t =
  match t with | Leaf -> Node (Leaf, x, Leaf) | Node (l, y, r) when x < y -> Node (insert x l, y, r) | Node (l, y, r) -> Node (l, y, insert x r)

let rec ponger self =
  receive self with
  | Ping from -> send from Pong; ponger self
  | Stop -> ()
  | after 5000 -> print_endline "idle for 5 s"; ponger self

let rec pinger self peer n =
  if n = 0 then send peer Stop
  else begin
    send peer (Ping self);
    receive self with
    | Pong -> pinger self peer (n - 1)
  end

let classify n = if n < 0 then "negative" else if n = 0 then "zero" else if n < 10 then "small" else "large and then some more words"

let nested x y = match x with A -> (match y with C -> 1 | D -> 2) | B -> 3

let f = function Some x when x > 0 -> x | Some _ | None -> 0
"#,
    );
}

#[test]
fn applications_and_pipelines() {
    check(
        "applications_and_pipelines",
        r#"let () =
  print_endline (string_of_int (fib 30));
  [3; 1; 2] |> List.map (fun x -> x * 2) |> List.iter (fun x -> print_int x)

let () =
  let p = spawn ponger in
  let q = spawn (fun self -> pinger self p 100_000) in
  let _ = Process.join q in
  List.iter (fun x -> print_int x; print_newline ()) [1; 2; 3];
  Supervisor.start One_for_one 3 1000 [Supervisor.worker "counter" start_counter Permanent; Supervisor.worker "logger" start_logger Transient];
  print_endline "done"

let total shapes = List.fold_left (fun acc s -> acc +. area s +. perimeter s *. 0.5) 0.0 (List.filter (fun s -> area s > 1.0) shapes)

let negate x = -x + (- 1) - (-. 2.5 |> int_of_float) + f (-3) - s.[0]

let ops = (1 + 2) * 3 :: 4 :: [] @ [5] @@ fun x -> x
"#,
    );
}

#[test]
fn comments_in_awkward_places() {
    check(
        "comments_in_awkward_places",
        r#"(* The header,
     over two lines. *)

(** The shapes. *)
type shape =
  | Circle of float (* radius *)
  | Rect of float * float (* w, h *)
  (* more to come *)

type state = {
  children : int list;      (* in start order *)
  restarts : int list;      (* newest first *)
}

let f (* the f *) x = (* body next *)
  let y = x + 1 in (* y *)
  match y with
  (* first arm *)
  | 0 -> [ 1; 2 (* two *) ]
  | n (* n *) -> (* inline *) n * 2 (* end of arm *)

let g x =
  x
  |> List.map (fun y -> y + 1) (* plus one *)
  |> List.filter (fun y -> y > 2)
  (* a comment before the end *)

let s = "a (* not a comment *)
  b" ^ "c"   (* trailing *)

let h =
  begin
      (* deeply indented,
         over two lines *)
    1
  end
(* at the end *)
"#,
    );
}
