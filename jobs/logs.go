package jobs

import "time"

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
