package server

import "syscall"

// bootID is the id of the running kernel's boot session, new at every
// boot; "" where it cannot be read.
func bootID() string {
	id, err := syscall.Sysctl("kern.bootsessionuuid")
	if err != nil {
		return ""
	}
	return id
}
