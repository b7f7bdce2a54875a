package server

import (
	"os"
	"strings"
)

// bootID is the id of the running kernel, new at every boot; "" where it
// cannot be read.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
