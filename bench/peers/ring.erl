%% ring: N processes pass a token M laps (N * M hops).
-module(ring).
-export([main/1]).

relay(Next) -> receive {token, K} -> Next ! {token, K - 1}, relay(Next) end.

lead(First) ->
    receive
        {token, 0} -> ok;
        {token, K} -> First ! {token, K - 1}, lead(First)
    end.

build(0, Next) -> Next;
build(I, Next) -> build(I - 1, spawn(fun() -> relay(Next) end)).

main(Args) ->
    {N, M} = case Args of [A, B] -> {list_to_integer(A), list_to_integer(B)}; _ -> {1000, 100} end,
    Parent = self(),
    spawn(fun() ->
                  First = build(N - 1, self()),
                  First ! {token, N * M - 1},
                  lead(First),
                  Parent ! done
          end),
    receive done -> ok end,
    io:format("ring: ~p processes, ~p laps, ~p hops~n", [N, M, N * M]),
    halt(0).
