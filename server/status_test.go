package server

import (
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// TestStatusEventsCarryContainers: since workers report on gantry.reports,
// the server's status event on gantry.events.runs.<runId> is where
// followers see a running run's containers and their published ports; it
// says it is the server's in its header.
func TestStatusEventsCarryContainers(t *testing.T) {
	e := startLostEnv(t)
	r := &jobs.Run{RunID: "01status", Status: jobs.StatusRunning, Worker: "w1",
		Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusRunning}},
		Containers: []jobs.ContainerResult{{Name: "web", NetworkBindings: []jobs.NetworkBinding{
			{ContainerPort: 80, HostPort: 32768, Protocol: "tcp", BindIP: "0.0.0.0"}}}}}
	sub, err := e.q.Conn().SubscribeSync(queue.EventSubject(r.RunID))
	if err != nil {
		t.Fatal(err)
	}
	e.s.publishStatus(r)
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !queue.FromServer(m.Header) {
		t.Errorf("header %v: not marked as the server's", m.Header)
	}
	evs, err := e.q.WatchRun(e.ctx, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	ev := <-evs
	if ev.Status != jobs.StatusRunning || len(ev.Containers) != 1 || len(ev.Containers[0].NetworkBindings) != 1 ||
		ev.Containers[0].NetworkBindings[0].HostPort != 32768 {
		t.Fatalf("event %+v", ev)
	}
}

// TestStatusChangesWithinAStatusAreKept: a second change that keeps the
// status (a STARTING run's new pull progress) is stored for followers too,
// not dropped as a duplicate of the first.
func TestStatusChangesWithinAStatusAreKept(t *testing.T) {
	e := startLostEnv(t)
	r := &jobs.Run{RunID: "01pulling", Status: jobs.StatusStarting, Worker: "w1",
		Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusStarting}}, StatusReason: "Pulling image busybox: 10%"}
	e.s.publishStatus(r)
	r.StatusReason = "Pulling image busybox: 80%"
	e.s.publishStatus(r)
	evs, err := e.q.WatchRun(e.ctx, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Pulling image busybox: 10%", "Pulling image busybox: 80%"} {
		select {
		case ev := <-evs:
			if ev.StatusReason != want {
				t.Fatalf("event %+v, want reason %q", ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event with reason %q", want)
		}
	}
}
