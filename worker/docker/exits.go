package docker

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// exitWatch learns of container exits from the daemon's event stream. The
// daemon reports "die" as soon as the process has exited, while a wait's
// answer comes only after it has torn the container down, some 50 ms later
// here; on a pipeline's critical path that is most of a stage hop. The wait
// stays the authority: an exit the stream misses (it was not connected yet,
// or it broke) is still seen, a little later.
type exitWatch struct {
	mu      sync.Mutex
	subs    map[string]chan int // container id → its exit code
	cancel  context.CancelFunc  // the stream, when it runs
	idleFor *time.Timer         // stops the stream a while after the last watch ends

	// The stream carries OOM kills too: the daemon's event log keeps only
	// its last 256 events, which a busy host overwrites before an exited
	// container's OOM kill is looked up there (oom.go).
	ooms   map[string]time.Time // container id → when its OOM kill was seen
	oomNew chan struct{}        // closed, and replaced, at each OOM kill seen
}

// oomKeep is how long an OOM kill seen on the stream is remembered.
const oomKeep = time.Minute

// linger keeps the stream open between tasks that follow each other.
const linger = 30 * time.Second

// watchExit returns a channel that receives the container's exit code when
// the daemon reports it; call it before starting the container, and
// unwatchExit when done.
func (r *Runtime) watchExit(id string) <-chan int {
	w := &r.exits
	ch := make(chan int, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = map[string]chan int{}
	}
	w.subs[id] = ch
	if w.idleFor != nil {
		w.idleFor.Stop()
		w.idleFor = nil
	}
	if w.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w.cancel = cancel
		go r.streamExits(ctx)
	}
	return ch
}

func (r *Runtime) unwatchExit(id string) {
	w := &r.exits
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs, id)
	if len(w.subs) == 0 && w.cancel != nil && w.idleFor == nil {
		w.idleFor = time.AfterFunc(linger, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.subs) == 0 && w.cancel != nil {
				w.cancel()
				w.cancel = nil
			}
			w.idleFor = nil
		})
	}
}

// streamExits follows die events of gantry's containers until ctx is done,
// reconnecting (from where it left off) when the stream breaks.
func (r *Runtime) streamExits(ctx context.Context) {
	since := time.Now()
	for ctx.Err() == nil {
		msgs, errs := r.cli.Events(ctx, events.ListOptions{
			Since: strconv.FormatInt(since.Unix(), 10),
			Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)),
				filters.Arg("event", string(events.ActionDie)), filters.Arg("event", string(events.ActionOOM)),
				filters.Arg("label", LabelRun)),
		})
	read:
		for {
			select {
			case m := <-msgs:
				since = time.Unix(0, m.TimeNano)
				if m.Action == events.ActionOOM {
					r.exits.sawOOM(m.Actor.ID)
					continue
				}
				code, err := strconv.Atoi(m.Actor.Attributes["exitCode"])
				if err != nil {
					continue
				}
				r.exits.mu.Lock()
				if ch := r.exits.subs[m.Actor.ID]; ch != nil {
					select {
					case ch <- code:
					default:
					}
				}
				r.exits.mu.Unlock()
			case <-errs:
				break read
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sawOOM records an OOM kill seen on the stream.
func (w *exitWatch) sawOOM(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.ooms == nil {
		w.ooms = map[string]time.Time{}
	}
	for old, at := range w.ooms {
		if now.Sub(at) > oomKeep {
			delete(w.ooms, old)
		}
	}
	w.ooms[id] = now
	if w.oomNew != nil {
		close(w.oomNew)
	}
	w.oomNew = make(chan struct{})
}

// oomSeen waits up to wait for the stream to show an OOM kill of the
// container. watching is false when no stream runs to ask.
func (r *Runtime) oomSeen(ctx context.Context, id string, wait time.Duration) (seen, watching bool) {
	w := &r.exits
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		w.mu.Lock()
		_, seen := w.ooms[id]
		watching := w.cancel != nil
		if w.oomNew == nil {
			w.oomNew = make(chan struct{})
		}
		next := w.oomNew
		w.mu.Unlock()
		if seen || !watching {
			return seen, watching
		}
		select {
		case <-next:
		case <-t.C:
			return false, true
		case <-ctx.Done():
			return false, true
		}
	}
}
