// Opens N keep-alive HTTP connections to 127.0.0.1:PORT, makes one request
// on each, prints "ready" and holds them until stdin closes (bench/net's
// memory per idle connection).
//
//	idle_client PORT N
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
)

func main() {
	port := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		r := bufio.NewReader(c)
		// Skip the response head and its small body.
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		buf := make([]byte, 14)
		r.Read(buf)
		conns = append(conns, c)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
}
