package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is gantry's SQLite store. It is safe for concurrent use, but only one
// DB (one process) may write a database file at a time.
type DB struct {
	w    *sql.DB // the single writer connection
	r    *sql.DB // readers, query_only
	path string  // the database file, absolute (backup.go)

	stmts *stmts    // stmts.go
	group committer // group.go

	// Webhooks (webhooks.go): the hooks ends are matched against, nil
	// for none; hooksMu serializes their changes; outboxed wakes the
	// sender after deliveries were added.
	hooks    atomic.Pointer[hookSet]
	hooksMu  sync.Mutex
	outboxed chan struct{}
}

// Pragmas of every connection. busy_timeout comes first in effect (the driver
// applies it before the others), so opening beside a checkpoint waits rather
// than fails.
const (
	writerPragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	readerPragmas = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=query_only(1)"
)

// OpenOption changes how Open opens the database.
type OpenOption func(*openConfig)

type openConfig struct{ syncFull bool }

// SyncEveryCommit makes every commit reach the disk before it returns
// (SQLite's synchronous=FULL), so that a power cut loses no run the server
// has answered for. By default (NORMAL, in WAL mode) a process crash loses
// nothing, but a power cut can take back the last commits.
func SyncEveryCommit() OpenOption { return func(c *openConfig) { c.syncFull = true } }

// createPrivate makes path an empty file readable by its owner alone, if
// it does not exist. The store holds every run's environment and the
// webhooks' secrets, as its backups do (written 0600), and SQLite would
// make it 0644: readable by every local user where the data directory
// is, as a systemd StateDirectory or an operator's mkdir makes it,
// 0755. SQLite opens an empty file as a new database and gives its WAL
// and shared-memory files the database file's mode. A store that
// exists keeps the mode it has (an operator may have chosen it).
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// Open opens the database at path, creating the file and its directory if
// needed, and brings its schema up to date.
func Open(ctx context.Context, path string, opts ...OpenOption) (*DB, error) {
	var oc openConfig
	for _, o := range opts {
		o(&oc)
	}
	if path == "" {
		return nil, errors.New("storage: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	uri := fileURI(abs)
	removeBackupTemps(abs) // backup.go

	pragmas := writerPragmas
	if oc.syncFull {
		pragmas = strings.Replace(pragmas, "synchronous(NORMAL)", "synchronous(FULL)", 1)
	}
	w, err := sql.Open("sqlite", uri+"?"+pragmas)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One connection that never expires: every write is serialized in Go,
	// and the connection's prepared statements and page cache stay warm.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := checkWAL(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}

	// Readers open after the writer has switched the file to WAL (a
	// persistent setting), so they need not and must not try to change it.
	r, err := sql.Open("sqlite", uri+"?"+readerPragmas)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	st, err := prepareStmts(ctx, w, r)
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db := &DB{w: w, r: r, path: abs, stmts: st, outboxed: make(chan struct{}, 1)}
	db.startCommitter()
	if err := db.loadHooks(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// Close closes the prepared statements and both pools. Calling it twice is
// harmless.
func (db *DB) Close() error {
	db.stopCommitter()
	return errors.Join(db.stmts.close(), db.r.Close(), db.w.Close())
}

// checkWAL opens the writer connection, which applies the pragmas, and
// makes sure WAL took: on a file system without shared memory it does not,
// and the single-writer design relies on readers not blocking the writer.
func checkWAL(ctx context.Context, w *sql.DB) error {
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	return nil
}

// fileURI makes an SQLite URI of an absolute path, escaping the characters
// a URI would otherwise take for its own.
func fileURI(abs string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(filepath.ToSlash(abs))
}
