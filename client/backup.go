package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// Backup describes a backup of the server's store (admin.backup's reply).
type Backup struct {
	// Bucket and Object name it in JetStream's object store while it
	// waits for its client.
	Bucket string `json:"bucket"`
	Object string `json:"object"`
	Size   int64  `json:"size"`
	// SHA256 is the hex SHA-256 of its bytes.
	SHA256 string `json:"sha256"`
	// DBFile is the database's file name in the server's data directory,
	// which a restore gives the backup.
	DBFile         string    `json:"dbFile"`
	CreatedAt      time.Time `json:"createdAt"`
	ExpiresAt      time.Time `json:"expiresAt"`
	SnapshotMillis int64     `json:"snapshotMillis"`
}

// backupTimeout bounds the request when ctx has none: the server writes
// the snapshot and stores it before it answers.
const backupTimeout = 10 * time.Minute

// ChecksumError is a backup whose bytes, as read, are not those the
// server stored.
type ChecksumError struct {
	Object      string
	Want, Got   string
	WantN, GotN int64
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("backup %s: read %d bytes with SHA-256 %s, the server stored %d bytes with SHA-256 %s: try again",
		e.Object, e.GotN, e.Got, e.WantN, e.Want)
}

// Backup asks the server for a consistent copy of its store and writes
// it to w. progress, when not nil, is called as the bytes arrive with how
// many have and how many will. The SHA-256 and size of what was written
// are checked against the server's (a *ChecksumError if they differ).
// The backup is deleted from the bucket once read, whether or not it
// could be; the server deletes those no client did after a while. Only
// operators may: the submit role is refused (permission_denied).
func (c *Client) Backup(ctx context.Context, w io.Writer, progress func(done, total int64)) (*Backup, error) {
	rctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, backupTimeout)
		defer cancel()
	}
	var b Backup
	if err := c.call(rctx, "admin.backup", struct{}{}, &b); err != nil {
		return nil, err
	}
	defer func() {
		// Deleted whatever happened to the read; with a context of its
		// own, so that a cancelled read still cleans up.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.q.DeleteBackup(dctx, b.Object)
	}()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, h), total: b.Size, progress: progress}
	if _, err := c.q.GetBackup(rctx, b.Object, cw); err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.SHA256 || cw.n != b.Size {
		return nil, &ChecksumError{Object: b.Object, Want: b.SHA256, Got: got, WantN: b.Size, GotN: cw.n}
	}
	return &b, nil
}

// countingWriter counts what it passes on and tells progress.
type countingWriter struct {
	w        io.Writer
	n, total int64
	progress func(done, total int64)
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	if cw.progress != nil {
		cw.progress(cw.n, cw.total)
	}
	return n, err
}
