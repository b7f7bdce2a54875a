package jobs

import (
	_ "embed"
	"strings"
	"sync"
	"time"
)

// timezoneNames lists the IANA time zones, from Go's lib/time/zoneinfo.zip
// (unzip -Z1 it, less posixrules and Factory). The list suggests a zone
// for a misspelt one; LoadLocation still decides which zones exist here.
//
//go:embed timezones.txt
var timezoneNames string

var zoneNames = sync.OnceValue(func() []string { return strings.Fields(timezoneNames) })

// nearestZone is the time zone that name likely stands for (Europe/Paris
// for Europe/Pari, europe/paris or Paris; America/New_York for New York),
// when this host has it, or "".
func nearestZone(name string) string {
	near := Nearest(name, zoneNames())
	if near == "" {
		city := strings.ReplaceAll(strings.TrimSpace(name), " ", "_")
		for _, z := range zoneNames() {
			if i := strings.LastIndexByte(z, '/'); i >= 0 && strings.EqualFold(z[i+1:], city) {
				near = z
				break
			}
		}
	}
	if near == "" || near == name {
		return ""
	}
	if _, err := time.LoadLocation(near); err != nil {
		return ""
	}
	return near
}
