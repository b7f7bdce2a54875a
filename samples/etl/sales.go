package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the column list of raw.csv.
var rawHeader = []string{"order_id", "day", "region", "product", "qty", "unit_price"}

// Sale is one valid order row.
type Sale struct {
	OrderID   string
	Day       string // YYYY-MM-DD
	Region    string
	Product   string
	Qty       int64
	UnitCents int64 // unit price in cents
}

// Revenue is Qty × unit price, in cents.
func (s Sale) Revenue() int64 { return s.Qty * s.UnitCents }

// Limits that keep revenue sums far from overflowing int64.
const (
	maxQty   = 1_000_000
	maxCents = 100_000_000 // one million in currency units
)

// ParseSale validates one raw.csv record and returns the sale it holds. The
// error names the first bad field.
func ParseSale(rec []string) (Sale, error) {
	if len(rec) != len(rawHeader) {
		return Sale{}, fmt.Errorf("want %d fields, got %d", len(rawHeader), len(rec))
	}
	s := Sale{OrderID: strings.TrimSpace(rec[0]), Day: strings.TrimSpace(rec[1]),
		Region: strings.TrimSpace(rec[2]), Product: strings.TrimSpace(rec[3])}
	if s.OrderID == "" {
		return Sale{}, errors.New("order_id: empty")
	}
	if _, err := time.Parse(time.DateOnly, s.Day); err != nil {
		return Sale{}, fmt.Errorf("day: %q is not YYYY-MM-DD", rec[1])
	}
	if !validName(s.Region) {
		return Sale{}, fmt.Errorf("region: invalid %q", rec[2])
	}
	if !validName(s.Product) {
		return Sale{}, fmt.Errorf("product: invalid %q", rec[3])
	}
	qty, err := strconv.ParseInt(strings.TrimSpace(rec[4]), 10, 64)
	if err != nil || qty <= 0 || qty > maxQty {
		return Sale{}, fmt.Errorf("qty: %q is not a whole number in 1..%d", rec[4], maxQty)
	}
	s.Qty = qty
	cents, err := ParseCents(strings.TrimSpace(rec[5]))
	if err != nil {
		return Sale{}, fmt.Errorf("unit_price: %w", err)
	}
	s.UnitCents = cents
	return s, nil
}

// validName accepts the region and product names: letters, digits, '-', '_'.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

// ParseCents parses a non-negative decimal price with at most two decimals
// ("12", "12.5", "12.50") into cents.
func ParseCents(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || !digits(whole) || (hasDot && (len(frac) == 0 || len(frac) > 2 || !digits(frac))) {
		return 0, fmt.Errorf("%q is not a price like 12.34", s)
	}
	if len(whole) > 7 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	var f int64
	if hasDot {
		f, _ = strconv.ParseInt(frac, 10, 64)
		if len(frac) == 1 {
			f *= 10
		}
	}
	c := w*100 + f
	if c > maxCents {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return c, nil
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FormatCents prints cents as a decimal with two places.
func FormatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}
