package worker

import (
	"sync/atomic"

	"github.com/gantry-dev/gantry/jobs"
)

// Stats are what a worker counted since it was made, and its slots now:
// what `gantry worker --metrics` exports (cmd/gantry turns them into
// Prometheus metrics). Counters only grow.
type Stats struct {
	// Slots is how many attempts the worker runs at once; SlotsInUse how
	// many it holds now (an attempt holds its slot from the moment its job
	// is taken, through its image pull, until it is reported).
	Slots, SlotsInUse int
	// TasksRunning is how many attempts have containers running here.
	TasksRunning int
	// JobsTaken counts the deliveries of jobs the worker took from the
	// queue, those it handed back at once included.
	JobsTaken uint64
	// TasksStarted counts the attempts whose first containers started.
	TasksStarted uint64
	// AttemptsEnded counts the attempts the worker reported ended, by
	// status; attempts it handed back are in HandedBack instead.
	AttemptsEnded EndCounts
	// HandedBack counts the jobs the worker gave back to the queue, for
	// another worker or a later try, by why.
	HandedBack HandBacks
	// LogLines and LogBytes count the lines of container output passed to
	// the log streams, and their bytes without the newlines. A line too
	// long to hold, passed in pieces, counts once.
	LogLines, LogBytes uint64
}

// EndCounts are counts of attempts by how they ended.
type EndCounts struct {
	Succeeded, Failed, Canceled uint64
}

// HandBacks are counts of jobs given back to the queue, by why.
type HandBacks struct {
	// Shutdown: the worker stopped with the attempt running (its grace
	// period ran out); the job runs again as the next attempt.
	Shutdown uint64
	// RuntimeDown: the container runtime did not answer before the task
	// started.
	RuntimeDown uint64
	// Busy: the job did not fit in what the worker had free then.
	Busy uint64
	// TooLarge: the job needs more CPU or memory than the worker has.
	TooLarge uint64
	// ClaimFailed: the worker could not record that it took the job.
	ClaimFailed uint64
	// Unmatched: the job's constraints ask for labels the worker does
	// not have.
	Unmatched uint64
	// TakenOver: the worker was slow to set up the attempt and was
	// taken for lost meanwhile; the job's next attempt runs on another
	// worker, and this one did not start its containers.
	TakenOver uint64
}

// counts are a worker's counters: atomics, updated at most a few times per
// attempt (and twice per log line), read by Stats.
type counts struct {
	jobsTaken, tasksStarted               atomic.Uint64
	tasksRunning                          atomic.Int64
	succeeded, failed, canceled           atomic.Uint64
	shutdown, runtimeDown, busy, tooLarge atomic.Uint64
	claimFailed, unmatched, takenOver     atomic.Uint64
	logLines, logBytes                    atomic.Uint64
}

// ended counts an attempt reported ended with status st.
func (c *counts) ended(st jobs.Status) {
	switch st {
	case jobs.StatusSucceeded:
		c.succeeded.Add(1)
	case jobs.StatusFailed:
		c.failed.Add(1)
	case jobs.StatusCanceled:
		c.canceled.Add(1)
	}
}

// Stats returns the worker's counts and its slots now.
func (w *Worker) Stats() Stats {
	w.fl.mu.Lock()
	inUse := w.fl.inUse.Slots
	w.fl.mu.Unlock()
	c := &w.counts
	return Stats{
		Slots: w.cfg.capacity.Slots, SlotsInUse: inUse, TasksRunning: int(c.tasksRunning.Load()),
		JobsTaken: c.jobsTaken.Load(), TasksStarted: c.tasksStarted.Load(),
		AttemptsEnded: EndCounts{Succeeded: c.succeeded.Load(), Failed: c.failed.Load(), Canceled: c.canceled.Load()},
		HandedBack: HandBacks{Shutdown: c.shutdown.Load(), RuntimeDown: c.runtimeDown.Load(), Busy: c.busy.Load(),
			TooLarge: c.tooLarge.Load(), ClaimFailed: c.claimFailed.Load(),
			Unmatched: c.unmatched.Load(), TakenOver: c.takenOver.Load()},
		LogLines: c.logLines.Load(), LogBytes: c.logBytes.Load(),
	}
}

// countedLogs passes an attempt's output on to its log stream, counting it.
type countedLogs struct {
	LogStream
	c *counts
}

func (l countedLogs) Line(container, stream string, line []byte) {
	l.c.logLines.Add(1)
	l.c.logBytes.Add(uint64(len(line)))
	l.LogStream.Line(container, stream, line)
}

func (l countedLogs) Piece(container, stream string, piece []byte) {
	l.c.logBytes.Add(uint64(len(piece)))
	l.LogStream.Piece(container, stream, piece)
}

func (l countedLogs) End(container, stream string, line []byte) {
	l.c.logLines.Add(1)
	l.c.logBytes.Add(uint64(len(line)))
	l.LogStream.End(container, stream, line)
}
