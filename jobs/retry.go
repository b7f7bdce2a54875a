package jobs

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
)

// Retry actions of evaluateOnExit rules, as AWS Batch names them.
const (
	ActionRetry = "RETRY"
	ActionExit  = "EXIT"
)

// EvaluateOnExit is one rule of a retry strategy, as in AWS Batch: when
// every condition it sets matches a failed attempt, Action says whether the
// run is tried again. The conditions are globs ('*' any run of characters,
// '?' one character): OnExitCode against the task's exit code, OnReason
// against a container's reason, OnStatusReason against the attempt's
// stopped reason.
type EvaluateOnExit struct {
	OnExitCode     string `json:"onExitCode,omitempty"`
	OnReason       string `json:"onReason,omitempty"`
	OnStatusReason string `json:"onStatusReason,omitempty"`
	Action         string `json:"action"`
}

// Backoff spaces the tries of a run: the nth retry waits
// min(MaxSeconds, InitialSeconds × Multiplier^(n-1)), of which a random half
// ("equal jitter") so that runs that failed together do not retry together.
type Backoff struct {
	InitialSeconds float64 `json:"initialSeconds,omitempty"`
	MaxSeconds     float64 `json:"maxSeconds,omitempty"`
	Multiplier     float64 `json:"multiplier,omitempty"`
}

// Default backoff of retries.
const (
	DefaultBackoffInitial    = 1.0
	DefaultBackoffMax        = 300.0
	DefaultBackoffMultiplier = 2.0
)

// Delay is how long retry n (1 for the second try) waits, given u in
// [0, 1) for the jitter. A nil Backoff uses the defaults.
func (b *Backoff) Delay(n int, u float64) time.Duration {
	initial, maxS, mult := DefaultBackoffInitial, DefaultBackoffMax, DefaultBackoffMultiplier
	if b != nil {
		if b.InitialSeconds > 0 {
			initial = b.InitialSeconds
		}
		if b.MaxSeconds > 0 {
			maxS = b.MaxSeconds
		}
		if b.Multiplier >= 1 {
			mult = b.Multiplier
		}
	}
	// Bounded as validation bounds it, for a strategy stored before: a
	// number of seconds past time.Duration's range converts to a negative
	// delay, and the retry would come at once.
	d := math.Min(math.Min(maxS, MaxDurationSeconds), initial*math.Pow(mult, float64(max(n, 1)-1)))
	d = d/2 + u*d/2
	return time.Duration(d * float64(time.Second))
}

// jitter is a number in [0, 1) fixed by the run and attempt: replaying an
// event computes the same delay, and runs that failed together spread out.
func jitter(runID string, attempt int) float64 {
	h := fnv.New64a()
	h.Write([]byte(runID))
	h.Write([]byte(strconv.Itoa(attempt)))
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// ShouldRetry applies the strategy's evaluateOnExit rules to a failed
// attempt: the first rule that matches decides; when none does, or there
// are none, the run is retried (as AWS Batch does).
func (s *RetryStrategy) ShouldRetry(a *Attempt) bool {
	if s == nil {
		return true
	}
	for _, rule := range s.EvaluateOnExit {
		if rule.matches(a) {
			return strings.EqualFold(rule.Action, ActionRetry)
		}
	}
	return true
}

func (e EvaluateOnExit) matches(a *Attempt) bool {
	if e.OnExitCode != "" {
		if a.ExitCode == nil {
			if e.OnExitCode != "*" {
				return false
			}
		} else if !Glob(e.OnExitCode, strconv.Itoa(*a.ExitCode)) {
			return false
		}
	}
	if e.OnStatusReason != "" && !Glob(e.OnStatusReason, a.StoppedReason) {
		return false
	}
	if e.OnReason != "" {
		found := false
		for _, c := range a.Containers {
			if c.Reason != "" && Glob(e.OnReason, c.Reason) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Glob reports whether s matches pattern, where '*' matches any run of
// characters (none too) and '?' exactly one; everything else matches
// itself. Unlike path.Match, '/' is not special.
func Glob(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	pi, ti := 0, 0
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// validate collects the problems of a retry strategy, with field paths
// under prefix.
func (s *RetryStrategy) validate(prefix string) error {
	var errs []error
	if s.Attempts < 0 || s.Attempts > 10 {
		errs = append(errs, &FieldError{prefix + "attempts", fmt.Sprintf("%d: must be between 1 and 10", s.Attempts)})
	}
	if len(s.EvaluateOnExit) > 5 {
		errs = append(errs, &FieldError{prefix + "evaluateOnExit", fmt.Sprintf("%d rules: at most 5", len(s.EvaluateOnExit))})
	}
	for i, r := range s.EvaluateOnExit {
		p := fmt.Sprintf("%sevaluateOnExit[%d].", prefix, i)
		if !strings.EqualFold(r.Action, ActionRetry) && !strings.EqualFold(r.Action, ActionExit) {
			errs = append(errs, &FieldError{p + "action", fmt.Sprintf("%q: want RETRY or EXIT", r.Action)})
		}
		if r.OnExitCode == "" && r.OnReason == "" && r.OnStatusReason == "" {
			errs = append(errs, &FieldError{p[:len(p)-1], "set at least one of onExitCode, onReason, onStatusReason"})
		}
		if r.OnExitCode != "" && strings.Trim(r.OnExitCode, "0123456789*?") != "" {
			errs = append(errs, &FieldError{p + "onExitCode", fmt.Sprintf("%q: digits and '*' only", r.OnExitCode)})
		}
	}
	if b := s.Backoff; b != nil {
		if b.InitialSeconds < 0 {
			errs = append(errs, &FieldError{prefix + "backoff.initialSeconds", "must not be negative"})
		} else if b.InitialSeconds > MaxDurationSeconds {
			errs = append(errs, &FieldError{prefix + "backoff.initialSeconds", fmt.Sprintf("%g: must be at most %d (50 years)", b.InitialSeconds, MaxDurationSeconds)})
		}
		if b.MaxSeconds < 0 {
			errs = append(errs, &FieldError{prefix + "backoff.maxSeconds", "must not be negative"})
		} else if b.MaxSeconds > MaxDurationSeconds {
			errs = append(errs, &FieldError{prefix + "backoff.maxSeconds", fmt.Sprintf("%g: must be at most %d (50 years)", b.MaxSeconds, MaxDurationSeconds)})
		}
		if b.Multiplier != 0 && b.Multiplier < 1 {
			errs = append(errs, &FieldError{prefix + "backoff.multiplier", fmt.Sprintf("%g: must be at least 1", b.Multiplier)})
		}
	}
	return errors.Join(errs...)
}
