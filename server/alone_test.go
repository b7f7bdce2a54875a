package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
)

// TestSecondServerOnTheSameNATSIsRefused: a second server, on a data
// directory of its own, started against the NATS a server already used
// and took half of its API requests, reports and submissions into its own
// store. It is refused, naming where the first one runs and what to do,
// before it changes anything; once the first has stopped, a server starts.
func TestSecondServerOnTheSameNATSIsRefused(t *testing.T) {
	e := startAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.New(e.op)
	if err != nil {
		t.Fatal(err)
	}
	err = New(db, q).Run(ctx)
	var another *AnotherServerError
	if !errors.As(err, &another) {
		t.Fatalf("a second server on the same NATS: %v, want it refused", err)
	}
	host, _ := os.Hostname()
	for _, want := range []string{"another gantry server already serves this NATS", "host " + host,
		"pid " + strconv.Itoa(os.Getpid()), "Stop that one first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: does not say %q", err, want)
		}
	}

	// The first one stopped, the API no longer answers: a server starts.
	e.stop()
	e.startServer()
}
