package worker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs functions on goroutines it keeps for a while after they
// finish. A job's goroutine grows its stack (JSON encoding alone needs
// several kilobytes), and a new goroutine for every job paid for that
// growth each time: about 5% of a busy worker's CPU. The server answers
// its API requests on one too.
type Pool struct {
	work chan func()
	wg   sync.WaitGroup

	started, live atomic.Int64 // goroutines, for tests
}

// poolIdle is how long a goroutine waits for more work before it ends.
const poolIdle = 10 * time.Second

// NewPool returns an empty pool; its goroutines start as work comes.
func NewPool() *Pool { return &Pool{work: make(chan func())} }

// Go runs f on an idle goroutine of the pool, or on a new one.
func (p *Pool) Go(f func()) {
	p.wg.Add(1)
	select {
	case p.work <- f:
	default:
		p.started.Add(1)
		p.live.Add(1)
		go p.loop(f)
	}
}

// Wait waits for every function given to Go to return.
func (p *Pool) Wait() { p.wg.Wait() }

// Close ends the idle goroutines; Go must not be called after it.
func (p *Pool) Close() { close(p.work) }

func (p *Pool) loop(f func()) {
	defer p.live.Add(-1)
	idle := time.NewTimer(poolIdle)
	defer idle.Stop()
	for {
		f()
		p.wg.Done()
		idle.Reset(poolIdle)
		var ok bool
		select {
		case f, ok = <-p.work:
			if !ok {
				return
			}
		case <-idle.C:
			return
		}
	}
}
