package scheduler

import (
	"sort"

	"github.com/gantry-dev/gantry/jobs"
)

// Triggered returns the pipelines whose triggers an ended run of upstream
// in status s fires, by name.
func Triggered(pipelines []jobs.Pipeline, upstream string, s jobs.Status) []string {
	var out []string
	for _, p := range pipelines {
		for _, t := range p.Triggers {
			if t.Pipeline == upstream && p.Name != upstream && t.Fires(s) {
				out = append(out, p.Name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
