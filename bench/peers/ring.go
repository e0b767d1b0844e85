// ring: N goroutines pass a token M laps (N * M hops).
package main

import (
	"fmt"
	"os"
	"strconv"
)

func relay(in, next chan int) {
	for k := range in {
		next <- k - 1
	}
}

func main() {
	n, m := 1000, 100
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[1])
		m, _ = strconv.Atoi(os.Args[2])
	}
	leader := make(chan int, 1)
	next := leader
	for i := 0; i < n-1; i++ {
		in := make(chan int, 1)
		go relay(in, next)
		next = in
	}
	first := next
	done := make(chan bool)
	go func() {
		first <- n*m - 1
		for k := range leader {
			if k == 0 {
				break
			}
			first <- k - 1
		}
		done <- true
	}()
	<-done
	fmt.Printf("ring: %d processes, %d laps, %d hops\n", n, m, n*m)
}
