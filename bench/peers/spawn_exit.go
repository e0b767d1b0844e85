// spawn-and-exit: TOTAL goroutines in batches of BATCH; each batch is started,
// then waited for until every goroutine of it has returned.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

func main() {
	total, batch := 1000000, 1000
	if len(os.Args) > 1 {
		total, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		batch, _ = strconv.Atoi(os.Args[2])
	}
	for b := 0; b < total/batch; b++ {
		var wg sync.WaitGroup
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	fmt.Printf("spawn-exit: %d processes\n", total/batch*batch)
}
