package queue

import "github.com/gantry-dev/gantry/jobs"

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

// ClusterJobSubject is where jobs of a priority go that any worker of the
// cluster may take: normal ones (and those of no priority) on
// JobSubject(cluster, ""), as before priorities came, high and low ones on
// gantry.jobs.<cluster>.p.high and .p.low. None overlaps another, nor a
// worker's subject (.w.<worker>).
func ClusterJobSubject(cluster string, p jobs.Priority) string {
	switch p {
	case jobs.PriorityHigh, jobs.PriorityLow:
		return "gantry.jobs." + cluster + ".p." + string(p)
	}
	return JobSubject(cluster, "")
}

// BellSubject is where the publisher of a cluster's high or low job rings,
// with an empty message, once the job is stored: workers skip those
// queues while they know them empty (consumer.go), and a bell of its own
// spares each of them a copy of every such job.
func BellSubject(cluster string, p jobs.Priority) string {
	return "gantry.control.jobs." + cluster + "." + string(p)
}

// JobSubjectOf is where job is queued: its worker's subject when it is
// aimed at one (a worker takes those first, whatever their priority),
// its cluster's for its priority otherwise.
func JobSubjectOf(job *jobs.Job) string {
	if job.Worker != "" {
		return JobSubject(job.Cluster, job.Worker)
	}
	return ClusterJobSubject(job.Cluster, job.Priority)
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
