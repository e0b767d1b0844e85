%% spawn-and-exit: TOTAL processes in batches of BATCH; each batch is spawned
%% (with a monitor), then every process of it waited for until it has exited.
-module(spawn_exit).
-export([main/1]).

%% The 'DOWN' notices are taken in arrival order (a selective receive of
%% each monitor in turn would scan the mailbox: quadratic in BATCH).
spawn_batch(0) -> ok;
spawn_batch(K) -> spawn_monitor(fun() -> ok end), spawn_batch(K - 1).

join_all(0) -> ok;
join_all(K) -> receive {'DOWN', _, process, _, _} -> join_all(K - 1) end.

run(0, _) -> ok;
run(Batches, Batch) -> spawn_batch(Batch), join_all(Batch), run(Batches - 1, Batch).

main(Args) ->
    {Total, Batch} = case Args of
                         [T, B] -> {list_to_integer(T), list_to_integer(B)};
                         [T] -> {list_to_integer(T), 1000};
                         _ -> {1000000, 1000}
                     end,
    run(Total div Batch, Batch),
    io:format("spawn-exit: ~p processes~n", [Total div Batch * Batch]),
    halt(0).
