%% skynet: a tree of processes, 10 children each, down to SIZE leaves.
-module(skynet).
-export([main/1]).

skynet(Parent, Num, 1) -> Parent ! {sum, Num};
skynet(Parent, Num, Size) ->
    Sub = Size div 10,
    Self = self(),
    start(Self, Num, Sub, 0),
    Parent ! {sum, collect(10, 0)}.

start(_, _, _, 10) -> ok;
start(Self, Num, Sub, I) ->
    spawn(fun() -> skynet(Self, Num + I * Sub, Sub) end),
    start(Self, Num, Sub, I + 1).

collect(0, Acc) -> Acc;
collect(K, Acc) -> receive {sum, S} -> collect(K - 1, Acc + S) end.

main(Args) ->
    Size = case Args of [] -> 1000000; [A | _] -> list_to_integer(A) end,
    Self = self(),
    spawn(fun() -> skynet(Self, 0, Size) end),
    receive {sum, S} -> io:format("~p~n", [S]) end,
    halt(0).
