package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Fact is one line of the warehouse, a JSON Lines file.
type Fact struct {
	Day          string `json:"day"`
	Region       string `json:"region"`
	Product      string `json:"product"`
	Orders       int64  `json:"orders"`
	Qty          int64  `json:"qty"`
	RevenueCents int64  `json:"revenueCents"`
	Revenue      string `json:"revenue"`
	RunID        string `json:"runId,omitempty"` // GANTRY_RUN_ID of the load
	LoadedAt     string `json:"loadedAt"`
}

// ParseTotal validates one clean.csv record.
func ParseTotal(rec []string) (Total, error) {
	if len(rec) != len(cleanHeader) {
		return Total{}, fmt.Errorf("want %d fields, got %d", len(cleanHeader), len(rec))
	}
	t := Total{Day: rec[0], Region: rec[1], Product: rec[2]}
	if _, err := time.Parse(time.DateOnly, t.Day); err != nil {
		return Total{}, fmt.Errorf("day: %q is not YYYY-MM-DD", rec[0])
	}
	if !validName(t.Region) || !validName(t.Product) {
		return Total{}, fmt.Errorf("region/product: invalid %q/%q", rec[1], rec[2])
	}
	var err error
	if t.Orders, err = strconv.ParseInt(rec[3], 10, 64); err != nil || t.Orders <= 0 {
		return Total{}, fmt.Errorf("orders: %q is not a positive number", rec[3])
	}
	if t.Qty, err = strconv.ParseInt(rec[4], 10, 64); err != nil || t.Qty <= 0 {
		return Total{}, fmt.Errorf("qty: %q is not a positive number", rec[4])
	}
	if t.RevenueCents, err = parseAmount(rec[5]); err != nil {
		return Total{}, fmt.Errorf("revenue: %w", err)
	}
	return t, nil
}

// parseAmount is ParseCents without the per-unit price ceiling.
func parseAmount(s string) (int64, error) {
	whole, frac, ok := cutCents(s)
	if !ok {
		return 0, fmt.Errorf("%q is not an amount like 1234.56", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (1<<62)/100 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	f, _ := strconv.Atoi(frac)
	return w*100 + int64(f), nil
}

// cutCents splits "123.45" into "123" and "45"; it wants exactly two decimals.
func cutCents(s string) (whole, frac string, ok bool) {
	if len(s) < 4 || s[len(s)-3] != '.' {
		return "", "", false
	}
	whole, frac = s[:len(s)-3], s[len(s)-2:]
	return whole, frac, digits(whole) && digits(frac)
}

// readTotals reads clean.csv.
func readTotals(r io.Reader) ([]Total, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("clean.csv is empty (no header)")
	}
	if err != nil {
		return nil, fmt.Errorf("clean.csv header: %w", err)
	}
	if !slices.Equal(header, cleanHeader) {
		return nil, fmt.Errorf("clean.csv header is %q, want %q", header, cleanHeader)
	}
	var out []Total
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read clean.csv: %w", err)
		}
		t, err := ParseTotal(rec)
		if err != nil {
			line, _ := cr.FieldPos(0)
			return nil, fmt.Errorf("clean.csv line %d: %w", line, err)
		}
		out = append(out, t)
	}
}

func loadCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load", stderr)
	in := fs.String("in", envOr("IN", ""), "directory holding clean.csv (env IN)")
	db := fs.String("db", envOr("DB", ""), "warehouse file to append to, JSON Lines (env DB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" || *db == "" {
		return fmt.Errorf("%w: load: --in DIR and --db PATH are required", errUsage)
	}
	src := filepath.Join(*in, "clean.csv")
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer f.Close()
	fmt.Fprintf(stdout, "load: reading %s\n", src)
	totals, err := readTotals(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if len(totals) == 0 {
		fmt.Fprintln(stderr, "warning: clean.csv has no rows; nothing to load")
	}
	revenue, err := appendFacts(*db, totals, os.Getenv("GANTRY_RUN_ID"), time.Now().UTC())
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	abs, _ := filepath.Abs(*db)
	fmt.Fprintf(stdout, "load: appended %d rows (revenue %s) to %s\n", len(totals), FormatCents(revenue), abs)
	return nil
}

// appendFacts appends totals to the warehouse at path in one write, so that
// concurrent loads do not interleave lines, and syncs it. It returns the
// revenue loaded, in cents.
func appendFacts(path string, totals []Total, runID string, now time.Time) (int64, error) {
	var buf []byte
	var revenue int64
	for _, t := range totals {
		line, err := json.Marshal(Fact{Day: t.Day, Region: t.Region, Product: t.Product, Orders: t.Orders,
			Qty: t.Qty, RevenueCents: t.RevenueCents, Revenue: FormatCents(t.RevenueCents),
			RunID: runID, LoadedAt: now.Format(time.RFC3339)})
		if err != nil {
			return 0, err
		}
		buf = append(append(buf, line...), '\n')
		revenue += t.RevenueCents
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return 0, fmt.Errorf("append to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("sync %s: %w", path, err)
	}
	return revenue, f.Close()
}
