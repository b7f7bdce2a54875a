package jobs

import (
	"errors"
	"math"
	"strings"
	"time"
)

// Day and Week are the units ParseDuration adds to Go's: 24 and 168 hours,
// with no regard for daylight saving time, as `find -mtime` and Prometheus
// count them.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// ErrDuration is the error of ParseDuration; the flag or setting that took
// the text says which it was and what it accepts.
var ErrDuration = errors.New("jobs: invalid duration")

// ParseDuration reads a duration as time.ParseDuration does (a sign, then
// numbers, each with a fraction if need be and a unit: 90s, 1h30m, 1.5h),
// with two units more that a user writes for lengths of days: d (24h) and
// w (7d), as in 2d, 1d12h or 1w. "0" needs no unit, as in Go.
func ParseDuration(s string) (time.Duration, error) {
	rest := s
	neg := false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	if rest == "0" {
		return 0, nil
	}
	if rest == "" {
		return 0, ErrDuration
	}
	var total time.Duration
	for rest != "" {
		// A number: digits with at most one point, at least one digit.
		i := 0
		digits, points := 0, 0
		for ; i < len(rest); i++ {
			switch c := rest[i]; {
			case c >= '0' && c <= '9':
				digits++
				continue
			case c == '.':
				points++
				continue
			}
			break
		}
		if digits == 0 || points > 1 {
			return 0, ErrDuration
		}
		num := rest[:i]
		rest = rest[i:]
		// Its unit: everything up to the next number.
		j := strings.IndexFunc(rest, func(r rune) bool { return r >= '0' && r <= '9' || r == '.' })
		if j < 0 {
			j = len(rest)
		}
		unit := rest[:j]
		rest = rest[j:]
		var (
			d   time.Duration
			err error
		)
		switch unit {
		case "d", "w":
			// Read as hours, then scaled, so that fractions (1.5d)
			// keep Go's precision.
			if d, err = time.ParseDuration(num + "h"); err != nil {
				return 0, ErrDuration
			}
			scale := time.Duration(24)
			if unit == "w" {
				scale = 7 * 24
			}
			if d > math.MaxInt64/scale {
				return 0, ErrDuration
			}
			d *= scale
		case "":
			return 0, ErrDuration
		default:
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, ErrDuration
			}
		}
		if total > math.MaxInt64-d {
			return 0, ErrDuration
		}
		total += d
	}
	if neg {
		total = -total
	}
	return total, nil
}
