package client

import (
	"bytes"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
)

// errorKey is how every failed reply (server.ErrorReply) begins its only
// member. A successful reply holds it only if some object in it has a
// member named error or a string "error", which sends it through the slow
// path below: still right, only slower.
var errorKey = []byte(`"error"`)

// decodeReply decodes a reply of the API into out, or returns the API
// error it carries; err is for a reply that does not decode. Replies are
// decoded once: the probe for an error runs only on the replies that could
// hold one.
func decodeReply(data []byte, out any) (apiErr *jobs.Error, err error) {
	if bytes.Contains(data, errorKey) {
		var e struct {
			Error *jobs.Error `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != nil {
			return e.Error, nil
		}
	}
	return nil, json.Unmarshal(data, out)
}
