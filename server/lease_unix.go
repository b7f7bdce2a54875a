//go:build unix

package server

import (
	"os"
	"strconv"
	"syscall"
)

// fileID is the device and inode of the file at path, "" where it cannot
// be read.
func fileID(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(uint64(st.Ino), 10)
}
