package storage

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestStoreFilesArePrivate: the store (every run's environment, the
// webhooks' secrets) was made 0644, readable by every local user of a
// data directory made 0755; so was a backup's snapshot beside it. A new
// store, its WAL and shared-memory files, and a snapshot are the
// owner's alone; a store that exists keeps its mode.
func TestStoreFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual one, whatever the test runner's
	t.Cleanup(func() { syscall.Umask(old) })
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "gantry.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	snap := db.BackupTemp()
	if err := db.BackupInto(ctx, snap); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", snap} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want the owner's alone", filepath.Base(p), perm)
		}
	}

	// A store an operator opened to a group keeps its mode.
	shared := filepath.Join(dir, "shared.db")
	if err := os.WriteFile(shared, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("an existing store's mode: %v (%v), want it kept (0640)", fi.Mode().Perm(), err)
	}
}
