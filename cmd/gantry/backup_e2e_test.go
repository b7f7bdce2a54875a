package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestBackupCLI: gantry backup writes the store to FILE (private, its
// SHA-256 printed), keeps an existing FILE without --force, refuses the
// submit-only user; a gantry up on a new data directory holding the
// backup as gantry.db has the runs.
func TestBackupCLI(t *testing.T) {
	t.Parallel()
	in := startUpEnv(t, []string{"GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret"},
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	app := append(append([]string{}, in.env...), "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret")
	id := in.runDetached("true")
	in.waitStatus(id, jobs.StatusSucceeded)

	file := filepath.Join(t.TempDir(), "gantry-backup.db")
	out, errOut, code := in.gantry("backup", file)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if !strings.HasPrefix(out, file+": ") || !strings.Contains(out, "sha256 "+hex.EncodeToString(sum[:])) ||
		!strings.Contains(errOut, "restore it as DATA/gantry.db") {
		t.Errorf("backup: stdout %q, stderr %q", out, errOut)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("FILE mode %v, want 0600", fi.Mode().Perm())
	}
	if _, errOut, code := in.gantry("backup", file); code != 125 || !strings.Contains(errOut, "exists: give --force") {
		t.Errorf("backup over FILE: exit %d: %s", code, errOut)
	}
	if _, errOut, code := in.gantry("backup", file, "--force"); code != 0 {
		t.Errorf("backup --force: exit %d: %s", code, errOut)
	}
	if _, errOut, code := runBin(t, app, "backup", filepath.Join(t.TempDir(), "x.db")); code != 125 ||
		!strings.Contains(errOut, "gantry.api.admin.backup") {
		t.Errorf("backup as the submit-only user: exit %d: %s", code, errOut)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("left beside FILE: %v", entries)
	}

	// The restore, on a new data directory (its JetStream too).
	in.stop()
	if err := os.RemoveAll(in.data); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(in.data, 0o755)
	restored, _ := os.ReadFile(file)
	if err := os.WriteFile(filepath.Join(in.data, "gantry.db"), restored, 0o600); err != nil {
		t.Fatal(err)
	}
	in.start()
	if r := in.describe(id); r.Status != jobs.StatusSucceeded {
		t.Errorf("run %s after the restore: %s", id, r.Status)
	}
}
