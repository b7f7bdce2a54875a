package docker

import (
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func names(cs []*ctr) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.def.Name)
	}
	return out
}

// ECS stops a container only after the containers that depend on it have
// stopped: main, then app, then db.
func TestShutdownStopsDependentsFirst(t *testing.T) {
	on := func(name string) []jobs.ContainerDep {
		return []jobs.ContainerDep{{ContainerName: name, Condition: jobs.DepStart}}
	}
	db := &ctr{def: jobs.ContainerDefinition{Name: "db"}, started: true}
	app := &ctr{def: jobs.ContainerDefinition{Name: "app", DependsOn: on("db")}, started: true}
	main := &ctr{def: jobs.ContainerDefinition{Name: "main", DependsOn: on("app")}, started: true}
	side := &ctr{def: jobs.ContainerDefinition{Name: "side"}, started: true}
	cs := []*ctr{db, app, main, side}
	now := time.Now()
	var sd shutdown
	for _, c := range cs {
		sd.add(c, "stop", 10*time.Second, now)
	}
	step := func(want ...string) {
		t.Helper()
		stop, causes := sd.ready(cs, now)
		equal(t, "stopped", names(stop), want)
		for i, c := range causes {
			if c != "stop" {
				t.Errorf("cause %d = %q", i, c)
			}
		}
	}
	step("main", "side")
	step()
	main.exited = true
	step("app")
	app.exited = true
	step("db")
	if sd.waiting() {
		t.Error("still holding containers back")
	}
}

// A dependent that does not stop holds what it depends on back only until
// the sum of the stop timeouts has passed.
func TestShutdownIsBounded(t *testing.T) {
	db := &ctr{def: jobs.ContainerDefinition{Name: "db"}, started: true}
	app := &ctr{def: jobs.ContainerDefinition{Name: "app",
		DependsOn: []jobs.ContainerDep{{ContainerName: "db", Condition: jobs.DepHealthy}}}, started: true}
	cs := []*ctr{db, app}
	now := time.Now()
	var sd shutdown
	sd.add(db, "stop", 5*time.Second, now)
	sd.add(app, "stop", 30*time.Second, now)
	sd.add(app, "again", 30*time.Second, now) // already held: no change
	if stop, _ := sd.ready(cs, now); len(stop) != 1 || stop[0] != app {
		t.Fatalf("first stopped %v, want app", names(stop))
	}
	if stop, _ := sd.ready(cs, now.Add(35*time.Second-time.Millisecond)); len(stop) != 0 {
		t.Fatalf("stopped %v before the 35 s the stop timeouts add up to", names(stop))
	}
	if stop, _ := sd.ready(cs, now.Add(35*time.Second)); len(stop) != 1 || stop[0] != db {
		t.Fatalf("after 35 s stopped %v, want db", names(stop))
	}
}

// A held container that exits on its own is not stopped.
func TestShutdownDropsExited(t *testing.T) {
	db := &ctr{def: jobs.ContainerDefinition{Name: "db"}, started: true}
	app := &ctr{def: jobs.ContainerDefinition{Name: "app",
		DependsOn: []jobs.ContainerDep{{ContainerName: "db", Condition: jobs.DepStart}}}, started: true}
	var sd shutdown
	sd.add(db, "stop", time.Second, time.Now())
	sd.add(app, "stop", time.Second, time.Now())
	sd.ready([]*ctr{db, app}, time.Now())
	db.exited = true
	if stop, _ := sd.ready([]*ctr{db, app}, time.Now()); len(stop) != 0 || sd.waiting() {
		t.Fatalf("stopped %v, waiting %v", names(stop), sd.waiting())
	}
}
