package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
)

// Array runs, as AWS Batch's array jobs: a submission with
// "arrayProperties": {"size": N} makes one array run (the parent) and N
// child runs, PARENT-0 to PARENT-(N-1). Each child is an ordinary run of
// the task, with the submission's overrides, timeout, retry strategy,
// tags, cluster and priority, that sees its index as GANTRY_ARRAY_INDEX
// and AWS_BATCH_JOB_ARRAY_INDEX (GANTRY_ARRAY_SIZE the size), as a
// pipeline array stage's children do. The parent runs no container: it
// has no attempt, its job is never queued, and its status is derived from
// its children's (SummarizeArray).
//
// Batch names a child PARENT:INDEX. A colon cannot be in a gantry run id:
// run ids are the keys of the claims bucket, JetStream KV, whose keys
// allow only letters, digits and "-/_=.", and --depends-on RUN[:CONDITION]
// reads what follows a colon as a condition. '-' is neither in a ULID nor
// special in a NATS subject, a KV key, a URL, a shell word or SQLite, and
// sorts right before '.', so a parent's children are a range of the runs'
// primary key ([PARENT-, PARENT.)).

// ArraySeparator joins a parent's id and a child's index in the child's id.
const ArraySeparator = "-"

// MinArrayRunSize is the smallest array a submission may ask for, as AWS
// Batch's: an array of one is a plain run.
const MinArrayRunSize = 2

// ArrayChildID is the id of child i of the array run parent.
func ArrayChildID(parent string, i int) string {
	return parent + ArraySeparator + strconv.Itoa(i)
}

// ArrayChildIndex is the index of child id of the array run parent, as
// ArrayChildID writes it; ok is false for any other id (another run's, an
// index with a sign or a leading zero).
func ArrayChildIndex(parent, id string) (i int, ok bool) {
	s, found := strings.CutPrefix(id, parent+ArraySeparator)
	if !found || parent == "" {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || strconv.Itoa(i) != s {
		return 0, false
	}
	return i, true
}

// ArrayChildRange is the range of run ids [lo, hi) that holds the children
// of the array run parent, and only them.
func ArrayChildRange(parent string) (lo, hi string) {
	return parent + ArraySeparator, parent + string(rune(ArraySeparator[0]+1))
}

// SubmitArrayProperties is a submission's arrayProperties, AWS Batch
// SubmitJob's: Size children. Size is kept as sent, so that Validate
// names the field whatever was in it.
type SubmitArrayProperties struct {
	Size json.RawMessage `json:"size"`
}

// N is the size asked for, or 0 if it is not a whole number.
func (a *SubmitArrayProperties) N() int {
	if a == nil {
		return 0
	}
	n, err := parseArrayRunSize(a.Size)
	if err != nil {
		return 0
	}
	return n
}

// validate collects the problems of a submission's arrayProperties.
func (a *SubmitArrayProperties) validate() error {
	n, err := parseArrayRunSize(a.Size)
	if err != nil {
		return &FieldError{"arrayProperties.size", err.Error()}
	}
	if n < MinArrayRunSize || n > MaxArraySize {
		return &FieldError{"arrayProperties.size", sizeRange(n, "leave arrayProperties out")}
	}
	return nil
}

// parseArrayRunSize reads a size: a JSON whole number (2.0 is 2, as
// JSON numbers carry no type), not a string or anything else.
func parseArrayRunSize(raw json.RawMessage) (int, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" {
		return 0, fmt.Errorf("required: the number of child runs, %d to %d", MinArrayRunSize, MaxArraySize)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != float64(int64(f)) || f > 1e9 || f < -1e9 {
		return 0, fmt.Errorf("%s: want a whole number from %d to %d", shortJSON(raw), MinArrayRunSize, MaxArraySize)
	}
	return int(f), nil
}

// ParseArraySize reads the CLI's --array-size N.
func ParseArraySize(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q: want a whole number from %d to %d", s, MinArrayRunSize, MaxArraySize)
	}
	if n < MinArrayRunSize || n > MaxArraySize {
		return 0, errors.New(sizeRange(n, "leave --array-size out"))
	}
	return n, nil
}

// sizeRange says that n is no size an array run may have; for 1, that
// a plain run is made by leaving out, as plain says, what asked for one.
func sizeRange(n int, plain string) string {
	msg := fmt.Sprintf("%d: must be between %d and %d", n, MinArrayRunSize, MaxArraySize)
	if n == 1 {
		msg += " (an array of one is a plain run: " + plain + ")"
	}
	return msg
}

// ArrayProperties are an array run's, or one of its children's, as AWS
// Batch's ArrayPropertiesDetail: the parent has Size and StatusSummary
// (its children by status), a child its Index.
type ArrayProperties struct {
	Size          int            `json:"size,omitempty"`
	Index         *int           `json:"index,omitempty"`
	StatusSummary map[Status]int `json:"statusSummary,omitempty"`
	// Order is "sequential" for an array whose children run one after
	// another (dependsOn type SEQUENTIAL): child i+1 waits for child i to
	// succeed. Empty: all at once.
	Order string `json:"order,omitempty"`
}

// ArrayOrderSequential is the Order of an array whose children run one
// after another.
const ArrayOrderSequential = "sequential"

// ArrayParent reports whether r is an array run's parent: a run that runs
// no container.
func (r *Run) ArrayParent() bool {
	return r.ArrayProperties != nil && r.ArrayProperties.Size > 0 && r.ArrayJobID == ""
}

// ArrayChildEnv is the environment child i of an array of size n sees,
// as a pipeline array stage's children do.
func ArrayChildEnv(i, n int) []KeyValue {
	s := strconv.Itoa(i)
	return []KeyValue{{Name: "GANTRY_ARRAY_INDEX", Value: s}, {Name: "AWS_BATCH_JOB_ARRAY_INDEX", Value: s},
		{Name: "GANTRY_ARRAY_SIZE", Value: strconv.Itoa(n)}}
}

// ArrayFailure is a child that did not succeed, which the parent's
// stopped reason names.
type ArrayFailure struct {
	RunID    string
	Status   Status
	ExitCode *int
}

// SummarizeArray sets the parent's status from its children's counts by
// status, as AWS Batch derives an array job's: QUEUED until a child
// starts, RUNNING while any has started and not all ended, and once all
// ended SUCCEEDED if all succeeded, CANCELED if the parent was stopped
// (Stop), FAILED otherwise. failed is the first child that did not
// succeed, if any, for the stopped reason. It reports whether anything
// changed.
func (r *Run) SummarizeArray(counts map[Status]int, failed *ArrayFailure, now time.Time) bool {
	ap := r.ArrayProperties
	summary := map[Status]int{}
	ended, started := 0, false
	for st, n := range counts {
		if n == 0 {
			continue
		}
		summary[st] = n
		if st.Terminal() {
			ended += n
		}
		if st != StatusQueued {
			started = true
		}
	}
	changed := !maps.Equal(ap.StatusSummary, summary)
	ap.StatusSummary = summary
	status := StatusQueued
	switch {
	case ended == ap.Size:
		status = StatusSucceeded
		if summary[StatusSucceeded] != ap.Size {
			status = StatusFailed
			if r.StopCode == StopUserInitiated {
				status = StatusCanceled
			}
		}
	case started || r.StartedAt != nil:
		// Once started, it stays RUNNING until all ended, though a
		// child lost with its worker be QUEUED again.
		status = StatusRunning
	}
	if r.Status.Terminal() || status == r.Status {
		return changed
	}
	r.Status = status
	t := now
	switch {
	case status == StatusRunning && r.StartedAt == nil:
		r.StartedAt = &t
	case status.Terminal():
		r.FinishedAt = &t
		r.StatusReason = ""
		if status == StatusSucceeded {
			break
		}
		bad := ap.Size - summary[StatusSucceeded]
		reason := fmt.Sprintf("%d of %d child runs did not succeed", bad, ap.Size)
		if failed != nil {
			// As gantry wait of the first child that failed would exit.
			r.ExitCode = failed.ExitCode
			reason += fmt.Sprintf(", %s %s", failed.RunID, failed.Status)
			if failed.ExitCode != nil {
				reason += fmt.Sprintf(" (exit %d)", *failed.ExitCode)
			}
			if bad > 1 {
				reason += " first"
			}
		}
		if r.StoppedReason != "" && status == StatusCanceled {
			reason = r.StoppedReason + "; " + reason
		}
		r.StoppedReason = reason
		if r.StopCode == "" {
			r.StopCode = StopArrayChildFailed
		}
	}
	return true
}

// StopArrayChildFailed is the stop code of an array run whose children
// did not all succeed, and that was not stopped.
const StopArrayChildFailed = "ArrayChildFailed"

// StopArray records the stop of an array run: once its children have
// ended it is CANCELED, unless all succeeded. It reports false for a
// parent already ended or stopped.
func (r *Run) StopArray(reason string) bool {
	if r.Status.Terminal() || r.StopCode == StopUserInitiated {
		return false
	}
	r.StopCode, r.StoppedReason = StopUserInitiated, reason
	return true
}

// ArraySummaryText is the parent's statusSummary as a line: "3 children:
// 1 RUNNING, 1 SUCCEEDED, 1 FAILED", in the order runs move through the
// statuses.
func (a *ArrayProperties) ArraySummaryText() string {
	order := []Status{StatusQueued, StatusStarting, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled}
	var parts []string
	for _, st := range order {
		if n := a.StatusSummary[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d children", a.Size)
	}
	return fmt.Sprintf("%d children: %s", a.Size, strings.Join(parts, ", "))
}
