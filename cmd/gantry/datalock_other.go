//go:build !unix

package main

// lockDataDir does not lock on this system: run one gantry per data
// directory.
func lockDataDir(string) (func(), error) { return func() {}, nil }
