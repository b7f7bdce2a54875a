package jobs

import "fmt"

// PullProgress is how far a worker is in pulling an image before an attempt
// starts. Workers report it on STARTING events (Event.Pull), at most about
// once a second, and once more with Done when the image is in.
type PullProgress struct {
	Image string `json:"image"`
	// Layers counts the layers the registry listed so far; LayersDone
	// those downloaded (or already present).
	Layers     int `json:"layers"`
	LayersDone int `json:"layersDone"`
	// Current and Total are the bytes downloaded and to download, over
	// the layers whose size is known; Total is 0 until one is.
	Current int64 `json:"current"`
	Total   int64 `json:"total"`
	Done    bool  `json:"done,omitempty"`
}

// String says it in one line: "pulling image etl:3: 12.1 MB of 40.0 MB,
// 2 of 5 layers".
func (p PullProgress) String() string {
	if p.Done {
		return fmt.Sprintf("pulled image %s", p.Image)
	}
	s := "pulling image " + p.Image
	if p.Total > 0 {
		s += fmt.Sprintf(": %s of %s", megabytes(p.Current), megabytes(p.Total))
		if p.Layers > 0 {
			s += fmt.Sprintf(", %d of %d layers", p.LayersDone, p.Layers)
		}
	} else if p.Layers > 0 {
		s += fmt.Sprintf(": %d of %d layers", p.LayersDone, p.Layers)
	}
	return s
}

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
