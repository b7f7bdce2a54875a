package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// A NATS deployment has one gantry server: the single writer of its
// store. A second one, started on another data directory against the
// same NATS (by mistake, or in the hope of a standby), took half of the
// API requests, of the workers' reports and of the submissions into a
// store of its own: gantry ps answered from either store in turn, runs
// ended without their start, or stayed RUNNING in the store that never
// saw their end. A server asks first whether one answers already, then
// takes the server lease (lease.go), which two servers started at the
// same moment cannot both take, as they could both find no one
// answering. The question still refuses a server of an older version,
// which answers but takes no lease.

// serviceName is the NATS micro service's name; $SRV.PING.<name> reaches
// every instance of it.
const serviceName = "gantry"

// aloneTimeout bounds the question. With no server there, NATS answers
// at once that no one listens (no responders); a timeout means it cannot
// tell (a user who may not publish to $SRV.>, a server dead with its
// connection not yet noticed), and the server goes on, warning, to the
// lease, which still keeps it out beside a server of this version.
const aloneTimeout = 2 * time.Second

// AnotherServerError is the refusal of a server started beside another
// one on the same NATS: one that answers the ping (ID is its micro
// service's), or one that holds the server lease (lease.go).
type AnotherServerError struct {
	ID, Version, Host, PID string
	// Set where the lease refused it: the holder's store and start, how
	// long ago it last renewed its lease (by the NATS server's clock),
	// and the age past which a lease not renewed is taken over.
	Store        string
	Started      time.Time
	Renewed, Age time.Duration
	// Alive says how the lease's holder showed that it runs: it answers
	// the ping, or it renewed its lease while this one waited for it to
	// lapse (lease.go, waitLapse).
	Alive string
}

func (e *AnotherServerError) Error() string {
	var where string
	switch {
	case e.ID == "":
		where = fmt.Sprintf("host %s, pid %s, version %s, store %s, started %s; its lease renewed %s ago", e.Host, e.PID,
			e.Version, e.Store, e.Started.Format(time.RFC3339), e.Renewed.Round(time.Millisecond))
	case e.Host != "":
		where = fmt.Sprintf("host %s, pid %s, version %s; service id %s", e.Host, e.PID, e.Version, e.ID)
	default:
		where = "service id " + e.ID
	}
	msg := fmt.Sprintf("another gantry server already serves this NATS (%s): a NATS deployment has one gantry server, "+
		"the single writer of its store, and a second one would split the API, the workers' reports and the runs "+
		"between two stores. Stop that one first, or give this one a NATS of its own", where)
	if e.Alive != "" {
		// A dead holder is waited out, not refused: this one is alive.
		msg += fmt.Sprintf(". It runs: %s (a server that neither renews its lease nor answers, killed or on a host "+
			"lost, is waited for until its lease is %s old, then taken over)", e.Alive, e.Age)
	}
	return msg
}

// checkAlone refuses to start where another gantry server answers on
// the same NATS ($SRV.PING.gantry, micro's discovery).
func (s *Server) checkAlone(ctx context.Context) error {
	another, err := s.ping(ctx, aloneTimeout)
	switch {
	case ctx.Err() != nil:
		return nil // stopped meanwhile: Run returns
	case err != nil:
		s.cfg.log.Warn().Err(err).Msg("could not ask NATS whether another gantry server serves it ($SRV.PING.gantry); " +
			"the server lease still refuses this one beside a server that takes it, not beside an older one that does not")
		return nil
	case another != nil:
		return another
	}
	return nil
}

// ping asks whether a gantry server answers on the NATS within timeout:
// the refusal naming the first that answers, nil where none listens
// (NATS's no responders), or the error where NATS cannot tell (a
// timeout: a user who may not publish to $SRV.>, a server dead whose
// connection NATS has not yet dropped).
func (s *Server) ping(ctx context.Context, timeout time.Duration) (*AnotherServerError, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := s.q.Conn().RequestWithContext(rctx, micro.APIPrefix+".PING."+serviceName, nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var p micro.Ping
	if err := json.Unmarshal(msg.Data, &p); err != nil {
		return &AnotherServerError{ID: "?"}, nil
	}
	return &AnotherServerError{ID: p.ID, Version: p.Version, Host: p.Metadata["host"], PID: p.Metadata["pid"]}, nil
}

// serviceMetadata says where this server runs, for the refusal of the
// next one (AnotherServerError) and for nats micro info.
func serviceMetadata() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{"host": host, "pid": strconv.Itoa(os.Getpid())}
}
