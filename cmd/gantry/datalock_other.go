//go:build !unix

package main

// lockDataDir does not lock on this system: run one gantry per data
// directory.
func lockDataDir(string) (func(), error) { return func() {}, nil }

// dataDirLocks says that lockDataDir does not lock: a server killed on
// its data directory has the next one on it wait for its lease's age.
const dataDirLocks = false
