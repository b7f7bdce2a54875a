package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestWaitingFor: the failures of a NATS deployment coming up are waited
// for; those that waiting does not cure are not.
func TestWaitingFor(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		wait bool
	}{
		{"no meta leader", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"no answer", fmt.Errorf("stream GANTRY_JOBS: %w", context.DeadlineExceeded), true},
		{"request timeout", nats.ErrTimeout, true},
		{"no responders", fmt.Errorf("stream GANTRY_JOBS: %w", nats.ErrNoResponders), true},
		{"JetStream not enabled", &jetstream.APIError{Code: 503, ErrorCode: 10076, Description: "JetStream not enabled"}, true},
		{"account without JetStream", &jetstream.APIError{Code: 503, ErrorCode: 10039, Description: "JetStream not enabled for account"}, false},
		{"replicas on a single server", &jetstream.APIError{Code: 500, ErrorCode: 10074, Description: "replicas > 1 not supported in non-clustered mode"}, false},
		{"insufficient resources", &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}, false},
		{"refused", fmt.Errorf("NATS refused it (%w)", nats.ErrPermissionViolation), false},
		{"stopped", context.Canceled, false},
		{"none", nil, false},
		{"other", errors.New("disk full"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := WaitingFor(c.err); (got != "") != c.wait {
				t.Errorf("WaitingFor(%v) = %q, want waiting %v", c.err, got, c.wait)
			}
		})
	}
}
