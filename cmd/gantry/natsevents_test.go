//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// logLines is a zerolog writer that hands each JSON line to the test.
type logLines chan map[string]any

func (l logLines) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err == nil {
		l <- m
	}
	return len(p), nil
}

// waitLog waits for a log line whose message is msg and returns it.
func waitLog(t *testing.T, ctx context.Context, lines logLines, msg string) map[string]any {
	t.Helper()
	for {
		select {
		case m := <-lines:
			if m["message"] == msg {
				return m
			}
		case <-ctx.Done():
			t.Fatalf("no log line %q", msg)
		}
	}
}

// TestRoleLogsItsNATSConnection: a worker or server whose NATS restarted
// said nothing of it, and an error nats.go reported out of band ("nats:
// consumer not active on connection [155] for subscription on ...",
// after the restart) came raw on stderr, outside the role's log. The
// loss, the return and such errors are in the role's log now, and its
// own Close at shutdown is not taken for a loss.
func TestRoleLogsItsNATSConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	port := refusingPort(t)
	store := t.TempDir()
	start := func() func() {
		ns, err := embedded.Start(embedded.Options{StoreDir: store, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		return ns.Shutdown
	}
	stop := start()
	defer func() { stop() }()

	lines := make(logLines, 100)
	log := zerolog.New(lines)
	nc, err := dialRole(ctx, queue.ConnOptions{URL: "nats://127.0.0.1:" + strconv.Itoa(port),
		Name: "gantry-test", Reconnect: true}, log)
	if err != nil {
		t.Fatal(err)
	}

	stop()
	lost := waitLog(t, ctx, lines, "lost the connection to NATS; reconnecting")
	if u, _ := lost["nats"].(string); !strings.HasSuffix(u, ":"+strconv.Itoa(port)) {
		t.Errorf("the loss names NATS as %q, want its URL", u)
	}
	stop = start()
	waitLog(t, ctx, lines, "reconnected to NATS")

	sub, err := nc.SubscribeSync("gantry.test.async")
	if err != nil {
		t.Fatal(err)
	}
	nc.ErrorHandler()(nc, sub, errors.New("nats: consumer not active"))
	m := waitLog(t, ctx, lines, "NATS reported an error")
	if m["error"] != "nats: consumer not active" || m["subject"] != "gantry.test.async" {
		t.Errorf("the async error is logged as %v, want its error and subject", m)
	}

	// nats.go calls the closed handler after the disconnect handler, on
	// the same goroutine: once it ran, a loss logged at the close is in
	// lines.
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	nc.Close()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("the connection's closed handler never ran")
	}
	for {
		select {
		case m := <-lines:
			if m["message"] == "lost the connection to NATS; reconnecting" {
				t.Fatalf("the role's own Close was logged as a loss: %v", m)
			}
		default:
			return
		}
	}
}
