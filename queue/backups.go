package queue

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Backups of the server's store (gantry backup) travel to the client
// through DataBucket, as objects named BackupPrefix + the time they were
// made: one bucket however they are used, as stage files are. The client
// deletes a backup once it has it; the server deletes those older than
// its backup TTL that no client took (DeleteBackups). Stage files are
// named by pipeline run, never so.
const BackupPrefix = "backups/"

// backupTimeFormat is the time in a backup's name: sortable, no ':'.
const backupTimeFormat = "20060102T150405.000000000Z"

// BackupName is the name of a backup made at t.
func BackupName(t time.Time) string { return BackupPrefix + t.UTC().Format(backupTimeFormat) }

// BackupSHA256Key is the object metadata that holds a backup's SHA-256,
// in hex, as the server computed it from the file it stored.
const BackupSHA256Key = "gantry-sha256"

// PutBackup stores the file at path as the backup object name, with its
// SHA-256 (hex) in the metadata, and returns the object's size. Putting
// the same name again replaces it.
func (s *Stager) PutBackup(ctx context.Context, name, path, sha256 string) (int64, error) {
	obs, err := s.bucket(ctx)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := obs.Put(ctx, jetstream.ObjectMeta{Name: name, Description: "gantry: a backup of the server's store",
		Metadata: map[string]string{BackupSHA256Key: sha256}}, f)
	if err != nil {
		return 0, fmt.Errorf("store %s in %s: %w", name, DataBucket, err)
	}
	return int64(info.Size), nil
}

// DeleteBackups deletes the backups made before the given time and
// returns how many are left. Deleting one that is gone is no error.
func (s *Stager) DeleteBackups(ctx context.Context, before time.Time) (left int, err error) {
	obs, err := s.bucket(ctx)
	if err != nil {
		return 0, err
	}
	stream, err := s.dataStream(ctx) // objects.go
	if err != nil {
		return 0, err
	}
	names, err := objectNames(ctx, stream) // objects_delete.go
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", DataBucket, err)
	}
	for _, name := range names {
		at, ok := strings.CutPrefix(name, BackupPrefix)
		if !ok {
			continue
		}
		if t, err := time.Parse(backupTimeFormat, at); err == nil && !t.Before(before) {
			left++
			continue
		}
		if err := deleteObject(ctx, obs, stream, name); err != nil {
			return left, err
		}
	}
	return left, nil
}

// deleteObject deletes an object and purges the marker the delete leaves,
// so that nothing of it stays in the bucket.
func deleteObject(ctx context.Context, obs jetstream.ObjectStore, stream jetstream.Stream, name string) error {
	if err := obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(metaPrefix+base64.URLEncoding.EncodeToString([]byte(name)))); err != nil {
		return fmt.Errorf("purge %s: %w", name, err)
	}
	return nil
}

// BackupInfo is what the bucket says of a backup.
type BackupInfo struct {
	Size int64
	// SHA256 is the hex SHA-256 the server stored with it.
	SHA256 string
}

// GetBackup writes the backup object name of DataBucket to w, and
// returns what the bucket says of it. The object store checks its own
// digest of the bytes at the end: a reader that gets fewer or other
// bytes than were stored gets an error.
func (q *Queue) GetBackup(ctx context.Context, name string, w io.Writer) (*BackupInfo, error) {
	obs, err := q.js.ObjectStore(ctx, DataBucket)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	res, err := obs.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", name, DataBucket, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", name, DataBucket, err)
	}
	if _, err := io.Copy(w, res); err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", name, DataBucket, err)
	}
	return &BackupInfo{Size: int64(info.Size), SHA256: info.Metadata[BackupSHA256Key]}, nil
}

// DeleteBackup deletes the backup object name, as DeleteBackups does.
func (q *Queue) DeleteBackup(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, BackupPrefix) {
		return fmt.Errorf("delete %s: not a backup", name)
	}
	obs, err := q.js.ObjectStore(ctx, DataBucket)
	if err != nil {
		return fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	stream, err := q.js.Stream(ctx, dataStreamName)
	if err != nil {
		return fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	return deleteObject(ctx, obs, stream, name)
}
