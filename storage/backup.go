package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A backup is a consistent copy of the database, made while the server
// writes it: copying the file itself could catch it between a commit in
// its WAL and the checkpoint that moves the commit into it.
//
// SQLite's VACUUM INTO writes the copy from one read transaction: a
// snapshot of the last commit, compacted, with no WAL of its own. It runs
// on a connection of its own, not on the writer's, so the writer goes on
// committing meanwhile (WAL lets one writer beside readers); only the
// checkpoints cannot move past the snapshot until the copy ends, so the
// WAL grows for that long. Not on a pooled reader either: those are
// query_only, which refuses VACUUM INTO's writes to its target.

// backupTempInfix names the temporary copies a backup leaves in the
// database's directory, "<db>.backup-<random>": Open removes those a
// crash left.
const backupTempInfix = ".backup-"

// BackupTemp returns a new path, in the database's directory, for a copy
// made by BackupInto: "<db file>.backup-<random>". The next Open removes
// the file if the caller could not (a crash).
func (db *DB) BackupTemp() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return db.path + backupTempInfix + hex.EncodeToString(b[:])
}

// Path is the database file's absolute path.
func (db *DB) Path() string { return db.path }

// BackupInto writes a consistent copy of the database into the file dst,
// which must not exist or be empty (VACUUM INTO's rule). The copy opens
// as a database of its own, at this schema version. A copy that fails is
// removed if this call made the file.
func (db *DB) BackupInto(ctx context.Context, dst string) error {
	_, statErr := os.Lstat(dst)
	made := errors.Is(statErr, fs.ErrNotExist)
	if made {
		// The copy is the store's, secrets and all: not the 0644 that
		// SQLite would give a file it makes (see createPrivate).
		if err := createPrivate(dst); err != nil {
			return fmt.Errorf("back up database into %s: %w", dst, err)
		}
	}
	// A connection of its own: see above. busy_timeout as the others, for
	// a checkpoint that holds the file a moment.
	c, err := sql.Open("sqlite", fileURI(db.path)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("back up database: %w", err)
	}
	defer c.Close()
	c.SetMaxOpenConns(1)
	if _, err := c.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		if made {
			os.Remove(dst)
		}
		return fmt.Errorf("back up database into %s: %w", dst, err)
	}
	return nil
}

// removeBackupTemps removes the copies BackupTemp named that a crash left
// beside the database at path. Only one process opens a database (the
// server's data lock), so none of them is in use.
func removeBackupTemps(path string) {
	entries, _ := os.ReadDir(filepath.Dir(path))
	prefix := filepath.Base(path) + backupTempInfix
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), prefix) {
			os.Remove(filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
}
