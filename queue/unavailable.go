package queue

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsClusterNotAvailable is the error code of a JetStream request that a
// NATS cluster without a meta leader answers ("JetStream system
// temporarily unavailable"); nats.go names no error for it.
const jsClusterNotAvailable jetstream.ErrorCode = 10008

// WaitingFor says what a JetStream request that failed with err waits for,
// when the failure is one that passes on its own as a NATS deployment
// comes up: a cluster electing its JetStream meta leader (which answers
// nothing for a few seconds, then "temporarily unavailable"), or a server
// whose JetStream is not enabled yet. It is "" for the failures that
// waiting does not cure: a request NATS refused (EnsureStreams tells those
// from a timeout), a configuration JetStream rejects, an account without
// JetStream.
func WaitingFor(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jsClusterNotAvailable:
		return "the NATS cluster to elect its JetStream meta leader"
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrNoResponders):
		return "JetStream: no NATS server answers its API (is JetStream enabled on the NATS servers?)"
	case isTimeout(err):
		return "JetStream to answer (a NATS cluster still electing its leaders?)"
	}
	return ""
}

// refusedError is a JetStream request that timed out because NATS refused
// it: the connection was told of a permissions violation on the API's
// subjects or on the inbox of the replies, which NATS does not answer.
func (q *Queue) refusedError(err error) error {
	if !isTimeout(err) {
		return err
	}
	last := q.nc.LastError()
	if !errors.Is(last, nats.ErrPermissionViolation) {
		return err
	}
	inbox := q.nc.Opts.InboxPrefix
	if inbox == "" {
		inbox = nats.InboxPrefix
	}
	if msg := last.Error(); !strings.Contains(msg, `"$JS.API.`) && !strings.Contains(msg, `"`+inbox) {
		return err
	}
	return fmt.Errorf("NATS refused a JetStream request of gantry's (%w): give its NATS user "+
		"the operator's rights (docs/nats-api.md, Authorization)", last)
}
