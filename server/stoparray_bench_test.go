package server

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// BenchmarkStopArray measures gantry stop of an array run whose children
// are all queued (in a cluster with no worker): what runs.stop does
// before it answers. Submitting the array is left out of the time.
func BenchmarkStopArray(b *testing.B) {
	for _, n := range []int{2000, 10000} {
		b.Run(fmt.Sprintf("children=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, _, _ := benchServer(b)
			b.Cleanup(s.bg.Wait)
			for b.Loop() {
				b.StopTimer()
				p, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: json.RawMessage(helloTaskDef), Cluster: "nowhere",
					ArrayProperties: &jobs.SubmitArrayProperties{Size: json.RawMessage(fmt.Sprint(n))}})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				r, err := s.Stop(ctx, p.RunID, "")
				if err != nil {
					b.Fatal(err)
				}
				if r.Status != jobs.StatusCanceled || r.ArrayProperties.StatusSummary[jobs.StatusCanceled] != n {
					b.Fatalf("the stopped parent: %s, %v; want CANCELED, %d CANCELED", r.Status, r.ArrayProperties.StatusSummary, n)
				}
			}
		})
	}
}
