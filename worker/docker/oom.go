package docker

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// A SIGKILL of a container with a memory limit that gantry did not stop
// may be an OOM kill whose flag Docker 20.10 lost (it handled the exit
// after the OOM). The daemon's OOM event is then the truth, and it can
// trail the exit (by over half a second on a loaded host): finish waits up
// to oomEventWait for the exit stream (exits.go) to show it, then inspects
// once more, and only a SIGKILL that was not an OOM kill waits the whole
// time. Without a stream, oomEvent asks the daemon's event log, which
// keeps only its last 256 events: on a busy host they may be gone.
const oomEventWait = 4 * time.Second

// oomEvent reports whether the daemon's event log holds an OOM kill of the
// container since it started, looking up to oomEventWait ahead.
func (r *Runtime) oomEvent(ctx context.Context, id, startedAt string) bool {
	since := time.Now().Add(-time.Hour)
	if t, err := time.Parse(time.RFC3339Nano, startedAt); err == nil {
		since = t.Add(-time.Second)
	}
	ctx, cancel := context.WithTimeout(ctx, oomEventWait+3*time.Second)
	defer cancel()
	msgs, errs := r.cli.Events(ctx, events.ListOptions{
		Since: since.Format(time.RFC3339Nano),
		Until: time.Now().Add(oomEventWait).Format(time.RFC3339Nano),
		Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("container", id), filters.Arg("event", string(events.ActionOOM))),
	})
	for {
		select {
		case m := <-msgs:
			if m.Action == events.ActionOOM {
				return true
			}
		case <-errs: // the stream ended at Until, or failed
			return r.oomFlag(id)
		case <-ctx.Done():
			return r.oomFlag(id)
		}
	}
}

// oomFlag inspects the container again: the daemon may have set its OOM
// flag while the event query waited.
func (r *Runtime) oomFlag(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := r.cli.ContainerInspect(ctx, id)
	return err == nil && info.State != nil && info.State.OOMKilled
}
