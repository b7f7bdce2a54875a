// Command box is a small static multi-call binary for Gantry's sample and test
// images: a shell (mvdan.cc/sh) plus the handful of coreutils-like applets that
// sample jobs and integration tests use.
//
// It dispatches on the name it was started as (/bin/cat -> box), or on its
// first argument when started as box itself ("box cat FILE"). "box --list"
// prints the applets. The shell runs applets in-process, so a script such as
// "sleep 30" is one process, which matters when box is PID 1 in a container:
// SIGTERM and SIGINT make it exit at once with 128+signal (143, 130), unless
// the shell traps them (trap.go: trap 'ACTION' TERM INT EXIT).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// children counts processes the shell started outside box; when there are
// any, a terminating signal first asks them to stop.
var children atomic.Int64

func main() {
	args := os.Args
	if _, ok := applets[filepath.Base(args[0])]; !ok {
		args = args[1:]
	}
	if len(args) == 0 || args[0] == "--list" || args[0] == "--help" {
		for _, name := range appletNames() {
			fmt.Println(name)
		}
		if len(args) == 0 {
			os.Exit(2)
		}
		return
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var caught atomic.Int32
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		var sig syscall.Signal
		for s := range sigc {
			if sig = s.(syscall.Signal); !route(sig) { // trap.go
				break
			}
		}
		code := 128 + int(sig)
		caught.Store(int32(code))
		if children.Load() == 0 {
			os.Exit(code)
		}
		// Cancelling makes the shell interrupt, then kill, its children;
		// give them a moment, but never hang on them.
		cancel()
		time.Sleep(killTimeout + 500*time.Millisecond)
		os.Exit(code)
	}()

	code := run(newProc(ctx), args)
	if c := caught.Load(); c != 0 {
		code = int(c)
	}
	os.Exit(code)
}

// newProc returns the process-level environment applets run in.
func newProc(ctx context.Context) *proc {
	dir, err := os.Getwd()
	if err != nil {
		dir = "/"
	}
	return &proc{ctx: ctx, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, dir: dir, env: os.Environ()}
}
