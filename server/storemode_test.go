package server

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestWarnsOfAStoreOthersMayRead: a store an older gantry made keeps
// SQLite's 0644 (only new ones are made 0600), every run's environment
// and the webhooks' secrets readable by every local user, and nothing
// said so. The server warns at start, saying what to do; not of a store
// its owner's alone, nor of one an operator opened to a group.
func TestWarnsOfAStoreOthersMayRead(t *testing.T) {
	_, q, db := testStack(t)
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o600, false}, {0o640, false}} {
		if err := os.Chmod(db.Path(), tc.mode); err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		// Stopped at once: Run says it before anything else.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := New(db, q, WithLogger(zerolog.New(&logs))).Run(ctx); err != nil {
			t.Fatal(err)
		}
		got := logs.String()
		if warned := strings.Contains(got, "chmod 600 "+db.Path()+"*"); warned != tc.warn {
			t.Errorf("a store of mode %#o: warned %v, want %v:\n%s", tc.mode, warned, tc.warn, got)
		}
	}
}
