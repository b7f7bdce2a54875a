// Command gantry-etl is the sample ETL program of Gantry's pipelines: a tiny,
// real extract → transform → load of daily sales.
//
//	gantry-etl extract   --out DIR [--day YYYY-MM-DD] [--rows N] [--seed S]
//	gantry-etl transform --in DIR [--out DIR]
//	gantry-etl load      --in DIR --db PATH
//
// extract writes DIR/raw.csv, a deterministic set of order rows of which about
// one in twenty is deliberately malformed; transform drops the bad rows,
// aggregates revenue by region and product into DIR/clean.csv and prints a
// summary; load appends the aggregates to a JSON Lines warehouse file.
// Progress goes to stdout, warnings to stderr. Flags default from the
// environment (DAY, ROWS, IN, OUT, DB) so a task definition can set them
// either way. Bad input exits 1, bad usage 2.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors that are the caller's: they exit 2.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: gantry-etl extract|transform|load [FLAGS]")
		return 2
	}
	var err error
	switch args[0] {
	case "extract":
		err = extractCmd(args[1:], stdout, stderr)
	case "transform":
		err = transformCmd(args[1:], stdout, stderr)
	case "load":
		err = loadCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "usage: gantry-etl extract|transform|load [FLAGS]; gantry-etl COMMAND -h for flags")
		return 0
	default:
		err = fmt.Errorf("%w: unknown command %q (want extract, transform or load)", errUsage, args[0])
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "gantry-etl:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "gantry-etl:", err)
		return 1
	}
}

// newFlags returns a flag set whose parse errors are usage errors.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gantry-etl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
