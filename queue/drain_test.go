package queue

import (
	"context"
	"sync"
	"testing"
)

// TestWatchDrainGivesTheStoredSettingFirst: a worker drained while it was
// not live (gantry workers drain of a host down for maintenance) is told
// so before WatchDrain returns, so that it takes nothing at its start;
// an activation recorded meanwhile is read as well.
func TestWatchDrainGivesTheStoredSettingFirst(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct {
		name  string
		id    string
		set   []bool // SetDrain calls before the worker starts
		want  bool
		calls int
	}{
		{"drained", "w1", []bool{true}, true, 1},
		{"drained then activated", "w2", []bool{true, false}, false, 1},
		{"never drained", "w3", nil, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := c.id
			for _, d := range c.set {
				if err := q.SetDrain(ctx, id, d); err != nil {
					t.Fatal(err)
				}
			}
			var (
				mu  sync.Mutex
				got []bool
			)
			if err := q.WatchDrain(ctx, id, func(d bool) {
				mu.Lock()
				got = append(got, d)
				mu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != c.calls || (c.calls > 0 && got[len(got)-1] != c.want) {
				t.Errorf("when WatchDrain returned, fn had been given %v; want %d call(s), the last %v", got, c.calls, c.want)
			}
		})
	}
}
