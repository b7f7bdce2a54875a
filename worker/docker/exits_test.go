package docker

import (
	"context"
	"testing"
	"time"
)

// TestOOMSeenOnTheStream: an OOM kill the exit stream saw is found at
// once, one that comes while finish waits is found when it comes, none is
// reported after the wait; without a stream, oomSeen says so.
func TestOOMSeenOnTheStream(t *testing.T) {
	r := &Runtime{}
	ctx := context.Background()
	if seen, watching := r.oomSeen(ctx, "c1", time.Second); seen || watching {
		t.Fatalf("no stream: seen %v, watching %v", seen, watching)
	}
	r.exits.cancel = func() {} // a stream runs
	r.exits.sawOOM("c1")
	if seen, _ := r.oomSeen(ctx, "c1", time.Second); !seen {
		t.Fatal("an OOM kill seen before the wait was not found")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		r.exits.sawOOM("c2")
	}()
	start := time.Now()
	if seen, _ := r.oomSeen(ctx, "c2", 5*time.Second); !seen || time.Since(start) > 4*time.Second {
		t.Fatalf("an OOM kill seen during the wait: seen %v after %s", seen, time.Since(start))
	}
	if seen, watching := r.oomSeen(ctx, "c3", 100*time.Millisecond); seen || !watching {
		t.Fatalf("no OOM kill: seen %v, watching %v", seen, watching)
	}
}
