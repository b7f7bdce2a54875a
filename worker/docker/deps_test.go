package docker

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

func depsOf(cs ...*ctr) *deps {
	return newDeps(&taskRun{task: &worker.Task{}, containers: cs})
}

// ECS: "containerA depends on containerB reaching a COMPLETE, SUCCESS or
// HEALTHY status. If a startTimeout is specified for containerB and it
// doesn't reach the desired status within that time, containerA gives
// up". The timeout is the target's, counted from the target's start.
func TestStartTimeoutIsTheTargets(t *testing.T) {
	begun := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	unhealthy := &jobs.HealthCheck{Command: []string{"CMD-SHELL", "false"}}
	dep := func(name, cond string) []jobs.ContainerDep {
		return []jobs.ContainerDep{{ContainerName: name, Condition: cond}}
	}
	tests := []struct {
		name     string
		db, app  jobs.ContainerDefinition
		dbStarts time.Duration // after begun; <0: db has not started
		at       time.Duration // when next is asked
		want     string        // the reason app gives up with, "" while it waits
	}{
		{"HEALTHY within db's startTimeout",
			jobs.ContainerDefinition{Name: "db", StartTimeout: 5, HealthCheck: unhealthy},
			jobs.ContainerDefinition{Name: "app", DependsOn: dep("db", jobs.DepHealthy)},
			time.Second, 5900 * time.Millisecond, ""},
		{"HEALTHY past db's startTimeout",
			jobs.ContainerDefinition{Name: "db", StartTimeout: 5, HealthCheck: unhealthy},
			jobs.ContainerDefinition{Name: "app", DependsOn: dep("db", jobs.DepHealthy)},
			time.Second, 6 * time.Second,
			"DependencyNotMet: container app did not start: container db was not HEALTHY within its startTimeout=5s"},
		{"SUCCESS past db's startTimeout",
			jobs.ContainerDefinition{Name: "db", StartTimeout: 2},
			jobs.ContainerDefinition{Name: "app", DependsOn: dep("db", jobs.DepSuccess)},
			0, time.Hour,
			"DependencyNotMet: container app did not start: container db was not SUCCESS within its startTimeout=2s"},
		{"COMPLETE past db's startTimeout",
			jobs.ContainerDefinition{Name: "db", StartTimeout: 2},
			jobs.ContainerDefinition{Name: "app", DependsOn: dep("db", jobs.DepComplete)},
			0, time.Hour,
			"DependencyNotMet: container app did not start: container db was not COMPLETE within its startTimeout=2s"},
		{"the dependent's own startTimeout bounds nothing",
			jobs.ContainerDefinition{Name: "db", HealthCheck: unhealthy},
			jobs.ContainerDefinition{Name: "app", StartTimeout: 1, DependsOn: dep("db", jobs.DepHealthy)},
			0, time.Hour, ""},
		{"the clock starts when db starts",
			jobs.ContainerDefinition{Name: "db", StartTimeout: 5, HealthCheck: unhealthy},
			jobs.ContainerDefinition{Name: "app", DependsOn: dep("db", jobs.DepHealthy)},
			-1, time.Hour, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			no := false
			tt.db.Essential = &no
			db, app := &ctr{def: tt.db}, &ctr{def: tt.app}
			if tt.dbStarts >= 0 {
				db.started, db.startedAt = true, begun.Add(tt.dbStarts)
			}
			d := depsOf(db, app)
			if !d.waiting() && tt.want != "" {
				t.Errorf("waiting() = false: nothing would ask again once the time has passed")
			}
			wave, unmet := d.ready(begun.Add(tt.at))
			if len(wave) > 0 && !(tt.dbStarts < 0 && joined(wave) == "db") {
				t.Fatalf("ready started %s", joined(wave))
			}
			if unmet != tt.want {
				t.Errorf("unmet = %q, want %q", unmet, tt.want)
			}
		})
	}
}

// A START dependency is met by the start: the target's startTimeout does
// not apply to it.
func TestStartTimeoutDoesNotApplyToStart(t *testing.T) {
	begun := time.Now()
	side := &ctr{def: jobs.ContainerDefinition{Name: "side", StartTimeout: 1}}
	app := &ctr{def: jobs.ContainerDefinition{Name: "app",
		DependsOn: []jobs.ContainerDep{{ContainerName: "side", Condition: jobs.DepStart}}}}
	d := depsOf(side, app)
	side.started, side.startedAt = true, begun
	wave, unmet := d.ready(begun.Add(time.Hour))
	if joined(wave) != "app" || unmet != "" {
		t.Fatalf("ready = %q, %q; want app", joined(wave), unmet)
	}
	if strings.Contains(app.reason, "startTimeout") {
		t.Errorf("app reason %q", app.reason)
	}
}

// ECS starts a link's target before the container that links to it, as if
// the link were a START dependency.
func TestLinkTargetStartsFirst(t *testing.T) {
	reader := &ctr{def: jobs.ContainerDefinition{Name: "reader", Links: []string{"web:website"}}}
	web := &ctr{def: jobs.ContainerDefinition{Name: "web"}}
	d := depsOf(reader, web)
	wave, unmet := d.ready(time.Now())
	if joined(wave) != "web" || unmet != "" {
		t.Fatalf("first = %q, %q; want web", joined(wave), unmet)
	}
	web.started = true
	if wave, _ := d.ready(time.Now()); joined(wave) != "reader" {
		t.Fatalf("second = %q; want reader", joined(wave))
	}
}

// joined is the containers' names, separated by spaces.
func joined(cs []*ctr) string { return strings.Join(names(cs), " ") }

// TestReadyWaves: the containers with nothing left to wait for start
// together, in waves; those after a container whose dependency can never
// be met wait, as they did when containers started one at a time (the
// task stops once nothing before that one can start).
func TestReadyWaves(t *testing.T) {
	on := func(name, cond string) jobs.ContainerDep {
		return jobs.ContainerDep{ContainerName: name, Condition: cond}
	}
	def := func(name string, deps ...jobs.ContainerDep) *ctr {
		return &ctr{def: jobs.ContainerDefinition{Name: name, DependsOn: deps}}
	}
	tests := []struct {
		name  string
		cs    []*ctr
		waves []string // what each call of ready starts; the containers start between calls
		unmet string   // the name of the container given up on at the end, if any
	}{
		{"independent", []*ctr{def("a"), def("b"), def("c"), def("d")}, []string{"a b c d"}, ""},
		{"START", []*ctr{def("a"), def("b", on("a", jobs.DepStart)), def("c")}, []string{"a c", "b"}, ""},
		{"chain", []*ctr{def("c", on("b", jobs.DepStart)), def("b", on("a", jobs.DepStart)), def("a")},
			[]string{"a", "b", "c"}, ""},
		{"COMPLETE waits for the exit", []*ctr{def("a"), def("b", on("a", jobs.DepComplete)), def("c")}, []string{"a c"}, ""},
		{"unmet after ready ones", []*ctr{def("a"), def("b", on("a", jobs.DepStart)), def("x", on("nope", jobs.DepStart)), def("c")},
			[]string{"a", "b"}, "x"},
		{"unmet first", []*ctr{def("x", on("nope", jobs.DepStart)), def("a")}, nil, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := depsOf(tt.cs...)
			var got []string
			unmet := ""
			for range len(tt.cs) + 1 {
				wave, why := d.ready(time.Now())
				if why != "" {
					unmet = why
					break
				}
				if len(wave) == 0 {
					break
				}
				got = append(got, joined(wave))
				for _, c := range wave {
					c.started = true
				}
			}
			equal(t, "waves", got, tt.waves)
			switch {
			case tt.unmet == "" && unmet != "":
				t.Errorf("unmet %q, want none", unmet)
			case tt.unmet != "" && !strings.Contains(unmet, "container "+tt.unmet+" did not start"):
				t.Errorf("unmet %q, want %s given up on", unmet, tt.unmet)
			}
		})
	}
}

func TestCreateOrder(t *testing.T) {
	def := func(name string, from []string, links ...string) *ctr {
		c := &ctr{def: jobs.ContainerDefinition{Name: name, Links: links}}
		for _, f := range from {
			c.def.VolumesFrom = append(c.def.VolumesFrom, jobs.VolumeFrom{SourceContainer: f})
		}
		return c
	}
	tests := []struct {
		cs   []*ctr
		want string
	}{
		{[]*ctr{def("main", nil)}, "main"},
		{[]*ctr{def("reader", []string{"writer"}), def("writer", nil)}, "writer reader"},
		{[]*ctr{def("a", nil, "c:see"), def("b", []string{"a"}), def("c", []string{"d"}), def("d", nil)}, "d c a b"},
		// A cycle (refused by validation) is broken where it closes.
		{[]*ctr{def("a", []string{"b"}), def("b", []string{"a"})}, "b a"},
	}
	for _, tt := range tests {
		if got := joined(createOrder(tt.cs)); got != tt.want {
			t.Errorf("%s: got %s, want %s", joined(tt.cs), got, tt.want)
		}
	}
}

func TestCreateWaves(t *testing.T) {
	def := func(name string, from []string, links ...string) *ctr {
		c := &ctr{def: jobs.ContainerDefinition{Name: name, Links: links}}
		for _, f := range from {
			c.def.VolumesFrom = append(c.def.VolumesFrom, jobs.VolumeFrom{SourceContainer: f})
		}
		return c
	}
	tests := []struct {
		cs   []*ctr
		want []string
	}{
		{[]*ctr{def("main", nil)}, []string{"main"}},
		{[]*ctr{def("a", nil), def("b", nil), def("c", nil), def("d", nil)}, []string{"a b c d"}},
		{[]*ctr{def("reader", []string{"writer"}), def("writer", nil), def("other", nil)}, []string{"writer other", "reader"}},
		{[]*ctr{def("a", nil, "c:see"), def("b", []string{"a"}), def("c", []string{"d"}), def("d", nil)}, []string{"d", "c", "a", "b"}},
		// Two containers that both take from one, and one linking to itself.
		{[]*ctr{def("x", []string{"s"}), def("y", []string{"s"}, "y"), def("s", nil, "s:me")}, []string{"s", "x y"}},
		// A cycle (refused by validation) is broken where it closes.
		{[]*ctr{def("a", []string{"b"}), def("b", []string{"a"})}, []string{"b", "a"}},
	}
	for _, tt := range tests {
		var got []string
		for _, w := range createWaves(tt.cs) {
			got = append(got, joined(w))
		}
		equal(t, joined(tt.cs), got, tt.want)
	}
}

// TestInParallel: the calls overlap (each waits to see all the others
// begun, which calls made one at a time never would), and no more than
// maxParallel run at once.
func TestInParallel(t *testing.T) {
	for _, n := range []int{1, 2, 4, maxParallel, 3*maxParallel + 1} {
		var mu sync.Mutex
		running, most, calls := 0, 0, 0
		all := make(chan struct{}) // closed once min(n, maxParallel) calls are running together
		together := min(n, maxParallel)
		timeout := time.After(time.Minute)
		timedOut := false
		inParallel(n, func(i int) {
			mu.Lock()
			running++
			calls++
			most = max(most, running)
			if calls == together {
				close(all)
			}
			mu.Unlock()
			select {
			case <-all:
			case <-timeout:
				mu.Lock()
				timedOut = true
				mu.Unlock()
			}
			mu.Lock()
			running--
			mu.Unlock()
		})
		if timedOut {
			t.Errorf("n=%d: the calls did not run together", n)
		}
		if calls != n || most != together {
			t.Errorf("n=%d: %d calls, at most %d at once; want %d and %d", n, calls, most, n, together)
		}
	}
}
