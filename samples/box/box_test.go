package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/samples"
)

// runBox runs an applet in-process in dir and returns its exit code and output.
func runBox(t *testing.T, ctx context.Context, dir, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	p := &proc{ctx: ctx, stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		dir: dir, env: []string{"PATH=/nonexistent", "HOME=/root", "FOO=bar"}}
	code := run(p, args)
	return code, stdout.String(), stderr.String()
}

func TestShell(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		stdin      string
		wantCode   int
		wantOut    string
		wantErrSub string
	}{
		{"exit code", "echo hello; echo oops >&2; exit 3", "", 3, "hello\n", "oops"},
		{"false", "false", "", 1, "", ""},
		{"pipeline of applets", "seq 10 | grep -v 5 | tail -n 2", "", 0, "9\n10\n", ""},
		{"yes stops when head is done", "yes hi | head -n 3", "", 0, "hi\nhi\nhi\n", ""},
		{"stdin reaches applets", "tr a-z A-Z", "abc\n", 0, "ABC\n", ""},
		{"exported variables reach applets", "X=1; export Y=2; printenv FOO Y; printenv X || echo unexported", "", 0, "bar\n2\nunexported\n", ""},
		{"env runs an applet with extra variables", "env A=1 printenv A", "", 0, "1\n", ""},
		{"unknown command", "nosuchcmd", "", 127, "", "nosuchcmd"},
		{"sort and uniq", "printf 'b\\na\\nb\\n' | sort | uniq -c", "", 0, "      1 a\n      2 b\n", ""},
		{"sort -n -r", "printf '10\\n9\\n100\\n' | sort -rn", "", 0, "100\n10\n9\n", ""},
		{"grep -c", "seq 20 | grep -c '^1'", "", 0, "11\n", ""},
		{"grep -o", "echo a1b22c | grep -o '[0-9]*'", "", 0, "1\n22\n", ""},
		{"ls -d", "mkdir d && ls -d d", "", 0, "d\n", ""},
		{"grep no match", "seq 3 | grep 7", "", 1, "", ""},
		{"wc", "printf 'a b\\nc\\n' | wc", "", 0, "2 3 6\n", ""},
		{"wc -l", "seq 42 | wc -l", "", 0, "42\n", ""},
		{"head -N", "seq 42 | head -2 | tail -1", "", 0, "2\n", ""},
		{"lines", "lines 2 16", "", 0, "line 000001 xxxx\nline 000002 xxxx\n", ""},
		{"lines every", "lines 3 16 2", "", 0, "line 000001 xxxx\nline 000002 xxx\xe9\nline 000003 xxxx\n", ""},
		{"lines every short", "lines 2 3 1", "", 0, "line 00000\xe9\nline 00000\xe9\n", ""},
		{"lines bad every", "lines 2 16 0", "", 2, "", "invalid EVERY"},
		{"bigline", "bigline 5", "", 0, "xxxxx\n", ""},
		{"fractional sleep", "sleep 0.01 && echo slept", "", 0, "slept\n", ""},
		{"set -e", "set -e; false; echo no", "", 1, "", ""},
		{"tr -d", "echo a-b-c | tr -d -", "", 0, "abc\n", ""},
		{"tr octal", `echo caf# | tr '#' '\351'`, "", 0, "caf\xe9\n", ""},
		{"tr octal bytes", `echo abcd | tr a-d '\0\12\3777'`, "", 0, "\x00\n\xff7\n", ""},
		{"syntax error", "echo 'unterminated", "", 2, "", "sh:"},
		{"date format", "date -u +%%", "", 0, "%\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runBox(t, t.Context(), t.TempDir(), tt.stdin, "sh", "-c", tt.script)
			if code != tt.wantCode || out != tt.wantOut || !strings.Contains(errOut, tt.wantErrSub) {
				t.Fatalf("sh -c %q = %d, stdout %q, stderr %q; want %d, %q, stderr with %q",
					tt.script, code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErrSub)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	script := `mkdir -p a/b && echo one > a/b/f && cp a/b/f a/g && mv a/g a/h && touch a/t &&
ls a && cat a/h && cp -r a c && ls c/b && rm a/h && rm -f a/nope && rm -rf a && ls
echo x | tee t1 >/dev/null; cat t1; cd c; pwd`
	code, out, errOut := runBox(t, t.Context(), dir, "", "sh", "-c", script)
	want := "b\nh\nt\none\nf\nc\nx\n" + filepath.Join(dir, "c") + "\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stdout %q, stderr %q; want stdout %q", code, out, errOut, want)
	}
}

func TestShellScriptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.sh"), []byte("echo \"$1-$2\"\nexit 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runBox(t, t.Context(), dir, "", "sh", "s.sh", "a", "b")
	if code != 4 || out != "a-b\n" {
		t.Fatalf("sh s.sh a b = %d, %q; want 4, %q", code, out, "a-b\n")
	}
	code, out, _ = runBox(t, t.Context(), dir, "echo from stdin\n", "sh")
	if code != 0 || out != "from stdin\n" {
		t.Fatalf("sh < script = %d, %q", code, out)
	}
}

func TestSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, _, _ := runBox(t, ctx, t.TempDir(), "", "sh", "-c", "sleep 30")
	if code == 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("sleep 30 under a cancelled context: exit %d after %v", code, time.Since(start))
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"1", time.Second}, {"0.5", 500 * time.Millisecond}, {"2s", 2 * time.Second},
		{"1m", time.Minute}, {"1.5h", 90 * time.Minute}, {"250ms", 250 * time.Millisecond},
	}
	for _, tt := range tests {
		if got, err := parseSeconds(tt.in); err != nil || got != tt.want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1y"} {
		if _, err := parseSeconds(bad); err == nil {
			t.Errorf("parseSeconds(%q) succeeded, want an error", bad)
		}
	}
}

func TestGetopt(t *testing.T) {
	tests := []struct {
		args     []string
		wantOpts map[byte]string
		wantRest []string
		wantErr  bool
	}{
		{[]string{"-rf", "x"}, map[byte]string{'r': "", 'f': ""}, []string{"x"}, false},
		{[]string{"-n", "5", "f"}, map[byte]string{'n': "5"}, []string{"f"}, false},
		{[]string{"-n5"}, map[byte]string{'n': "5"}, []string{}, false},
		{[]string{"--", "-r"}, map[byte]string{}, []string{"-r"}, false},
		{[]string{"-", "-r"}, map[byte]string{}, []string{"-", "-r"}, false},
		{[]string{"-n"}, nil, nil, true},
		{[]string{"-z"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			opts, rest, err := getopt(tt.args, "rf", "n")
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(opts) != len(tt.wantOpts) || !slices.Equal(rest, tt.wantRest) {
				t.Fatalf("getopt = %v, %q; want %v, %q", opts, rest, tt.wantOpts, tt.wantRest)
			}
			for k, v := range tt.wantOpts {
				if opts[k] != v {
					t.Errorf("option -%c = %q, want %q", k, opts[k], v)
				}
			}
		})
	}
}

// TestAppletsListed keeps samples.Applets, which makes the image's links, in
// step with the binary.
func TestAppletsListed(t *testing.T) {
	if got := appletNames(); !slices.Equal(got, samples.Applets) {
		t.Fatalf("box applets %q differ from samples.Applets %q", got, samples.Applets)
	}
}

func FuzzGetopt(f *testing.F) {
	f.Add("-rf x")
	f.Add("-n 5 -- -r")
	f.Add("-n5 -")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		opts, rest, err := getopt(args, "rf", "n")
		if err != nil {
			return
		}
		if len(rest) > len(args) {
			t.Fatalf("more operands than arguments: %q -> %q", args, rest)
		}
		for k := range opts {
			if !strings.ContainsRune("rfn", rune(k)) {
				t.Fatalf("unknown option -%c accepted", k)
			}
		}
	})
}

func FuzzExpandSet(f *testing.F) {
	for _, s := range []string{"a-z", `\n\t`, "z-a", "-", "a-", `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := expandSet(s); len(got) > 256*len(s)+1 {
			t.Fatalf("expandSet(%q) gave %d bytes", s, len(got))
		}
	})
}

// TestTrap: trap's forms that need no signal: a list, a bad signal named,
// EXIT's action after the script (its exit giving the status), ERR left
// to the interpreter.
func TestTrap(t *testing.T) {
	tests := []struct {
		name, script string
		wantCode     int
		wantOut      string
		wantErrSub   string
	}{
		{"list", "trap 'echo x' TERM; trap ':' EXIT; trap 'echo e' ERR; trap - ERR; trap INT; trap", 0,
			"trap -- : EXIT\ntrap -- 'echo x' TERM\n", ""},
		{"exit action after the script", "trap 'echo bye $?' EXIT; echo hi; false", 1, "hi\nbye 1\n", ""},
		{"exit action on exit, its exit the status", "trap 'echo bye; exit 4' 0; exit 2; echo no", 4, "bye\n", ""},
		{"reset", "trap 'echo bye' EXIT; trap - EXIT; echo hi", 0, "hi\n", ""},
		{"SIG prefix and numbers", "trap 'echo t' SIGTERM 2; trap", 0, "trap -- 'echo t' INT\ntrap -- 'echo t' TERM\n", ""},
		{"ERR is the interpreter's", "trap 'echo err' ERR; false; true", 0, "err\n", ""},
		{"a signal it cannot trap", "trap 'echo x' USR1", 1, "",
			"trap: USR1: invalid signal specification: box's sh traps EXIT, ERR, INT and TERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runBox(t, t.Context(), t.TempDir(), "", "sh", "-c", tt.script)
			if code != tt.wantCode || out != tt.wantOut || !strings.Contains(errOut, tt.wantErrSub) {
				t.Fatalf("sh -c %q = %d, stdout %q, stderr %q; want %d, %q, stderr with %q",
					tt.script, code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErrSub)
			}
		})
	}
}

// TestTrapSignals: a signal the shell traps runs its action in the shell
// itself (an exit there ends the script, even from a loop with a
// pipeline), interrupting the applets running (sleep, in the foreground or
// waited for), before the EXIT action; an empty action ignores it; one
// without a trap is not taken (box exits with 128+signal).
func TestTrapSignals(t *testing.T) {
	tests := []struct {
		name, script string
		sig          syscall.Signal
		wantCode     int
		wantOut      string
	}{
		{"exit from a loop", "trap 'echo caught TERM; exit 0' TERM; echo ready; while true; do echo x | cat >/dev/null; sleep 60; done",
			syscall.SIGTERM, 0, "ready\ncaught TERM\n"},
		{"during the last command, then EXIT", "trap 'echo bye' EXIT; trap 'echo term; exit 3' TERM; echo ready; sleep 60",
			syscall.SIGTERM, 3, "ready\nterm\nbye\n"},
		{"waited for by the last command, then EXIT", "trap 'echo bye' EXIT; trap 'echo term; exit 3' TERM; echo ready; sleep 60 & wait",
			syscall.SIGTERM, 3, "ready\nterm\nbye\n"},
		{"sleep & wait, then the script goes on", "trap 'echo int' INT; echo ready; sleep 60 & wait; echo after",
			syscall.SIGINT, 0, "ready\nint\nafter\n"},
		{"a flag the loop reads", "trap 'stop=1' TERM; echo ready; while [ -z \"$stop\" ]; do sleep 60; done; echo stopped $stop",
			syscall.SIGTERM, 0, "ready\nstopped 1\n"},
		{"ignored", "trap '' TERM; echo ready; sleep 0.5; echo still", syscall.SIGTERM, 0, "ready\nstill\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a trap that did not run
			defer cancel()
			pr, pw := io.Pipe()
			var stderr bytes.Buffer
			p := &proc{ctx: ctx, stdin: strings.NewReader(""), stdout: pw, stderr: &stderr, dir: t.TempDir(), env: []string{"PATH=/nonexistent"}}
			done := make(chan int, 1)
			go func() {
				code := run(p, []string{"sh", "-c", tt.script})
				pw.Close()
				done <- code
			}()
			out := bufio.NewReader(pr)
			if line, err := out.ReadString('\n'); line != "ready\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			for shellTraps.Load().running.Load() == 0 { // signal while sleep runs, not before it starts
				runtime.Gosched()
			}
			if !route(tt.sig) {
				t.Fatalf("the shell did not take %v", tt.sig)
			}
			rest, _ := io.ReadAll(out)
			if code := <-done; code != tt.wantCode || "ready\n"+string(rest) != tt.wantOut {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q", code, "ready\n"+string(rest), stderr.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
	t.Run("untrapped", func(t *testing.T) {
		if code, _, _ := runBox(t, t.Context(), t.TempDir(), "", "sh", "-c", "trap 'echo t' TERM; trap - TERM"); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if route(syscall.SIGTERM) {
			t.Fatal("a signal was taken with no shell running")
		}
	})
}
