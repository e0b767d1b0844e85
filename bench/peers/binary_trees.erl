%% binary-trees (the benchmarks game): one worker process per depth.
-module(binary_trees).
-export([main/1]).

-define(MIN, 4).

make(0) -> {nil, nil};
make(D) -> {make(D - 1), make(D - 1)}.

check(nil) -> 0;
check({L, R}) -> 1 + check(L) + check(R).

sum_checks(_, 0, Acc) -> Acc;
sum_checks(D, I, Acc) -> sum_checks(D, I - 1, Acc + check(make(D))).

main(Args) ->
    N = case Args of [] -> 10; [A | _] -> list_to_integer(A) end,
    Max = max(?MIN + 2, N),
    Stretch = Max + 1,
    io:format("stretch tree of depth ~w\t check: ~w~n", [Stretch, check(make(Stretch))]),
    Long = make(Max),
    Self = self(),
    Depths = lists:seq(?MIN, Max, 2),
    [spawn(fun() ->
                   Iters = 1 bsl (Max - D + ?MIN),
                   Self ! {D, Iters, sum_checks(D, Iters, 0)}
           end) || D <- Depths],
    [receive {D, Iters, C} -> io:format("~w\t trees of depth ~w\t check: ~w~n", [Iters, D, C]) end
     || D <- Depths],
    io:format("long lived tree of depth ~w\t check: ~w~n", [Max, check(Long)]),
    halt(0).
