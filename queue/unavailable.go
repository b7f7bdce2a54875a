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
//
// A NATS server that has no JetStream and cannot forward to one
// (NoJetStreamError) is "" too, but only the connection can tell it from
// a cluster node still coming up: see CheckJetStream.
func WaitingFor(err error) string {
	var (
		apiErr *jetstream.APIError
		noJS   *NoJetStreamError
	)
	switch {
	case err == nil, errors.As(err, &noJS):
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

// NoJetStreamError is a NATS server without JetStream, or an account
// without it on a server that has it, where gantry's streams cannot be
// made and no gantry server can run. Waiting does not cure it: the server
// must be restarted with JetStream enabled, or the account given it.
type NoJetStreamError struct {
	URL string // redacted
	// Account is set where the server has JetStream but not the account
	// of the connection's user.
	Account bool
}

func (e *NoJetStreamError) Error() string {
	if e.Account {
		return fmt.Sprintf("NATS at %s has no JetStream for the account of gantry's user: enable it there "+
			"(jetstream: enabled in the account's block of the server's configuration, or the account JWT's limits)", e.URL)
	}
	return fmt.Sprintf("NATS at %s has no JetStream: start nats-server with JetStream enabled "+
		"(-js, or jetstream {} in its configuration)", e.URL)
}

// CheckJetStream returns a *NoJetStreamError when the NATS server nc is
// connected to has no JetStream and no other server could answer for it,
// nil otherwise. Call it once a request found no responder: a JetStream
// request, or a request of the API of a gantry server, which cannot run
// without JetStream.
//
// The server says in its INFO whether it has JetStream, but a server
// without it can still pass JetStream requests on: a node of a cluster
// whose other nodes have it (mixed clusters are a supported deployment),
// and while those nodes are still starting, or electing their leader, its
// requests go unanswered as a cluster's do, which is worth waiting for. So
// only a server outside any cluster counts: nothing there answers the
// JetStream API, nor ever will until it restarts. A leaf node without
// JetStream that extends its hub's looks the same until its leaf
// connection is up (after, its requests are answered): a role started
// before that fails, and is restarted as for any other failure.
func CheckJetStream(nc *nats.Conn) error {
	if !nc.IsConnected() || nc.ConnectedClusterName() != "" {
		return nil
	}
	if js, _ := nc.ConnectedServerJetStream(); js {
		return nil
	}
	return &NoJetStreamError{URL: nc.ConnectedUrlRedacted()}
}

// explain is err, from a JetStream request of q's, as a
// *NoJetStreamError where the account has no JetStream or no responder
// answered (a request, or a publish no stream answered) because NATS has
// none (CheckJetStream), or as a refusal where NATS refused it
// (refusedError).
func (q *Queue) explain(err error) error {
	if errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return &NoJetStreamError{URL: q.nc.ConnectedUrlRedacted(), Account: true}
	}
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		if noJS := CheckJetStream(q.nc); noJS != nil {
			return noJS
		}
	}
	return q.refusedError(err)
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
