package main

import (
	"context"
	"errors"

	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// dialRole connects a long-running role (server, worker) to NATS. Where no
// NATS server accepts the connection yet (started before NATS, as compose
// and systemd may; or NATS's host is down, or rebooting), it waits, trying
// again with a backoff up to 5 seconds and saying so when it starts and
// every queue.WarnEvery, until NATS accepts or ctx ends (nil and ctx's
// error: the role stops cleanly). Other failures (credentials, TLS, a peer
// that is not NATS) return at once: waiting does not cure them. CLI
// commands and up call queue.Dial, which fails at once.
func dialRole(ctx context.Context, o queue.ConnOptions, log zerolog.Logger) (*nats.Conn, error) {
	var (
		nc     *nats.Conn
		waited bool
	)
	err := queue.Wait{
		For: func(err error) string {
			var ue *queue.UnreachableError
			switch {
			case !errors.As(err, &ue):
				return ""
			case ue.Unresolved != "":
				return "the NATS host " + ue.Unresolved + " (" + ue.URL + ") to resolve"
			case ue.Down != "":
				return "NATS at " + ue.URL + " to answer (" + ue.Down + ")"
			}
			return "NATS at " + ue.URL + " to accept connections"
		},
		Warn: func(what string, err error) {
			var ue *queue.UnreachableError
			errors.As(err, &ue)
			log.Warn().Str("nats", ue.URL).Msg("waiting for " + what)
			waited = true
		},
	}.Retry(ctx, func(ctx context.Context) (err error) {
		nc, err = queue.Dial(ctx, o)
		return err
	})
	if err != nil {
		return nil, err
	}
	if waited {
		log.Info().Str("nats", nc.ConnectedUrlRedacted()).Msg("connected to NATS")
	}
	return nc, nil
}
