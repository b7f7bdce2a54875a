package main

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// slowCollector blocks each Collect until release is closed, saying on
// entered that a scrape is in it.
type slowCollector struct {
	entered chan struct{}
	release chan struct{}
	done    *atomic.Bool
}

var slowDesc = prometheus.NewDesc("test_slow", "A gauge collected slowly.", nil, nil)

func (c slowCollector) Describe(ch chan<- *prometheus.Desc) { ch <- slowDesc }

func (c slowCollector) Collect(ch chan<- prometheus.Metric) {
	close(c.entered)
	<-c.release
	ch <- prometheus.MustNewConstMetric(slowDesc, prometheus.GaugeValue, 1)
	c.done.Store(true)
}

// TestMetricsServeWaitsForScrapes: the endpoint stopping (its role has
// stopped) returns only once the scrapes in flight have ended, so that
// none reads from a store or a connection closed after it returned.
func TestMetricsServeWaitsForScrapes(t *testing.T) {
	e, err := (&metricsFlag{addr: "127.0.0.1:0"}).listen()
	if err != nil {
		t.Fatal(err)
	}
	c := slowCollector{entered: make(chan struct{}), release: make(chan struct{}), done: new(atomic.Bool)}
	e.reg.MustRegister(c)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.serve(ctx, zerolog.Nop()) }()
	scraped := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + e.ln.Addr().String() + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		scraped <- err
	}()
	<-c.entered
	cancel()
	// The scrape is let go a while after: serve returning before then is
	// the fault this test looks for; returning after, it passes at any
	// speed.
	go func() { time.Sleep(200 * time.Millisecond); close(c.release) }()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !c.done.Load() {
		t.Error("serve returned with a scrape still collecting")
	}
	if err := <-scraped; err != nil {
		t.Errorf("the scrape in flight at the stop: %v", err)
	}
}
