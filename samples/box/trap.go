package main

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// Signal traps for sh. The interpreter traps only EXIT and ERR; box adds
// INT and TERM, so that a task can shut down gracefully when gantry stops
// it (SIGTERM, then SIGKILL once its stopTimeout has passed), and takes
// EXIT over so that a signal's action runs before the EXIT action.
//
// As in POSIX shells, a trapped signal's action runs between commands, in
// the shell itself (its exit ends the script). Unlike them, the signal
// also interrupts the applets running then (sleep, say, which exits
// 128+signal), in the foreground or not: "sleep 3600" and "sleep 3600 &
// wait" both end at once, as bash's wait does, rather than hold the action
// back until SIGKILL. A signal that comes while no applet of the shell's
// own runs has its action run just before the next command, whose words
// were expanded before it. A signal with no trap ends box at
// once with 128+signal, without the EXIT action (as dash).

// shellTraps are the traps of the top-level shell, which signals box
// catches go to (route).
var shellTraps atomic.Pointer[traps]

// trapSignals are the signals sh can trap, by name.
var trapSignals = map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM}

// route gives sig to the top-level shell's trap; false when it has none
// (box then exits with 128+sig).
func route(sig syscall.Signal) bool {
	t := shellTraps.Load()
	return t != nil && t.catch(sig)
}

// traps are one shell's trap actions and the signals caught whose action
// has not run yet.
type traps struct {
	mu      sync.Mutex
	actions map[string]string // EXIT, INT, TERM -> action; "" ignores; absent: the default
	pending []string          // signals caught, in order
	// intr ends when a trapped signal arrives, to interrupt the applets
	// running then; it is replaced by a new one.
	intr       context.Context
	cancelIntr context.CancelFunc
	lastSig    syscall.Signal
	main       uintptr // the shell's own runner: only it runs actions,
	// and only where its output is the shell's, not redirected
	stdout, stderr io.Writer
	// running counts the applets a signal would interrupt now (a test
	// signals once one runs).
	running atomic.Int32
}

func newTraps() *traps {
	t := &traps{actions: map[string]string{}}
	t.intr, t.cancelIntr = context.WithCancel(context.Background())
	return t
}

// catch takes sig if the shell traps it: ignored for an empty action,
// else made pending and the running applets interrupted.
func (t *traps) catch(sig syscall.Signal) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	name := signalName(sig)
	action, ok := t.actions[name]
	if !ok {
		return false
	}
	if action == "" {
		return true
	}
	t.pending = append(t.pending, name)
	t.lastSig = sig
	t.cancelIntr()
	t.intr, t.cancelIntr = context.WithCancel(context.Background())
	return true
}

func signalName(sig syscall.Signal) string {
	for name, s := range trapSignals {
		if s == sig {
			return name
		}
	}
	return ""
}

// takePending returns the actions of the signals caught since the last
// call, as one script; "" if none.
func (t *traps) takePending() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var script []string
	for _, name := range t.pending {
		if a := t.actions[name]; a != "" {
			script = append(script, a)
		}
	}
	t.pending = nil
	return strings.Join(script, "\n")
}

// interruptApplets ends an applet when a trapped signal arrives while it
// runs; it then exits 128+signal. In the shell itself (not a subshell or
// a pipeline's side) the signal's action runs right after it, so that the
// next command sees what the action set ("while [ -z "$stop" ]").
func (t *traps) interruptApplets(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return func(ctx context.Context, args []string) error {
		if _, ok := applets[args[0]]; !ok {
			return next(ctx, args)
		}
		t.mu.Lock()
		intr := t.intr
		t.mu.Unlock()
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(intr, cancel)()
		t.running.Add(1)
		err := next(actx, args)
		t.running.Add(-1)
		if intr.Err() == nil {
			return err
		}
		t.mu.Lock()
		sig := t.lastSig
		t.mu.Unlock()
		hc := interp.HandlerCtx(ctx)
		if t.atTop(hc) {
			if script := t.takePending(); script != "" {
				if err := hc.Builtin(ctx, []string{"eval", script}); err != nil {
					return err // its exit, say
				}
			}
		}
		return interp.ExitStatus(128 + int(sig))
	}
}

// call is the shell's call handler: trap is box's, and before a command
// of the shell itself (not of a subshell or pipeline) the actions of the
// signals caught run, by eval, followed by the command.
func (t *traps) call(ctx context.Context, args []string) ([]string, error) {
	args, err := shadowBuiltins(ctx, args)
	if err != nil || len(args) == 0 {
		return args, err
	}
	hc := interp.HandlerCtx(ctx)
	if args[0] == "trap" {
		return t.builtin(hc, args), nil
	}
	if !t.atTop(hc) {
		return args, nil
	}
	script := t.takePending()
	if script == "" {
		return args, nil
	}
	cmd := make([]string, len(args))
	for i, a := range args {
		q, err := syntax.Quote(a, syntax.LangPOSIX)
		if err != nil { // not quotable (a NUL byte): the command is left out
			return []string{"eval", script}, nil
		}
		cmd[i] = q
	}
	return []string{"eval", script + "\n" + strings.Join(cmd, " ")}, nil
}

// atTop reports whether a handler runs in the shell itself, not in a
// subshell or a pipeline's side, with the shell's own output, not one a
// redirection of the command gives: where a signal's action may run.
func (t *traps) atTop(hc interp.HandlerContext) bool {
	if r := runnerOf(hc); r != 0 && r != t.main {
		return false
	}
	return sameWriter(hc.Stdout, t.stdout) && sameWriter(hc.Stderr, t.stderr)
}

func sameWriter(a, b io.Writer) bool {
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta != nil && ta.Comparable() && a == b
}

// runnerOf is the runner a handler runs for. The interpreter does not
// export it; 0 when it cannot be read (then every runner counts as the
// shell's own: the traps still run, in a subshell maybe).
func runnerOf(hc interp.HandlerContext) uintptr {
	f := reflect.ValueOf(hc).FieldByName("runner")
	if !f.IsValid() || f.Kind() != reflect.Pointer {
		return 0
	}
	return f.Pointer()
}

// builtin is trap: "trap [--] ACTION SIGNAL...", "trap [--] SIGNAL..."
// (back to the default), "trap - SIGNAL...", an empty ACTION (ignored),
// "trap" (list). It returns the command the interpreter runs in its
// place: its own trap for ERR and the options it knows (-l, -p), else : or
// false for the status.
func (t *traps) builtin(hc interp.HandlerContext, args []string) []string {
	a := args[1:]
	if len(a) > 0 && a[0] == "--" {
		a = a[1:]
	}
	if len(a) == 0 {
		t.mu.Lock()
		for _, name := range []string{"EXIT", "INT", "TERM"} {
			if action, ok := t.actions[name]; ok {
				q, _ := syntax.Quote(action, syntax.LangPOSIX)
				fmt.Fprintf(hc.Stdout, "trap -- %s %s\n", q, name)
			}
		}
		t.mu.Unlock()
		return []string{"trap"} // the interpreter lists ERR's
	}
	if strings.HasPrefix(a[0], "-") && a[0] != "-" {
		return args
	}
	action, sigs := a[0], a[1:]
	if len(a) == 1 || isUnsigned(a[0]) { // POSIX: a number first resets them all
		action, sigs = "-", a
	}
	var errSpec []string
	failed := false
	t.mu.Lock()
	for _, s := range sigs {
		name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
		switch name {
		case "0":
			name = "EXIT"
		case "2":
			name = "INT"
		case "15":
			name = "TERM"
		}
		_, isSignal := trapSignals[name]
		switch {
		case name == "ERR":
			errSpec = append(errSpec, name)
		case name != "EXIT" && !isSignal:
			fmt.Fprintf(hc.Stderr, "trap: %s: invalid signal specification: box's sh traps EXIT, ERR, INT and TERM\n", s)
			failed = true
		case action == "-":
			delete(t.actions, name)
		default:
			t.actions[name] = action
		}
	}
	t.mu.Unlock()
	switch {
	case failed:
		return []string{"false"}
	case len(errSpec) > 0:
		return append([]string{"trap", "--", action}, errSpec...)
	}
	return []string{":"}
}

func isUnsigned(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// finish runs, after the script, the actions of signals caught during its
// last command (unless it exited), then the EXIT action. An exit in either
// gives the shell's status; else it stays the script's, err.
func (t *traps) finish(ctx context.Context, r *interp.Runner, stderr io.Writer, err error) error {
	if script := t.takePending(); script != "" && !r.Exited() {
		err = runAction(ctx, r, stderr, script, err)
	}
	t.mu.Lock()
	exit := t.actions["EXIT"]
	delete(t.actions, "EXIT")
	t.mu.Unlock()
	if exit != "" {
		err = runAction(ctx, r, stderr, exit, err)
	}
	return err
}

func runAction(ctx context.Context, r *interp.Runner, stderr io.Writer, script string, err error) error {
	f, perr := syntax.NewParser().Parse(strings.NewReader(script), "trap")
	if perr != nil {
		fmt.Fprintf(stderr, "sh: trap: %v\n", perr)
		return err
	}
	if aerr := r.Run(ctx, f); r.Exited() {
		return aerr
	}
	return err
}
