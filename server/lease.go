package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry/queue"
)

// The lease closes the race that the ping of checkAlone leaves open: two
// servers started at the same moment (a unit on two hosts, a deploy that
// starts the new one before the old one registered) both found no one
// answering, and both ran. A server takes the lease key of its NATS
// (queue.CreateLease, a compare-and-set on "does not exist") before it
// changes anything, renews it every third of its age while it runs, and
// deletes it when it stops. The one whose create fails reads the holder:
// renewed within the age, it is refused, naming it; not renewed for
// longer (a server killed, its host lost), it takes it over with an
// update at the revision it read, which only one of two successors can
// do.

// defaultLeaseAge is how long a lease not renewed keeps another server
// out: a server killed (SIGKILL, its host lost) has a successor on
// another store wait up to this long. Its holder renews it every third.
const defaultLeaseAge = 15 * time.Second

// leaseTries bounds the rounds of take when the lease changes under it.
const leaseTries = 5

// holder is what a server writes into its lease: who it is, for the
// refusal of another one, and what says that a server restarted on its
// store may take its lease at once (restartOf).
type holder struct {
	// ID is the lease's own, new at every start: a server that reads
	// its own write (an answer lost on the way) knows it.
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Version string    `json:"version"`
	Store   string    `json:"store"` // the store's file, absolute
	Started time.Time `json:"started"`
	// Boot and StoreFile say on which running kernel, and which file,
	// the store is: the kernel's boot id (bootID), and the file's device
	// and inode. Empty where the system does not tell.
	Boot      string `json:"boot,omitempty"`
	StoreFile string `json:"storeFile,omitempty"`
	// Locked says that the server's store was locked against a second
	// process for its life (WithStoreLock).
	Locked bool `json:"locked,omitempty"`
}

// restartOf reports whether h, another server's lease, was left by a
// server of this very store, which is locked for this one: that server no
// longer runs, and this one may take its lease at once rather than wait
// for its age. Both stores locked for their server's life (cmd/gantry
// flocks the data directory, which the lock's holder keeps until it
// exits, however it ends), the same kernel since its boot, and the same
// file (device and inode, not only the path: two containers of one host
// may have the same path on different volumes) leave no room for a
// holder that still runs. A server restarted on another host, or in a
// container whose kernel rebooted, waits for the lease's age.
func (me *holder) restartOf(h *holder) bool {
	return me.Locked && h.Locked && me.Boot != "" && me.Boot == h.Boot &&
		me.StoreFile != "" && me.StoreFile == h.StoreFile
}

// parseHolder reads a lease's holder as its server wrote it. One that
// is not a holder (written by hand, or by a later version in another
// form) is named by its text, and may still be stale.
func parseHolder(data []byte) holder {
	var h holder
	if err := json.Unmarshal(data, &h); err != nil || h.Host == "" {
		const most = 200
		text := string(data[:min(len(data), most)])
		return holder{Host: "?", Version: "?", Store: "? (the lease holds " + strconv.Quote(text) + ")"}
	}
	return h
}

// refusal is the error of a server refused by h's lease, renewed renewed
// ago, whose age is age; alive says how its holder showed it runs.
func (h *holder) refusal(renewed, age time.Duration, alive string) *AnotherServerError {
	return &AnotherServerError{Host: h.Host, PID: strconv.Itoa(h.PID), Version: h.Version, Store: h.Store,
		Started: h.Started, Renewed: renewed, Age: age, Alive: alive}
}

// String names the holder in logs.
func (h *holder) String() string {
	return fmt.Sprintf("host %s, pid %d, version %s, store %s, started %s", h.Host, h.PID, h.Version, h.Store,
		h.Started.Format(time.RFC3339))
}

// leaseHolder is this server's holder.
func (s *Server) leaseHolder() *holder {
	host, _ := os.Hostname()
	return &holder{ID: s.newRunID(), Host: host, PID: os.Getpid(), Version: Version, Store: s.db.Path(),
		Started: time.Now().UTC(), Boot: bootID(), StoreFile: fileID(s.db.Path()), Locked: s.cfg.storeLocked}
}

// leaseStore keeps the server lease: the queue, or a test's wrapper.
type leaseStore interface {
	CreateLease(ctx context.Context, holder []byte) (uint64, error)
	ReadLease(ctx context.Context) (*queue.Lease, error)
	UpdateLease(ctx context.Context, holder []byte, rev uint64) (uint64, error)
	DeleteLease(ctx context.Context, rev uint64) error
}

// heldLease is the lease a server holds, at revision rev.
type heldLease struct {
	me   *holder
	data []byte // me, as written
	rev  uint64
	// sent is when the request of its last write that succeeded left:
	// the lease was written no earlier.
	sent time.Time
}

// takeLease takes the server lease, waiting (as ensureStreams) while
// JetStream cannot answer yet. A lease another server renewed within its
// age is waited for until it lapses (waitLapse); one whose server shows
// that it runs is an *AnotherServerError. ctx's end returns nil, nil.
func (s *Server) takeLease(ctx context.Context) (*heldLease, error) {
	me := s.leaseHolder()
	data, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	l := &heldLease{me: me, data: data}
	err = s.waitJetStream(ctx, "server lease taken", func(ctx context.Context) error { return s.tryLease(ctx, l) })
	if err != nil || ctx.Err() != nil {
		if l.rev != 0 { // taken as ctx ended
			s.releaseLease(ctx, l)
		}
		return nil, err
	}
	return l, nil
}

// tryLease is one try of takeLease: it creates the lease, or takes over
// one that a server of this store left (restartOf) or that no one renewed
// for its age.
func (s *Server) tryLease(ctx context.Context, l *heldLease) error {
	log := s.cfg.log
	for range leaseTries {
		sent := time.Now()
		rev, err := s.leases.CreateLease(ctx, l.data)
		if err == nil {
			l.rev, l.sent = rev, sent
			return nil
		}
		if !errors.Is(err, queue.ErrLeaseHeld) {
			return err
		}
		read := time.Now()
		cur, err := s.leases.ReadLease(ctx)
		if err != nil {
			return err
		}
		if cur == nil {
			continue // deleted since: its server stopped
		}
		if bytes.Equal(cur.Holder, l.data) {
			// An earlier try's create, whose answer was lost: written
			// cur.Age before the read, which is no earlier than read.
			l.rev, l.sent = cur.Revision, read.Add(-cur.Age)
			return nil
		}
		h := parseHolder(cur.Holder)
		restart := l.me.restartOf(&h)
		unrenewed := cur.Age
		if !restart && cur.Age < s.cfg.leaseAge {
			if cur, unrenewed, err = s.waitLapse(ctx, cur, &h); err != nil {
				return err
			}
			if cur == nil {
				continue // deleted meanwhile: its server stopped
			}
		}
		sent = time.Now()
		rev, err = s.leases.UpdateLease(ctx, l.data, cur.Revision)
		if errors.Is(err, queue.ErrLeaseChanged) {
			continue // renewed, released or taken since the read
		}
		if err != nil {
			return err
		}
		l.rev, l.sent = rev, sent
		if restart {
			log.Info().Str("previous", h.String()).Dur("renewedAgo", unrenewed).
				Msg("took over the server lease left by this store's previous server, which no longer runs " +
					"(a restart after a crash: the store is locked for this one)")
		} else {
			log.Warn().Str("previous", h.String()).Dur("renewedAgo", unrenewed).
				Msg(fmt.Sprintf("replaced a stale server lease: its holder had not renewed it for %s (longer than %s): "+
					"it is taken to be dead", unrenewed.Round(time.Millisecond), s.cfg.leaseAge))
		}
		return nil
	}
	return errors.New("server: the server lease changed at every try: other servers start beside this one")
}

// waitLapse waits for cur, h's lease, fresh, to lapse: a server killed
// or on a host lost left it, and one restarted elsewhere (systemd,
// Kubernetes, an operator failing over) would otherwise be refused for up
// to its age, and have to be started again. A live holder and a dead one
// look the same until then, but not while this one waits: a live one
// renews its lease (its revision advances within a third of its age) and
// answers the ping once it serves, and a dead one does neither. So a
// holder that answers, or a lease that changes (renewed, or taken over by
// another server), is an *AnotherServerError naming its holder; one that
// lapses by the NATS server's clock is returned, with how long it was not
// renewed, for the caller to take over at its revision, which only one of
// two successors can. A lease deleted meanwhile is nil, nil. Two servers
// started together end here: the loser waits for the winner, which
// answers once it serves, or renews within a third of the age.
//
// The wait ends by this server's clock too, the lease's age after its
// first read, whatever the NATS servers' clocks say (an R3 bucket whose
// leader changed to one whose clock is behind): a holder that did not
// write it since has given it up by then, as keepLease gives up five
// sixths of the age after its last write, which came before that read.
func (s *Server) waitLapse(ctx context.Context, cur *queue.Lease, h *holder) (*queue.Lease, time.Duration, error) {
	age := s.cfg.leaseAge
	// Often enough to see a renewal or a lapse well within a renewal's
	// interval, and the winner of a start together soon after it serves:
	// a read and a ping (bounded by the poll, well under aloneTimeout),
	// for at most the age.
	poll := min(age/15, 250*time.Millisecond)
	start := time.Now()
	end := start.Add(age)
	var said time.Time
	for {
		waited := time.Since(start)
		another, err := s.ping(ctx, poll)
		switch {
		case ctx.Err() != nil:
			return nil, 0, ctx.Err()
		case another != nil && another.Host == h.Host && another.PID == strconv.Itoa(h.PID):
			return nil, 0, h.refusal(cur.Age+waited, age, "it answers $SRV.PING.gantry (service id "+another.ID+")")
		case another != nil: // another one than the lease's: an older gantry, without the lease
			return nil, 0, another
		}
		// NATS cannot tell (err), or no one answers: it does not serve.
		if now := time.Now(); now.Sub(said) >= queue.WarnEvery {
			said = now
			s.cfg.log.Warn().Str("holder", h.String()).AnErr("ping", err).
				Msg(fmt.Sprintf("waiting for the lease of the gantry server on host %s (pid %d, store %s) to lapse: "+
					"it has not renewed for %s and does not answer; taking over in %s", h.Host, h.PID, h.Store,
					(cur.Age + waited).Round(100*time.Millisecond), max(age-cur.Age-waited, 0).Round(100*time.Millisecond)))
		}
		// Until the next poll, or the lapse if sooner; a lapse that the
		// NATS server does not see when due is polled for until end.
		pause := poll
		if left := age - cur.Age - time.Since(start); left > 0 {
			pause = min(pause, left)
		}
		t := time.NewTimer(max(min(pause, time.Until(end)), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, ctx.Err()
		case <-t.C:
		}
		next, err := s.leases.ReadLease(ctx)
		switch {
		case err != nil:
			return nil, 0, err
		case next == nil:
			return nil, 0, nil
		case next.Revision != cur.Revision:
			n := parseHolder(next.Holder)
			return nil, 0, n.refusal(next.Age, age, fmt.Sprintf("it wrote its lease while this one waited %s for it to lapse",
				time.Since(start).Round(time.Millisecond)))
		}
		// Not renewed since the first read: as long as that, and more.
		unrenewed := max(next.Age, cur.Age+time.Since(start))
		if next.Age >= age || time.Now().After(end) {
			return next, unrenewed, nil
		}
	}
}

// LeaseLostError ends a server that lost its lease: another server took
// it over, or it was deleted, or this one could not renew it before
// another might take it over. That other one writes its own store now:
// this one stops, rather than be a second writer.
type LeaseLostError struct {
	// Holder names the lease's holder now, "" where it has none or this
	// server could not read it.
	Holder string
	// Unrenewed is how long this server could not renew it, 0 where it
	// found it changed; Err is the last failure then.
	Unrenewed time.Duration
	Err       error
}

func (e *LeaseLostError) Error() string {
	const stop = ": the store's writer may now be another server, so this one stops rather than be a second writer; " +
		"start it again once the other has stopped (it is refused while one serves)"
	switch {
	case e.Unrenewed > 0:
		return fmt.Sprintf("lost the server lease: could not renew it for %s (%v), and another server may take over a lease "+
			"not renewed for its age%s", e.Unrenewed.Round(time.Millisecond), e.Err, stop)
	case e.Holder != "":
		return "lost the server lease: another gantry server took it over (" + e.Holder + ")" + stop
	}
	return "lost the server lease: it was deleted (by hand, or by another server that took it over and stopped)" + stop
}

func (e *LeaseLostError) Unwrap() error { return e.Err }

// keepLease renews l every third of the lease's age until ctx ends, and
// returns nil then. A lease found changed (another server took it over,
// or it was deleted) is a *LeaseLostError at once. A renewal that fails
// otherwise (NATS or JetStream not answering) is tried again every
// second (less for a short age), until a sixth of the age is left since the last write: then it
// is a *LeaseLostError too, as another server may take the lease over
// once its age has passed.
func (s *Server) keepLease(ctx context.Context, l *heldLease) error {
	every := s.cfg.leaseAge / 3
	retry := min(every/3, time.Second)
	// Since the last write: a successor takes it over after the whole
	// age, and this one stops before, with a sixth of it to spare.
	giveUp := s.cfg.leaseAge - s.cfg.leaseAge/6
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sent := time.Now()
		// No renewal outlasts the give-up: one that hung past it left
		// the lease to a successor meanwhile.
		deadline := l.sent.Add(giveUp)
		if d := sent.Add(every); d.Before(deadline) {
			deadline = d
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		rev, err := s.leases.UpdateLease(rctx, l.data, l.rev)
		if errors.Is(err, queue.ErrLeaseChanged) {
			err = s.leaseChanged(rctx, l)
		}
		cancel()
		switch {
		case err == nil:
			if rev != 0 {
				l.rev, l.sent = rev, sent
			}
			t.Reset(every)
		case ctx.Err() != nil:
			return nil
		case errors.As(err, new(*LeaseLostError)):
			return err
		case time.Since(l.sent) >= giveUp:
			return &LeaseLostError{Unrenewed: time.Since(l.sent), Err: err}
		default:
			s.cfg.log.Warn().Err(err).Dur("unrenewed", time.Since(l.sent)).
				Msg("could not renew the server lease; trying again until its age would lapse")
			t.Reset(min(retry, time.Until(l.sent.Add(giveUp))))
		}
	}
}

// leaseChanged reads the lease that a renewal found changed: holding this
// server's own last write (the answer to the renewal before was lost), it
// is still this one's, at its new revision (nil); else it is a
// *LeaseLostError. An error reading it is returned as such.
func (s *Server) leaseChanged(ctx context.Context, l *heldLease) error {
	cur, err := s.leases.ReadLease(ctx)
	switch {
	case err != nil:
		return err
	case cur == nil:
		return &LeaseLostError{}
	case bytes.Equal(cur.Holder, l.data):
		l.rev = cur.Revision
		return nil
	}
	h := parseHolder(cur.Holder)
	return &LeaseLostError{Holder: h.String()}
}

// releaseLease deletes l, so that the next server need not wait for its
// age. One taken over meanwhile is left to its new holder.
func (s *Server) releaseLease(ctx context.Context, l *heldLease) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), aloneTimeout)
	defer cancel()
	err := s.leases.DeleteLease(ctx, l.rev)
	if errors.Is(err, queue.ErrLeaseChanged) {
		s.cfg.log.Warn().Msg("the server lease was no longer this server's when it stopped: left to its holder")
	} else if err != nil {
		s.cfg.log.Warn().Err(err).Msg("release the server lease: the next server may wait for its age " +
			s.cfg.leaseAge.String())
	}
}
