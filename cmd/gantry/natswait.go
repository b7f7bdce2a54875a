package main

import (
	"context"
	"errors"
	"time"

	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// natsWarnEvery is how often a role waiting for NATS says so.
const natsWarnEvery = 5 * time.Second

// dialRole connects a long-running role (server, worker) to NATS. Where no
// NATS server accepts the connection yet (started before NATS, as compose
// and systemd may), it waits, trying again with a backoff up to 5 seconds
// and saying so when it starts and every natsWarnEvery, until NATS accepts
// or ctx ends (nil and ctx's error: the role stops cleanly). Other
// failures (credentials, TLS, a peer that is not NATS) return at once:
// waiting does not cure them. CLI commands and up call queue.Dial, which
// fails at once.
func dialRole(ctx context.Context, o queue.ConnOptions, log zerolog.Logger) (*nats.Conn, error) {
	backoff := 250 * time.Millisecond
	var warned time.Time
	for waited := false; ; waited = true {
		nc, err := queue.Dial(ctx, o)
		var ue *queue.UnreachableError
		switch {
		case err == nil:
			if waited {
				log.Info().Str("nats", nc.ConnectedUrlRedacted()).Msg("connected to NATS")
			}
			return nc, nil
		case !errors.As(err, &ue):
			return nil, err
		}
		if now := time.Now(); !waited || now.Sub(warned) >= natsWarnEvery {
			msg := "waiting for NATS at " + ue.URL + " to accept connections"
			if ue.Unresolved != "" {
				msg = "waiting for the NATS host " + ue.Unresolved + " (" + ue.URL + ") to resolve"
			}
			log.Warn().Str("nats", ue.URL).Msg(msg)
			warned = now
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
