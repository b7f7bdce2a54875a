package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// httpServe returns a role serving a small read-only HTTP API on addr, or
// nil when addr is empty: GET /healthz, /api/runs and /api/runs/{id}.
func httpServe(addr string, nc *nats.Conn, log zerolog.Logger) func(context.Context) error {
	if addr == "" {
		return nil
	}
	return func(ctx context.Context) error {
		c, err := client.New(nc)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			if nc.IsConnected() {
				w.Write([]byte("ok\n"))
				return
			}
			http.Error(w, "nats disconnected", http.StatusServiceUnavailable)
		})
		mux.HandleFunc("GET /api/runs", func(w http.ResponseWriter, r *http.Request) {
			runs, next, err := c.List(r.Context(), client.ListOptions{All: r.URL.Query().Get("all") != "", Before: r.URL.Query().Get("before")})
			writeJSON(w, map[string]any{"runs": runs, "next": next}, err)
		})
		mux.HandleFunc("GET /api/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
			run, err := c.Get(r.Context(), r.PathValue("id"))
			writeJSON(w, run, err)
		})
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		log.Info().Str("addr", ln.Addr().String()).Msg("HTTP API ready")
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := jobs.ErrorCode(err)
		status := http.StatusInternalServerError
		switch code {
		case jobs.CodeNotFound:
			status = http.StatusNotFound
		case jobs.CodeInvalidArgument:
			status = http.StatusBadRequest
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"error": jobs.Error{Code: code, Message: err.Error()}})
		return
	}
	json.NewEncoder(w).Encode(v)
}
