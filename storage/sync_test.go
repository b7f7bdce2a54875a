package storage

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSyncEveryCommit: the store's writes reach the disk at each commit
// with SyncEveryCommit (synchronous=FULL, 2), and at checkpoints without
// (NORMAL, 1).
func TestSyncEveryCommit(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		opts []OpenOption
		want int
	}{{nil, 1}, {[]OpenOption{SyncEveryCommit()}, 2}} {
		db, err := Open(ctx, filepath.Join(t.TempDir(), "gantry.db"), c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if got != c.want {
			t.Errorf("synchronous = %d, want %d", got, c.want)
		}
	}
}
