package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestBackupInto(t *testing.T) {
	db, path := openDB(t)
	ctx := context.Background()
	for i := range 3 {
		mustCreate(t, db, newRun(i))
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := db.BackupInto(ctx, dst); err != nil {
		t.Fatal(err)
	}
	copied, err := Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	for i := range 3 {
		if r := mustGet(t, copied, newRun(i).RunID); r.Status != jobs.StatusQueued {
			t.Errorf("run %s: %s in the copy", r.RunID, r.Status)
		}
	}
	if db.Path() != path {
		t.Errorf("Path %s, want %s", db.Path(), path)
	}
}

// TestBackupLeavesWriterFree shows a backup does not take the write lock:
// it ends while the writer holds it in a transaction (were it to wait for
// the lock, it would fail busy after the busy timeout), and copies only
// what was committed before it.
func TestBackupLeavesWriterFree(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	mustCreate(t, db, newRun(1))
	tx, err := db.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock): holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "CREATE TABLE uncommitted (x)"); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := db.BackupInto(ctx, dst); err != nil {
		t.Fatalf("backup beside an open write transaction: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the writer's transaction after the backup: %v", err)
	}
	copied, err := Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	mustGet(t, copied, newRun(1).RunID)
	var n int
	if err := copied.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE name = 'uncommitted'").Scan(&n); err != nil || n != 0 {
		t.Errorf("the copy has the uncommitted table (%d, %v)", n, err)
	}
}

func TestBackupIntoErrors(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	mustCreate(t, db, newRun(1))
	t.Run("disk full", func(t *testing.T) {
		// Linux always has /dev/full (CI runs there): a missing one fails
		// rather than skips; other systems lack it.
		if runtime.GOOS != "linux" {
			t.Skip("/dev/full is Linux's")
		}
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Fatalf("no /dev/full on Linux: %v", err)
		}
		err := db.BackupInto(ctx, "/dev/full") // an empty file whose writes fail with ENOSPC
		if err == nil || !strings.Contains(err.Error(), "database or disk is full") {
			t.Fatalf("error %v, want SQLite's disk full", err)
		}
		if _, serr := os.Stat("/dev/full"); serr != nil {
			t.Fatalf("/dev/full removed: %v", serr)
		}
	})
	t.Run("existing file kept", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "there.db")
		if err := os.WriteFile(dst, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := db.BackupInto(ctx, dst); err == nil {
			t.Fatal("a backup into a file not empty succeeded")
		}
		if b, _ := os.ReadFile(dst); string(b) != "precious" {
			t.Fatalf("the existing file became %q", b)
		}
	})
	t.Run("no directory", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "nosuch", "copy.db")
		if err := db.BackupInto(ctx, dst); err == nil || !strings.Contains(err.Error(), dst) {
			t.Fatalf("error %v, want one naming %s", err, dst)
		}
	})
}

// TestOpenRemovesBackupTemps: a copy a crash left in the data directory
// goes at the next start.
func TestOpenRemovesBackupTemps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gantry.db")
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := db.BackupTemp()
	if !strings.HasPrefix(tmp, path+".backup-") {
		t.Fatalf("BackupTemp %s is not beside %s", tmp, path)
	}
	if err := db.BackupInto(ctx, tmp); err != nil {
		t.Fatal(err)
	}
	db.Close() // the crash: the copy stays
	other := filepath.Join(filepath.Dir(path), "mine.backup-1")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the left copy %s: %v, want removed", tmp, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file not of this database's backups was removed: %v", err)
	}
}

// BenchmarkBackup copies a store of 100k finished runs while a writer
// commits a run at a time, and reports how long the copy took, the copy's
// size and the slowest commit during it (the README's figures).
func BenchmarkBackup(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	db, _ := openDB(b)
	for i := 0; i < n; i += 1000 {
		var wg sync.WaitGroup
		for j := i; j < i+1000; j++ {
			r := newRun(j, func(r *jobs.Run) {
				code := 0
				now := r.CreatedAt
				r.Status, r.ExitCode, r.StartedAt, r.FinishedAt = jobs.StatusSucceeded, &code, &now, &now
				r.Attempts[0].Status, r.Attempts[0].ExitCode = jobs.StatusSucceeded, &code
				r.Containers = []jobs.ContainerResult{{Name: "main", ExitCode: &code}}
			})
			wg.Go(func() {
				if _, _, err := db.CreateRun(ctx, r); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	dir := b.TempDir()
	k := n
	for i := 0; b.Loop(); i++ {
		dst := filepath.Join(dir, fmt.Sprintf("copy-%d.db", i))
		// The same writer for as long without a backup, for comparison.
		idle, _ := writeWhile(b, db, &k, func() error { time.Sleep(500 * time.Millisecond); return nil })
		var took time.Duration
		slowest, writes := writeWhile(b, db, &k, func() error {
			start := time.Now()
			defer func() { took = time.Since(start) }()
			return db.BackupInto(ctx, dst)
		})
		fi, _ := os.Stat(dst)
		b.ReportMetric(took.Seconds(), "s/backup")
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
		b.ReportMetric(float64(slowest.Microseconds())/1000, "ms-slowest-write")
		b.ReportMetric(float64(idle.Microseconds())/1000, "ms-slowest-write-alone")
		b.ReportMetric(float64(writes), "writes-during")
		os.Remove(dst)
	}
}

// writeWhile creates runs one at a time while f runs, and returns the
// slowest creation and how many there were.
func writeWhile(b *testing.B, db *DB, k *int, f func() error) (slowest time.Duration, writes int) {
	stop := make(chan struct{})
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			*k++
			if _, _, err := db.CreateRun(context.Background(), newRun(*k)); err != nil {
				b.Error(err)
				return
			}
			slowest = max(slowest, time.Since(start))
			writes++
		}
	}()
	err := f()
	close(stop)
	<-writer
	if err != nil {
		b.Fatal(err)
	}
	return slowest, writes
}
