package jobs

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestArrayPropertiesValidate(t *testing.T) {
	for _, c := range []struct{ name, size, want string }{
		{"two", `2`, ""},
		{"the most", `10000`, ""},
		{"a whole float", `3.0`, ""},
		{"one", `1`, `arrayProperties.size: 1: must be between 2 and 10000 (an array of one is a plain run: leave arrayProperties out)`},
		{"zero", `0`, `arrayProperties.size: 0: must be between 2 and 10000`},
		{"negative", `-4`, `arrayProperties.size: -4: must be between 2 and 10000`},
		{"too big", `10001`, `arrayProperties.size: 10001: must be between 2 and 10000`},
		{"huge", `1e300`, `arrayProperties.size: 1e300: want a whole number from 2 to 10000`},
		{"a string", `"10"`, `arrayProperties.size: "10": want a whole number from 2 to 10000`},
		{"a fraction", `2.5`, `arrayProperties.size: 2.5: want a whole number from 2 to 10000`},
		{"missing", ``, `arrayProperties.size: required: the number of child runs, 2 to 10000`},
		{"null", `null`, `arrayProperties.size: required: the number of child runs, 2 to 10000`},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := `{"taskDefinition":"hello","arrayProperties":{}}`
			if c.size != "" {
				body = `{"taskDefinition":"hello","arrayProperties":{"size":` + c.size + `}}`
			}
			var req SubmitRequest
			if err := json.Unmarshal([]byte(body), &req); err != nil {
				t.Fatal(err)
			}
			err := req.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want %q", err, c.want)
			}
			if c.want == "" && req.ArrayProperties.N() < MinArrayRunSize {
				t.Errorf("N() = %d", req.ArrayProperties.N())
			}
		})
	}
}

func TestParseArraySize(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"2", 2, ""},
		{" 100 ", 100, ""},
		{"1", 0, `1: must be between 2 and 10000 (an array of one is a plain run: leave --array-size out)`},
		{"0", 0, `0: must be between 2 and 10000`},
		{"10001", 0, `10001: must be between 2 and 10000`},
		{"ten", 0, `"ten": want a whole number from 2 to 10000`},
		{"", 0, `"": want a whole number from 2 to 10000`},
	} {
		n, err := ParseArraySize(c.in)
		if c.want == "" && (err != nil || n != c.n) || c.want != "" && (err == nil || err.Error() != c.want) {
			t.Errorf("ParseArraySize(%q) = %d, %v; want %d, %q", c.in, n, err, c.n, c.want)
		}
	}
}

func FuzzParseArraySize(f *testing.F) {
	for _, s := range []string{"2", "10000", "1", "-1", "abc", " 3", "1e3", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseArraySize(s)
		if err == nil && (n < MinArrayRunSize || n > MaxArraySize) {
			t.Fatalf("%q: accepted %d", s, n)
		}
		if err != nil && n != 0 {
			t.Fatalf("%q: refused but %d", s, n)
		}
	})
}

func FuzzSubmitArraySize(f *testing.F) {
	for _, s := range []string{`2`, `10000`, `1`, `"3"`, `3.5`, `1e400`, `null`, `[]`, `{}`, `-0`, `2.0000000000000001`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := &SubmitArrayProperties{Size: json.RawMessage(s)}
		err := a.validate()
		if n := a.N(); err == nil && (n < MinArrayRunSize || n > MaxArraySize) {
			t.Fatalf("%q: accepted, N() = %d", s, n)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "arrayProperties.size: ") {
			t.Fatalf("%q: error not naming the field: %v", s, err)
		}
	})
}

func TestSummarizeArray(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	exit3 := 3
	failed := &ArrayFailure{RunID: "p-1", Status: StatusFailed, ExitCode: &exit3}
	for _, c := range []struct {
		name    string
		counts  map[Status]int
		stopped bool
		failed  *ArrayFailure
		want    Status
		reason  string
	}{
		{"all queued", map[Status]int{StatusQueued: 3}, false, nil, StatusQueued, ""},
		{"one starting", map[Status]int{StatusQueued: 2, StatusStarting: 1}, false, nil, StatusRunning, ""},
		{"some ended, some queued", map[Status]int{StatusQueued: 1, StatusSucceeded: 2}, false, nil, StatusRunning, ""},
		{"all succeeded", map[Status]int{StatusSucceeded: 3}, false, nil, StatusSucceeded, ""},
		{"one failed", map[Status]int{StatusSucceeded: 2, StatusFailed: 1}, false, failed, StatusFailed,
			"1 of 3 child runs did not succeed, p-1 FAILED (exit 3)"},
		{"two failed", map[Status]int{StatusSucceeded: 1, StatusFailed: 1, StatusCanceled: 1}, false, failed, StatusFailed,
			"2 of 3 child runs did not succeed, p-1 FAILED (exit 3) first"},
		{"stopped", map[Status]int{StatusSucceeded: 1, StatusCanceled: 2}, true, nil, StatusCanceled,
			"Stopped by user; 2 of 3 child runs did not succeed"},
		{"stopped after all succeeded", map[Status]int{StatusSucceeded: 3}, true, nil, StatusSucceeded, "Stopped by user"},
		{"stopped, still running", map[Status]int{StatusRunning: 1, StatusCanceled: 2}, true, nil, StatusRunning, "Stopped by user"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Run{RunID: "p", Status: StatusQueued, ArrayProperties: &ArrayProperties{Size: 3}}
			if c.stopped && !r.StopArray("Stopped by user") {
				t.Fatal("StopArray refused")
			}
			r.SummarizeArray(c.counts, c.failed, now)
			if r.Status != c.want || r.StoppedReason != c.reason {
				t.Errorf("status %s, reason %q; want %s, %q", r.Status, r.StoppedReason, c.want, c.reason)
			}
			if r.Status.Terminal() != (r.FinishedAt != nil) {
				t.Errorf("finishedAt %v with status %s", r.FinishedAt, r.Status)
			}
			if c.failed != nil && (r.ExitCode == nil || *r.ExitCode != 3) {
				t.Errorf("exit code %v, want the first failed child's", r.ExitCode)
			}
			if again := r.SummarizeArray(c.counts, c.failed, now.Add(time.Minute)); again {
				t.Errorf("the same counts again changed the run")
			}
		})
	}
}

func TestSummarizeArrayEndsOnce(t *testing.T) {
	r := &Run{RunID: "p", Status: StatusQueued, ArrayProperties: &ArrayProperties{Size: 2}}
	now := time.Now()
	r.SummarizeArray(map[Status]int{StatusSucceeded: 2}, nil, now)
	// A child rerun by hand cannot move an ended parent again.
	r.SummarizeArray(map[Status]int{StatusSucceeded: 1, StatusRunning: 1}, nil, now)
	if r.Status != StatusSucceeded {
		t.Errorf("an ended parent moved to %s", r.Status)
	}
	if r.StopArray("late") {
		t.Error("an ended parent took a stop")
	}
}

func TestArrayChildRange(t *testing.T) {
	lo, hi := ArrayChildRange("01jf3")
	for i := range 12 {
		id := ArrayChildID("01jf3", i)
		if id < lo || id >= hi || id != "01jf3-"+strconv.Itoa(i) {
			t.Errorf("child %d: %s outside [%s, %s)", i, id, lo, hi)
		}
	}
	for _, other := range []string{"01jf3", "01jf4", "01jf3.x", "01jf30", "01jf2-1"} {
		if other >= lo && other < hi {
			t.Errorf("%s is in the range of 01jf3's children", other)
		}
	}
}

func TestSequentialArrayValidate(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"sequential array", `{"taskDefinition":"t","arrayProperties":{"size":3},"dependsOn":[{"type":"SEQUENTIAL"},{"runId":"01a"}]}`, ""},
		{"sequential without an array", `{"taskDefinition":"t","dependsOn":[{"type":"SEQUENTIAL"}]}`,
			`dependsOn[0].type: SEQUENTIAL orders the children of an array run: give "arrayProperties": {"size": N} too`},
		{"sequential on another run", `{"taskDefinition":"t","arrayProperties":{"size":3},"dependsOn":[{"type":"SEQUENTIAL","runId":"01a"}]}`,
			`dependsOn[0].runId: "01a": type SEQUENTIAL orders an array run's own children: give no runId`},
		{"twice", `{"taskDefinition":"t","arrayProperties":{"size":3},"dependsOn":[{"type":"SEQUENTIAL"},{"type":"SEQUENTIAL"}]}`,
			`dependsOn[1].type: SEQUENTIAL: also dependsOn[0]`},
		{"n to n", `{"taskDefinition":"t","arrayProperties":{"size":3},"dependsOn":[{"type":"N_TO_N","runId":"01a"}]}`,
			`dependsOn[0].type: N_TO_N: child i after child i of another array is for pipeline stages`},
		{"unknown", `{"taskDefinition":"t","dependsOn":[{"type":"sometimes","runId":"01a"}]}`,
			`dependsOn[0].type: "sometimes": want SEQUENTIAL`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var req SubmitRequest
			if err := json.Unmarshal([]byte(c.body), &req); err != nil {
				t.Fatal(err)
			}
			err := req.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
	deps := []RunDependency{{Type: DependencySequential}, {RunID: "01a"}}
	if st := DependencyStates(deps); !Sequential(deps) || len(st) != 1 || st[0].RunID != "01a" {
		t.Errorf("Sequential %v, DependencyStates %v", Sequential(deps), st)
	}
	if st := DependencyStates(deps[:1]); st != nil {
		t.Errorf("DependencyStates of SEQUENTIAL alone: %v, want none", st)
	}
}

func TestArrayChildIndex(t *testing.T) {
	for _, c := range []struct {
		parent, id string
		i          int
		ok         bool
	}{
		{"01p", "01p-0", 0, true},
		{"01p", "01p-12", 12, true},
		{"01p", "01p-9999", 9999, true},
		{"01p", "01p", 0, false},
		{"01p", "01p-", 0, false},
		{"01p", "01p-012", 0, false},
		{"01p", "01p-+1", 0, false},
		{"01p", "01p--1", 0, false},
		{"01p", "01p-1x", 0, false},
		{"01p", "01q-1", 0, false},
		{"01p", "01p1-1", 0, false},
		{"", "-1", 0, false},
	} {
		if i, ok := ArrayChildIndex(c.parent, c.id); i != c.i || ok != c.ok {
			t.Errorf("ArrayChildIndex(%q, %q) = %d, %v; want %d, %v", c.parent, c.id, i, ok, c.i, c.ok)
		}
	}
}

func FuzzArrayChildIndex(f *testing.F) {
	for _, s := range []string{"01p-0", "01p-10", "01p-010", "01p--1", "01p-", "x", "01p-99999999999999999999"} {
		f.Add("01p", s)
	}
	f.Fuzz(func(t *testing.T, parent, id string) {
		i, ok := ArrayChildIndex(parent, id)
		if ok && (i < 0 || ArrayChildID(parent, i) != id) {
			t.Fatalf("ArrayChildIndex(%q, %q) = %d: not the index ArrayChildID writes", parent, id, i)
		}
		if !ok && i != 0 {
			t.Fatalf("ArrayChildIndex(%q, %q) refused but %d", parent, id, i)
		}
		if parent != "" && !strings.Contains(parent, ArraySeparator) && i >= 0 && i < 1<<20 {
			if j, ok := ArrayChildIndex(parent, ArrayChildID(parent, i)); !ok || j != i {
				t.Fatalf("ArrayChildIndex(%q, ArrayChildID(%q, %d)) = %d, %v", parent, parent, i, j, ok)
			}
		}
	})
}
