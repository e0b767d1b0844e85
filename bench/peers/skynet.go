// skynet: a tree of goroutines, 10 children each, down to SIZE leaves.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func skynet(c chan int, num, size int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	sub := size / 10
	for i := 0; i < 10; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	sum := 0
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func main() {
	size := 1000000
	if len(os.Args) > 1 {
		size, _ = strconv.Atoi(os.Args[1])
	}
	c := make(chan int)
	go skynet(c, 0, size)
	fmt.Println(<-c)
}
