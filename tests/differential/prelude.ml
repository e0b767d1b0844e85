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

  let find k m = match find_opt k m with Some v -> v | None -> raise Not_found

  let mem k m = match find_opt k m with Some _ -> true | None -> false

  let rec min_binding m =
    match m with
    | Empty -> raise Not_found
    | Node (Empty, k, v, _, _) -> (k, v)
    | Node (l, _, _, _, _) -> min_binding l

  (* [min_binding_opt m]: [Some] of the binding with the smallest key, None
     for the empty map. O(log n). *)
  let rec min_binding_opt m =
    match m with
    | Empty -> None
    | Node (Empty, k, v, _, _) -> Some (k, v)
    | Node (l, _, _, _, _) -> min_binding_opt l

  (* [max_binding m]: the binding with the largest key; raises [Not_found] on
     the empty map. O(log n). *)
  let rec max_binding m =
    match m with
    | Empty -> raise Not_found
    | Node (_, k, v, Empty, _) -> (k, v)
    | Node (_, _, _, r, _) -> max_binding r

  (* [max_binding_opt m]: [Some] of the binding with the largest key, None for
     the empty map. O(log n). *)
  let rec max_binding_opt m =
    match m with
    | Empty -> None
    | Node (_, k, v, Empty, _) -> Some (k, v)
    | Node (_, _, _, r, _) -> max_binding_opt r

  (* [choose m]: one binding of m (the one with the smallest key, as OCaml's);
     raises [Not_found] on the empty map. O(log n). *)
  let choose m = min_binding m

  (* [choose_opt m]: [Some] of one binding of m (the one with the smallest
     key), None for the empty map. O(log n). *)
  let choose_opt m = min_binding_opt m

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

  let bindings m = fold (fun k v acc -> (k, v) :: acc) m [] |> List.rev

  let to_list m = bindings m

  let of_list l = List.fold_left (fun m (k, v) -> add k v m) Empty l

  let cardinal m = fold (fun _ _ n -> n + 1) m 0

  let exists p m = fold (fun k v acc -> acc || p k v) m false

  let for_all p m = fold (fun k v acc -> acc && p k v) m true

  (* The functions added later: their text in stdlib/src/cvn/map.cvn. *)

  (* [m] with the binding k -> v, k smaller than every key of m (internal). *)
  let rec add_min_binding k v m =
    match m with
    | Empty -> singleton k v
    | Node (l, mk, mv, r, _) -> bal (add_min_binding k v l) mk mv r

  (* [m] with the binding k -> v, k larger than every key of m (internal). *)
  let rec add_max_binding k v m =
    match m with
    | Empty -> singleton k v
    | Node (l, mk, mv, r, _) -> bal l mk mv (add_max_binding k v r)

  (* The tree of l's bindings, k -> v and r's, where every key of l is smaller
     than k and every key of r larger, whatever their heights (internal).
     O(|height l - height r|). *)
  let rec join l k v r =
    match (l, r) with
    | (Empty, _) -> add_min_binding k v r
    | (_, Empty) -> add_max_binding k v l
    | (Node (ll, lk, lv, lr, lh), Node (rl, rk, rv, rr, rh)) ->
        if lh > rh + 2 then bal ll lk lv (join lr k v r)
        else if rh > lh + 2 then bal (join l k v rl) rk rv rr
        else create l k v r

  (* The tree of the bindings of a and b, every key of a smaller than every
     key of b, whatever their heights (internal). O(log n). *)
  let concat_trees a b =
    match (a, b) with
    | (Empty, t) -> t
    | (t, Empty) -> t
    | _ ->
        let (k, v) = min_binding b in
        join a k v (remove_min b)

  (* [join l k v r] when d is [Some v], else [concat_trees l r] (internal). *)
  let concat_or_join l k d r =
    match d with Some v -> join l k v r | None -> concat_trees l r

  (* [split k m]: [(l, data, r)]: l the bindings of m with keys smaller than k,
     data [Some] of k's value or None when k is not bound, r the bindings with
     keys larger than k. O(log n). *)
  let rec split x m =
    match m with
    | Empty -> (Empty, None, Empty)
    | Node (l, k, v, r, _) ->
        let c = compare x k in
        if c = 0 then (l, Some v, r)
        else if c < 0 then
          let (ll, pres, rl) = split x l in
          (ll, pres, join rl k v r)
        else
          let (lr, pres, rr) = split x r in
          (join l k v lr, pres, rr)

  (* [filter p m]: the bindings for which [p k v] holds (p is called in
     increasing order of keys; m itself when it keeps them all). O(n). *)
  let rec filter p m =
    match m with
    | Empty -> Empty
    | Node (l, k, v, r, _) ->
        let l' = filter p l in
        let keep = p k v in
        let r' = filter p r in
        if keep then if l == l' && r == r' then m else join l' k v r'
        else concat_trees l' r'

  (* [filter_map f m]: k bound to y for each binding k -> v of m for which
     [f k v] is [Some y]; the others are dropped (f is called in increasing
     order of keys). O(n). *)
  let rec filter_map f m =
    match m with
    | Empty -> Empty
    | Node (l, k, v, r, _) ->
        let l' = filter_map f l in
        let fv = f k v in
        let r' = filter_map f r in
        match fv with Some y -> join l' k y r' | None -> concat_trees l' r'

  (* [partition p m]: [(yes, no)]: the bindings for which [p k v] holds and
     those for which it does not (p is called in increasing order of keys).
     O(n). *)
  let rec partition p m =
    match m with
    | Empty -> (Empty, Empty)
    | Node (l, k, v, r, _) ->
        let (lt, lf) = partition p l in
        let keep = p k v in
        let (rt, rf) = partition p r in
        if keep then (join lt k v rt, concat_trees lf rf)
        else (concat_trees lt rt, join lf k v rf)

  (* [union f a b]: the bindings of a and b; for a key bound in both (to x in
     a, y in b), [f k x y] decides: [Some z] binds k to z, None unbinds it.
     O(m log (n / m + 1)), m <= n the two sizes. *)
  let rec union f s1 s2 =
    match (s1, s2) with
    | (Empty, s) -> s
    | (s, Empty) -> s
    | (Node (l1, k1, v1, r1, h1), Node (l2, k2, v2, r2, h2)) ->
        if h1 >= h2 then
          let (l2, d2, r2) = split k1 s2 in
          let l = union f l1 l2 in
          let r = union f r1 r2 in
          (match d2 with
           | None -> join l k1 v1 r
           | Some v2 -> concat_or_join l k1 (f k1 v1 v2) r)
        else
          let (l1, d1, r1) = split k2 s1 in
          let l = union f l1 l2 in
          let r = union f r1 r2 in
          match d1 with
          | None -> join l k2 v2 r
          | Some v1 -> concat_or_join l k2 (f k2 v1 v2) r

  (* [merge f a b]: k bound to z for each key k bound in a or b (or both) for
     which [f k (find_opt k a) (find_opt k b)] is [Some z]; f is never called
     with None, None. O(n + m). *)
  let rec merge f s1 s2 =
    match (s1, s2) with
    | (Empty, Empty) -> Empty
    | (Node (l1, k1, v1, r1, h1), _) when h1 >= height s2 ->
        let (l2, d2, r2) = split k1 s2 in
        concat_or_join (merge f l1 l2) k1 (f k1 (Some v1) d2) (merge f r1 r2)
    | (_, Node (l2, k2, v2, r2, _)) ->
        let (l1, d1, r1) = split k2 s1 in
        concat_or_join (merge f l1 l2) k2 (f k2 d1 (Some v2)) (merge f r1 r2)
    | (Node (l1, k1, v1, r1, _), Empty) ->
        concat_or_join
          (merge f l1 Empty)
          k1
          (f k1 (Some v1) None)
          (merge f r1 Empty)

  (* The smallest binding of m for which [f k] holds, or (k0, v0) when none
     does (internal: [find_first]). *)
  let rec find_first_from k0 v0 f m =
    match m with
    | Empty -> (k0, v0)
    | Node (l, k, v, r, _) ->
        if f k then find_first_from k v f l else find_first_from k0 v0 f r

  (* [find_first f m]: the binding with the smallest key k for which [f k]
     holds, f monotonically increasing (false, then true, in key order); raises
     [Not_found] when there is none. O(log n). *)
  let rec find_first f m =
    match m with
    | Empty -> raise Not_found
    | Node (l, k, v, r, _) ->
        if f k then find_first_from k v f l else find_first f r

  (* [Some] of the smallest binding of m for which [f k] holds, or [Some (k0,
     v0)] when none does (internal: [find_first_opt]). *)
  let rec find_first_opt_from k0 v0 f m =
    match m with
    | Empty -> Some (k0, v0)
    | Node (l, k, v, r, _) ->
        if f k then find_first_opt_from k v f l else find_first_opt_from k0 v0 f r

  (* [find_first_opt f m]: [Some] of the binding with the smallest key k for
     which [f k] holds (f monotonically increasing), None when there is none.
     O(log n). *)
  let rec find_first_opt f m =
    match m with
    | Empty -> None
    | Node (l, k, v, r, _) ->
        if f k then find_first_opt_from k v f l else find_first_opt f r

  (* The largest binding of m for which [f k] holds, or (k0, v0) when none
     does (internal: [find_last]). *)
  let rec find_last_from k0 v0 f m =
    match m with
    | Empty -> (k0, v0)
    | Node (l, k, v, r, _) ->
        if f k then find_last_from k v f r else find_last_from k0 v0 f l

  (* [find_last f m]: the binding with the largest key k for which [f k] holds,
     f monotonically decreasing (true, then false, in key order); raises
     [Not_found] when there is none. O(log n). *)
  let rec find_last f m =
    match m with
    | Empty -> raise Not_found
    | Node (l, k, v, r, _) ->
        if f k then find_last_from k v f r else find_last f l

  (* [Some] of the largest binding of m for which [f k] holds, or [Some (k0,
     v0)] when none does (internal: [find_last_opt]). *)
  let rec find_last_opt_from k0 v0 f m =
    match m with
    | Empty -> Some (k0, v0)
    | Node (l, k, v, r, _) ->
        if f k then find_last_opt_from k v f r else find_last_opt_from k0 v0 f l

  (* [find_last_opt f m]: [Some] of the binding with the largest key k for
     which [f k] holds (f monotonically decreasing), None when there is none.
     O(log n). *)
  let rec find_last_opt f m =
    match m with
    | Empty -> None
    | Node (l, k, v, r, _) ->
        if f k then find_last_opt_from k v f r else find_last_opt f l

  (* The bindings still to visit, in key order: a binding, the subtree of the
     larger keys under it, and the rest (internal: [to_seq], [equal],
     [compare]). *)
  type ('k, 'v) enumeration =
    | End
    | More of 'k * 'v * ('k, 'v) t * ('k, 'v) enumeration

  (* The enumeration of m's bindings, then those of e (internal). O(log n). *)
  let rec cons_enum m e =
    match m with
    | Empty -> e
    | Node (l, k, v, r, _) -> cons_enum l (More (k, v, r, e))

  (* The enumeration of m's bindings in decreasing order, then those of e
     (internal). O(log n). *)
  let rec snoc_enum m e =
    match m with
    | Empty -> e
    | Node (l, k, v, r, _) -> snoc_enum r (More (k, v, l, e))

  (* The sequence of an enumeration's bindings (internal). *)
  let rec seq_of_enum e () =
    match e with
    | End -> Seq.Nil
    | More (k, v, t, rest) -> Seq.Cons ((k, v), seq_of_enum (cons_enum t rest))

  (* The sequence of a reverse enumeration's bindings (internal). *)
  let rec rev_seq_of_enum e () =
    match e with
    | End -> Seq.Nil
    | More (k, v, t, rest) ->
        Seq.Cons ((k, v), rev_seq_of_enum (snoc_enum t rest))

  (* [to_seq m]: the bindings of m as a lazy sequence of (key, value) pairs,
     keys in increasing order. O(log n) for each element. *)
  let to_seq m = seq_of_enum (cons_enum m End)

  (* [to_rev_seq m]: the bindings of m as a lazy sequence, keys in decreasing
     order. *)
  let to_rev_seq m = rev_seq_of_enum (snoc_enum m End)

  (* [to_seq_from k m]: the bindings of m with keys k or larger, as a lazy
     sequence in increasing order of keys. *)
  let to_seq_from low m =
    let rec go m e =
      match m with
      | Empty -> e
      | Node (l, k, v, r, _) ->
          let c = compare k low in
          if c = 0 then More (k, v, r, e)
          else if c < 0 then go r e
          else go l (More (k, v, r, e))
    in
    seq_of_enum (go m End)

  (* [add_seq s m]: m with the bindings of the sequence s added in order (a
     later pair of the same key wins). O(k log (n + k)). *)
  let add_seq s m = Seq.fold_left (fun m (k, v) -> add k v m) m s

  (* [of_seq s]: the map of the pairs of the sequence s (a later pair of the
     same key wins). O(k log k). *)
  let of_seq s = add_seq s Empty

  (* [equal eq a b]: whether a and b bind the same keys, to values equal by
     [eq]. O(n). *)
  let equal eq m1 m2 =
    let rec go e1 e2 =
      match (e1, e2) with
      | (End, End) -> true
      | (End, _) -> false
      | (_, End) -> false
      | (More (k1, v1, r1, e1), More (k2, v2, r2, e2)) ->
          compare k1 k2 = 0 && eq v1 v2 && go (cons_enum r1 e1) (cons_enum r2 e2)
    in
    go (cons_enum m1 End) (cons_enum m2 End)

  (* [compare cmp a b]: a total order on maps: their bindings in increasing
     order of keys compared lexicographically, keys by structural [compare],
     values by cmp (negative, 0 or positive). O(n). Defined last: before it,
     [compare] in this module is the prelude's. *)
  let compare cmp m1 m2 =
    let rec go e1 e2 =
      match (e1, e2) with
      | (End, End) -> 0
      | (End, _) -> -1
      | (_, End) -> 1
      | (More (k1, v1, r1, e1), More (k2, v2, r2, e2)) ->
          let c = compare k1 k2 in
          if c <> 0 then c
          else
            let c = cmp v1 v2 in
            if c <> 0 then c else go (cons_enum r1 e1) (cons_enum r2 e2)
    in
    go (cons_enum m1 End) (cons_enum m2 End)
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
(* [min_elt s]: the smallest element; raises [Not_found] on the empty
   set. O(log n). *)
let min_elt s = fst (Map.min_binding s)
(* [min_elt_opt s]: [Some] of the smallest element, None for the empty set. *)
let min_elt_opt s = if is_empty s then None else Some (min_elt s)
(* [max_elt_opt s]: [Some] of the largest element, None for the empty set.
   O(n). *)
let max_elt_opt s = fold (fun x _ -> Some x) s None
(* [max_elt s]: the largest element; raises [Not_found] on the empty
   set. O(n). *)
let max_elt s = match max_elt_opt s with Some x -> x | None -> raise Not_found
(* [choose s]: some element of s (the smallest); raises [Not_found] on
   the empty set. *)
let choose s = min_elt s
(* [choose_opt s]: [Some] of some element of s, None for the empty set. *)
let choose_opt s = min_elt_opt s
(* [map f s]: the set of the images by f. *)
let map f s = fold (fun x acc -> add (f x) acc) s empty
end

(* Caravan's Buffer (stdlib/src/cvn/buffer.cvn, the same text): a
   persistent string builder, where OCaml's Buffer is mutable. *)
module Buffer = struct
  (* A buffer: its pieces, the most recent first — [recent] the last appends
     (fewer than 64 of them), [joined] the older ones, joined into strings
     of 64 appends each — and its length in bytes. *)
  type t = { recent : string list; count : int; joined : string list; len : int }

  (* [create n]: an empty buffer (n, OCaml's initial capacity, is only a
     hint: a persistent buffer has none to reserve). *)
  let create _ = { recent = []; count = 0; joined = []; len = 0 }

  (* [of_string s]: a buffer holding s (Caravan's; OCaml has no such
     function). O(1). *)
  let of_string s =
    { recent = []; count = 0; joined = [s]; len = String.length s }

  (* [contents b]: the bytes of b as a string. O(length b). *)
  let contents b = String.concat "" (List.rev_append b.joined (List.rev b.recent))

  (* [length b]: the number of bytes in b. O(1). *)
  let length b = b.len

  (* [clear b]: an empty buffer. *)
  let clear _ = create 0

  (* [reset b]: an empty buffer (the same as [clear]: there is no storage to
     give back). *)
  let reset _ = create 0

  (* [add_string b s]: b followed by s. Amortised O(1) (O(length s) when it
     completes a group of 64 appends, which are then joined). *)
  let add_string b s =
    if String.length s = 0 then b
    else if b.count < 63 then
      { b with
        recent = s :: b.recent;
        count = b.count + 1;
        len = b.len + String.length s;
      }
    else
      let piece = String.concat "" (List.rev (s :: b.recent)) in
      {
        recent = [];
        count = 0;
        joined = piece :: b.joined;
        len = b.len + String.length s;
      }

  (* [add_char b c]: b followed by the byte c. Amortised O(1). *)
  let add_char b c = add_string b (String.make 1 c)

  (* [add_substring b s ofs len]: b followed by the len bytes of s from index
     ofs; raises [Invalid_argument "Buffer.add_substring/add_subbytes"] when
     they are not all in s. O(len). *)
  let add_substring b s ofs len =
    if ofs < 0 || len < 0 || ofs > String.length s - len then
      invalid_arg "Buffer.add_substring/add_subbytes"
    else add_string b (String.sub s ofs len)

  (* [add_buffer b1 b2]: b1 followed by the contents of b2. O(length b2). *)
  let add_buffer b1 b2 = add_string b1 (contents b2)

  (* [sub b ofs len]: the len bytes of b from index ofs; raises
     [Invalid_argument "Buffer.sub"] when they are not all in b.
     O(length b). *)
  let sub b ofs len =
    if ofs < 0 || len < 0 || ofs > b.len - len then invalid_arg "Buffer.sub"
    else String.sub (contents b) ofs len

  (* [nth b i]: the byte at index i; raises [Invalid_argument "Buffer.nth"]
     when i is not in 0..length b - 1. O(number of pieces), never copies. *)
  let nth b i =
    let rec find pieces older last =
      match pieces with
      | [] ->
          (match older with
           | [] -> invalid_arg "Buffer.nth"
           | _ -> find older [] last)
      | p :: rest ->
          let first = last - String.length p in
          if i >= first then String.get p (i - first) else find rest older first
    in
    if i < 0 || i >= b.len then invalid_arg "Buffer.nth"
    else find b.recent b.joined b.len

  (* [truncate b n]: the first n bytes of b; raises
     [Invalid_argument "Buffer.truncate"] when n is not in 0..length b.
     O(length b). *)
  let truncate b n =
    if n < 0 || n > b.len then invalid_arg "Buffer.truncate"
    else if n = b.len then b
    else of_string (String.sub (contents b) 0 n)

  (* [add_seq b s]: b followed by the chars of the sequence s, in order. *)
  let add_seq b s = Seq.fold_left add_char b s

  (* [of_seq s]: a buffer of the chars of the sequence s. *)
  let of_seq s = add_seq (create 0) s

  (* [to_seq b]: the bytes of b as a sequence of chars (of the contents when
     [to_seq] was called). *)
  let to_seq b = String.to_seq (contents b)
end

(* A program may begin with a toplevel expression, which must follow `;;`. *)
;;
