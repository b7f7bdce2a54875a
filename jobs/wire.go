package jobs

import (
	"bytes"
	"fmt"
)

// PayloadVersion is the version of the payloads gantry publishes for any
// NATS client to read: run events (gantry.events.runs.<run>), pipeline
// events (gantry.events.pipelines.<id>) and log batches
// (gantry.logs.<run>.<container>). It takes no space: it always encodes as
// "v":1, and decodes any version. Within a version fields are only added;
// a change that breaks readers would bump it.
type PayloadVersion struct{}

// CurrentPayloadVersion is what PayloadVersion encodes as.
const CurrentPayloadVersion = 1

var payloadVersionJSON = []byte(fmt.Sprint(CurrentPayloadVersion))

// MarshalJSON encodes the current version.
func (PayloadVersion) MarshalJSON() ([]byte, error) { return payloadVersionJSON, nil }

// UnmarshalJSON accepts any version number.
func (*PayloadVersion) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || (b[0] < '0' || b[0] > '9') && !bytes.Equal(b, []byte("null")) {
		return fmt.Errorf("v: want a version number, got %s", b)
	}
	return nil
}
