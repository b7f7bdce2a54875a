package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTransform(t *testing.T) {
	const header = "order_id,day,region,product,qty,unit_price\n"
	tests := []struct {
		name         string
		in           string
		wantTotals   []Total
		wantRejected int
		wantWarning  string
		wantErr      string
	}{
		{
			name: "aggregates by region and product",
			in: header +
				"1,2026-01-02,north,widget,2,1.50\n" +
				"2,2026-01-02,north,widget,1,2.00\n" +
				"3,2026-01-02,south,widget,1,1.00\n" +
				"4,2026-01-02,north,gizmo,3,0.10\n",
			wantTotals: []Total{
				{"2026-01-02", "north", "gizmo", 1, 3, 30},
				{"2026-01-02", "north", "widget", 2, 3, 500},
				{"2026-01-02", "south", "widget", 1, 1, 100},
			},
		},
		{
			name: "drops invalid rows with a warning",
			in: header +
				"1,2026-01-02,north,widget,2,1.50\n" +
				"2,2026-01-02,north,widget,-1,2.00\n" +
				"3,2026-01-02,north,widget,1,1.00\n",
			wantTotals:   []Total{{"2026-01-02", "north", "widget", 2, 3, 400}},
			wantRejected: 1,
			wantWarning:  "line 3: qty",
		},
		{
			name: "skips a malformed csv record and goes on",
			in: header +
				"1,2026-01-02,north,widget,2,1.50\n" +
				"2,2026-01-02,\"north,widget,1,2.00\n" +
				"3,2026-01-02,north,widget,1,1.00\n" +
				"4,2026-01-02,north,widget,1,1.00\n",
			wantTotals:   []Total{{"2026-01-02", "north", "widget", 1, 2, 300}},
			wantRejected: 1,
		},
		{name: "header only", in: header},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "wrong header", in: "id,day\n1,2\n", wantErr: "header"},
		{
			name:         "mostly invalid",
			in:           header + "1,x,north,widget,2,1.50\n2,x,north,widget,2,1.50\n3,2026-01-02,north,widget,1,1.00\n",
			wantRejected: 2,
			wantErr:      "2 of 3 rows are invalid",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warn bytes.Buffer
			rep, err := Transform(strings.NewReader(tt.in), &warn)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Transform error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Transform: %v", err)
			}
			if rep.Rejected != tt.wantRejected || rep.Valid+rep.Rejected != rep.Rows {
				t.Errorf("report rows=%d valid=%d rejected=%d, want rejected=%d", rep.Rows, rep.Valid, rep.Rejected, tt.wantRejected)
			}
			if len(rep.Totals) != len(tt.wantTotals) {
				t.Fatalf("totals = %+v, want %+v", rep.Totals, tt.wantTotals)
			}
			for i := range rep.Totals {
				if rep.Totals[i] != tt.wantTotals[i] {
					t.Errorf("totals[%d] = %+v, want %+v", i, rep.Totals[i], tt.wantTotals[i])
				}
			}
			if !strings.Contains(warn.String(), tt.wantWarning) {
				t.Errorf("warnings %q do not mention %q", warn.String(), tt.wantWarning)
			}
		})
	}
}

// TestExtractIsDeterministicAndFivePercentBad checks what the pipeline samples
// rely on: the same day gives the same file, and transform drops 1 row in 20.
func TestExtractIsDeterministicAndFivePercentBad(t *testing.T) {
	var a, b bytes.Buffer
	badA, err := writeRaw(&a, "2026-01-02", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writeRaw(&b, "2026-01-02", 1000, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two extracts of the same day differ")
	}
	rep, err := Transform(bytes.NewReader(a.Bytes()), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Transform: %v", err)
	}
	if badA != 50 || rep.Rows != 1000 || rep.Rejected != 50 {
		t.Fatalf("extract wrote %d bad rows; transform saw %d rows, rejected %d; want 50, 1000, 50", badA, rep.Rows, rep.Rejected)
	}
	if len(rep.Totals) != len(regions)*len(products) {
		t.Errorf("got %d aggregates, want %d", len(rep.Totals), len(regions)*len(products))
	}
}

func TestLoadRoundTrip(t *testing.T) {
	totals := []Total{{"2026-01-02", "north", "widget", 2, 3, 500}, {"2026-01-02", "south", "gizmo", 1, 1, 123456789}}
	var buf bytes.Buffer
	if err := writeTotals(&buf, totals); err != nil {
		t.Fatal(err)
	}
	got, err := readTotals(&buf)
	if err != nil {
		t.Fatalf("readTotals: %v", err)
	}
	if len(got) != 2 || got[0] != totals[0] || got[1] != totals[1] {
		t.Fatalf("readTotals = %+v, want %+v", got, totals)
	}
	db := filepath.Join(t.TempDir(), "wh", "sales.jsonl")
	for range 2 {
		rev, err := appendFacts(db, got, "run-1", time.Unix(0, 0))
		if err != nil || rev != 123457289 {
			t.Fatalf("appendFacts = %d, %v", rev, err)
		}
	}
	data, _ := os.ReadFile(db)
	if n := strings.Count(string(data), "\n"); n != 4 || !strings.Contains(string(data), `"revenue":"1234567.89","runId":"run-1"`) {
		t.Fatalf("warehouse holds %d lines:\n%s", n, data)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "wh.jsonl")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"no command", nil, 2, "", "usage"},
		{"unknown command", []string{"frobnicate"}, 2, "", "unknown command"},
		{"extract without out", []string{"extract"}, 2, "", "--out DIR is required"},
		{"extract bad day", []string{"extract", "--out", dir, "--day", "yesterday"}, 2, "", "not YYYY-MM-DD"},
		{"transform missing input", []string{"transform", "--in", filepath.Join(dir, "nope")}, 1, "", "no such file"},
		{"extract", []string{"extract", "--out", dir, "--day", "2026-01-02", "--rows", "200"}, 0, "wrote 200 rows (10 malformed", ""},
		{"transform", []string{"transform", "--in", dir}, 0, "200 rows, 190 valid, 10 rejected", "warning: raw.csv line"},
		{"load", []string{"load", "--in", dir, "--db", db}, 0, "appended 25 rows", ""},
		{"load needs db", []string{"load", "--in", dir}, 2, "", "--db PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OUT", "")
			t.Setenv("IN", "")
			t.Setenv("DB", "")
			t.Setenv("DAY", "")
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantOut) || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("run(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q",
					tt.args, code, &stdout, &stderr, tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

func FuzzTransform(f *testing.F) {
	f.Add("order_id,day,region,product,qty,unit_price\n1,2026-01-02,north,widget,2,1.50\n")
	f.Add("order_id,day,region,product,qty,unit_price\n1,\"2026-01-02,north\n")
	f.Fuzz(func(t *testing.T, in string) {
		rep, err := Transform(strings.NewReader(in), &bytes.Buffer{})
		if err != nil {
			return
		}
		var orders int64
		for _, tot := range rep.Totals {
			orders += tot.Orders
			if tot.RevenueCents < 0 || tot.Qty < tot.Orders {
				t.Fatalf("bad total %+v", tot)
			}
		}
		if int(orders) != rep.Valid || rep.Valid+rep.Rejected != rep.Rows {
			t.Fatalf("report %+v does not add up", rep)
		}
	})
}

func FuzzParseTotal(f *testing.F) {
	f.Add("2026-01-02,north,widget,2,3,5.00")
	f.Add("2026-01-02,north,widget,2,3,5.0")
	f.Fuzz(func(t *testing.T, line string) {
		var rec []string
		if fields := strings.Split(line, ","); len(fields) == len(cleanHeader) {
			rec = fields
		} else {
			return
		}
		tot, err := ParseTotal(rec)
		if err != nil {
			return
		}
		if tot.RevenueCents < 0 || tot.Orders <= 0 || tot.Qty <= 0 {
			t.Fatalf("ParseTotal(%q) accepted %+v", line, tot)
		}
		if got := FormatCents(tot.RevenueCents); got != rec[5] && strings.TrimLeft(rec[5], "0") != strings.TrimLeft(got, "0") {
			t.Fatalf("revenue %q formats back as %q", rec[5], got)
		}
	})
}
