package queue

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
)

func reportHeader(v string) nats.Header {
	if v == "" {
		return nats.Header{}
	}
	return nats.Header{reportEventsHeader: {v}}
}

func TestDecodeReport(t *testing.T) {
	var evs []jobs.Event
	for i := range 40 {
		evs = append(evs, jobs.Event{RunID: "r" + strconv.Itoa(i), Attempt: 1, Seq: 1, Status: jobs.StatusSucceeded})
	}
	data, _ := json.Marshal(evs)
	for _, tt := range []struct {
		name, header string
		exactCap     bool
	}{
		{"counted", "40", true},
		{"from a worker that does not count", "", false},
		{"count too small", "3", false},
		{"count not a number", "many", false},
		{"count out of bounds", strconv.Itoa(maxReportEvents + 1), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeReport(data, reportHeader(tt.header))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, evs) {
				t.Fatalf("decoded %d events, not the %d reported", len(got), len(evs))
			}
			if tt.exactCap && cap(got) != len(evs) {
				t.Fatalf("capacity %d for %d counted events: the count was not used", cap(got), len(evs))
			}
		})
	}
	if _, err := decodeReport([]byte(`{"runId":"r1"}`), reportHeader("1")); err == nil {
		t.Fatal("a report that is not an array decoded")
	}
}

func FuzzDecodeReport(f *testing.F) {
	f.Add([]byte(`[{"runId":"r1","attempt":1,"seq":1,"status":"SUCCEEDED"}]`), "1")
	f.Add([]byte(`[]`), "0")
	f.Add([]byte(`[{"runId":"r1"},{"runId":"r2"}]`), "1")
	f.Add([]byte(`[{`), "-1")
	f.Fuzz(func(t *testing.T, data []byte, count string) {
		got, err := decodeReport(data, reportHeader(count))
		want, wantErr := decodeReport(data, nats.Header{})
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("with count %q: error %v; without: %v", count, err, wantErr)
		}
		if err == nil && len(got) != len(want) {
			t.Fatalf("with count %q: %d events; without: %d", count, len(got), len(want))
		}
	})
}

// BenchmarkDecodeReport decodes a busy worker's report of 300 events, as
// the server's reports consumer does, with and without its count.
func BenchmarkDecodeReport(b *testing.B) {
	zero := 0
	var evs []jobs.Event
	for i := range 300 {
		evs = append(evs, jobs.Event{RunID: "01KAXQ2P7M3V8J4N5R6S7T8W9Y" + strconv.Itoa(i), Attempt: 1, Seq: 3,
			Status: jobs.StatusSucceeded, Source: jobs.SourceWorker, Worker: "w1", ExitCode: &zero})
	}
	data, _ := json.Marshal(evs)
	for _, h := range []string{"", "300"} {
		name := "uncounted"
		if h != "" {
			name = "counted"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := decodeReport(data, reportHeader(h)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
