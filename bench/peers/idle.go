// Idle goroutines: N goroutines, each started and then blocked on its own
// channel (with "call" as second argument: each first answers one request
// on it). Prints a line, then sleeps 3 s: the harness reads the settled
// RSS meanwhile.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

type msg struct {
	reply chan struct{} // nil: wake
}

func main() {
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	called := len(os.Args) > 2 && os.Args[2] == "call"
	var wg sync.WaitGroup
	wg.Add(n)
	chans := make([]chan msg, n)
	for i := 0; i < n; i++ {
		ch := make(chan msg)
		chans[i] = ch
		go func() {
			wg.Done()
			for m := range ch {
				if m.reply == nil {
					return
				}
				m.reply <- struct{}{}
			}
		}()
	}
	wg.Wait()
	if called {
		for _, ch := range chans {
			r := make(chan struct{})
			ch <- msg{reply: r}
			<-r
		}
	}
	fmt.Printf("idle: %d processes blocked in receive\n", n)
	time.Sleep(3 * time.Second)
}
