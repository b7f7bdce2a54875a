package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// proc is what an applet sees of its process: it is the real process for a
// top-level applet and the shell's state for one the shell runs in-process.
type proc struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	dir    string   // working directory relative paths resolve against
	env    []string // KEY=VALUE, exported variables only
}

func (p *proc) lookupEnv(key string) (string, bool) {
	for i := len(p.env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(p.env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// path resolves name against the applet's working directory.
func (p *proc) path(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(p.dir, name)
}

// errorf prints an applet's diagnostic to stderr.
func (p *proc) errorf(format string, args ...any) {
	fmt.Fprintf(p.stderr, format+"\n", args...)
}

// exitStatus is an error that carries an exit code and has already been
// reported (or needs no message, as for false or grep without a match).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is reported as "NAME: usage: ..." and exits 2.
type usageError string

func (e usageError) Error() string { return "usage: " + string(e) }

// applet runs one command; args[0] is the applet's name.
type applet func(p *proc, args []string) error

// applets is filled by init to avoid an initialization cycle (sh runs applets).
var applets map[string]applet

func init() {
	applets = map[string]applet{
		"sh": runShell, "cat": cat, "echo": echo, "sleep": sleep, "true": trueApplet,
		"false": falseApplet, "seq": seq, "head": head, "tail": tail, "wc": wc,
		"yes": yes, "env": envApplet, "printenv": printenv, "ls": ls, "mkdir": mkdir,
		"rm": rm, "cp": cp, "mv": mv, "tr": tr, "sort": sortApplet, "uniq": uniq,
		"grep": grep, "date": date, "hostname": hostname, "tee": tee, "touch": touch,
		"pwd": pwd, "alloc": alloc, "lines": lines, "bigline": bigline,
		"ulimit": ulimit, "httpd": httpd, "fetch": fetch,
	}
}

// appletNames returns the applet names in sorted order.
func appletNames() []string {
	names := make([]string, 0, len(applets))
	for name := range applets {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// run runs the applet args[0] and returns its exit code, reporting errors
// the applet returned on p.stderr.
func run(p *proc, args []string) int {
	name := filepath.Base(args[0])
	a, ok := applets[name]
	if !ok {
		p.errorf("box: %s: applet not found", args[0])
		return 127
	}
	err := a(p, args)
	var es exitStatus
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &es):
		return int(es)
	case errors.As(err, &ue):
		p.errorf("%s: %v", name, err)
		return 2
	default:
		p.errorf("%s: %v", name, err)
		return 1
	}
}
