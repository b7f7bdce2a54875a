package jobs

import "fmt"

// Priority orders the runs waiting in a cluster's queue, as AWS Batch's
// job-queue priority or Kubernetes' PriorityClass do: a worker with room
// takes the jobs aimed at it first, then high, then normal, then low, and
// first come first served within a level. Nothing running is stopped for
// a higher priority, and low runs can wait for as long as higher ones keep
// coming.
type Priority string

// The priorities, highest first. The empty priority is normal.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Priorities lists the priorities, highest first.
var Priorities = []Priority{PriorityHigh, PriorityNormal, PriorityLow}

// Or is p, or def when p is empty.
func (p Priority) Or(def Priority) Priority {
	if p == "" {
		return def
	}
	return p
}

// Level is p with the empty priority read as normal.
func (p Priority) Level() Priority { return p.Or(PriorityNormal) }

// Valid reports whether p is a priority, the empty one (normal) included.
func (p Priority) Valid() bool {
	switch p {
	case "", PriorityHigh, PriorityNormal, PriorityLow:
		return true
	}
	return false
}

// ParsePriority reads a priority as the CLI's --priority takes it.
func ParsePriority(s string) (Priority, error) {
	if p := Priority(s); p.Valid() {
		return p, nil
	}
	return "", fmt.Errorf("%q: want high, normal or low", s)
}

// CheckPriority is the problem of p as the field at path, if any: a
// *FieldError naming the field.
func CheckPriority(path string, p Priority) error {
	if p.Valid() {
		return nil
	}
	return &FieldError{Path: path, Msg: fmt.Sprintf("%q: want high, normal or low", string(p))}
}

// StagePriority is the priority of the runs of stage st in the pipeline
// run: the run's own (given when it was started), else the stage's, else
// the pipeline's, else normal.
func (pr *PipelineRun) StagePriority(st *Stage) Priority {
	return pr.Priority.Or(st.Priority.Or(pr.Spec.Priority)).Level()
}
