%% HTTP hello world on gen_tcp, active once, {packet, http_bin}: a process
%% per connection (what an Erlang programmer writes without a framework).
%% Prints "port N". Run: erl +S 1 -noshell -pa DIR -run http_hello main PORT
-module(http_hello).
-export([main/1]).

main([Port]) ->
    {ok, L} = gen_tcp:listen(list_to_integer(Port),
                             [binary, {packet, http_bin}, {active, false},
                              {reuseaddr, true}, {backlog, 1024}, {ip, {127,0,0,1}}]),
    {ok, P} = inet:port(L),
    io:format("port ~p~n", [P]),
    accept(L).

accept(L) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> conn(S) end end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept(L).

conn(S) ->
    inet:setopts(S, [{active, once}]),
    receive
        {http, S, {http_request, _M, _Path, _V}} -> headers(S);
        {tcp_closed, S} -> ok;
        _ -> gen_tcp:close(S)
    end.

headers(S) ->
    inet:setopts(S, [{active, once}]),
    receive
        {http, S, {http_header, _, _, _, _}} -> headers(S);
        {http, S, http_eoh} ->
            gen_tcp:send(S, <<"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                              "content-length: 14\r\n\r\nHello, world!\n">>),
            conn(S);
        {tcp_closed, S} -> ok;
        _ -> gen_tcp:close(S)
    end.
