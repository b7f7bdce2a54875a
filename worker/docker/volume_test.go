package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllowHostPath(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(root, "allowed")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{allowed + "/sub", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(allowed+"/sub", filepath.Join(root, "link-in")); err != nil {
		t.Fatal(err)
	}
	// The allowed directory itself named through a symlink.
	if err := os.Symlink(allowed, filepath.Join(root, "allowed-link")); err != nil {
		t.Fatal(err)
	}
	r := New(nil, WithAllowedHostPaths(filepath.Join(root, "allowed-link")))

	tests := []struct {
		path string
		want string // resolved path, or "" when refused
	}{
		{allowed, allowed},
		{allowed + "/sub", allowed + "/sub"},
		{allowed + "/sub/new/dir", allowed + "/sub/new/dir"},
		{allowed + "/sub/../sub", allowed + "/sub"},
		{root + "/link-in", allowed + "/sub"},
		{allowed + "/../outside", ""},
		{allowed + "/escape", ""},
		{allowed + "/escape/new", ""},
		{allowed + "x", ""},
		{"/", ""},
		{"/etc", ""},
		{"relative/path", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := r.allowHostPath(tt.path)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("allowed as %s, want refused", got)
				}
				if filepath.IsAbs(tt.path) && !strings.Contains(err.Error(), "--allow-host-path") {
					t.Errorf("error %q does not name the --allow-host-path flag", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestNoHostPathsAllowed(t *testing.T) {
	_, err := New(nil).allowHostPath(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "allows no host paths") || !strings.Contains(err.Error(), "--allow-host-path") {
		t.Fatalf("got %v", err)
	}
}
