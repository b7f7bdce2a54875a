package jobs

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Log batches are most of the bytes gantry moves, and encoding/json's
// reflection was a third of the time a follower spent on them. These two
// functions write and read the same JSON document by hand.

// AppendLogBatch appends b as JSON to dst: the document encoding/json
// writes for it (without HTML escaping), field for field. A line whose
// Text is not valid UTF-8 is written as LogLine.MarshalJSON says.
func AppendLogBatch(dst []byte, b *LogBatch) []byte {
	dst = appendLogBatchHead(dst, b.RunID, b.Attempt, b.Container, b.Time)
	if b.Lines == nil {
		return append(dst, "null}"...)
	}
	dst = append(dst, '[')
	for i, l := range b.Lines {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendLogLine(dst, l.Seq, l.Stream, l.Text, l.Partial, l.NoNewline)
	}
	return append(dst, "]}"...)
}

// AppendLogLine appends one line of a batch as AppendLogBatch writes it,
// from the bytes a container wrote: a writer encodes lines as they come
// and AppendEncodedLogBatch wraps them, without a string per line.
func AppendLogLine(dst []byte, seq int64, stream string, text []byte, partial, noNewline bool) []byte {
	return appendLogLine(dst, seq, stream, unsafe.String(unsafe.SliceData(text), len(text)), partial, noNewline)
}

// AppendEncodedLogBatch appends the document AppendLogBatch writes for a
// batch whose lines are already encoded (AppendLogLine, separated by
// commas; nil for a batch without lines).
func AppendEncodedLogBatch(dst []byte, runID string, attempt int, container string, t time.Time, lines []byte) []byte {
	dst = appendLogBatchHead(dst, runID, attempt, container, t)
	if lines == nil {
		return append(dst, "null}"...)
	}
	dst = append(dst, '[')
	dst = append(dst, lines...)
	return append(dst, "]}"...)
}

func appendLogBatchHead(dst []byte, runID string, attempt int, container string, t time.Time) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, CurrentPayloadVersion, 10)
	dst = append(dst, `,"runId":`...)
	dst = appendString(dst, runID)
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(attempt), 10)
	dst = append(dst, `,"container":`...)
	dst = appendString(dst, container)
	dst = append(dst, `,"time":"`...)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `","lines":`...)
}

func appendLogLine(dst []byte, seq int64, stream, text string, partial, noNewline bool) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"stream":`...)
	dst = appendString(dst, stream)
	dst = append(dst, `,"text":`...)
	var valid bool
	if dst, valid = appendStringValid(dst, text); !valid {
		// The bytes U+FFFD took the place of in text, so that readers
		// that know "raw" get them back; valid lines go without.
		dst = append(dst, `,"raw":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, unsafe.Slice(unsafe.StringData(text), len(text)))
		dst = append(dst, '"')
	}
	if partial {
		dst = append(dst, `,"partial":true`...)
	}
	if noNewline {
		dst = append(dst, `,"noNewline":true`...)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json does with HTML
// escaping off: invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst, _ = appendStringValid(dst, s)
	return dst
}

// appendStringValid is appendString, and reports whether s was valid
// UTF-8 (nothing became U+FFFD).
func appendStringValid(dst []byte, s string) ([]byte, bool) {
	valid := true
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight plain bytes at a time: most of a log is printable ASCII.
		for i+8 <= len(s) && plainWord(load64(s, i)) {
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			valid = false
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), valid
}

// load64 reads the eight bytes of s at i as a little-endian word; the
// compiler makes it one load.
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// Words of eight bytes, tested with Bit Twiddling Hacks' "hasless" and
// "haszero": each is exact as to whether any byte of the word matches,
// whatever the other bytes hold.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// quietWord reports whether none of the eight bytes of x is a control
// character, a quote or a backslash: none ends a JSON string or needs an
// escape in one.
func quietWord(x uint64) bool {
	quote := x ^ ('"' * ones)
	backslash := x ^ ('\\' * ones)
	return ((x-0x20*ones)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs == 0
}

// plainWord reports whether the eight bytes of x go into a JSON string as
// they are: quiet, and ASCII (bytes of 0x80 and over must be checked as
// UTF-8).
func plainWord(x uint64) bool {
	return quietWord(x) && x&highs == 0
}

// DecodeLogBatch decodes a log batch. Documents of the shape AppendLogBatch
// writes take a fast path; anything else goes to encoding/json, so every
// valid document decodes as json.Unmarshal would decode it. The lines'
// texts may be data's own bytes, not copied: data must not change while
// the batch is in use (a NATS message's data never does).
func DecodeLogBatch(data []byte, b *LogBatch) error {
	d := logDecoder{data: data}
	var fast LogBatch
	if d.batch(&fast) {
		*b = fast
		return nil
	}
	*b = LogBatch{}
	return json.Unmarshal(data, b)
}

// logDecoder is a strict scanner for the fields of a log batch; any
// surprise makes it give up (ok false) and leave the work to encoding/json.
type logDecoder struct {
	data  []byte
	pos   int
	start int // of the string raw last read
	// text holds the bytes of the lines that are not as they are in
	// data (escaped, or in "raw"), one after another. Its strings are
	// never written again (appends go past them, or to a new array).
	text []byte
}

func (d *logDecoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *logDecoder) consume(c byte) bool {
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

func (d *logDecoder) batch(b *LogBatch) bool {
	if !d.consume('{') {
		return false
	}
	seen := map[string]bool{}
	for first := true; ; first = false {
		if d.consume('}') {
			break
		}
		if !first && !d.consume(',') {
			return false
		}
		key, ok := d.str()
		if !ok || seen[key] || !d.consume(':') {
			return false
		}
		seen[key] = true
		switch key {
		case "v":
			if _, ok := d.int(); !ok {
				return false
			}
		case "runId":
			if b.RunID, ok = d.str(); !ok {
				return false
			}
		case "container":
			if b.Container, ok = d.str(); !ok {
				return false
			}
		case "attempt":
			n, ok := d.int()
			if !ok || int64(int(n)) != n {
				return false
			}
			b.Attempt = int(n)
		case "time":
			s, ok := d.str()
			if !ok {
				return false
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || len(s) < len(time.RFC3339) {
				return false
			}
			b.Time = t
		case "lines":
			if !d.lines(b) {
				return false
			}
		default:
			return false
		}
	}
	d.ws()
	return d.pos == len(d.data)
}

func (d *logDecoder) lines(b *LogBatch) bool {
	if d.literal("null") {
		return true
	}
	if !d.consume('[') {
		return false
	}
	// AppendLogBatch starts every line so; a quote inside a string is
	// escaped, so only lines match, and the count sizes the slice.
	b.Lines = make([]LogLine, 0, bytes.Count(d.data[d.pos:], []byte(`{"seq":`)))
	if d.consume(']') {
		return true
	}
	for {
		var l LogLine
		if !d.line(&l) {
			return false
		}
		b.Lines = append(b.Lines, l)
		if d.consume(']') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

func (d *logDecoder) line(l *LogLine) bool {
	if !d.consume('{') {
		return false
	}
	var (
		seen [6]bool
		raw  []byte // the line's bytes, where its text is not valid UTF-8
	)
	for first := true; ; first = false {
		if d.consume('}') {
			if seen[5] {
				l.Text = unsafeString(raw)
			}
			return true
		}
		if !first && !d.consume(',') {
			return false
		}
		key, r := d.raw() // a key with escapes falls back
		if r != rawOK || !d.consume(':') {
			return false
		}
		var (
			idx int
			ok  bool
		)
		switch string(key) {
		case "seq":
			idx = 0
			if l.Seq, ok = d.int(); !ok {
				return false
			}
		case "stream":
			idx = 1
			if l.Stream, ok = d.stream(); !ok {
				return false
			}
		case "text":
			idx = 2
			if l.Text, ok = d.textOf(d.raw()); !ok {
				return false
			}
		case "partial":
			idx = 3
			if l.Partial, ok = d.boolean(); !ok {
				return false
			}
		case "noNewline":
			idx = 4
			if l.NoNewline, ok = d.boolean(); !ok {
				return false
			}
		case "raw":
			idx = 5
			seg, r := d.raw()
			if r != rawOK {
				return false // null, or escapes: encoding/json's to read
			}
			at := len(d.text)
			var err error
			if d.text, err = base64.StdEncoding.AppendDecode(d.text, seg); err != nil {
				return false
			}
			raw = d.text[at:]
		default:
			return false
		}
		if seen[idx] {
			return false
		}
		seen[idx] = true
	}
}

// boolean reads true or false.
func (d *logDecoder) boolean() (v, ok bool) {
	switch {
	case d.literal("true"):
		return true, true
	case d.literal("false"):
		return false, true
	}
	return false, false
}

func (d *logDecoder) literal(s string) bool {
	d.ws()
	if len(d.data)-d.pos >= len(s) && string(d.data[d.pos:d.pos+len(s)]) == s {
		d.pos += len(s)
		return true
	}
	return false
}

// int reads a plain integer (no fraction or exponent; those fall back).
func (d *logDecoder) int() (int64, bool) {
	d.ws()
	start := d.pos
	if d.pos < len(d.data) && d.data[d.pos] == '-' {
		d.pos++
	}
	digits := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	if d.pos == digits || (d.data[digits] == '0' && d.pos-digits > 1) {
		return 0, false
	}
	if d.pos < len(d.data) && (d.data[d.pos] == '.' || d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		return 0, false
	}
	if d.pos-digits > 18 { // might not fit: strconv tells
		n, err := strconv.ParseInt(string(d.data[start:d.pos]), 10, 64)
		return n, err == nil
	}
	var n int64
	for _, c := range d.data[digits:d.pos] {
		n = n*10 + int64(c-'0')
	}
	if digits > start {
		n = -n
	}
	return n, true
}

// str reads a string, unescaping it; invalid UTF-8 or an odd escape falls
// back.
func (d *logDecoder) str() (string, bool) { return d.stringOf(d.raw()) }

// textOf is stringOf for a line's text: without escapes, the document's
// own bytes; unescaped, kept in d.text.
func (d *logDecoder) textOf(seg []byte, r int) (string, bool) {
	switch r {
	case rawOK:
		return unsafeString(seg), true
	case rawEscaped:
		at := len(d.text)
		var ok bool
		if d.text, ok = d.unescape(d.text, d.start); !ok {
			return "", false
		}
		return unsafeString(d.text[at:]), true
	}
	return "", false
}

// unsafeString is b as a string, without a copy: b must never change.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// stringOf finishes the string raw read: copied, or unescaped from its start.
func (d *logDecoder) stringOf(seg []byte, r int) (string, bool) {
	switch r {
	case rawOK:
		return string(seg), true
	case rawEscaped:
		out, ok := d.unescape(nil, d.start)
		return string(out), ok
	}
	return "", false
}

// What raw found.
const (
	rawBad     = iota // no string, a control character or invalid UTF-8
	rawOK             // a string without escapes
	rawEscaped        // a backslash, where d.pos is now; the string starts at d.start
)

// raw reads a string without escapes and returns its bytes, which stay in
// the document: keys and streams are compared, not kept.
func (d *logDecoder) raw() ([]byte, int) {
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, rawBad
	}
	d.pos++
	d.start = d.pos
	rest := d.data[d.pos:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, rawBad
	}
	seg := rest[:end]
	if i := bytes.IndexByte(seg, '\\'); i >= 0 {
		if control, _ := controlOrHigh(seg[:i]); control {
			return nil, rawBad
		}
		d.pos += i // unescape checks the string as UTF-8
		return nil, rawEscaped
	}
	if control, high := controlOrHigh(seg); control || high && !utf8.Valid(seg) {
		return nil, rawBad
	}
	d.pos += end + 1
	return seg, rawOK
}

// controlOrHigh reports whether b holds a byte below 0x20, which JSON
// strings must escape, and whether it holds one of 0x80 and over, which
// must be checked as UTF-8: eight bytes at a time, in one pass.
func controlOrHigh(b []byte) (control, high bool) {
	var ctl, hi uint64
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		ctl |= (x - 0x20*ones) &^ x
		hi |= x
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			ctl = highs
		}
		hi |= uint64(c)
	}
	return ctl&highs != 0, hi&highs != 0
}

// stream reads a line's stream, without allocating for the usual two.
func (d *logDecoder) stream() (string, bool) {
	seg, r := d.raw()
	if r == rawOK {
		switch string(seg) {
		case Stdout:
			return Stdout, true
		case Stderr:
			return Stderr, true
		}
	}
	return d.stringOf(seg, r)
}

// unescape appends to dst the string that starts at start, unescaped; d.pos
// is at its first backslash. Invalid UTF-8 or an escape that encoding/json
// reads otherwise fails.
func (d *logDecoder) unescape(dst []byte, start int) ([]byte, bool) {
	from := len(dst)
	out := append(dst, d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return out, utf8.Valid(out[from:])
		case c < 0x20:
			return out, false
		case c != '\\':
			out = append(out, c)
			d.pos++
			continue
		}
		if d.pos+1 >= len(d.data) {
			return out, false
		}
		e := d.data[d.pos+1]
		d.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return out, false
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
					d.pos += 2
					if r2, ok = d.hex4(); !ok {
						return out, false
					}
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
				} else {
					return out, false // lone surrogates: leave them to encoding/json
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return out, false
		}
	}
	return out, false
}

func (d *logDecoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[d.pos:d.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.pos += 4
	return rune(n), true
}
