//go:build race

package main

// raceEnabled: these tests run under the race detector, and build the
// gantry they start with it too.
const raceEnabled = true
