package queue

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkPutObject stores one file of a stage's size with putObject and,
// to compare, with nats.go's ObjectStore.Put, on an embedded NATS server
// with its store on disk, as `gantry up` runs it. The small sizes are a
// stage hop's critical path; each replaces the object the last stored.
func BenchmarkPutObject(b *testing.B) {
	ctx := context.Background()
	s, js, nc := diskStager(b)
	stream, err := s.dataStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{4 << 10, 200 << 20} {
		data := make([]byte, size)
		rand.NewChaCha8([32]byte{5}).Read(data)
		meta := jetstream.ObjectMeta{Name: fmt.Sprintf("pr-1/extract/r0/%d.bin", size)}
		b.Run(fmt.Sprintf("putObject/%dKiB", size>>10), func(b *testing.B) {
			defer countMsgs(b, nc)()
			for b.Loop() {
				if err := putObject(ctx, js, s.obs, stream, meta, bytes.NewReader(data), s.keepLeftover); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("ObjectStore.Put/%dKiB", size>>10), func(b *testing.B) {
			defer countMsgs(b, nc)()
			for b.Loop() {
				if _, err := s.obs.Put(ctx, meta, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countMsgs reports the messages sent and received on nc per op: the
// requests to NATS whose replies a store waits for.
func countMsgs(b *testing.B, nc *nats.Conn) func() {
	before := nc.Stats()
	return func() {
		after := nc.Stats()
		b.ReportMetric(float64(after.OutMsgs-before.OutMsgs)/float64(b.N), "msgs-out/op")
		b.ReportMetric(float64(after.InMsgs-before.InMsgs)/float64(b.N), "msgs-in/op")
	}
}
