package worker

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestPoolReusesGoroutines: work given to a pool whose goroutines are
// idle runs on them, every function runs once, Wait waits for all, and
// Close ends the idle goroutines. In a bubble, synctest.Wait returns once
// a goroutine that finished its work waits for more: a sleep of 10 ms for
// that let a loaded machine's Go start a second goroutine now and then.
func TestPoolReusesGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPool()
		var ran, started atomic.Int64
		for range 3 { // one after the other: the first goroutine serves all
			p.Go(func() { ran.Add(1) })
			p.Wait()
			synctest.Wait() // it waits for more
		}
		release := make(chan struct{})
		for range 5 { // at once: each needs a goroutine of its own
			p.Go(func() { started.Add(1); <-release; ran.Add(1) })
		}
		synctest.Wait()
		if n := started.Load(); n != 5 {
			t.Fatalf("%d of 5 functions started at once", n)
		}
		close(release)
		p.Wait()
		if ran.Load() != 8 {
			t.Fatalf("ran %d functions, want 8", ran.Load())
		}
		if n := p.started.Load(); n != 5 {
			t.Fatalf("the pool started %d goroutines, want 5 (the first reused for the three in sequence)", n)
		}
		p.Close()
		synctest.Wait() // the idle goroutines end, well before poolIdle
		if n := p.live.Load(); n != 0 {
			t.Fatalf("%d goroutines still live after Close", n)
		}
	})
}
