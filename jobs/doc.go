// Package jobs holds gantry's domain types: task definitions, runs, attempts,
// the jobs the queue carries and the events workers report, together with
// their parsing, validation and the run state machine. It imports nothing of
// gantry's own, so every other package can share it.
package jobs
