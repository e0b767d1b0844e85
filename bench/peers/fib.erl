-module(fib).
-export([main/1]).

fib(N) when N < 2 -> N;
fib(N) -> fib(N - 1) + fib(N - 2).

main(Args) ->
    N = case Args of [] -> 30; [A | _] -> list_to_integer(A) end,
    io:format("~p~n", [fib(N)]),
    halt(0).
