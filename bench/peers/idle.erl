%% Idle processes: N processes, each started and then blocked in receive.
-module(idle).
-export([main/1]).

start(_, 0) -> ok;
start(Coord, K) ->
    spawn(fun() -> Coord ! ready, receive wake -> ok end end),
    start(Coord, K - 1).

wait_ready(0) -> ok;
wait_ready(K) -> receive ready -> wait_ready(K - 1) end.

main(Args) ->
    N = case Args of [] -> 100000; [A | _] -> list_to_integer(A) end,
    start(self(), N),
    wait_ready(N),
    io:format("idle: ~p processes blocked in receive~n", [N]),
    halt(0).
