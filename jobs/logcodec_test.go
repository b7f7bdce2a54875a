package jobs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func sampleBatch() *LogBatch {
	return &LogBatch{RunID: "01jf", Attempt: 2, Container: "main", Time: time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC),
		Lines: []LogLine{{Seq: 1, Stream: Stdout, Text: "hello"}, {Seq: 2, Stream: Stderr, Text: "tab\tquote\" back\\ é <&> \u2028 \x01", Partial: true},
			{Seq: 3, Stream: Stdout, Text: ""}}}
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
	f.Add(string(AppendLogBatch(nil, sampleBatch())), "text", int64(7), false)
	f.Add(`{"runId":"a\"b","lines":[]}`, "x\xff\x00", int64(-1), true)
	f.Fuzz(func(t *testing.T, doc, text string, seq int64, partial bool) {
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
			Lines: []LogLine{{Seq: seq, Stream: text, Text: text, Partial: partial}}}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(b)
		if got := AppendLogBatch(nil, b); string(got)+"\n" != want.String() {
			t.Fatalf("got %s want %s", got, want.String())
		}
	})
}
