// binary-trees (the benchmarks game): one goroutine per depth.
package main

import (
	"fmt"
	"os"
	"strconv"
)

type Node struct{ left, right *Node }

func make_(d int) *Node {
	if d == 0 {
		return &Node{}
	}
	return &Node{make_(d - 1), make_(d - 1)}
}

func (n *Node) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

const minDepth = 4

func main() {
	n := 10
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	maxDepth := n
	if minDepth+2 > n {
		maxDepth = minDepth + 2
	}
	stretch := maxDepth + 1
	fmt.Printf("stretch tree of depth %d\t check: %d\n", stretch, make_(stretch).check())
	long := make_(maxDepth)
	results := make([]chan string, 0)
	for d := minDepth; d <= maxDepth; d += 2 {
		c := make(chan string, 1)
		results = append(results, c)
		go func(d int, c chan string) {
			iters := 1 << uint(maxDepth-d+minDepth)
			chk := 0
			for i := 0; i < iters; i++ {
				chk += make_(d).check()
			}
			c <- fmt.Sprintf("%d\t trees of depth %d\t check: %d", iters, d, chk)
		}(d, c)
	}
	for _, c := range results {
		fmt.Println(<-c)
	}
	fmt.Printf("long lived tree of depth %d\t check: %d\n", maxDepth, long.check())
}
