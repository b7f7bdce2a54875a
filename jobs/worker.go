package jobs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WorkerState says whether a worker takes new runs.
type WorkerState string

// Worker states, as ECS names those of container instances.
const (
	WorkerActive   WorkerState = "ACTIVE"
	WorkerDraining WorkerState = "DRAINING"
)

// Resources are amounts of what a worker offers and a run needs: CPU units
// (1024 = one CPU, as ECS counts), memory in MiB and slots (runs at once).
type Resources struct {
	CPU    int `json:"cpu"`
	Memory int `json:"memory"`
	Slots  int `json:"slots"`
}

// Fits reports whether need fits in r. A zero CPU or memory need fits
// anywhere a slot is free.
func (r Resources) Fits(need Resources) bool {
	return need.CPU <= r.CPU && need.Memory <= r.Memory && need.Slots <= r.Slots
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPU: r.CPU + o.CPU, Memory: r.Memory + o.Memory, Slots: r.Slots + o.Slots}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{CPU: r.CPU - o.CPU, Memory: r.Memory - o.Memory, Slots: r.Slots - o.Slots}
}

// WorkerInfo is what a worker says of itself in its heartbeats, and what
// `gantry workers ls` shows.
type WorkerInfo struct {
	ID            string            `json:"id"`
	Cluster       string            `json:"cluster"`
	Host          string            `json:"host"`
	Labels        map[string]string `json:"labels,omitempty"`
	Capacity      Resources         `json:"capacity"`
	InUse         Resources         `json:"inUse"`
	Runs          []string          `json:"runs"`
	State         WorkerState       `json:"state"`
	Version       string            `json:"version,omitempty"`
	StartedAt     time.Time         `json:"startedAt"`
	LastHeartbeat time.Time         `json:"lastHeartbeat"`
	// RuntimeError, while set, says why the worker takes no runs although
	// it is ACTIVE: its container runtime does not answer (the error of
	// its last ping).
	RuntimeError string `json:"runtimeError,omitempty"`
	// Priorities says the worker reads the queues of high and low runs
	// (gantry.jobs.<cluster>.p.*); workers before run priorities leave
	// it out, and read only normal ones.
	Priorities bool `json:"priorities,omitempty"`
	// Stopping says the worker was told to stop (SIGTERM): DRAINING, it
	// finishes its runs within its grace period and takes none again
	// before it restarts, whatever its drain setting.
	Stopping bool `json:"stopping,omitempty"`
	// NotLive is set only in the replies of workers.drain and
	// workers.activate, for a worker id with no heartbeat: the setting is
	// recorded, and State is the state the worker starts in when it next
	// starts.
	NotLive bool `json:"notLive,omitempty"`
}

// Free is what the worker has left.
func (w WorkerInfo) Free() Resources { return w.Capacity.Sub(w.InUse) }

// Demand is what one attempt of the spec takes from a worker: the task's
// cpu and memory when the task definition sets them (ECS task size), the
// sum of its containers' otherwise (memory, or memoryReservation when a
// container sets only that), and one slot.
func (s RunSpec) Demand() Resources {
	need := Resources{Slots: 1}
	def, err := s.Task.WithOverrides(s.Overrides)
	if err != nil {
		def = s.Task
	}
	for _, c := range def.ContainerDefinitions {
		need.CPU += c.CPU
		if c.Memory > 0 {
			need.Memory += c.Memory
		} else {
			need.Memory += c.MemoryReservation
		}
	}
	if cpu, err := ParseCPUUnits(def.CPU); err == nil && cpu > 0 {
		need.CPU = cpu
	}
	if mem, err := ParseMemoryMiB(def.Memory); err == nil && mem > 0 {
		need.Memory = mem
	}
	return need
}

// ParseCPUUnits reads an ECS task cpu: "1024", "1 vCPU" or "0.5 vcpu".
// The empty string is zero.
func ParseCPUUnits(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	low := strings.ToLower(s)
	if num, ok := strings.CutSuffix(low, "vcpu"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("cpu %q: want CPU units (1024) or vCPUs (1 vCPU)", s)
		}
		return int(f * 1024), nil
	}
	n, err := strconv.Atoi(low)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cpu %q: want CPU units (1024) or vCPUs (1 vCPU)", s)
	}
	return n, nil
}

// ParseMemoryMiB reads an ECS task memory: "512" (MiB), "1 GB" or "2GB".
// The empty string is zero.
func ParseMemoryMiB(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	low := strings.ToLower(s)
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"gib", 1024}, {"gb", 1024}, {"mib", 1}, {"mb", 1}} {
		if num, ok := strings.CutSuffix(low, u.suffix); ok {
			low, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(low, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("memory %q: want MiB (512) or GB (1 GB)", s)
	}
	return int(f * mult), nil
}
