package queue

// Stream names.
const (
	StreamJobs   = "GANTRY_JOBS"
	StreamEvents = "GANTRY_EVENTS"
	StreamLogs   = "GANTRY_LOGS"
	StreamSubmit = "GANTRY_SUBMIT"
)

// Subjects that take no parameters.
const (
	SubmitSubject = "gantry.submit"
	CancelSubject = "gantry.control.cancel"
)

// JobSubject is where jobs for a cluster go, or for one worker of it when
// worker is not empty. The two never overlap, as a work queue requires.
func JobSubject(cluster, worker string) string {
	if worker == "" {
		return "gantry.jobs." + cluster
	}
	return "gantry.jobs." + cluster + ".w." + worker
}

// EventSubject carries the status changes of one run.
func EventSubject(runID string) string { return "gantry.events.runs." + runID }

// LogSubject carries the log lines of one container of a run; with an empty
// container it is the wildcard for all of them.
func LogSubject(runID, container string) string {
	if container == "" {
		return "gantry.logs." + runID + ".>"
	}
	return "gantry.logs." + runID + "." + container
}
