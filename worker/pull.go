package worker

import (
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// pullEvery is how often, at most, a pull's progress is published: each
// report is an event that the server stores.
const pullEvery = time.Second

// pullReporter turns the runtime's pull progress into STARTING events with
// Pull set, at most one every pullEvery, plus the first and the end of
// each image's pull, so that an attached `gantry run` can show it.
func (w *Worker) pullReporter(report func(jobs.Event)) func(jobs.PullProgress) {
	var last time.Time
	var image string
	return func(p jobs.PullProgress) {
		now := w.cfg.now()
		if p.Image == image && !p.Done && now.Sub(last) < pullEvery {
			return
		}
		image, last = p.Image, now
		report(jobs.Event{Status: jobs.StatusStarting, StatusReason: p.String(), Pull: &p})
	}
}
