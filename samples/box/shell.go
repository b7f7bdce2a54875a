package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// killTimeout is how long the shell waits after interrupting a child process
// (one that is not an applet) before killing it.
const killTimeout = 2 * time.Second

// runShell is sh: "sh -c SCRIPT [ARG...]", "sh FILE [ARG...]" or a script
// on stdin. Options -e, -u, -x, -f are passed to the interpreter.
func runShell(p *proc, args []string) error {
	var opts []string
	command := false
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || (a[0] != '-' && a[0] != '+') {
			break
		}
		for _, c := range a[1:] {
			switch c {
			case 'c':
				command = true
			case 'e', 'u', 'x', 'f', 'n':
				opts = append(opts, string(a[0])+string(c))
			default:
				return usageError(fmt.Sprintf("sh [-eux] [-c SCRIPT | FILE] [ARG...]: unknown option %c", c))
			}
		}
	}
	rest := args[i:]

	var (
		src  io.Reader
		name string
	)
	switch {
	case command:
		if len(rest) == 0 {
			return usageError("sh -c SCRIPT [NAME [ARG...]]")
		}
		src, name = strings.NewReader(rest[0]), "sh"
		rest = rest[1:]
		if len(rest) > 0 { // $0; mvdan.cc/sh has no way to set it
			rest = rest[1:]
		}
	case len(rest) > 0:
		f, err := os.Open(p.path(rest[0]))
		if err != nil {
			return err
		}
		defer f.Close()
		src, name = f, rest[0]
		rest = rest[1:]
	default:
		src, name = p.stdin, "sh"
	}

	file, err := syntax.NewParser().Parse(src, name)
	if err != nil {
		p.errorf("sh: %v", err)
		return exitStatus(2)
	}
	stdin := p.stdin
	if !command && len(args[i:]) == 0 {
		stdin = nil // the parser consumed it
	}
	t := newTraps()
	r, err := interp.New(
		interp.StdIO(stdin, p.stdout, p.stderr),
		interp.Dir(p.dir),
		interp.Env(expand.ListEnviron(p.env...)),
		interp.Params(append(opts, append([]string{"--"}, rest...)...)...),
		interp.ExecHandlers(countChildren, t.interruptApplets, runApplets),
		interp.CallHandler(t.call),
	)
	if err != nil {
		return fmt.Errorf("start interpreter: %w", err)
	}
	t.main, t.stdout, t.stderr = reflect.ValueOf(r).Pointer(), p.stdout, p.stderr
	if shellTraps.CompareAndSwap(nil, t) { // the top-level shell: signals come here
		defer shellTraps.CompareAndSwap(t, nil)
	}
	err = t.finish(p.ctx, r, p.stderr, r.Run(p.ctx, file))
	var es interp.ExitStatus
	switch {
	case err == nil:
		return nil
	case errors.As(err, &es):
		return exitStatus(es)
	case p.ctx.Err() != nil:
		return exitStatus(130)
	default:
		return err
	}
}

// runApplets runs commands named after an applet in-process; a name with a
// slash, or any other name, goes to the next handler (exec from PATH).
func runApplets(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return func(ctx context.Context, args []string) error {
		if _, ok := applets[args[0]]; !ok {
			return next(ctx, args)
		}
		hc := interp.HandlerCtx(ctx)
		stdin := hc.Stdin
		if stdin == nil || isNilFile(stdin) {
			stdin = strings.NewReader("")
		}
		child := &proc{ctx: ctx, stdin: stdin, stdout: hc.Stdout, stderr: hc.Stderr, dir: hc.Dir, env: environ(hc.Env)}
		if code := run(child, args); code != 0 {
			return interp.ExitStatus(uint8(code))
		}
		return nil
	}
}

func isNilFile(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && f == nil
}

// countChildren keeps children up to date for the signal handler.
func countChildren(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return func(ctx context.Context, args []string) error {
		if _, ok := applets[args[0]]; ok {
			return next(ctx, args)
		}
		children.Add(1)
		defer children.Add(-1)
		return next(ctx, args)
	}
}

// environ lists the exported string variables of env as KEY=VALUE.
func environ(env expand.Environ) []string {
	var list []string
	for name, vr := range env.Each {
		if vr.IsSet() && vr.Exported && vr.Kind == expand.String {
			list = append(list, name+"="+vr.String())
		}
	}
	return list
}

// execCommand runs a program that is not an applet, for env.
func execCommand(p *proc, args []string) error {
	cmd := exec.CommandContext(p.ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.stdin, p.stdout, p.stderr
	cmd.Dir, cmd.Env = p.dir, p.env
	cmd.WaitDelay = killTimeout
	children.Add(1)
	defer children.Add(-1)
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitStatus(128 + int(ws.Signal()))
		}
		return exitStatus(ee.ExitCode())
	}
	return err
}
