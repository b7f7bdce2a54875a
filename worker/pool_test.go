package worker

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolReusesGoroutines: work given to a pool whose goroutines are
// idle runs on them, every function runs once, Wait waits for all, and
// Close ends the idle goroutines.
func TestPoolReusesGoroutines(t *testing.T) {
	p := NewPool()
	var ran, started atomic.Int64
	for range 3 { // one after the other: the first goroutine serves all
		p.Go(func() { ran.Add(1) })
		p.Wait()
		time.Sleep(10 * time.Millisecond) // let it reach its idle wait
	}
	release := make(chan struct{})
	for range 5 { // at once: each needs a goroutine of its own
		p.Go(func() { started.Add(1); <-release; ran.Add(1) })
	}
	for started.Load() < 5 {
		time.Sleep(time.Millisecond)
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
	deadline := time.Now().Add(5 * time.Second)
	for p.live.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still live after Close", p.live.Load())
		}
		time.Sleep(time.Millisecond)
	}
}
