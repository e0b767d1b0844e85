%% ping-pong: N round trips between two processes.
-module(ping_pong).
-export([main/1]).

ponger() ->
    receive
        {ping, From} -> From ! pong, ponger();
        stop -> ok
    end.

pinger(Peer, 0) -> Peer ! stop;
pinger(Peer, N) ->
    Peer ! {ping, self()},
    receive pong -> pinger(Peer, N - 1) end.

main(Args) ->
    N = case Args of [] -> 1000000; [A | _] -> list_to_integer(A) end,
    P = spawn(fun ponger/0),
    {Q, Ref} = spawn_monitor(fun() -> pinger(P, N) end),
    receive {'DOWN', Ref, process, Q, _} -> ok end,
    io:format("ping-pong: ~p round trips~n", [N]),
    halt(0).
