package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestBackupObjects(t *testing.T) {
	q, s, _ := newDataStager(t)
	ctx := context.Background()
	// Stage files beside the backups: DeleteBackups leaves them.
	stageDir := t.TempDir()
	os.WriteFile(filepath.Join(stageDir, "a.csv"), []byte("a\n"), 0o644)
	if err := s.Put(ctx, "pr-1", "extract", "run-1", 1, stageDir); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 300<<10) // a few chunks
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "db")
	os.WriteFile(file, data, 0o600)
	sum := sha256.Sum256(data)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old, fresh := BackupName(t0), BackupName(t0.Add(time.Hour))
	for _, name := range []string{old, fresh} {
		n, err := s.PutBackup(ctx, name, file, hex.EncodeToString(sum[:]))
		if err != nil || n != int64(len(data)) {
			t.Fatalf("PutBackup %s: %d, %v", name, n, err)
		}
	}
	var got bytes.Buffer
	info, err := q.GetBackup(ctx, fresh, &got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) || info.Size != int64(len(data)) || info.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("got %d bytes, info %+v", got.Len(), info)
	}

	left, err := s.DeleteBackups(ctx, t0.Add(time.Minute))
	if err != nil || left != 1 {
		t.Fatalf("DeleteBackups: %d left, %v; want 1", left, err)
	}
	if _, err := q.GetBackup(ctx, old, &got); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("the old backup: %v, want not found", err)
	}
	if err := q.DeleteBackup(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := q.DeleteBackup(ctx, fresh); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if err := q.DeleteBackup(ctx, "pr-1/extract/run-1/a.csv"); err == nil {
		t.Fatal("DeleteBackup deleted a stage file")
	}
	// Only the stage file and its manifest are left, without markers.
	st, _ := q.JetStream().Stream(ctx, "OBJ_"+DataBucket)
	si, _ := st.Info(ctx)
	if si.State.Msgs != 4 {
		t.Fatalf("stream holds %d messages, want 4 (the stage file's and manifest's meta and chunk)", si.State.Msgs)
	}
	if left, err := s.DeleteBackups(ctx, t0.Add(48*time.Hour)); err != nil || left != 0 {
		t.Fatalf("DeleteBackups with none: %d, %v", left, err)
	}
}
