//go:build !linux && !darwin

package server

// bootID does not tell the running kernel on this system: a server
// restarted on its store waits for its lease's age (restartOf).
func bootID() string { return "" }
