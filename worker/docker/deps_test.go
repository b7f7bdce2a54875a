package docker

import (
	"strings"
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
			c, unmet := d.next(begun.Add(tt.at))
			if c != nil && !(tt.dbStarts < 0 && c == db) {
				t.Fatalf("next started %s", c.def.Name)
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
	c, unmet := d.next(begun.Add(time.Hour))
	if c != app || unmet != "" {
		t.Fatalf("next = %v, %q; want app", c, unmet)
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
	c, unmet := d.next(time.Now())
	if c != web || unmet != "" {
		t.Fatalf("first = %v, %q; want web", c, unmet)
	}
	web.started = true
	if c, _ := d.next(time.Now()); c != reader {
		t.Fatalf("second = %v; want reader", c)
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
	names := func(cs []*ctr) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.def.Name)
		}
		return strings.Join(s, " ")
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
		if got := names(createOrder(tt.cs)); got != tt.want {
			t.Errorf("%s: got %s, want %s", names(tt.cs), got, tt.want)
		}
	}
}
