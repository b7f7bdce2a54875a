package jobs

import (
	"strings"
	"testing"
)

// TestTimezoneSuggests: a misspelt, miscased or bare-city time zone is
// refused with the zone it likely stands for; one close to none without.
func TestTimezoneSuggests(t *testing.T) {
	for _, c := range []struct{ tz, want string }{
		{"Europe/Pari", `"Europe/Pari": not an IANA time zone; did you mean "Europe/Paris"?`},
		{"europe/paris", `"europe/paris": not an IANA time zone; did you mean "Europe/Paris"?`},
		{"Paris", `"Paris": not an IANA time zone; did you mean "Europe/Paris"?`},
		{"New York", `"New York": not an IANA time zone; did you mean "America/New_York"?`},
		{"America/Sao_Paolo", `did you mean "America/Sao_Paulo"?`},
		{"Mars/Olympus", `"Mars/Olympus": not an IANA time zone (like Europe/Paris)`},
	} {
		s := Schedule{Cron: "0 2 * * *", Timezone: c.tz}
		_, err := s.Location()
		if err == nil || !strings.HasSuffix(err.Error(), c.want) {
			t.Errorf("timezone %q: %v, want it to end %q", c.tz, err, c.want)
		}
		if verr := s.Validate(); verr == nil || !strings.Contains(verr.Error(), "timezone: "+err.Error()) {
			t.Errorf("timezone %q: Validate: %v, want %q", c.tz, verr, "timezone: "+err.Error())
		}
	}
}
