package queue

import (
	"context"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/embedded"
)

// BenchmarkLogWriter measures batching log lines into messages and storing
// them in JetStream (an embedded server), per line of 100 bytes.
func BenchmarkLogWriter(b *testing.B) {
	ns, err := embedded.Start(embedded.Options{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := Dial(context.Background(), ConnOptions{URL: ns.ClientURL()})
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	q, _ := New(nc)
	if err := q.EnsureStreams(context.Background()); err != nil {
		b.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 100))
	w := q.NewLogWriter("bench", 1)
	b.SetBytes(int64(len(line)) + 1)
	b.ReportAllocs()
	for b.Loop() {
		w.Line("main", jobs.Stdout, line)
	}
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}
