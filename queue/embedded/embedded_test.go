package embedded

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestServerErrorsReachTheLog: the NATS server's warnings and errors (a
// store's "Critical write error" on a full disk, say) reach Options.Log;
// before, the embedded server logged nothing at all, and a stream that
// stopped storing said nowhere why. The warning about plaintext passwords,
// which are gantry's flags, is not passed on.
func TestServerErrorsReachTheLog(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ns, err := Start(Options{StoreDir: t.TempDir(), User: "op", Password: "secret",
		Log: func(level Level, msg string) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, string(level)+": "+msg)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	ns.Errorf("Filestore [GANTRY_LOGS] Critical write error: %v", "no space left on device")
	ns.Warnf("something to know")
	mu.Lock()
	defer mu.Unlock()
	want := []string{"error: Filestore [GANTRY_LOGS] Critical write error: no space left on device", "warn: something to know"}
	if !slices.Equal(got, want) {
		t.Fatalf("log got %q, want %q", got, want)
	}
}

// TestStartRefusesAPortOutOfRange: --nats-port 99999 was refused as "port
// 99999 on 127.0.0.1 is in use", and -1 took a random port.
func TestStartRefusesAPortOutOfRange(t *testing.T) {
	for _, port := range []int{-1, 65536, 99999} {
		ns, err := Start(Options{StoreDir: t.TempDir(), Port: port})
		if ns != nil {
			ns.Shutdown()
		}
		want := fmt.Sprintf("embedded nats: port %d: want 1 to 65535, or 0 for a free one (--nats-port)", port)
		if err == nil || err.Error() != want {
			t.Errorf("port %d: %v, want %q", port, err, want)
		}
	}
}
