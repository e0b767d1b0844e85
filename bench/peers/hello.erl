-module(hello).
-export([main/0, main/1]).

main() -> main([]).

main(_) ->
    io:format("Hello, world!~n"),
    halt(0).
