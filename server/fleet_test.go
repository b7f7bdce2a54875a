package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

func TestPlacementReason(t *testing.T) {
	run := func(cluster, target string, memory int) *jobs.Run {
		return &jobs.Run{Cluster: cluster, TargetWorker: target, Spec: jobs.RunSpec{Task: jobs.TaskDefinition{
			ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Memory: memory}}}}}
	}
	ws := []jobs.WorkerInfo{
		{ID: "a", Cluster: "etl", Capacity: jobs.Resources{CPU: 2048, Memory: 4096, Slots: 2}, State: jobs.WorkerActive},
		{ID: "b", Cluster: "etl", Capacity: jobs.Resources{CPU: 2048, Memory: 512, Slots: 2}, State: jobs.WorkerDraining},
		{ID: "c", Cluster: "etl", Capacity: jobs.Resources{CPU: 2048, Memory: 512, Slots: 2}, State: jobs.WorkerActive,
			RuntimeError: "Cannot connect to the Docker daemon"},
	}
	tests := []struct {
		name string
		r    *jobs.Run
		want string
	}{
		{"fits", run("etl", "", 1000), ""},
		{"too big", run("etl", "", 32000), "no worker in cluster etl has 32000 MiB of memory (the most is 4096 MiB)"},
		{"empty cluster", run("gpu", "", 10), "no live worker in cluster gpu (live workers are in cluster etl)"},
		{"target gone", run("etl", "zz", 10), "no live worker named zz in cluster etl"},
		{"target draining", run("etl", "b", 10), "draining"},
		{"too many cpu units", &jobs.Run{Cluster: "etl", Spec: jobs.RunSpec{Task: jobs.TaskDefinition{
			ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Memory: 10, CPU: 4096}}}}},
			"no worker in cluster etl with 10 MiB of memory has 4096 CPU units (the most is 2048)"},
		// Without a memory need, none is named: "with 0 MiB of memory".
		{"too many cpu units, no memory asked", &jobs.Run{Cluster: "etl", Spec: jobs.RunSpec{Task: jobs.TaskDefinition{
			ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", CPU: 99999999}}}}},
			"no worker in cluster etl has 99999999 CPU units (the most is 2048)"},
		{"fits the active one", run("etl", "", 100), ""},
		{"only a draining one is left", run("etl", "b", 100), "every worker named b in cluster etl that could run it is draining (gantry workers activate ID takes one back)"},
		{"only one without its runtime is left", run("etl", "c", 100),
			"every worker named c in cluster etl that could run it cannot reach its container runtime"},
		// a is of a gantry before priorities: it reads normal runs and
		// its own, not the cluster's high or low ones.
		{"high, only older workers", prio(run("etl", "", 100), jobs.PriorityHigh),
			"no worker in cluster etl that could run it reads high-priority runs: they are of a gantry before run priorities; upgrade them, or submit it with --priority normal"},
		{"low aimed at an older worker", prio(run("etl", "a", 100), jobs.PriorityLow), ""},
		{"normal given outright", prio(run("etl", "", 100), jobs.PriorityNormal), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := placementReason(tt.r, ws)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("reason %q, want %q", got, tt.want)
			}
		})
	}
	want := "every worker in cluster etl that could run it is draining or cannot reach its container runtime"
	if got := placementReason(run("etl", "", 100), ws[1:]); got != want {
		t.Fatalf("without a: reason %q, want %q", got, want)
	}
	// A worker that reads priorities takes the high run.
	withNew := append(slices.Clone(ws), jobs.WorkerInfo{ID: "d", Cluster: "etl", Capacity: jobs.Resources{CPU: 2048, Memory: 4096, Slots: 2},
		State: jobs.WorkerActive, Priorities: true})
	if got := placementReason(prio(run("etl", "", 100), jobs.PriorityHigh), withNew); got != "" {
		t.Fatalf("high run with a worker that reads priorities: reason %q", got)
	}
}

// prio sets r's priority.
func prio(r *jobs.Run, p jobs.Priority) *jobs.Run {
	r.Priority = p
	return r
}

// TestPlacementReasonConstraints: a run whose constraints no live worker
// of its cluster satisfies says which labels none has; the capacity
// reasons name the labels of the workers they looked at.
func TestPlacementReasonConstraints(t *testing.T) {
	ws := []jobs.WorkerInfo{
		{ID: "a", Cluster: "etl", Labels: map[string]string{"disk": "ssd", "zone": "eu-1"},
			Capacity: jobs.Resources{CPU: 2048, Memory: 4096, Slots: 2}, State: jobs.WorkerActive, Priorities: true},
		{ID: "b", Cluster: "etl", Labels: map[string]string{"disk": "hdd", "gpu": "a100"},
			Capacity: jobs.Resources{CPU: 2048, Memory: 8192, Slots: 2}, State: jobs.WorkerDraining, Priorities: true},
		{ID: "c", Cluster: "gpu", Labels: map[string]string{"disk": "nvme"},
			Capacity: jobs.Resources{CPU: 2048, Memory: 4096, Slots: 2}, State: jobs.WorkerActive, Priorities: true},
	}
	run := func(target string, memory int, cs ...string) *jobs.Run {
		r := &jobs.Run{Cluster: "etl", TargetWorker: target, Spec: jobs.RunSpec{Task: jobs.TaskDefinition{
			ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Memory: memory}}}}}
		for _, s := range cs {
			c, err := jobs.ParseConstraint(s)
			if err != nil {
				t.Fatal(err)
			}
			r.Spec.Constraints = append(r.Spec.Constraints, c)
		}
		return r
	}
	tests := []struct {
		name string
		r    *jobs.Run
		want string
	}{
		{"met", run("", 100, "disk=ssd"), ""},
		{"met by not", run("", 100, "zone!=eu-2", "disk=ssd"), ""},
		{"no such label", run("", 100, "disk=nvme"), "no worker in cluster etl has labels disk=nvme"},
		{"only the missing ones named", run("", 100, "disk=ssd", "rack=r1", "zone!=eu-1", "zone=eu-9"),
			"no worker in cluster etl has labels rack=r1, zone=eu-9"},
		{"each on some worker, none with both", run("", 100, "disk=ssd", "gpu=a100"),
			"no worker in cluster etl has labels disk=ssd, gpu=a100 together"},
		{"targeted worker lacks them", run("a", 100, "gpu=a100"), "no worker named a in cluster etl has labels gpu=a100"},
		{"any value", run("", 100, "rack"), "no worker in cluster etl has labels rack"},
		// "has labels !disk" would read as if the worker lacked a label
		// named "!disk".
		{"every worker has it", run("", 100, "!disk"), "no worker in cluster etl meets the constraints !disk"},
		{"not of a value, with others", run("", 100, "disk!=ssd", "zone=eu-1"),
			"no worker in cluster etl meets the constraints disk!=ssd, zone=eu-1 together"},
		{"matched, too big, without a label", run("", 6000, "!gpu"),
			"no worker in cluster etl meeting the constraints !gpu has 6000 MiB of memory (the most is 4096 MiB)"},
		{"matched, too big", run("", 6000, "disk=ssd"),
			"no worker in cluster etl with labels disk=ssd has 6000 MiB of memory (the most is 4096 MiB)"},
		{"matched, draining", run("", 100, "gpu=a100"),
			"every worker in cluster etl with labels gpu=a100 that could run it is draining (gantry workers activate ID takes one back)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := placementReason(tt.r, ws); got != tt.want {
				t.Fatalf("reason %q, want %q", got, tt.want)
			}
		})
	}
	// A fleet whose labels changed places runs otherwise: the sweep
	// looks at every queued run again.
	relabeled := slices.Clone(ws)
	relabeled[0].Labels = map[string]string{"disk": "hdd"}
	if fleetPrint(ws) == fleetPrint(relabeled) {
		t.Fatal("fleetPrint does not change with the workers' labels")
	}
}

// TestPlacementReasonNamesLiveClusters: a run of a cluster no worker is
// in (a misspelt --cluster) says where the live workers are.
func TestPlacementReasonNamesLiveClusters(t *testing.T) {
	in := func(clusters ...string) []jobs.WorkerInfo {
		var ws []jobs.WorkerInfo
		for i, c := range clusters {
			ws = append(ws, jobs.WorkerInfo{ID: fmt.Sprint("w", i), Cluster: c, Capacity: jobs.Resources{Memory: 4096, Slots: 1}, State: jobs.WorkerActive})
		}
		return ws
	}
	for _, tt := range []struct {
		workers []jobs.WorkerInfo
		want    string
	}{
		{nil, "no live worker in cluster defualt (no worker is live at all: gantry worker --cluster defualt starts one)"},
		{in("default", "default"), "no live worker in cluster defualt (live workers are in cluster default)"},
		{in("etl", "default", "etl"), "no live worker in cluster defualt (live workers are in clusters default, etl)"},
		{in("a", "b", "c", "d", "e", "f"), "no live worker in cluster defualt (live workers are in clusters a, b, c, d, e, ...)"},
	} {
		r := &jobs.Run{Cluster: "defualt", Spec: jobs.RunSpec{Task: jobs.TaskDefinition{ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Memory: 10}}}}}
		if got := placementReason(r, tt.workers); got != tt.want {
			t.Errorf("reason %q, want %q", got, tt.want)
		}
	}
}
