package main

import "testing"

func TestMemTotal(t *testing.T) {
	for in, want := range map[string]int64{
		"MemTotal:       24684112 kB\nMemFree:        21975460 kB\n": 24684112 << 10,
		"MemFree: 1 kB\n":                0,
		"MemTotal: lots kB\n":            0,
		"MemTotal: 5 MB\n":               0,
		"MemTotal: -5 kB\n":              0,
		"":                               0,
		"MemTotal: 99999999999999999 kB": 0,
	} {
		if got := memTotal(in); got != want {
			t.Errorf("memTotal(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzMemTotal(f *testing.F) {
	f.Add("MemTotal:       24684112 kB\n")
	f.Add("MemTotal: 0 kB")
	f.Fuzz(func(t *testing.T, in string) {
		if got := memTotal(in); got < 0 || got >= 1<<50 {
			t.Fatalf("memTotal(%q) = %d", in, got)
		}
	})
}
