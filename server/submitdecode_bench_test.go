package server

import (
	"context"
	"testing"
)

// submitJSON is a submission as the control-plane benchmark and most
// clients send it: only fields the server reads.
const submitJSON = `{"taskDefinition":"etl-sales:3","cluster":"etl","overrides":{"containerOverrides":[{"name":"main",` +
	`"command":["sh","-c","echo hi"],"environment":[{"name":"DAY","value":"2026-01-01"}],"cpu":256,"memory":512}]},` +
	`"timeoutSeconds":600,"retryStrategy":{"attempts":3},"idempotencyKey":"order-42","tags":{"team":"data"}}`

// BenchmarkSubmitDecode measures the decoding of a submission without
// fields the server does not read, the common case.
func BenchmarkSubmitDecode(b *testing.B) {
	data := []byte(submitJSON)
	b.ReportAllocs()
	for b.Loop() {
		if _, warnings, err := decodeSubmit(data); err != nil || warnings != nil {
			b.Fatal(err, warnings)
		}
	}
}

// BenchmarkSubmitAPI measures runs.submit's handler, from the request's
// bytes to the stored and published run, with clients in parallel.
func BenchmarkSubmitAPI(b *testing.B) {
	ctx := context.Background()
	_, q, db := testStack(b)
	s := New(db, q)
	data := []byte(`{"taskDefinition":{"family":"bench","containerDefinitions":[{"name":"main","image":"img","memory":64}]},` +
		`"cluster":"etl","overrides":{"containerOverrides":[{"name":"main","command":["sh","-c","echo hi"],` +
		`"environment":[{"name":"DAY","value":"2026-01-01"}]}]},"timeoutSeconds":600,"retryStrategy":{"attempts":3},"tags":{"team":"data"}}`)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.apiSubmit(ctx, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	s.bg.Wait()
}
