package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go/jetstream"
)

// backupObjects lists the backups waiting in the data bucket.
func (e *apiEnv) backupObjects() []string {
	e.t.Helper()
	ctx := context.Background()
	obs, err := e.queue().JetStream().ObjectStore(ctx, queue.DataBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	infos, err := obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		e.t.Fatal(err)
	}
	var names []string
	for _, i := range infos {
		if strings.HasPrefix(i.Name, queue.BackupPrefix) {
			names = append(names, i.Name)
		}
	}
	return names
}

// TestBackupRestore backs up a server with runs, pipelines and schedules,
// starts a new server (a NATS of its own too) on a new data directory
// with the backup as its store, and finds them there, as they were when
// the backup was made.
func TestBackupRestore(t *testing.T) {
	a := startAll(t)
	ctx := context.Background()
	a.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var queued, done, running, after jobs.Run
	a.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &queued)
	a.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &done)
	a.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &running)
	a.end(done.RunID, jobs.StatusSucceeded, 0)
	if err := a.queue().Report(ctx, &jobs.Event{RunID: running.RunID, Attempt: 1, Seq: 1, Status: jobs.StatusRunning,
		Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	a.apply(pipelineYAML)
	a.ok("gantry.api.schedules.create", `{"taskDefinition":"hello","schedule":{"cron":"@daily","suspend":true}}`, nil)
	pr := a.runPipeline("nightly", "")
	for _, want := range []struct {
		id string
		st jobs.Status
	}{{done.RunID, jobs.StatusSucceeded}, {running.RunID, jobs.StatusRunning}} {
		waitStatus(t, a, want.id, want.st)
	}

	c, err := client.New(a.op)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var lastDone, lastTotal int64
	b, err := c.Backup(ctx, &buf, func(done, total int64) { lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatal(err)
	}
	if b.Size != int64(buf.Len()) || lastDone != b.Size || lastTotal != b.Size || b.DBFile != "gantry.db" || len(b.SHA256) != 64 {
		t.Fatalf("backup %+v, %d bytes read, progress %d/%d", b, buf.Len(), lastDone, lastTotal)
	}
	if left := a.backupObjects(); len(left) != 0 {
		t.Fatalf("backups left in the bucket after the client read one: %v", left)
	}
	a.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &after)
	a.stop()

	// The restore: the backup as DATA/gantry.db, with no -wal or -shm.
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, b.DBFile), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startAPIOn(t, data)
	r.waitAll()
	for id, want := range map[string]jobs.Status{queued.RunID: jobs.StatusQueued, done.RunID: jobs.StatusSucceeded, running.RunID: jobs.StatusRunning} {
		var got jobs.Run
		r.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, id), &got)
		if got.Status != want {
			t.Errorf("run %s: %s after the restore, want %s", id, got.Status, want)
		}
	}
	if e := apiError(t, r.req(r.op, "gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, after.RunID))); e.Code != jobs.CodeNotFound {
		t.Errorf("the run submitted after the backup: %s, want not_found", e.Code)
	}
	var pipes []jobs.Pipeline
	r.ok("gantry.api.pipelines.list", `{}`, &pipes)
	var scheds []ScheduleInfo
	r.ok("gantry.api.schedules.list", `{}`, &scheds)
	var names []string
	for _, s := range scheds {
		names = append(names, s.Kind+":"+s.Name)
	}
	slices.Sort(names)
	if len(pipes) != 2 || strings.Join(names, " ") != "pipeline:nightly task:hello" {
		t.Errorf("%d pipelines, schedules %v after the restore; want nightly and the task schedule hello", len(pipes), names)
	}
	var got jobs.PipelineRun
	r.ok("gantry.api.pipelines.get", fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID), &got)
	if got.Pipeline != "nightly" {
		t.Errorf("pipeline run %s: %+v", pr.PipelineRunID, got)
	}
	// The new server answers admin.backup too, and its backup is of the
	// restored store.
	c2, err := client.New(r.op)
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if _, err := c2.Backup(ctx, &again, nil); err != nil {
		t.Fatal(err)
	}
}

func waitStatus(t *testing.T, e *apiEnv, id string, want jobs.Status) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var r jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, id), &r)
		if r.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: %s, want %s", id, r.Status, want)
		}
	}
}

// TestBackupDiskFull: the server's disk filling under the snapshot comes
// back as the request's error, SQLite's words in it, and leaves nothing.
func TestBackupDiskFull(t *testing.T) {
	// Linux always has /dev/full (CI runs there): a missing one fails
	// rather than skips; other systems lack it.
	if runtime.GOOS != "linux" {
		t.Skip("/dev/full is Linux's")
	}
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("no /dev/full on Linux: %v", err)
	}
	e := startAPIOn(t, t.TempDir(), func(c *config) { c.backupTemp = "/dev/full" })
	e.waitAll()
	c, err := client.New(e.op)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Backup(context.Background(), &bytes.Buffer{}, nil)
	var apiErr *jobs.Error
	if !errors.As(err, &apiErr) || apiErr.Code != jobs.CodeInternal || !strings.Contains(apiErr.Message, "database or disk is full") {
		t.Fatalf("error %v, want internal with SQLite's disk full", err)
	}
	if left := e.backupObjects(); len(left) != 0 {
		t.Fatalf("backups in the bucket: %v", left)
	}
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("/dev/full: %v", err)
	}
}

// TestBackupExpires: a backup no client took (the client died, or the
// server before its answer) is deleted after the TTL, by the server that
// made it or, after a restart, by the next.
func TestBackupExpires(t *testing.T) {
	e := startAll(t)
	var b BackupReply
	e.ok("gantry.api.admin.backup", `{}`, &b)
	if got := e.backupObjects(); len(got) != 1 || got[0] != b.Object {
		t.Fatalf("bucket holds %v, want %s", got, b.Object)
	}
	if !b.ExpiresAt.Equal(b.CreatedAt.Add(DefaultBackupTTL)) || b.Bucket != queue.DataBucket {
		t.Fatalf("reply %+v", b)
	}
	e.stop()
	// Restarted with a short TTL and retention (the sweep every second).
	e.opts = append(e.opts, WithBackupTTL(time.Millisecond), WithDataRetention(time.Second))
	e.startServer()
	for deadline := time.Now().Add(15 * time.Second); len(e.backupObjects()) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("backups still there: %v", e.backupObjects())
		}
	}
}

// TestBackupSweptDuringItsPut: a sweep that runs while a backup is put in
// the bucket (a minute's sweep, a large store's put: likely) finds
// nothing yet and clears the flag that makes the next sweeps look; the
// backup, once stored, sets it again, so that a backup whose client died
// is still deleted after the TTL, not left until the next restart.
func TestBackupSweptDuringItsPut(t *testing.T) {
	var e *apiEnv
	// A TTL that any sweep after the put finds passed: the client never
	// came.
	e = startAPIOn(t, t.TempDir(), WithBackupTTL(time.Nanosecond), func(c *config) {
		c.beforeBackupPut = func() {
			if err := e.srv.sweepBackups(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	e.waitAll()
	var b BackupReply
	e.ok("gantry.api.admin.backup", `{}`, &b)
	if !e.srv.backups.left.Load() {
		t.Fatal("a backup waits in the bucket, and no sweep will look for it")
	}
	if err := e.srv.sweepBackups(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := e.backupObjects(); len(left) != 0 {
		t.Fatalf("backups left: %v", left)
	}
}
