package queue

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// transientError is an error of the object store's that a later try may
// not meet; its Transient method tells a caller that cannot name the
// errors of NATS (the worker's Stager) to try again.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// Transient reports true: trying again may succeed.
func (e *transientError) Transient() bool { return true }

// transient reports whether a store of stage files failed with err for a
// cause that passes on its own. Each was seen here storing an object while
// an embedded NATS server restarted, or while an R3 stream elected its
// leader (TestStagerPutErrorsOfANATSRestart), or storing a GiB:
//   - a write on the connection that the stopping server reset (a
//     *net.OpError, ECONNRESET or EPIPE);
//   - nats.ErrDisconnected: chunks whose acks were pending when the
//     connection was lost;
//   - nats.ErrReconnectBufExceeded: chunks published while reconnecting
//     that the connection's reconnect buffer (8 MiB) could not hold;
//   - a request timed out (context.DeadlineExceeded, nats.ErrTimeout)
//     while the server was down for longer than JetStream's timeout;
//   - jetstream.ErrAsyncPublishTimeout: a chunk's ack that did not come
//     while its stream elected a leader;
//   - jetstream.ErrNoStreamResponse: a chunk that no stream took (no
//     responders), NATS back but its JetStream not yet (putObject does
//     not send it again);
//   - "429 too many requests": chunks that the stream's ingest queue
//     could not hold (putWindow bounds one file's, not those of many
//     workers storing at once);
//   - and what WaitingFor names as passing on its own (no responders, a
//     cluster without a meta leader).
//
// A file that cannot be read, a bucket that is full (explainFull) and a
// connection closed for good are not.
func transient(err error) bool {
	var (
		opErr *net.OpError
		api   *jetstream.APIError
	)
	switch {
	case err == nil, errors.Is(err, nats.ErrConnectionClosed):
		return false
	case errors.As(err, &opErr),
		errors.As(err, &api) && api.ErrorCode == jsStreamTooManyRequests,
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	}
	return WaitingFor(err) != ""
}

// JetStream's error codes for a message it would not store: its stream's
// ingest queue was full; a limit of the stream's own (max bytes, max
// messages, max message size: the description says which); no room left
// on the server or in the account (max_file_store, the account's
// storage).
const (
	jsStreamTooManyRequests jetstream.ErrorCode = 10167
	jsStreamStoreFailed     jetstream.ErrorCode = 10077
	jsInsufficientStorage   jetstream.ErrorCode = 10023
)

// bucketFullError is NATS refusing a stage file for want of room.
type bucketFullError struct{ api *jetstream.APIError }

func (e *bucketFullError) Unwrap() error { return e.api }

func (e *bucketFullError) Error() string {
	if e.api.ErrorCode == jsInsufficientStorage {
		return fmt.Sprintf("NATS has no room left for the object store bucket %s (%s: JetStream's storage limit "+
			"on the server, max_file_store, or the account's is reached): raise it, or keep stage files for "+
			"less time (gantry up --data-retention)", DataBucket, e.api.Description)
	}
	return fmt.Sprintf("the object store bucket %s is full (%s: a limit set on its stream %s): raise it "+
		"(nats stream edit %s), or keep stage files for less time (gantry up --data-retention)",
		DataBucket, e.api.Description, dataStreamName, dataStreamName)
}

// explainFull is err as a *bucketFullError when NATS refused to store a
// message for want of room, which the raw API error ("code=503
// err_code=10077 description=maximum bytes exceeded") hides.
func explainFull(err error) error {
	var api *jetstream.APIError
	full := errors.As(err, &api) && (api.ErrorCode == jsInsufficientStorage ||
		// not "message size exceeds maximum allowed"
		api.ErrorCode == jsStreamStoreFailed && strings.HasPrefix(api.Description, "maximum "))
	if full {
		return &bucketFullError{api}
	}
	return err
}
