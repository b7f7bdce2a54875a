package docker

import (
	"io"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

// A pull's progress stream as the daemon writes it, cut short.
const pullStream = `{"status":"Pulling from library/etl","id":"3"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"}
{"status":"Already exists","progressDetail":{},"id":"bbbbbbbbbbbb"}
{"status":"Waiting","progressDetail":{},"id":"cccccccccccc"}
{"status":"Downloading","progressDetail":{"current":1000000,"total":4000000},"progress":"[=>  ]","id":"aaaaaaaaaaaa"}
{"status":"Downloading","progressDetail":{"current":3000000,"total":4000000},"progress":"[==> ]","id":"aaaaaaaaaaaa"}
{"status":"Downloading","progressDetail":{"current":500000,"total":2000000},"progress":"[>   ]","id":"cccccccccccc"}
{"status":"Download complete","progressDetail":{},"id":"aaaaaaaaaaaa"}
{"status":"Extracting","progressDetail":{"current":4000000,"total":4000000},"id":"aaaaaaaaaaaa"}
{"status":"Pull complete","progressDetail":{},"id":"aaaaaaaaaaaa"}
{"status":"Download complete","progressDetail":{},"id":"cccccccccccc"}
{"status":"Pull complete","progressDetail":{},"id":"cccccccccccc"}
{"status":"Digest: sha256:0123"}
{"status":"Status: Downloaded newer image for etl:3"}
`

func TestPullReportsProgress(t *testing.T) {
	r := New(missingImages{body: io.NopCloser(strings.NewReader(pullStream))})
	var got []jobs.PullProgress
	if err := r.ensureImage(t.Context(), "etl:3", worker.PullMissing, func(p jobs.PullProgress) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	// One report per layer message, and the end.
	if len(got) != 12 {
		t.Fatalf("%d reports, want 12: %+v", len(got), got)
	}
	mid := got[5] // after the first 500 kB of the third layer
	if want := (jobs.PullProgress{Image: "etl:3", Layers: 3, LayersDone: 1, Current: 3_500_000, Total: 6_000_000}); mid != want {
		t.Errorf("mid-pull: %+v, want %+v", mid, want)
	}
	if s := mid.String(); s != "pulling image etl:3: 3.5 MB of 6.0 MB, 1 of 3 layers" {
		t.Errorf("mid-pull in words: %q", s)
	}
	last := got[len(got)-1]
	if !last.Done || last.LayersDone != 3 || last.Current != last.Total {
		t.Errorf("end: %+v", last)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Current < got[i-1].Current || got[i].LayersDone < got[i-1].LayersDone {
			t.Errorf("progress went back at report %d: %+v then %+v", i, got[i-1], got[i])
		}
	}
}

func TestFailedPullReportsNoEnd(t *testing.T) {
	body := `{"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"}` + "\n" +
		`{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}` + "\n"
	r := New(missingImages{body: io.NopCloser(strings.NewReader(body))})
	var got []jobs.PullProgress
	err := r.ensureImage(t.Context(), "etl:3", worker.PullAlways, func(p jobs.PullProgress) { got = append(got, p) })
	if err == nil || len(got) != 1 || got[0].Done {
		t.Fatalf("err %v, reports %+v", err, got)
	}
}
