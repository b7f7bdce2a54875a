package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// inputs calls fn with each named file ("-" is stdin), or with stdin when
// there are none. It keeps going after a failed file and returns exit 1.
func inputs(p *proc, name string, files []string, fn func(r io.Reader) error) error {
	if len(files) == 0 {
		return fn(p.stdin)
	}
	failed := false
	for _, f := range files {
		if f == "-" {
			if err := fn(p.stdin); err != nil {
				return err
			}
			continue
		}
		r, err := os.Open(p.path(f))
		if err != nil {
			p.errorf("%s: %v", name, err)
			failed = true
			continue
		}
		err = fn(r)
		r.Close()
		if err != nil {
			return err
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}

// readLines returns the lines of r without their newlines.
func readLines(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

func cat(p *proc, args []string) error {
	return inputs(p, "cat", args[1:], func(r io.Reader) error {
		_, err := io.Copy(p.stdout, r)
		return err
	})
}

func echo(p *proc, args []string) error {
	args = args[1:]
	nl := "\n"
	if len(args) > 0 && args[0] == "-n" {
		args, nl = args[1:], ""
	}
	_, err := io.WriteString(p.stdout, strings.Join(args, " ")+nl)
	return err
}

func trueApplet(*proc, []string) error  { return nil }
func falseApplet(*proc, []string) error { return exitStatus(1) }

// sleep accepts seconds with a fraction ("0.5") or Go durations ("1m30s"),
// summing several arguments, and returns early when the context ends.
func sleep(p *proc, args []string) error {
	if len(args) < 2 {
		return usageError("sleep SECONDS...")
	}
	var total time.Duration
	for _, a := range args[1:] {
		d, err := parseSeconds(a)
		if err != nil {
			return usageError(fmt.Sprintf("sleep SECONDS...: invalid time %q", a))
		}
		total += d
	}
	t := time.NewTimer(total)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.ctx.Done():
		return exitStatus(130)
	}
}

// parseSeconds parses "1", "0.25", "2s", "1m", "infinity".
func parseSeconds(s string) (time.Duration, error) {
	if s == "inf" || s == "infinity" {
		return time.Duration(1<<63 - 1), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 9e9 {
		return time.Duration(f * float64(time.Second)), nil
	}
	for _, unit := range []string{"s", "m", "h", "d"} { // GNU sleep suffixes
		if v, ok := strings.CutSuffix(s, unit); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1e6 {
				break
			}
			mult := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[unit]
			return time.Duration(f * float64(mult)), nil
		}
	}
	return time.ParseDuration(s)
}

func seq(p *proc, args []string) error {
	nums := make([]int64, 0, 3)
	for _, a := range args[1:] {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return usageError("seq [FIRST [INCR]] LAST (integers)")
		}
		nums = append(nums, n)
	}
	first, incr, last := int64(1), int64(1), int64(0)
	switch len(nums) {
	case 1:
		last = nums[0]
	case 2:
		first, last = nums[0], nums[1]
	case 3:
		first, incr, last = nums[0], nums[1], nums[2]
	default:
		return usageError("seq [FIRST [INCR]] LAST")
	}
	if incr == 0 {
		return usageError("seq: increment must not be 0")
	}
	w := bufio.NewWriter(p.stdout)
	for i := first; (incr > 0 && i <= last) || (incr < 0 && i >= last); i += incr {
		w.WriteString(strconv.FormatInt(i, 10))
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return w.Flush()
}

// lineCount reads "-n N" (default 10).
func lineCount(opts map[byte]string) (int, error) {
	v, ok := opts['n']
	if !ok {
		return 10, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(v, "-"))
	if err != nil || n < 0 {
		return 0, usageError(fmt.Sprintf("invalid line count %q", v))
	}
	return n, nil
}

// legacyCount rewrites the old "head -20" form to "head -n 20".
func legacyCount(args []string) []string {
	if len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' && digits(args[0][1:]) {
		return append([]string{"-n", args[0][1:]}, args[1:]...)
	}
	return args
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func head(p *proc, args []string) error {
	opts, files, err := getopt(legacyCount(args[1:]), "", "n")
	if err != nil {
		return err
	}
	n, err := lineCount(opts)
	if err != nil {
		return err
	}
	return inputs(p, "head", files, func(r io.Reader) error {
		br := bufio.NewReader(r)
		for i := 0; i < n; i++ {
			line, err := br.ReadBytes('\n')
			if _, werr := p.stdout.Write(line); werr != nil {
				return werr
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func tail(p *proc, args []string) error {
	opts, files, err := getopt(legacyCount(args[1:]), "", "n")
	if err != nil {
		return err
	}
	n, err := lineCount(opts)
	if err != nil {
		return err
	}
	return inputs(p, "tail", files, func(r io.Reader) error {
		ring := make([]string, 0, n)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 64<<20)
		for sc.Scan() {
			if n == 0 {
				continue
			}
			if len(ring) == n {
				ring = ring[1:]
			}
			ring = append(ring, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return err
		}
		for _, l := range ring {
			if _, err := fmt.Fprintln(p.stdout, l); err != nil {
				return err
			}
		}
		return nil
	})
}

func wc(p *proc, args []string) error {
	opts, files, err := getopt(args[1:], "lwc", "")
	if err != nil {
		return err
	}
	all := len(opts) == 0
	var total [3]int
	count := func(label string) func(r io.Reader) error {
		return func(r io.Reader) error {
			var c [3]int
			br := bufio.NewReader(r)
			inWord := false
			for {
				b, err := br.ReadByte()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				c[2]++
				if b == '\n' {
					c[0]++
				}
				space := b == ' ' || b == '\n' || b == '\t' || b == '\r' || b == '\v' || b == '\f'
				if !space && !inWord {
					c[1]++
				}
				inWord = !space
			}
			for i := range c {
				total[i] += c[i]
			}
			return printCounts(p, c, opts, all, label)
		}
	}
	if len(files) == 0 {
		return count("")(p.stdin)
	}
	for _, f := range files {
		if err := inputs(p, "wc", []string{f}, count(f)); err != nil {
			return err
		}
	}
	if len(files) > 1 {
		return printCounts(p, total, opts, all, "total")
	}
	return nil
}

func printCounts(p *proc, c [3]int, opts map[byte]string, all bool, label string) error {
	var fields []string
	for i, flag := range []byte("lwc") {
		if all || has(opts, flag) {
			fields = append(fields, strconv.Itoa(c[i]))
		}
	}
	if label != "" {
		fields = append(fields, label)
	}
	_, err := fmt.Fprintln(p.stdout, strings.Join(fields, " "))
	return err
}

func yes(p *proc, args []string) error {
	line := "y"
	if len(args) > 1 {
		line = strings.Join(args[1:], " ")
	}
	buf := bytes.Repeat([]byte(line+"\n"), max(1, 8192/(len(line)+1)))
	for p.ctx.Err() == nil {
		if _, err := p.stdout.Write(buf); err != nil {
			return nil // the reader went away: that is how yes ends
		}
	}
	return nil
}

// tr supports "tr SET1 SET2", "tr -d SET1" with ranges (a-z) and \n \t \\.
func tr(p *proc, args []string) error {
	opts, sets, err := getopt(args[1:], "d", "")
	if err != nil {
		return err
	}
	del := has(opts, 'd')
	if (del && len(sets) != 1) || (!del && len(sets) != 2) {
		return usageError("tr SET1 SET2 | tr -d SET1")
	}
	from := expandSet(sets[0])
	var m [256]int // -1 deletes, 0 keeps, else byte+1
	if del {
		for _, c := range from {
			m[c] = -1
		}
	} else {
		to := expandSet(sets[1])
		if len(to) == 0 {
			return usageError("tr: SET2 is empty")
		}
		for i, c := range from {
			m[c] = int(to[min(i, len(to)-1)]) + 1
		}
	}
	br := bufio.NewReader(p.stdin)
	w := bufio.NewWriter(p.stdout)
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return w.Flush()
		}
		if err != nil {
			return err
		}
		switch v := m[b]; {
		case v == 0:
			w.WriteByte(b)
		case v > 0:
			w.WriteByte(byte(v - 1))
		}
	}
}

// expandSet expands tr's ranges and escapes into bytes.
func expandSet(s string) []byte {
	var raw []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				c = '\n'
			case 't':
				c = '\t'
			case 'r':
				c = '\r'
			case '0', '1', '2', '3', '4', '5', '6', '7':
				// \NNN, one to three octal digits, as POSIX tr: any
				// byte, also one that is not UTF-8 (tr a '\351').
				n, j := 0, i
				for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7'; j++ {
					n = n*8 + int(s[j]-'0')
				}
				c, i = byte(n), j-1
			default:
				c = s[i]
			}
		}
		raw = append(raw, c)
	}
	var out []byte
	for i := 0; i < len(raw); i++ {
		if i+2 < len(raw) && raw[i+1] == '-' && raw[i] <= raw[i+2] {
			for c := int(raw[i]); c <= int(raw[i+2]); c++ {
				out = append(out, byte(c))
			}
			i += 2
			continue
		}
		out = append(out, raw[i])
	}
	return out
}

func sortApplet(p *proc, args []string) error {
	opts, files, err := getopt(args[1:], "rnu", "")
	if err != nil {
		return err
	}
	var all []string
	if err := inputs(p, "sort", files, func(r io.Reader) error {
		l, err := readLines(r)
		all = append(all, l...)
		return err
	}); err != nil {
		return err
	}
	compare := strings.Compare
	if has(opts, 'n') {
		compare = func(a, b string) int {
			return cmp.Or(cmp.Compare(leadingNumber(a), leadingNumber(b)), strings.Compare(a, b))
		}
	}
	slices.SortStableFunc(all, compare)
	if has(opts, 'r') {
		slices.Reverse(all)
	}
	if has(opts, 'u') {
		all = slices.Compact(all)
	}
	return writeLines(p.stdout, all)
}

// leadingNumber is the number a line starts with, as sort -n sees it.
func leadingNumber(s string) float64 {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' || (end == 0 && s[end] == '-')) {
		end++
	}
	f, _ := strconv.ParseFloat(s[:end], 64)
	return f
}

func writeLines(w io.Writer, lines []string) error {
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		bw.WriteString(l)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func uniq(p *proc, args []string) error {
	opts, files, err := getopt(args[1:], "c", "")
	if err != nil {
		return err
	}
	if len(files) > 1 {
		return usageError("uniq [-c] [FILE]")
	}
	w := bufio.NewWriter(p.stdout)
	err = inputs(p, "uniq", files, func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 64<<20)
		prev, n := "", 0
		flush := func() {
			if n == 0 {
				return
			}
			if has(opts, 'c') {
				fmt.Fprintf(w, "%7d %s\n", n, prev)
			} else {
				fmt.Fprintln(w, prev)
			}
		}
		for sc.Scan() {
			if n > 0 && sc.Text() == prev {
				n++
				continue
			}
			flush()
			prev, n = sc.Text(), 1
		}
		flush()
		return sc.Err()
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// grep [-vciqoF] PATTERN [FILE...]: exit 0 on a match, 1 on none, 2 on error.
func grep(p *proc, args []string) error {
	opts, rest, err := getopt(args[1:], "vciqoFEsh", "e")
	if err != nil {
		return err
	}
	pattern, ok := opts['e']
	if !ok {
		if len(rest) == 0 {
			return usageError("grep [-vciqoF] PATTERN [FILE...]")
		}
		pattern, rest = rest[0], rest[1:]
	}
	if has(opts, 'F') {
		pattern = regexp.QuoteMeta(pattern)
	}
	if has(opts, 'i') {
		pattern = "(?i)" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		p.errorf("grep: %v", err)
		return exitStatus(2)
	}
	w := bufio.NewWriter(p.stdout)
	matched := 0
	prefix := len(rest) > 1 && !has(opts, 'h')
	err = inputs(p, "grep", rest, func(r io.Reader) error {
		name := "(standard input)"
		if f, ok := r.(*os.File); ok && f != os.Stdin {
			name = f.Name()
		}
		n := 0
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 64<<20)
		for sc.Scan() {
			if re.Match(sc.Bytes()) == has(opts, 'v') {
				continue
			}
			n++
			if has(opts, 'c') || has(opts, 'q') {
				continue
			}
			if has(opts, 'o') && !has(opts, 'v') {
				for _, m := range re.FindAll(sc.Bytes(), -1) {
					if len(m) == 0 {
						continue // as GNU grep, which prints no empty matches
					}
					if prefix {
						w.WriteString(name + ":")
					}
					w.Write(m)
					w.WriteByte('\n')
				}
				continue
			}
			if prefix {
				w.WriteString(name + ":")
			}
			w.Write(sc.Bytes())
			w.WriteByte('\n')
		}
		if has(opts, 'c') {
			if prefix {
				w.WriteString(name + ":")
			}
			fmt.Fprintln(w, n)
		}
		matched += n
		return sc.Err()
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	switch {
	case err != nil:
		if _, ok := err.(exitStatus); !ok {
			p.errorf("grep: %v", err)
		}
		return exitStatus(2)
	case matched == 0:
		return exitStatus(1)
	}
	return nil
}

func tee(p *proc, args []string) error {
	opts, files, err := getopt(args[1:], "a", "")
	if err != nil {
		return err
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if has(opts, 'a') {
		flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	writers := []io.Writer{p.stdout}
	for _, f := range files {
		fh, err := os.OpenFile(p.path(f), flag, 0o666)
		if err != nil {
			return err
		}
		defer fh.Close()
		writers = append(writers, fh)
	}
	_, err = io.Copy(io.MultiWriter(writers...), p.stdin)
	return err
}
