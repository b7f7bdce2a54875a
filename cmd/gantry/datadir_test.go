//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataDirErrorsNameTheFlag: a --data that cannot be created said
// "data directory: mkdir ...", naming neither the flag nor what to do.
func TestDataDirErrorsNameTheFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data") // under a file: cannot be made
	err := makeDataDir(dir)
	if err == nil || !strings.HasPrefix(err.Error(), "--data "+dir+": ") || !strings.Contains(err.Error(), "give a directory") {
		t.Errorf("makeDataDir(%s): %v; want it to name --data and say what to do", dir, err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.HasPrefix(err.Error(), "--data "+dir+": ") {
		t.Errorf("lockDataDir(%s): %v; want it to name --data", dir, err)
	}
	ok := filepath.Join(t.TempDir(), "a", "b")
	if err := makeDataDir(ok); err != nil {
		t.Errorf("makeDataDir(%s): %v", ok, err)
	}
}
