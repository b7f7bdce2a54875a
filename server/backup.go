package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// admin.backup (gantry backup) hands an operator a consistent copy of the
// store while the server runs. The server writes a snapshot with
// storage.DB.BackupInto into a temporary file beside the database, stores
// it in the data bucket as queue.BackupName(now) with its SHA-256, removes
// the file and answers where the backup is; the client reads it, checks
// its size and SHA-256, and deletes it. Backups no client took are
// deleted by the data retention's loop once older than the backup TTL
// (sweepBackups). One backup is made at a time.
//
// Crash safety, per step, if the server dies just after it:
//
//  1. The snapshot is written: the temporary file stays beside the
//     database; storage.Open removes it at the next start. The client
//     gets no answer (a timeout) and asks again.
//  2. The backup is stored in the bucket: no one answers; the sweep,
//     which looks at the bucket once after every start, deletes it when
//     it is older than the TTL.
//  3. The answer is sent: the client takes the backup and deletes it; if
//     the client dies first, the sweep deletes it after the TTL.
//
// Each step is done again, under a new name, by a new request: nothing
// of a failed backup is reused.

// BackupRequest asks for a backup of the store. It has no fields yet.
type BackupRequest struct{}

// BackupReply says where a backup waits to be fetched and what it is.
type BackupReply struct {
	// Bucket and Object name the backup in JetStream's object store.
	Bucket string `json:"bucket"`
	Object string `json:"object"`
	// Size is the backup's size in bytes; SHA256 its hex SHA-256.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// DBFile is the database's file name in the server's data directory:
	// what a restore names the backup.
	DBFile string `json:"dbFile"`
	// CreatedAt is when the snapshot was taken; the server deletes the
	// backup at ExpiresAt if no client did.
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// SnapshotMillis is how long writing the snapshot took.
	SnapshotMillis int64 `json:"snapshotMillis"`
}

// DefaultBackupTTL is how long a backup waits in the bucket for its
// client.
const DefaultBackupTTL = time.Hour

// backupTimeout bounds an admin.backup request, upload of a large store
// to a remote NATS included: the API's other requests have 30 s.
const backupTimeout = 10 * time.Minute

// WithBackupTTL sets how long a backup no client took stays in the data
// bucket (DefaultBackupTTL when 0).
func WithBackupTTL(d time.Duration) Option { return func(c *config) { c.backupTTL = d } }

// backups is the server's state of backups.
type backups struct {
	mu sync.Mutex // held while one is made
	// left says the bucket may hold backups: set at start and by every
	// backup, cleared by a sweep that found none left.
	left atomic.Bool
}

func (s *Server) backupTTL() time.Duration {
	if s.cfg.backupTTL > 0 {
		return s.cfg.backupTTL
	}
	return DefaultBackupTTL
}

func (s *Server) apiBackup(ctx context.Context, data []byte) (any, error) {
	var req BackupRequest
	if len(data) > 0 {
		if err := decode(data, &req); err != nil {
			return nil, err
		}
	}
	if !s.backups.mu.TryLock() {
		return nil, &jobs.Error{Code: jobs.CodeUnavailable, Message: "another backup is being made: try again once it is done"}
	}
	defer s.backups.mu.Unlock()
	return s.backup(ctx)
}

// backup makes a backup and stores it in the data bucket.
func (s *Server) backup(ctx context.Context) (*BackupReply, error) {
	now := s.cfg.now().UTC()
	tmp := s.db.BackupTemp()
	if s.cfg.backupTemp != "" {
		tmp = s.cfg.backupTemp
	}
	if err := s.db.BackupInto(ctx, tmp); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp)
	took := s.cfg.now().Sub(now)
	sum, err := fileSHA256(tmp)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	name := queue.BackupName(now)
	if s.cfg.beforeBackupPut != nil {
		s.cfg.beforeBackupPut()
	}
	size, err := s.pipes.data.PutBackup(ctx, name, tmp, sum)
	// After the put, stored or not: a sweep that ran during it found no
	// backup yet and cleared the flag.
	s.backups.left.Store(true)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	s.cfg.log.Info().Str("object", name).Int64("bytes", size).Str("sha256", sum).
		Dur("snapshot", took).Msg("store backed up; waiting in the data bucket for its client")
	return &BackupReply{Bucket: queue.DataBucket, Object: name, Size: size, SHA256: sum,
		DBFile: filepath.Base(s.db.Path()), CreatedAt: now, ExpiresAt: now.Add(s.backupTTL()),
		SnapshotMillis: took.Milliseconds()}, nil
}

// fileSHA256 is the hex SHA-256 of a file's content.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sweepBackups deletes the backups older than the TTL, when the bucket
// may hold some: it costs nothing while no backup is made.
func (s *Server) sweepBackups(ctx context.Context) error {
	if !s.backups.left.Swap(false) {
		return nil
	}
	left, err := s.pipes.data.DeleteBackups(ctx, s.cfg.now().Add(-s.backupTTL()))
	if err != nil || left > 0 {
		s.backups.left.Store(true) // look again next time
	}
	return err
}
