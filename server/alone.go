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
// saw their end. A server asks first whether one answers already.

// serviceName is the NATS micro service's name; $SRV.PING.<name> reaches
// every instance of it.
const serviceName = "gantry"

// aloneTimeout bounds the question. With no server there, NATS answers
// at once that no one listens (no responders); a timeout means it cannot
// tell (a user who may not publish to $SRV.>, a server dead with its
// connection not yet noticed), and the server starts, warning.
const aloneTimeout = 2 * time.Second

// AnotherServerError is the refusal of a server started beside another
// one on the same NATS.
type AnotherServerError struct {
	ID, Version, Host, PID string
}

func (e *AnotherServerError) Error() string {
	where := "service id " + e.ID
	if e.Host != "" {
		where = fmt.Sprintf("host %s, pid %s, version %s; %s", e.Host, e.PID, e.Version, where)
	}
	return fmt.Sprintf("another gantry server already serves this NATS (%s): a NATS deployment has one gantry server, "+
		"the single writer of its store, and a second one would split the API, the workers' reports and the runs "+
		"between two stores. Stop that one first, or give this one a NATS of its own", where)
}

// checkAlone refuses to start where another gantry server answers on
// the same NATS ($SRV.PING.gantry, micro's discovery).
func (s *Server) checkAlone(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, aloneTimeout)
	defer cancel()
	msg, err := s.q.Conn().RequestWithContext(rctx, micro.APIPrefix+".PING."+serviceName, nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil
	case ctx.Err() != nil:
		return nil // stopped meanwhile: Run returns
	case err != nil:
		s.cfg.log.Warn().Err(err).Msg("could not ask NATS whether another gantry server serves it ($SRV.PING.gantry); " +
			"starting: make sure no other one does")
		return nil
	}
	var p micro.Ping
	if err := json.Unmarshal(msg.Data, &p); err != nil {
		return &AnotherServerError{ID: "?"}
	}
	return &AnotherServerError{ID: p.ID, Version: p.Version, Host: p.Metadata["host"], PID: p.Metadata["pid"]}
}

// serviceMetadata says where this server runs, for the refusal of the
// next one (AnotherServerError) and for nats micro info.
func serviceMetadata() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{"host": host, "pid": strconv.Itoa(os.Getpid())}
}
