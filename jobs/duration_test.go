package jobs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"2d", 48 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1w", 7 * 24 * time.Hour},
		{"1w2d", 9 * 24 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"12h1d", 36 * time.Hour},
		{"90s", 90 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"500ms", 500 * time.Millisecond},
		{"0", 0},
		{"-1d", -24 * time.Hour},
		{"+3d", 72 * time.Hour},
	} {
		got, err := ParseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "d", "2", "2x", "1dd", "2 d", " 2d", "2d ", "1..5d", ".d", "-", "1d-2h", "2days",
		"1000000w", "99999999999999999999d", "106751d23h47m16.854775808s"} {
		if got, err := ParseDuration(bad); !errors.Is(err, ErrDuration) {
			t.Errorf("ParseDuration(%q) = %v, %v; want ErrDuration", bad, got, err)
		}
	}
}

// FuzzParseDuration: ParseDuration never panics and fails only with
// ErrDuration; it reads whatever time.ParseDuration reads alike (but for
// the one duration Go reaches only through its sign, -2^63ns); and what it
// reads from days or weeks reads the same written in Go's units.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"2d", "1d12h", "1w", "1.5d", "90s", "1h30m", "0", "-1d", "", "d", "1..5d", "1µs", "99999999999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDuration(s)
		if err != nil && !errors.Is(err, ErrDuration) {
			t.Fatalf("ParseDuration(%q): error %v is not ErrDuration", s, err)
		}
		if want, gerr := time.ParseDuration(s); gerr == nil && want != time.Duration(-1<<63) {
			if err != nil || got != want {
				t.Fatalf("ParseDuration(%q) = %v, %v; time.ParseDuration reads %v", s, got, err, want)
			}
		}
		if err != nil || !strings.ContainsAny(s, "dw") {
			return
		}
		if again, err := ParseDuration(got.String()); err != nil || again != got {
			t.Fatalf("ParseDuration(%q) = %v, which reads back as %v, %v", s, got, again, err)
		}
	})
}
