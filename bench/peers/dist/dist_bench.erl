%% bench/dist: the Erlang peers of dist_pong.cvn and dist_ping.cvn, the same
%% protocol between two Erlang nodes.
-module(dist_bench).
-export([pong/0, ping/1]).

pong() ->
    register(bench_pong, spawn(fun() -> serve(0) end)),
    io:format("ready~n").

serve(N) ->
    receive
        {ping, P} -> P ! pong, serve(N);
        {data, _} -> serve(N + 1);
        {sync, P} -> P ! {synced, N}, serve(0)
    end.

ping([Node, Trips, Msgs]) ->
    Server = {bench_pong, list_to_atom(atom_to_list(Node))},
    T = list_to_integer(atom_to_list(Trips)),
    M = list_to_integer(atom_to_list(Msgs)),
    pings(Server, 1000),
    T0 = erlang:monotonic_time(millisecond),
    pings(Server, T),
    T1 = erlang:monotonic_time(millisecond),
    io:format("round_trips_per_s ~p~n", [T * 1000 div max(1, T1 - T0)]),
    Chunk = binary:copy(<<"x">>, 1024),
    T2 = erlang:monotonic_time(millisecond),
    stream(Server, Chunk, M),
    Server ! {sync, self()},
    receive {synced, N} ->
        T3 = erlang:monotonic_time(millisecond),
        io:format("messages_per_s ~p~n", [N * 1000 div max(1, T3 - T2)])
    end,
    halt().

pings(_, 0) -> ok;
pings(S, N) -> S ! {ping, self()}, receive pong -> pings(S, N - 1) end.

stream(_, _, 0) -> ok;
stream(S, C, N) -> S ! {data, C}, stream(S, C, N - 1).
