// Idle goroutines: N goroutines, each started and then blocked on its own channel.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

func main() {
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	var wg sync.WaitGroup
	wg.Add(n)
	chans := make([]chan struct{}, n)
	for i := 0; i < n; i++ {
		ch := make(chan struct{})
		chans[i] = ch
		go func() { wg.Done(); <-ch }()
	}
	wg.Wait()
	fmt.Printf("idle: %d processes blocked in receive\n", n)
}
