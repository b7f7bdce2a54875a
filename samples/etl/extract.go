package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

var (
	regions  = []string{"north", "south", "east", "west", "central"}
	products = []struct {
		name  string
		cents int64
	}{{"widget", 499}, {"gadget", 1250}, {"gizmo", 2999}, {"sprocket", 75}, {"doohickey", 15000}}
)

// badEvery is how often extract writes a malformed row (one in twenty).
const badEvery = 20

func extractCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("extract", stderr)
	out := fs.String("out", envOr("OUT", ""), "directory to write raw.csv into (env OUT)")
	day := fs.String("day", envOr("DAY", time.Now().UTC().Format(time.DateOnly)), "sales day YYYY-MM-DD (env DAY)")
	rows := fs.Int("rows", 1000, "number of rows")
	seed := fs.Uint64("seed", 0, "extra seed; the same day, rows and seed give the same file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: extract: --out DIR is required", errUsage)
	}
	if _, err := time.Parse(time.DateOnly, *day); err != nil {
		return fmt.Errorf("%w: extract: --day %q is not YYYY-MM-DD", errUsage, *day)
	}
	if *rows < 0 {
		return fmt.Errorf("%w: extract: --rows must not be negative", errUsage)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	path := filepath.Join(*out, "raw.csv")
	fmt.Fprintf(stdout, "extract: generating %d rows for %s\n", *rows, *day)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	bw := bufio.NewWriter(f)
	bad, err := writeRaw(bw, *day, *rows, *seed)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("extract: write %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "extract: wrote %d rows (%d malformed on purpose) to %s\n", *rows, bad, path)
	return nil
}

// writeRaw writes the header and n deterministic rows for day; every
// badEvery-th row is malformed in one of several ways. It returns how many.
func writeRaw(w io.Writer, day string, n int, seed uint64) (bad int, err error) {
	h := fnv.New64a()
	io.WriteString(h, day)
	rng := rand.New(rand.NewPCG(h.Sum64(), seed))
	cw := csv.NewWriter(w)
	if err := cw.Write(rawHeader); err != nil {
		return 0, err
	}
	for i := range n {
		p := products[rng.IntN(len(products))]
		rec := []string{
			fmt.Sprintf("%s-%06d", day, i+1),
			day,
			regions[rng.IntN(len(regions))],
			p.name,
			strconv.Itoa(1 + rng.IntN(12)),
			FormatCents(p.cents + int64(rng.IntN(21)-10)*p.cents/100), // ±10%
		}
		if i%badEvery == badEvery/2 {
			rec = corrupt(rec, i/badEvery)
			bad++
		}
		if err := cw.Write(rec); err != nil {
			return bad, err
		}
	}
	cw.Flush()
	return bad, cw.Error()
}

// corrupt breaks a record in the kind-th of the ways real exports go wrong.
func corrupt(rec []string, kind int) []string {
	switch kind % 6 {
	case 0:
		return rec[:4] // truncated row
	case 1:
		rec[4] = "-" + rec[4] // negative quantity
	case 2:
		rec[5] = rec[5][:len(rec[5])-3] + "," + rec[5][len(rec[5])-2:] // decimal comma
	case 3:
		rec[2] = "" // missing region
	case 4:
		rec[1] = "31/12/2025" // wrong date format
	case 5:
		rec[4] = "many"
	}
	return rec
}
