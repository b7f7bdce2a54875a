//go:build !unix

package server

// fileID does not tell a file on this system: a server restarted on its
// store waits for its lease's age (restartOf).
func fileID(string) string { return "" }
