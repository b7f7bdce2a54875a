package worker

import (
	"context"
	"time"
)

// Bounds of the worker's look at its runtime (Pinger).
const (
	// runtimePingEvery is how often a runtime that does not answer is
	// pinged again.
	runtimePingEvery = 2 * time.Second
	pingTimeout      = 10 * time.Second
)

// ping asks the runtime whether it answers; nil too for a runtime that
// cannot be pinged.
func (w *Worker) ping(ctx context.Context) error {
	p, ok := w.rt.(Pinger)
	if !ok {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return p.Ping(pctx)
}

// checkRuntime asks a runtime that failed a task whether it still answers.
// If not, the worker takes no job (roomForMore, reserve) and says why in
// its heartbeats until watchRuntime finds it answering again. It returns
// the ping's error.
func (w *Worker) checkRuntime(ctx context.Context) error {
	err := w.ping(ctx)
	if err == nil || ctx.Err() != nil {
		return err // a worker going learns nothing of its runtime
	}
	w.fl.mu.Lock()
	was := w.fl.runtimeErr
	w.fl.runtimeErr = err.Error()
	w.fl.mu.Unlock()
	if was == "" {
		w.cfg.log.Error().Err(err).Msg("container runtime unreachable: taking no jobs until it answers")
		select {
		case w.fl.down <- struct{}{}:
		default:
		}
		w.fl.notify()
	}
	return err
}

// runtimeDown reports whether the runtime was found not to answer.
func (w *Worker) runtimeDown() bool {
	w.fl.mu.Lock()
	defer w.fl.mu.Unlock()
	return w.fl.runtimeErr != ""
}

// watchRuntime pings a runtime found not to answer until it does, then
// removes what was orphaned meanwhile and lets the worker take jobs again;
// and so on until stop is closed.
func (w *Worker) watchRuntime(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-w.fl.down:
		case <-stop:
			return
		}
		t := time.NewTicker(runtimePingEvery)
		for w.runtimeDown() {
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return
			}
			if err := w.ping(ctx); err != nil {
				w.fl.mu.Lock()
				w.fl.runtimeErr = err.Error()
				w.fl.mu.Unlock()
				continue
			}
			w.removeOrphans(ctx)
			w.fl.mu.Lock()
			w.fl.runtimeErr = ""
			w.fl.mu.Unlock()
			w.cfg.log.Info().Msg("container runtime answers again: taking jobs")
			w.fl.notify()
		}
		t.Stop()
	}
}

// removeOrphans removes the containers of attempts this worker no longer
// handles: those the runtime lost track of when it went away, whose end was
// reported and whose removal failed with it. A daemon that keeps containers
// across its restarts (live-restore) would otherwise let them run on,
// beside the attempts that replaced them. An attempt handled here is left
// alone: its run was registered before its containers were created, so
// before they were listed.
func (w *Worker) removeOrphans(ctx context.Context) {
	l := w.cfg.leftovers
	if l == nil {
		return
	}
	found, err := l.Leftovers(ctx)
	if err != nil {
		w.cfg.log.Warn().Err(err).Msg("list the containers left while the runtime did not answer")
		return
	}
	for _, lo := range found {
		if w.handling(lo.RunID) {
			continue
		}
		log := w.cfg.log.With().Str("run", lo.RunID).Int("attempt", lo.Attempt).Str("worker", w.id).Logger()
		log.Warn().Bool("running", lo.Running).Msg("removing the containers of an attempt the runtime lost track of")
		if err := l.RemoveLeftover(ctx, lo); err != nil {
			log.Error().Err(err).Msg("remove leftover containers")
		}
	}
}

// handling reports whether a delivery of the run is handled here.
func (w *Worker) handling(runID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running[runID]) > 0
}
