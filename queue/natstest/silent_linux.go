package natstest

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// SilentAddr returns a loopback address (host:port) where connections
// get no answer, as on a host that is down or behind a firewall that
// drops them: a socket listens there with a backlog of 0 and accepts
// nothing, and once one connection fills its queue Linux drops the SYN of
// the next ones (net.ipv4.tcp_abort_on_overflow=0, the default), which
// time out. It needs no network. It closes when the test ends.
func SilentAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	filler, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err == nil {
		c.Close()
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("a connection beyond the backlog of %s did not time out (%v): "+
			"is net.ipv4.tcp_abort_on_overflow set?", addr, err)
	}
	return addr
}
