package main

import (
	"encoding/csv"
	"strings"
	"testing"
)

func TestParseCents(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"12", 1200, false},
		{"12.5", 1250, false},
		{"12.05", 1205, false},
		{"1000000.00", 100000000, false},
		{"1000000.01", 0, true},
		{"12.", 0, true},
		{".5", 0, true},
		{"12,50", 0, true},
		{"-1.00", 0, true},
		{"1.005", 0, true},
		{"", 0, true},
		{"1e3", 0, true},
		{"+1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCents(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseCents(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseSale(t *testing.T) {
	tests := []struct {
		name    string
		rec     string
		want    Sale
		wantErr string
	}{
		{"valid", "o-1,2026-01-02,north,widget,3,4.99", Sale{"o-1", "2026-01-02", "north", "widget", 3, 499}, ""},
		{"spaces trimmed", " o-1 , 2026-01-02 ,north,widget, 3 , 4.99 ", Sale{"o-1", "2026-01-02", "north", "widget", 3, 499}, ""},
		{"short", "o-1,2026-01-02,north,widget", Sale{}, "want 6 fields, got 4"},
		{"long", "o-1,2026-01-02,north,widget,3,4.99,x", Sale{}, "want 6 fields, got 7"},
		{"no id", ",2026-01-02,north,widget,3,4.99", Sale{}, "order_id"},
		{"bad day", "o-1,02/01/2026,north,widget,3,4.99", Sale{}, "day"},
		{"impossible day", "o-1,2026-02-30,north,widget,3,4.99", Sale{}, "day"},
		{"empty region", "o-1,2026-01-02,,widget,3,4.99", Sale{}, "region"},
		{"odd product", "o-1,2026-01-02,north,wid get,3,4.99", Sale{}, "product"},
		{"zero qty", "o-1,2026-01-02,north,widget,0,4.99", Sale{}, "qty"},
		{"negative qty", "o-1,2026-01-02,north,widget,-2,4.99", Sale{}, "qty"},
		{"decimal comma", "o-1,2026-01-02,north,widget,2,\"4,99\"", Sale{}, "unit_price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := csv.NewReader(strings.NewReader(tt.rec)).Read()
			if err != nil {
				t.Fatalf("bad test record: %v", err)
			}
			got, err := ParseSale(rec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSale(%q) error = %v, want one containing %q", tt.rec, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSale(%q) = %+v, %v; want %+v", tt.rec, got, err, tt.want)
			}
		})
	}
}

func TestFormatCents(t *testing.T) {
	for in, want := range map[int64]string{0: "0.00", 5: "0.05", 1234: "12.34", -1205: "-12.05"} {
		if got := FormatCents(in); got != want {
			t.Errorf("FormatCents(%d) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseCents(f *testing.F) {
	for _, s := range []string{"0", "12.5", "12.05", "1000000.00", "1.005", "-1", "", "9999999.99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCents(s)
		if err != nil {
			return
		}
		if c < 0 || c > maxCents {
			t.Fatalf("ParseCents(%q) = %d, out of range", s, c)
		}
		back, err := ParseCents(FormatCents(c))
		if err != nil || back != c {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, c, FormatCents(c), back, err)
		}
	})
}

func FuzzParseSale(f *testing.F) {
	f.Add("o-1,2026-01-02,north,widget,3,4.99")
	f.Add("o-1,2026-01-02,north,widget,-3,4.99")
	f.Add("o-1,2026-01-02,north,widget,3,\"4,99\"")
	f.Add("\"o\"\"1\",2026-01-02,north,widget,3,4.99")
	f.Add("a,b")
	f.Fuzz(func(t *testing.T, line string) {
		rec, err := csv.NewReader(strings.NewReader(line)).Read()
		if err != nil {
			return
		}
		s, err := ParseSale(rec)
		if err != nil {
			return
		}
		if s.Qty <= 0 || s.Qty > maxQty || s.UnitCents < 0 || s.UnitCents > maxCents || s.Revenue() < 0 {
			t.Fatalf("ParseSale(%q) accepted out-of-range sale %+v", line, s)
		}
		// A valid sale written back out parses to itself.
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.Write([]string{s.OrderID, s.Day, s.Region, s.Product, itoa(s.Qty), FormatCents(s.UnitCents)})
		w.Flush()
		rec2, err := csv.NewReader(strings.NewReader(b.String())).Read()
		if err != nil {
			t.Fatalf("re-read %q: %v", b.String(), err)
		}
		s2, err := ParseSale(rec2)
		if err != nil || s2 != s {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v, %v", line, s, b.String(), s2, err)
		}
	})
}
