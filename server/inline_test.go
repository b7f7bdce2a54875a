package server

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestInlineTaskDefinitionsAreParsedOnce: the same inline document is
// parsed once; another document, or a reference, is not mixed up with it;
// a bad document is refused every time with its field path.
func TestInlineTaskDefinitionsAreParsedOnce(t *testing.T) {
	s := &Server{}
	a := &jobs.SubmitRequest{TaskDefinition: []byte(`{"family":"a","containerDefinitions":[{"name":"main","image":"x"}]}`)}
	b := &jobs.SubmitRequest{TaskDefinition: []byte(`{"family":"b","containerDefinitions":[{"name":"main","image":"x"}]}`)}
	_, a1, err := s.taskRef(a)
	if err != nil {
		t.Fatal(err)
	}
	_, a2, _ := s.taskRef(a)
	_, b1, _ := s.taskRef(b)
	if a1 != a2 || a1.Family != "a" || b1.Family != "b" {
		t.Fatalf("a %p %p %s, b %s", a1, a2, a1.Family, b1.Family)
	}
	if ref, td, err := s.taskRef(&jobs.SubmitRequest{TaskDefinition: []byte(`"etl:3"`)}); err != nil || ref != "etl:3" || td != nil {
		t.Fatalf("reference: %q %v %v", ref, td, err)
	}
	bad := &jobs.SubmitRequest{TaskDefinition: []byte(`{"family":"c","containerDefinitions":[{"name":"main","image":"x","memmory":5}]}`)}
	for range 2 {
		if _, _, err := s.taskRef(bad); err == nil || !strings.Contains(err.Error(), "taskDefinition.containerDefinitions[0].memmory") {
			t.Fatalf("bad: %v", err)
		}
	}
}
