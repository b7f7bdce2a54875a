package jobs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func sampleBatch() *LogBatch {
	return &LogBatch{RunID: "01jf", Attempt: 2, Container: "main", Time: time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC),
		Lines: []LogLine{{Seq: 1, Stream: Stdout, Text: "hello"}, {Seq: 2, Stream: Stderr, Text: "tab\tquote\" back\\ é <&> \u2028 \x01", Partial: true},
			{Seq: 3, Stream: Stdout, Text: ""}, {Seq: 4, Stream: Stdout, Text: "done", NoNewline: true}}}
}

func TestAppendLogBatchIsWhatEncodingJSONWrites(t *testing.T) {
	for _, b := range []*LogBatch{sampleBatch(), {RunID: "r"}, {Lines: []LogLine{}}, {RunID: "bad \xff utf8"}} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(b); err != nil {
			t.Fatal(err)
		}
		if got := AppendLogBatch(nil, b); string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("got  %s\nwant %s", got, want.Bytes())
		}
	}
}

func TestDecodeLogBatch(t *testing.T) {
	b := sampleBatch()
	var got LogBatch
	if err := DecodeLogBatch(AppendLogBatch(nil, b), &got); err != nil || !reflect.DeepEqual(&got, b) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, got, *b)
	}
	// Documents of another shape decode as encoding/json decodes them.
	for _, doc := range []string{
		`{"lines":[{"text":"a","seq":1,"stream":"stdout","extra":1}],"runId":"r"}`,
		`{"v":1.5,"runId":"r","attempt":1e1}`,
		` { "runId" : "r\u00e9\ud83d\ude00" , "lines" : null } `,
		`{"runId":"x","runId":"y"}`,
	} {
		var fast, slow LogBatch
		errFast, errSlow := DecodeLogBatch([]byte(doc), &fast), json.Unmarshal([]byte(doc), &slow)
		if (errFast == nil) != (errSlow == nil) || !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s: got %+v (%v), encoding/json %+v (%v)", doc, fast, errFast, slow, errSlow)
		}
	}
	if err := DecodeLogBatch([]byte(`{"runId":`), &got); err == nil {
		t.Error("a truncated document decoded")
	}
}

func FuzzLogBatchCodec(f *testing.F) {
	f.Add(string(AppendLogBatch(nil, sampleBatch())), "text", int64(7), false, true)
	f.Add(`{"runId":"a\"b","lines":[]}`, "x\xff\x00", int64(-1), true, false)
	f.Add(`{"lines":[{"seq":1,"stream":"stdout","text":"a","noNewline":1}]}`, "", int64(0), false, false)
	// Texts long enough for the eight-byte words, with what ends them.
	f.Add(`{"lines":[{"seq":12345678901234567,"stream":"stdout","text":"plain ascii text over words\tthen é"}]}`,
		"plain ascii text over words\"then\x01 é \xff \u2028 and more plain text", int64(-12345678901234567), false, false)
	f.Fuzz(func(t *testing.T, doc, text string, seq int64, partial, noNewline bool) {
		// Anything decodes as encoding/json decodes it.
		var fast, slow LogBatch
		errFast, errSlow := DecodeLogBatch([]byte(doc), &fast), json.Unmarshal([]byte(doc), &slow)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("%q: fast err %v, encoding/json err %v", doc, errFast, errSlow)
		}
		if errFast == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", doc, fast, slow)
		}
		// What AppendLogBatch writes is what encoding/json writes.
		b := &LogBatch{RunID: text, Attempt: int(seq % 1000), Container: text,
			Lines: []LogLine{{Seq: seq, Stream: text, Text: text, Partial: partial, NoNewline: noNewline}}}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(b)
		if got := AppendLogBatch(nil, b); string(got)+"\n" != want.String() {
			t.Fatalf("got %s want %s", got, want.String())
		}
		if got := appendEncoded(b); string(got)+"\n" != want.String() {
			t.Fatalf("line by line: got %s want %s", got, want.String())
		}
	})
}

// appendEncoded writes b as a log writer does: each line as it comes, then
// the batch around them.
func appendEncoded(b *LogBatch) []byte {
	var lines []byte
	for i, l := range b.Lines {
		if i > 0 {
			lines = append(lines, ',')
		}
		lines = AppendLogLine(lines, l.Seq, l.Stream, []byte(l.Text), l.Partial, l.NoNewline)
	}
	if b.Lines != nil && lines == nil {
		lines = []byte{}
	}
	return AppendEncodedLogBatch(nil, b.RunID, b.Attempt, b.Container, b.Time, lines)
}

func TestEncodedLogBatchIsAppendLogBatch(t *testing.T) {
	for _, b := range []*LogBatch{sampleBatch(), {RunID: "r"}, {Lines: []LogLine{}}, {RunID: "bad \xff utf8"},
		{Lines: []LogLine{{Seq: 9, Stream: Stderr, Text: "\xff\x00 \u2029", Partial: true}}}} {
		if got, want := appendEncoded(b), AppendLogBatch(nil, b); !bytes.Equal(got, want) {
			t.Fatalf("line by line: %s\nAppendLogBatch: %s", got, want)
		}
	}
}

// BenchmarkDecodeLogBatch decodes a full batch of 2,000 lines of 100 bytes,
// as a follower does for every message of a chatty container.
func BenchmarkDecodeLogBatch(b *testing.B) {
	batch := &LogBatch{RunID: "01KAXQ2P7M3V8J4N5R6S7T8W9Y", Attempt: 1, Container: "main", Time: time.Now().UTC()}
	text := string(bytes.Repeat([]byte("x"), 99)) + "|"
	for i := range 2000 {
		batch.Lines = append(batch.Lines, LogLine{Seq: int64(i + 1), Stream: Stdout, Text: text})
	}
	data := AppendLogBatch(nil, batch)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var got LogBatch
		if err := DecodeLogBatch(data, &got); err != nil || len(got.Lines) != 2000 {
			b.Fatal(err)
		}
	}
}

// quietWord, plainWord and controlOrHigh against a byte-by-byte look:
// every byte value at every place of a word, among bytes near the ones
// they look for (a borrow across bytes must not hide or invent one), and
// random words.
func TestQuietWord(t *testing.T) {
	quiet := func(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' }
	check := func(x uint64) {
		t.Helper()
		wantQuiet, wantPlain := true, true
		for k := range 8 {
			c := byte(x >> (8 * k))
			wantQuiet = wantQuiet && quiet(c)
			wantPlain = wantPlain && quiet(c) && c < utf8.RuneSelf
		}
		if quietWord(x) != wantQuiet || plainWord(x) != wantPlain {
			t.Fatalf("%#016x: quietWord %v plainWord %v, want %v %v", x, quietWord(x), plainWord(x), wantQuiet, wantPlain)
		}
	}
	for _, fill := range []byte{'a', 0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff} {
		for at := range 8 {
			for c := range 256 {
				w := bytes.Repeat([]byte{fill}, 8)
				w[at] = byte(c)
				check(binary.LittleEndian.Uint64(w))
			}
		}
	}
	// controlOrHigh, over words and tails.
	for n := 0; n <= 19; n++ {
		for at := 0; at < n; at++ {
			for c := range 256 {
				b := bytes.Repeat([]byte{'a'}, n)
				b[at] = byte(c)
				if control, high := controlOrHigh(b); control != (c < 0x20) || high != (c >= 0x80) {
					t.Fatalf("%q: controlOrHigh %v %v", b, control, high)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		x := r.Uint64()
		check(x)
		check(x | highs)  // every byte high
		check(x &^ highs) // every byte ASCII
	}
}

// appendString skips eight plain bytes at a time: every byte value, at
// every offset of strings long enough for a word or two and a tail, is
// written as encoding/json writes it.
func TestAppendStringWords(t *testing.T) {
	for n := 1; n <= 19; n++ {
		for at := 0; at < n; at++ {
			for c := 0; c < 256; c++ {
				b := bytes.Repeat([]byte{'a'}, n)
				b[at] = byte(c)
				want, err := json.Marshal(string(b))
				if err != nil {
					t.Fatal(err)
				}
				want = bytes.ReplaceAll(bytes.ReplaceAll(bytes.ReplaceAll(want,
					[]byte(`\u003c`), []byte("<")), []byte(`\u003e`), []byte(">")), []byte(`\u0026`), []byte("&"))
				if got := appendString(nil, string(b)); !bytes.Equal(got, want) {
					t.Fatalf("%q: got %s, encoding/json (no HTML escaping) %s", b, got, want)
				}
			}
		}
	}
}

// BenchmarkAppendLogLine encodes lines of 100 bytes of valid UTF-8 one by
// one, as a log writer does for every line a container writes.
func BenchmarkAppendLogLine(b *testing.B) {
	text := []byte(strings.Repeat("x", 90) + "|é ünïcode")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		dst = AppendLogLine(dst[:0], 42, Stdout, text, false, false)
	}
}

// oldLogLine is a LogLine as readers that do not know "raw" decode it, and
// as gantry wrote it before "raw": a plain struct of encoding/json's.
type oldLogLine struct {
	Seq       int64  `json:"seq"`
	Stream    string `json:"stream"`
	Text      string `json:"text"`
	Partial   bool   `json:"partial,omitempty"`
	NoNewline bool   `json:"noNewline,omitempty"`
}

type oldLogBatch struct {
	V         PayloadVersion `json:"v"`
	RunID     string         `json:"runId"`
	Attempt   int            `json:"attempt"`
	Container string         `json:"container"`
	Time      time.Time      `json:"time"`
	Lines     []oldLogLine   `json:"lines"`
}

// checkLogBytes checks that text, as a line's bytes, comes back exactly
// from every way gantry writes and reads a batch, and that a reader that
// does not know "raw" reads what it read before it existed.
func checkLogBytes(t *testing.T, text string, partial, noNewline bool) {
	t.Helper()
	line := LogLine{Seq: 3, Stream: Stderr, Text: text, Partial: partial, NoNewline: noNewline}
	b := &LogBatch{RunID: "r", Attempt: 1, Container: "main", Time: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC),
		Lines: []LogLine{{Seq: 1, Stream: Stdout, Text: "before"}, line, {Seq: 4, Stream: Stdout, Text: "after"}}}
	doc := AppendLogBatch(nil, b)
	if enc := appendEncoded(b); !bytes.Equal(enc, doc) {
		t.Fatalf("%q: line by line %s, AppendLogBatch %s", text, enc, doc)
	}
	viaJSON, err := json.Marshal(b)
	if err != nil {
		t.Fatalf("%q: encoding/json: %v", text, err)
	}
	for name, data := range map[string][]byte{"AppendLogBatch": doc, "encoding/json": viaJSON} {
		var fast, slow LogBatch
		if err := DecodeLogBatch(data, &fast); err != nil || !reflect.DeepEqual(&fast, b) {
			t.Fatalf("%q written by %s, read by DecodeLogBatch: %v\n got %+v\nwant %+v", text, name, err, fast, *b)
		}
		if err := json.Unmarshal(data, &slow); err != nil || !reflect.DeepEqual(&slow, b) {
			t.Fatalf("%q written by %s, read by encoding/json: %v\n got %+v\nwant %+v", text, name, err, slow, *b)
		}
	}
	// Readers of before: the same document where the text is valid
	// UTF-8, and the same lines (U+FFFD for bad bytes) where it is not.
	old := &oldLogBatch{V: b.V, RunID: b.RunID, Attempt: b.Attempt, Container: b.Container, Time: b.Time}
	for _, l := range b.Lines {
		old.Lines = append(old.Lines, oldLogLine(l))
	}
	var oldDoc bytes.Buffer
	enc := json.NewEncoder(&oldDoc)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(old); err != nil {
		t.Fatal(err)
	}
	oldDocBytes := bytes.TrimSuffix(oldDoc.Bytes(), []byte("\n"))
	valid := utf8.ValidString(text)
	if valid != bytes.Equal(doc, oldDocBytes) {
		t.Fatalf("%q (valid UTF-8: %v): document\n%s\nbefore raw\n%s", text, valid, doc, oldDocBytes)
	}
	if got := bytes.Contains(doc, []byte(`"raw"`)); got == valid {
		t.Fatalf("%q (valid UTF-8: %v): raw written: %v", text, valid, got)
	}
	var readOld, readNew oldLogBatch
	if err := json.Unmarshal(oldDocBytes, &readOld); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc, &readNew); err != nil || !reflect.DeepEqual(readNew, readOld) {
		t.Fatalf("%q: a reader without raw got %+v (%v), before raw %+v", text, readNew, err, readOld)
	}
}

func TestLogLineBytesRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, text := range []string{
		"", "plain", "café", "caf\xe9", // latin-1
		"\xff\xfe\xfd", "\x00\x01\x1f\x7f\x80",
		"\xc3",             // a rune cut short
		"\xed\xa0\x80",     // a surrogate, which UTF-8 may not hold
		"\xf4\x90\x80\x80", // past U+10FFFF
		"\xc0\xaf",         // overlong
		"\"quote\\ \u2028 \xe9 <&>",
		"\ufffd", // a real U+FFFD stays one, without raw
		string(all),
		strings.Repeat("é\xe9", 1000),
	} {
		checkLogBytes(t, text, false, false)
		checkLogBytes(t, text, true, false)
		checkLogBytes(t, text, false, true)
	}
}

// FuzzLogLineBytes: any bytes in, the same bytes out.
func FuzzLogLineBytes(f *testing.F) {
	f.Add([]byte("caf\xe9"), false, false)
	f.Add([]byte("\x00\xff\"\\\u2029"), true, false)
	f.Add([]byte("é"), false, true)
	f.Fuzz(func(t *testing.T, text []byte, partial, noNewline bool) {
		checkLogBytes(t, string(text), partial, noNewline)
	})
}

// TestDecodeLogBatchRaw: documents with "raw" that the fast path does not
// take (null, escapes, bad base64, twice) decode as encoding/json decodes
// them through LogLine.UnmarshalJSON.
func TestDecodeLogBatchRaw(t *testing.T) {
	for _, c := range []struct {
		doc, text string
		err       bool
	}{
		{doc: `{"lines":[{"seq":1,"stream":"stdout","text":"caf\ufffd","raw":"Y2Fm6Q=="}]}`, text: "caf\xe9"},
		{doc: `{"lines":[{"raw":"Y2Fm6Q==","seq":1,"stream":"stdout","text":"caf\ufffd"}]}`, text: "caf\xe9"},
		{doc: `{"lines":[{"seq":1,"stream":"stdout","text":"x","raw":""}]}`, text: ""},
		{doc: `{"lines":[{"seq":1,"stream":"stdout","text":"x","raw":null}]}`, text: "x"},
		{doc: `{"lines":[{"seq":1,"stream":"stdout","text":"x","raw":"Y2Fm\u0036Q=="}]}`, text: "caf\xe9"},
		{doc: `{"lines":[{"seq":1,"stream":"stdout","text":"x","raw":"QQ==","raw":"Qg=="}]}`, text: "B"},
		{doc: `{"lines":[{"seq":1,"stream":"stdout","text":"x","raw":"not base64"}]}`, err: true},
		{doc: `{"lines":[{"seq":1,"stream":"stdout","text":"x","raw":1}]}`, err: true},
	} {
		var fast, slow LogBatch
		errFast, errSlow := DecodeLogBatch([]byte(c.doc), &fast), json.Unmarshal([]byte(c.doc), &slow)
		if (errFast != nil) != c.err || (errSlow != nil) != c.err {
			t.Errorf("%s: errors %v and %v, want error %v", c.doc, errFast, errSlow, c.err)
			continue
		}
		if c.err {
			continue
		}
		if !reflect.DeepEqual(fast, slow) || len(fast.Lines) != 1 || fast.Lines[0].Text != c.text {
			t.Errorf("%s: got %+v, encoding/json %+v, want text %q", c.doc, fast, slow, c.text)
		}
	}
}
