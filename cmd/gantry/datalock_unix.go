//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// dataDirLocks says that lockDataDir locks: the server lease of a server
// killed on its data directory is then taken over at once by the next
// one on it (server.WithStoreLock).
const dataDirLocks = true

// lockDataDir takes the data directory for this process: two gantry
// processes on one directory would run two JetStream servers on one file
// store and two writers of one SQLite database, and lose data. The lock
// (flock on DIR/gantry.lock) goes with the process, however it ends.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, "gantry.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w: give a directory this user may write (or set GANTRY_DATA)", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another gantry process"
			if pid := string(bytes.TrimSpace(b)); pid != "" {
				holder += " (pid " + pid + ")"
			}
			return nil, fmt.Errorf("data directory %s is in use by %s: stop it, or give this one another --data", dir, holder)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
