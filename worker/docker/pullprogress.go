package docker

import (
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/gantry-dev/gantry/jobs"
)

// layerProgress sums the per-layer messages of a pull's progress stream
// into one jobs.PullProgress.
type layerProgress struct {
	image  string
	order  []string // layer ids, as first seen
	layers map[string]*layerState
}

type layerState struct {
	current, total int64
	done           bool
}

func newLayerProgress(image string) *layerProgress {
	return &layerProgress{image: image, layers: map[string]*layerState{}}
}

// update folds one message in and reports whether the progress changed.
// Messages about no layer ("Pulling from library/x", whose id is the tag,
// "Digest: ...", "Status: Downloaded newer image") change nothing.
func (p *layerProgress) update(m *jsonmessage.JSONMessage) bool {
	if m.ID == "" || !layerStatus(m.Status) {
		return false
	}
	l, ok := p.layers[m.ID]
	if !ok {
		l = &layerState{}
		p.layers[m.ID] = l
		p.order = append(p.order, m.ID)
	}
	switch m.Status {
	case "Downloading":
		if m.Progress != nil {
			l.current, l.total = m.Progress.Current, max(m.Progress.Total, l.total)
		}
	case "Download complete", "Verifying Checksum", "Extracting", "Pull complete":
		if l.total > 0 {
			l.current = l.total
		}
		l.done = true
	case "Already exists":
		l.done = true
	}
	return true
}

// layerStatus reports whether s is a status the daemon gives layers.
func layerStatus(s string) bool {
	switch s {
	case "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete",
		"Extracting", "Pull complete", "Already exists":
		return true
	}
	return false
}

// progress is the pull so far.
func (p *layerProgress) progress() jobs.PullProgress {
	pp := jobs.PullProgress{Image: p.image, Layers: len(p.order)}
	for _, id := range p.order {
		l := p.layers[id]
		if l.done {
			pp.LayersDone++
		}
		pp.Current += l.current
		pp.Total += l.total
	}
	return pp
}

// done is the progress of a pull that ended well.
func (p *layerProgress) done() jobs.PullProgress {
	pp := p.progress()
	pp.LayersDone, pp.Current, pp.Done = pp.Layers, pp.Total, true
	return pp
}
