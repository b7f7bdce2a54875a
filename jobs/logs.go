package jobs

import (
	"encoding/json"
	"time"
)

// Log streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// LogLine is one line of a container's output, without its newline. A line
// longer than fits one message is carried in pieces: every piece but the
// last has Partial set, and readers join them. NoNewline marks the last
// line of a stream that its container ended without a newline (`printf
// done`), so that readers can give back the output byte for byte; readers
// that do not know it print the newline, as before it existed.
//
// Text holds the bytes as the container wrote them, valid UTF-8 or not
// (latin-1, binary). In JSON, "text" is always valid UTF-8, U+FFFD in
// place of each byte that is not; a line that had such bytes also has
// "raw", the base64 of its bytes, which UnmarshalJSON and DecodeLogBatch
// make its Text (docs/nats-api.md).
type LogLine struct {
	Seq       int64  `json:"seq"`
	Stream    string `json:"stream"`
	Text      string `json:"text"`
	Partial   bool   `json:"partial,omitempty"`
	NoNewline bool   `json:"noNewline,omitempty"`
}

// LogBatch is the payload of one message on gantry.logs.<run>.<container>:
// consecutive lines of one container of one attempt.
type LogBatch struct {
	V         PayloadVersion `json:"v"` // wire.go
	RunID     string         `json:"runId"`
	Attempt   int            `json:"attempt"`
	Container string         `json:"container"`
	Time      time.Time      `json:"time"`
	Lines     []LogLine      `json:"lines"`
}

// MarshalJSON writes the line as AppendLogBatch does: with "raw" only
// where Text is not valid UTF-8.
func (l LogLine) MarshalJSON() ([]byte, error) {
	return appendLogLine(nil, l.Seq, l.Stream, l.Text, l.Partial, l.NoNewline), nil
}

// logLineJSON is a LogLine as JSON has it.
type logLineJSON struct {
	Seq       int64  `json:"seq"`
	Stream    string `json:"stream"`
	Text      string `json:"text"`
	Raw       []byte `json:"raw"`
	Partial   bool   `json:"partial"`
	NoNewline bool   `json:"noNewline"`
}

// UnmarshalJSON reads a line; its "raw", where it has one, is its Text.
func (l *LogLine) UnmarshalJSON(data []byte) error {
	j := logLineJSON{Seq: l.Seq, Stream: l.Stream, Text: l.Text, Partial: l.Partial, NoNewline: l.NoNewline}
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*l = LogLine{Seq: j.Seq, Stream: j.Stream, Text: j.Text, Partial: j.Partial, NoNewline: j.NoNewline}
	if j.Raw != nil {
		l.Text = string(j.Raw)
	}
	return nil
}
