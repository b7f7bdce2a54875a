package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// ulimit [-H] [-n|-u|-s|-c]: prints the soft (or -H hard) limit on open
// files (-n, the default), processes (-u), stack (-s, KiB) or core size
// (-c, blocks), as the shell builtin does. It cannot change limits.
func ulimit(p *proc, args []string) error {
	opts, rest, err := getopt(args[1:], "HSnusc", "")
	if err != nil || len(rest) > 0 {
		return usageError("ulimit [-H] [-n|-u|-s|-c]")
	}
	res, unit := syscall.RLIMIT_NOFILE, uint64(1)
	switch {
	case has(opts, 'u'):
		res = 6 // RLIMIT_NPROC
	case has(opts, 's'):
		res, unit = syscall.RLIMIT_STACK, 1024
	case has(opts, 'c'):
		res, unit = syscall.RLIMIT_CORE, 512
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(res, &lim); err != nil {
		return err
	}
	v := lim.Cur
	if has(opts, 'H') {
		v = lim.Max
	}
	if v == ^uint64(0) {
		_, err = fmt.Fprintln(p.stdout, "unlimited")
		return err
	}
	_, err = fmt.Fprintln(p.stdout, v/unit)
	return err
}

// httpd PORT [TEXT]: serves TEXT (default "hello from gantry") with a
// newline on every path until stopped, logging one line per request.
func httpd(p *proc, args []string) error {
	if len(args) < 2 || len(args) > 3 {
		return usageError("httpd PORT [TEXT]")
	}
	port, err := strconv.Atoi(args[1])
	if err != nil || port < 1 || port > 65535 {
		return usageError("httpd PORT [TEXT]: bad port " + args[1])
	}
	text := "hello from gantry"
	if len(args) == 3 {
		text = args[2]
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	fmt.Fprintf(p.stdout, "listening on :%d\n", port)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(p.stdout, "%s %s\n", r.Method, r.URL.Path)
		fmt.Fprintln(w, text)
	})}
	go func() {
		<-p.ctx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// fetch URL: prints the body of an HTTP GET; fails on a status of 400 or
// more, or after 10 seconds.
func fetch(p *proc, args []string) error {
	if len(args) != 2 {
		return usageError("fetch URL")
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[1], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(p.stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s: %s", args[1], resp.Status)
	}
	return nil
}

// shadowBuiltins runs the ulimit applet where the interpreter has only an
// "unsupported builtin": the image's /bin/ulimit is box.
func shadowBuiltins(_ context.Context, args []string) ([]string, error) {
	if len(args) > 0 && args[0] == "ulimit" {
		args[0] = "/bin/ulimit"
	}
	return args, nil
}
