package jobs

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// A pipeline with dependsOnPast: true (Pipeline.DependsOnPast) starts a
// run that has a scheduled time only once its previous run, the one with
// the latest scheduled time before its own, has SUCCEEDED; the first run
// has none and starts. Runs without a scheduled time take no part.

// WaitsForPast reports whether pr, a run of a pipeline whose latest
// version is p, waits for its previous run: p has dependsOnPast and pr a
// scheduled time.
func WaitsForPast(p *Pipeline, pr *PipelineRun) bool {
	return p != nil && p.DependsOnPast && pr.ScheduledTime != nil
}

// PastHolds reports whether prev, the previous run of a run that
// WaitsForPast (nil: it has none), holds it back: prev has not
// SUCCEEDED.
func PastHolds(prev *PipelineRun) bool {
	return prev != nil && prev.Status != StatusSucceeded
}

// DependsOnPastWaitReason is the statusReason of a pipeline run waiting
// for prev, its previous run, to succeed (dependsOnPast), saying how prev
// stands and, once it ended without succeeding, what lets the wait end.
func DependsOnPastWaitReason(prev *PipelineRun) string {
	var b strings.Builder
	b.WriteString("waiting for " + prev.PipelineRunID)
	if prev.ScheduledTime != nil {
		b.WriteString(" (scheduled " + prev.ScheduledTime.UTC().Format(time.RFC3339) + ")")
	}
	b.WriteString(" to succeed (dependsOnPast): ")
	switch prev.Status {
	case StatusFailed:
		fmt.Fprintf(&b, "it FAILED; gantry pipeline retry %s runs it again", prev.PipelineRunID)
	case StatusCanceled:
		fmt.Fprintf(&b, "it was CANCELED; gantry pipeline retry %s runs it again", prev.PipelineRunID)
	case StatusPending:
		if prev.StopRequested {
			b.WriteString("it is being stopped")
			break
		}
		// Not its own reason: a backfill's runs would each hold all of
		// those before them.
		b.WriteString("it is PENDING")
	case StatusRunning:
		if prev.StopRequested {
			b.WriteString("it is being stopped")
			break
		}
		b.WriteString("it is RUNNING")
	default:
		fmt.Fprintf(&b, "it is %s", prev.Status)
	}
	return b.String()
}

// dependsOnPastShapeProblem names a dependsOnPast that is no boolean
// (yes, "true", 1): encoding/json's error names a Go type instead; nil
// for any other file.
func dependsOnPastShapeProblem(js []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(js, &top) != nil {
		return nil
	}
	for k, v := range top {
		if !strings.EqualFold(k, "dependsOnPast") {
			continue
		}
		var b *bool
		if json.Unmarshal(v, &b) == nil {
			return nil
		}
		msg := fmt.Sprintf("%s: want true or false", string(v))
		var str string
		if json.Unmarshal(v, &str) == nil {
			switch strings.ToLower(str) {
			case "true", "yes", "on", "y":
				msg += fmt.Sprintf(" (%q is a string here: write true, unquoted)", str)
			case "false", "no", "off", "n":
				msg += fmt.Sprintf(" (%q is a string here: write false, unquoted, or leave dependsOnPast out)", str)
			}
		}
		return &FieldError{Path: k, Msg: msg}
	}
	return nil
}
