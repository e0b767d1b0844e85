%% Idle processes: N processes, each started and then blocked in receive
%% (with "call" as second argument: each first answers one call). Prints
%% a line, then sleeps 3 s: the harness reads the settled RSS meanwhile.
-module(idle).
-export([main/1]).

idle() ->
    receive
        {call, From, Ref} -> From ! {Ref, ok}, idle();
        wake -> ok
    end.

start(_, 0) -> ok;
start(Coord, K) ->
    spawn(fun() -> Coord ! {ready, self()}, idle() end),
    start(Coord, K - 1).

wait_ready(0, _) -> ok;
wait_ready(K, Called) ->
    receive
        {ready, P} ->
            case Called of
                true ->
                    Ref = make_ref(),
                    P ! {call, self(), Ref},
                    receive {Ref, ok} -> ok end;
                false -> ok
            end,
            wait_ready(K - 1, Called)
    end.

main(Args) ->
    {N, Called} = case Args of
                      [] -> {100000, false};
                      [A] -> {list_to_integer(A), false};
                      [A, M | _] -> {list_to_integer(A), M =:= "call"}
                  end,
    start(self(), N),
    wait_ready(N, Called),
    io:format("idle: ~p processes blocked in receive~n", [N]),
    timer:sleep(3000),
    halt(0).
