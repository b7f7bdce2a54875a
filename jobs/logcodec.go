package jobs

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Log batches are most of the bytes gantry moves, and encoding/json's
// reflection was a third of the time a follower spent on them. These two
// functions write and read the same JSON document by hand.

// AppendLogBatch appends b as JSON to dst: the document encoding/json
// writes for it (without HTML escaping), field for field.
func AppendLogBatch(dst []byte, b *LogBatch) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, CurrentPayloadVersion, 10)
	dst = append(dst, `,"runId":`...)
	dst = appendString(dst, b.RunID)
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(b.Attempt), 10)
	dst = append(dst, `,"container":`...)
	dst = appendString(dst, b.Container)
	dst = append(dst, `,"time":"`...)
	dst = b.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","lines":[`...)
	for i, l := range b.Lines {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"seq":`...)
		dst = strconv.AppendInt(dst, l.Seq, 10)
		dst = append(dst, `,"stream":`...)
		dst = appendString(dst, l.Stream)
		dst = append(dst, `,"text":`...)
		dst = appendString(dst, l.Text)
		if l.Partial {
			dst = append(dst, `,"partial":true`...)
		}
		dst = append(dst, '}')
	}
	if b.Lines == nil {
		return append(dst[:len(dst)-1], "null}"...)
	}
	return append(dst, "]}"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json does with HTML
// escaping off: invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
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
	return append(dst, '"')
}

// DecodeLogBatch decodes a log batch. Documents of the shape AppendLogBatch
// writes take a fast path; anything else goes to encoding/json, so every
// valid document decodes as json.Unmarshal would decode it.
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
	data []byte
	pos  int
}

var errFallback = errors.New("fallback")

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
	b.Lines = []LogLine{}
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
	var seen [4]bool
	for first := true; ; first = false {
		if d.consume('}') {
			return true
		}
		if !first && !d.consume(',') {
			return false
		}
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return false
		}
		var idx int
		switch key {
		case "seq":
			idx = 0
			if l.Seq, ok = d.int(); !ok {
				return false
			}
		case "stream":
			idx = 1
			if l.Stream, ok = d.str(); !ok {
				return false
			}
		case "text":
			idx = 2
			if l.Text, ok = d.str(); !ok {
				return false
			}
		case "partial":
			idx = 3
			switch {
			case d.literal("true"):
				l.Partial = true
			case d.literal("false"):
			default:
				return false
			}
		default:
			return false
		}
		if seen[idx] {
			return false
		}
		seen[idx] = true
	}
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
	n, err := strconv.ParseInt(string(d.data[start:d.pos]), 10, 64)
	return n, err == nil
}

// str reads a string, unescaping it; invalid UTF-8 or an odd escape falls
// back.
func (d *logDecoder) str() (string, bool) {
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return "", false
	}
	d.pos++
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := d.data[start:d.pos]
			d.pos++
			if !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", false
		}
		d.pos++
	}
	return "", false
}

func (d *logDecoder) escaped(start int) (string, bool) {
	out := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			d.pos++
			continue
		}
		if d.pos+1 >= len(d.data) {
			return "", false
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
				return "", false
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
					d.pos += 2
					if r2, ok = d.hex4(); !ok {
						return "", false
					}
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
				} else {
					return "", false // lone surrogates: leave them to encoding/json
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
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
