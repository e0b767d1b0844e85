// The echo load generator of bench/net: CONNS connections each write a
// SIZE-byte message and read it back, again and again, for SECONDS;
// prints the bytes echoed per second.
//
//	echo_client PORT CONNS SIZE SECONDS
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	port := os.Args[1]
	conns, _ := strconv.Atoi(os.Args[2])
	size, _ := strconv.Atoi(os.Args[3])
	secs, _ := strconv.ParseFloat(os.Args[4], 64)
	var total int64
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			defer c.Close()
			msg := make([]byte, size)
			back := make([]byte, size)
			for time.Now().Before(deadline) {
				if _, err := c.Write(msg); err != nil {
					return
				}
				if _, err := io.ReadFull(c, back); err != nil {
					return
				}
				atomic.AddInt64(&total, int64(size))
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%.0f\n", float64(total)/secs)
}
