package main

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// cleanHeader is the column list of clean.csv.
var cleanHeader = []string{"day", "region", "product", "orders", "qty", "revenue"}

// maxRejectedShare fails a transform whose input is mostly bad: that is a
// broken extract, not dirty data.
const maxRejectedShare = 0.5

// maxWarnings caps the per-row warnings printed to stderr.
const maxWarnings = 10

// Total is the aggregate of the sales of one product in one region on one day.
type Total struct {
	Day, Region, Product string
	Orders, Qty          int64
	RevenueCents         int64
}

// Report is what one transform read and produced.
type Report struct {
	Rows, Valid, Rejected int
	Totals                []Total // sorted by day, region, product
}

// Transform reads raw.csv from r, reporting each rejected row on warn (up to
// maxWarnings), and aggregates the valid rows.
func Transform(r io.Reader, warn io.Writer) (Report, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return Report{}, errors.New("raw.csv is empty (no header)")
	}
	if err != nil {
		return Report{}, fmt.Errorf("raw.csv header: %w", err)
	}
	if !slices.Equal(header, rawHeader) {
		return Report{}, fmt.Errorf("raw.csv header is %q, want %q", header, rawHeader)
	}
	var rep Report
	sums := make(map[[3]string]*Total)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var (
			s    Sale
			line int
			pe   *csv.ParseError
		)
		switch {
		case errors.As(err, &pe):
			// csv.Reader resumes after a malformed record: skip just that one.
			line = pe.StartLine
		case err != nil:
			return Report{}, fmt.Errorf("read raw.csv: %w", err)
		default:
			line, _ = cr.FieldPos(0)
			s, err = ParseSale(rec)
		}
		rep.Rows++
		if err != nil {
			rep.Rejected++
			if rep.Rejected <= maxWarnings {
				fmt.Fprintf(warn, "warning: raw.csv line %d: %v\n", line, err)
			}
			continue
		}
		rep.Valid++
		key := [3]string{s.Day, s.Region, s.Product}
		t := sums[key]
		if t == nil {
			t = &Total{Day: s.Day, Region: s.Region, Product: s.Product}
			sums[key] = t
		}
		t.Orders++
		t.Qty += s.Qty
		t.RevenueCents += s.Revenue()
	}
	if rep.Rejected > maxWarnings {
		fmt.Fprintf(warn, "warning: %d more rejected rows not shown\n", rep.Rejected-maxWarnings)
	}
	for _, t := range sums {
		rep.Totals = append(rep.Totals, *t)
	}
	slices.SortFunc(rep.Totals, func(a, b Total) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Region, b.Region), cmp.Compare(a.Product, b.Product))
	})
	if rep.Rows > 0 && float64(rep.Rejected) > maxRejectedShare*float64(rep.Rows) {
		return rep, fmt.Errorf("raw.csv: %d of %d rows are invalid; refusing to load a broken extract", rep.Rejected, rep.Rows)
	}
	return rep, nil
}

// Revenue is the report's total revenue in cents.
func (r Report) Revenue() int64 {
	var sum int64
	for _, t := range r.Totals {
		sum += t.RevenueCents
	}
	return sum
}

func transformCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("transform", stderr)
	in := fs.String("in", envOr("IN", ""), "directory holding raw.csv (env IN)")
	out := fs.String("out", envOr("OUT", ""), "directory to write clean.csv into (default: --in)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("%w: transform: --in DIR is required", errUsage)
	}
	if *out == "" {
		*out = *in
	}
	src := filepath.Join(*in, "raw.csv")
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("transform: %w", err)
	}
	defer f.Close()
	fmt.Fprintf(stdout, "transform: reading %s\n", src)
	rep, err := Transform(bufio.NewReader(f), stderr)
	if err != nil {
		return fmt.Errorf("transform: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("transform: %w", err)
	}
	dst := filepath.Join(*out, "clean.csv")
	if err := writeFileAtomic(dst, func(w io.Writer) error { return writeTotals(w, rep.Totals) }); err != nil {
		return fmt.Errorf("transform: write %s: %w", dst, err)
	}
	fmt.Fprintf(stdout, "transform: %d rows, %d valid, %d rejected\n", rep.Rows, rep.Valid, rep.Rejected)
	byRegion := make(map[string]int64)
	for _, t := range rep.Totals {
		byRegion[t.Region] += t.RevenueCents
	}
	for _, region := range slices.Sorted(maps.Keys(byRegion)) {
		fmt.Fprintf(stdout, "transform: region %-8s revenue %12s\n", region, FormatCents(byRegion[region]))
	}
	fmt.Fprintf(stdout, "transform: wrote %d aggregates (revenue %s) to %s\n", len(rep.Totals), FormatCents(rep.Revenue()), dst)
	return nil
}

// writeTotals writes clean.csv.
func writeTotals(w io.Writer, totals []Total) error {
	cw := csv.NewWriter(w)
	cw.Write(cleanHeader)
	for _, t := range totals {
		cw.Write([]string{t.Day, t.Region, t.Product, strconv.FormatInt(t.Orders, 10),
			strconv.FormatInt(t.Qty, 10), FormatCents(t.RevenueCents)})
	}
	cw.Flush()
	return cw.Error()
}

// writeFileAtomic writes path through a temporary file and a rename, so a
// killed stage never leaves a half-written file for the next one.
func writeFileAtomic(path string, fill func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	if err := fill(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
