package server

import "testing"

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
