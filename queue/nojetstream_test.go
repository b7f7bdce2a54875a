package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/natstest"
)

// TestNoJetStream: on a NATS server without JetStream, the streams and a
// worker's consumers fail with a *NoJetStreamError that says what to do,
// which WaitingFor does not wait for: the roles waited for ever, as for
// a cluster electing its leader. So does an account without JetStream on
// a server with it (which failed at once, with JetStream's words only). A node of a cluster without JetStream
// of its own may pass requests on to nodes that have it, still starting:
// that is waited for.
func TestNoJetStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Run("standalone", func(t *testing.T) {
		url := natstest.WithoutJetStream(t, "")
		q := dialQueue(t, ctx, url)
		const want = "NATS at " + "%s has no JetStream: start nats-server with JetStream enabled (-js, or jetstream {} in its configuration)"
		for _, c := range []struct {
			name string
			f    func() error
		}{
			{"EnsureStreams", func() error { return q.EnsureStreams(ctx) }},
			{"Jobs", func() error { _, err := q.Jobs(ctx, "default", "w1"); return err }},
		} {
			err := c.f()
			var noJS *NoJetStreamError
			if !errors.As(err, &noJS) || noJS.URL != url || err.Error() != fmt.Sprintf(want, url) {
				t.Errorf("%s = %v, want %q", c.name, err, fmt.Sprintf(want, url))
			}
			if what := WaitingFor(err); what != "" {
				t.Errorf("%s: WaitingFor(%v) = %q, want no waiting", c.name, err, what)
			}
		}
	})
	t.Run("account", func(t *testing.T) {
		url := natstest.AccountWithoutJetStream(t)
		q := dialQueue(t, ctx, url)
		want := "NATS at " + RedactURL(url) + " has no JetStream for the account of gantry's user: enable it there " +
			"(jetstream: enabled in the account's block of the server's configuration, or the account JWT's limits)"
		err := q.EnsureStreams(ctx)
		var noJS *NoJetStreamError
		if !errors.As(err, &noJS) || err.Error() != want || WaitingFor(err) != "" {
			t.Errorf("EnsureStreams = %v, want %q, not waited for", err, want)
		}
	})
	t.Run("cluster node", func(t *testing.T) {
		q := dialQueue(t, ctx, natstest.WithoutJetStream(t, "gantry-test"))
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := q.EnsureStreams(rctx)
		var noJS *NoJetStreamError
		if errors.As(err, &noJS) || WaitingFor(err) == "" {
			t.Errorf("EnsureStreams = %v (waiting for %q), want one waited for", err, WaitingFor(err))
		}
	})
}

func dialQueue(t *testing.T, ctx context.Context, url string) *Queue {
	t.Helper()
	nc, err := Dial(ctx, ConnOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
