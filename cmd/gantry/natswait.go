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
	logConnEvents(nc, log)
	return nc, nil
}

// logConnEvents puts what happens to a role's NATS connection after its
// start in the role's log: its loss (a NATS server restarting, a
// partition) and its return, which nats.go reports to no one by
// default, and the errors it reports out of band (a subscription whose
// consumer went with a restarted server, a slow consumer), which its
// default handler writes raw on stderr, unstructured and without the
// role's fields. Call it before anything else sets the error handler
// (client.New chains to the one it finds).
func logConnEvents(nc *nats.Conn, log zerolog.Logger) {
	url := nc.ConnectedUrlRedacted() // "" once disconnected: keep the last
	nc.SetDisconnectErrHandler(func(nc *nats.Conn, err error) {
		if nc.IsClosed() {
			return // our own Close at shutdown, not a loss
		}
		ev := log.Warn().Str("nats", url)
		if err != nil {
			ev = ev.Err(err)
		}
		ev.Msg("lost the connection to NATS; reconnecting")
	})
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		url = nc.ConnectedUrlRedacted()
		log.Info().Str("nats", url).Msg("reconnected to NATS")
	})
	nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		ev := log.Warn().Err(err)
		if sub != nil {
			ev = ev.Str("subject", sub.Subject)
		}
		ev.Msg("NATS reported an error")
	})
}
