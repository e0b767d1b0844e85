(* Prepended to every differential program for the OCaml run only.
   Caravan's Map is a polymorphic persistent map ordered by structural
   compare (stdlib/src/cvn/map.cvn); OCaml's is a functor, so this gives
   OCaml the same module: the same AVL trees, keyed by polymorphic compare. *)
(* OCaml 4.14's additions to Seq, which Caravan's Seq has too: this is
   their text in stdlib/src/cvn/seq.cvn. *)
module Seq = struct
  include Seq

  (* [is_empty s]: whether s has no element (computes its first node). O(1). *)
  let is_empty seq = match seq () with Nil -> true | Cons (_, _) -> false

  (* [uncons s]: [Some (x, rest)] for the first element x of s and the
     sequence of the others, None when s is empty. O(1). *)
  let uncons seq =
    match seq () with Nil -> None | Cons (x, next) -> Some (x, next)

  (* [length s]: the number of elements of s (computing them all). O(n); never
     ends on an infinite sequence. *)
  let length seq =
    let rec go n seq =
      match seq () with Nil -> n | Cons (_, next) -> go (n + 1) next
    in
    go 0 seq

  (* [iteri f s]: [f i x] for each element x of s and its index i (from 0), in
     order. O(n). *)
  let iteri f seq =
    let rec go i seq =
      match seq () with
      | Nil -> ()
      | Cons (x, next) ->
          f i x;
          go (i + 1) next
    in
    go 0 seq

  (* [for_all p s]: whether every element of s satisfies p (stops at the first
     that does not). O(n). *)
  let rec for_all p seq =
    match seq () with Nil -> true | Cons (x, next) -> p x && for_all p next

  (* [exists p s]: whether some element of s satisfies p (stops at the first
     that does). O(n). *)
  let rec exists p seq =
    match seq () with Nil -> false | Cons (x, next) -> p x || exists p next

  (* [find p s]: [Some] of the first element of s that satisfies p, None when
     none does. O(n). *)
  let rec find p seq =
    match seq () with
    | Nil -> None
    | Cons (x, next) -> if p x then Some x else find p next

  (* [find_map f s]: the first [f x] that is [Some _] for an element x of s,
     None when there is none. O(n). *)
  let rec find_map f seq =
    match seq () with
    | Nil -> None
    | Cons (x, next) -> match f x with None -> find_map f next | Some y -> Some y

  (* The elements [f i] to [f (j - 1)] (internal: [init]). *)
  let rec init_from f i j () =
    if i < j then Cons (f i, init_from f (i + 1) j) else Nil

  (* [init n f]: the sequence [f 0; f 1; ...; f (n - 1)], each computed when
     asked for; raises [Invalid_argument "Seq.init"] when n < 0. *)
  let init n f = if n < 0 then invalid_arg "Seq.init" else init_from f 0 n

  (* [repeat x]: the infinite sequence x, x, x, ... *)
  let rec repeat x () = Cons (x, repeat x)

  (* [iterate f x]: the infinite sequence x, f x, f (f x), ... (each computed
     when asked for). *)
  let rec iterate f x () = Cons (x, iterate f (f x))

  (* [mapi f s]: [f i x] for each element x of s and its index i (from 0),
     lazily. *)
  let mapi f seq =
    let rec go i seq () =
      match seq () with
      | Nil -> Nil
      | Cons (x, next) -> Cons (f i x, go (i + 1) next)
    in
    go 0 seq

  (* The first n elements of s, n >= 0 (internal: [take]). *)
  let rec take_first n seq =
    if n = 0 then empty
    else
      fun () ->
        match seq () with
        | Nil -> Nil
        | Cons (x, next) -> Cons (x, take_first (n - 1) next)

  (* [take n s]: the first n elements of s (all of them when s is shorter),
     lazily; raises [Invalid_argument "Seq.take"] when n < 0. *)
  let take n seq = if n < 0 then invalid_arg "Seq.take" else take_first n seq

  (* The first node of s after n > 0 elements (internal: [drop]). *)
  let rec force_drop n seq =
    match seq () with
    | Nil -> Nil
    | Cons (_, next) -> if n = 1 then next () else force_drop (n - 1) next

  (* [drop n s]: s without its first n elements (empty when s is shorter);
     they are skipped when the result is first asked for. Raises
     [Invalid_argument "Seq.drop"] when n < 0. *)
  let drop n seq =
    if n < 0 then invalid_arg "Seq.drop"
    else if n = 0 then seq
    else fun () -> force_drop n seq

  (* [take_while p s]: the longest prefix of s whose elements satisfy p,
     lazily. *)
  let rec take_while p seq () =
    match seq () with
    | Nil -> Nil
    | Cons (x, next) -> if p x then Cons (x, take_while p next) else Nil

  (* [drop_while p s]: s without its longest prefix whose elements satisfy p;
     they are skipped when the result is first asked for. *)
  let rec drop_while p seq () =
    match seq () with
    | Nil -> Nil
    | Cons (x, next) -> if p x then drop_while p next () else Cons (x, next)

  (* [zip s1 s2]: the pairs of the elements of s1 and s2 at the same index,
     as long as the shorter one, lazily. *)
  let rec zip seq1 seq2 () =
    match seq1 () with
    | Nil -> Nil
    | Cons (x, next1) ->
        match seq2 () with
        | Nil -> Nil
        | Cons (y, next2) -> Cons ((x, y), zip next1 next2)
end

module Map = struct

  type ('k, 'v) t = Empty | Node of ('k, 'v) t * 'k * 'v * ('k, 'v) t * int

  let empty = Empty

  let is_empty m = match m with Empty -> true | _ -> false

  let height m = match m with Empty -> 0 | Node (_, _, _, _, h) -> h

  let create l k v r =
    let hl = height l in
    let hr = height r in
    Node (l, k, v, r, (if hl >= hr then hl + 1 else hr + 1))

  let bal l k v r =
    let hl = height l in
    let hr = height r in
    if hl > hr + 2 then
      (match l with
       | Empty -> create l k v r
       | Node (ll, lk, lv, lr, _) ->
         if height ll >= height lr then create ll lk lv (create lr k v r)
         else
           (match lr with
            | Empty -> create l k v r
            | Node (lrl, lrk, lrv, lrr, _) -> create (create ll lk lv lrl) lrk lrv (create lrr k v r)))
    else if hr > hl + 2 then
      (match r with
       | Empty -> create l k v r
       | Node (rl, rk, rv, rr, _) ->
         if height rr >= height rl then create (create l k v rl) rk rv rr
         else
           (match rl with
            | Empty -> create l k v r
            | Node (rll, rlk, rlv, rlr, _) -> create (create l k v rll) rlk rlv (create rlr rk rv rr)))
    else create l k v r

  let rec add k v m =
    match m with
    | Empty -> Node (Empty, k, v, Empty, 1)
    | Node (l, mk, mv, r, h) ->
      let c = compare k mk in
      if c = 0 then Node (l, k, v, r, h)
      else if c < 0 then bal (add k v l) mk mv r
      else bal l mk mv (add k v r)

  let singleton k v = Node (Empty, k, v, Empty, 1)

  let rec find_opt k m =
    match m with
    | Empty -> None
    | Node (l, mk, mv, r, _) ->
      let c = compare k mk in
      if c = 0 then Some mv else if c < 0 then find_opt k l else find_opt k r

  let find k m = match find_opt k m with Some v -> v | None -> failwith "Not_found"

  let mem k m = match find_opt k m with Some _ -> true | None -> false

  let rec min_binding m =
    match m with
    | Empty -> failwith "Not_found"
    | Node (Empty, k, v, _, _) -> (k, v)
    | Node (l, _, _, _, _) -> min_binding l

  let rec remove_min m =
    match m with
    | Empty -> Empty
    | Node (Empty, _, _, r, _) -> r
    | Node (l, k, v, r, _) -> bal (remove_min l) k v r

  let merge_trees a b =
    match (a, b) with
    | (Empty, t) -> t
    | (t, Empty) -> t
    | _ -> let (k, v) = min_binding b in bal a k v (remove_min b)

  let rec remove k m =
    match m with
    | Empty -> Empty
    | Node (l, mk, mv, r, _) ->
      let c = compare k mk in
      if c = 0 then merge_trees l r
      else if c < 0 then bal (remove k l) mk mv r
      else bal l mk mv (remove k r)

  let update k f m =
    match f (find_opt k m) with
    | Some v -> add k v m
    | None -> remove k m

  let rec fold f m acc =
    match m with
    | Empty -> acc
    | Node (l, k, v, r, _) -> fold f r (f k v (fold f l acc))

  let rec iter f m =
    match m with
    | Empty -> ()
    | Node (l, k, v, r, _) -> iter f l; f k v; iter f r

  let rec map f m =
    match m with
    | Empty -> Empty
    | Node (l, k, v, r, h) -> Node (map f l, k, f v, map f r, h)

  let rec mapi f m =
    match m with
    | Empty -> Empty
    | Node (l, k, v, r, h) -> Node (mapi f l, k, f k v, mapi f r, h)

  let filter p m = fold (fun k v acc -> if p k v then add k v acc else acc) m Empty

  let bindings m = fold (fun k v acc -> (k, v) :: acc) m [] |> List.rev

  let to_list m = bindings m

  let of_list l = List.fold_left (fun m (k, v) -> add k v m) Empty l

  let cardinal m = fold (fun _ _ n -> n + 1) m 0

  let exists p m = fold (fun k v acc -> acc || p k v) m false

  let for_all p m = fold (fun k v acc -> acc && p k v) m true
end


(* Caravan's Set (stdlib/src/cvn/set.cvn, the same text): a polymorphic
   set on the Map above. *)
module Set = struct
(* Persistent sets ordered by structural compare (OCaml's Set.Make (Ord)
   without the functor): a [Map] whose values are all (). *)
type 'a t = ('a, unit) Map.t

(* The empty set. *)
let empty = Map.empty
(* [is_empty s]: whether s has no element. *)
let is_empty s = Map.is_empty s
(* [mem x s]: whether x is in s. O(log n). *)
let mem x s = Map.mem x s
(* [add x s]: s with x. O(log n). *)
let add x s = Map.add x () s
(* [singleton x]: the set of x alone. *)
let singleton x = Map.singleton x ()
(* [remove x s]: s without x. O(log n). *)
let remove x s = Map.remove x s
(* [fold f s acc]: f applied to each element in increasing order, threading
   acc. O(n). *)
let fold f s acc = Map.fold (fun x () acc -> f x acc) s acc
(* [iter f s]: f applied to each element in increasing order. O(n). *)
let iter f s = Map.iter (fun x () -> f x) s
(* [elements s]: the elements in increasing order. O(n). *)
let elements s = List.rev (fold (fun x acc -> x :: acc) s [])
(* [of_list l]: the set of the elements of l. O(n log n). *)
let of_list l = List.fold_left (fun s x -> add x s) empty l
(* [cardinal s]: the number of elements. O(n). *)
let cardinal s = Map.cardinal s
(* [union a b]: the elements of a or b. *)
let union a b = fold add b a
(* [inter a b]: the elements of both a and b. *)
let inter a b = Map.filter (fun x () -> mem x b) a
(* [diff a b]: the elements of a that are not in b. *)
let diff a b = Map.filter (fun x () -> not (mem x b)) a
(* [subset a b]: whether every element of a is in b. *)
let subset a b = Map.for_all (fun x () -> mem x b) a
(* [equal a b]: whether a and b have the same elements. *)
let equal a b = subset a b && subset b a
(* [compare a b]: a total order on sets (by their sorted elements). *)
let compare a b = compare (elements a) (elements b)
(* [filter p s]: the elements that satisfy p. *)
let filter p s = Map.filter (fun x () -> p x) s
(* [partition p s]: the elements that satisfy p and those that do not. *)
let partition p s = (filter p s, filter (fun x -> not (p x)) s)
(* [exists p s]: whether some element satisfies p. *)
let exists p s = Map.exists (fun x () -> p x) s
(* [for_all p s]: whether every element satisfies p. *)
let for_all p s = Map.for_all (fun x () -> p x) s
(* [min_elt s]: the smallest element; crashes with "Not_found" on the empty
   set. O(log n). *)
let min_elt s = fst (Map.min_binding s)
(* [min_elt_opt s]: [Some] of the smallest element, None for the empty set. *)
let min_elt_opt s = if is_empty s then None else Some (min_elt s)
(* [max_elt_opt s]: [Some] of the largest element, None for the empty set.
   O(n). *)
let max_elt_opt s = fold (fun x _ -> Some x) s None
(* [max_elt s]: the largest element; crashes with "Not_found" on the empty
   set. O(n). *)
let max_elt s =
  match max_elt_opt s with Some x -> x | None -> failwith "Not_found"
(* [choose s]: some element of s (the smallest); crashes with "Not_found" on
   the empty set. *)
let choose s = min_elt s
(* [choose_opt s]: [Some] of some element of s, None for the empty set. *)
let choose_opt s = min_elt_opt s
(* [map f s]: the set of the images by f. *)
let map f s = fold (fun x acc -> add (f x) acc) s empty
end

(* A program may begin with a toplevel expression, which must follow `;;`. *)
;;
