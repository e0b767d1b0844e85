// ping-pong: N round trips between two goroutines.
package main

import (
	"fmt"
	"os"
	"strconv"
)

type msg struct {
	from chan msg
	stop bool
}

func ponger(self chan msg) {
	for m := range self {
		if m.stop {
			return
		}
		m.from <- msg{}
	}
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	p := make(chan msg, 1)
	go ponger(p)
	done := make(chan bool)
	go func() {
		self := make(chan msg, 1)
		for i := 0; i < n; i++ {
			p <- msg{from: self}
			<-self
		}
		p <- msg{stop: true}
		done <- true
	}()
	<-done
	fmt.Printf("ping-pong: %d round trips\n", n)
}
