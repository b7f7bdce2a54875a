package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Webhooks (migration 0013, jobs/webhook.go). Every write that ends a run
// or a pipeline run (ApplyEvents, UpdateRun, RequeueRun, CreateRun,
// UpdatePipelineRun, CreatePipelineRun) writes, in its own transaction, a
// webhook_deliveries row per hook that hears of the end: a crash leaves
// the end and its deliveries, or neither. The hooks are matched in memory
// (hookSet): with no hook, an end costs one atomic load more and no
// statement; with hooks, no query either, only an insert per delivery.
//
// The set is read inside each writing transaction, and the store has one
// writer connection: a transaction that read the set before a change
// holds the connection, so a write after the change waits for it to
// commit. DeleteWebhook relies on that to drop the deliveries such a
// transaction may still add for the hook it deleted.

// hookSet is the hooks an end is matched against; a nil set means none.
type hookSet struct {
	hooks []storedHook
}

type storedHook struct {
	id int64
	jobs.Webhook
}

// Outboxed is told (capacity 1, never blocking the writer) after a commit
// that added deliveries: the server's sender wakes on it.
func (db *DB) Outboxed() <-chan struct{} { return db.outboxed }

func (db *DB) notifyOutbox() {
	select {
	case db.outboxed <- struct{}{}:
	default:
	}
}

// hooksNow is the set for a transaction to match ends against, nil when
// no hook exists.
func (db *DB) hooksNow() *hookSet { return db.hooks.Load() }

// outboxRun writes the deliveries of r's end, if it just ended (before is
// its status before the write), to the hooks of set that hear of it, in
// tx. It reports whether it wrote any.
func outboxRun(ctx context.Context, tx *sql.Tx, set *hookSet, r *jobs.Run, before jobs.Status) (bool, error) {
	if set == nil || before.Terminal() || !r.Status.Terminal() {
		return false, nil
	}
	match := jobs.RunEndMatch(r)
	return outboxEvent(ctx, tx, set, &match, func() *jobs.WebhookEvent { return jobs.RunEndEvent(r) })
}

// outboxPipelineRun is outboxRun for a pipeline run.
func outboxPipelineRun(ctx context.Context, tx *sql.Tx, set *hookSet, pr *jobs.PipelineRun, before jobs.Status) (bool, error) {
	if set == nil || before.Terminal() || !pr.Status.Terminal() {
		return false, nil
	}
	match := jobs.PipelineRunEndMatch(pr)
	return outboxEvent(ctx, tx, set, &match, func() *jobs.WebhookEvent { return jobs.PipelineRunEndEvent(pr) })
}

// outboxEvent writes an end's deliveries to the hooks of set that match
// it (match holds what they read, jobs.RunEndMatch), building the event
// and its body only once one does: most ends no hook hears of (a hook on
// failures, a run that succeeded) cost no more than the matching.
func outboxEvent(ctx context.Context, tx *sql.Tx, set *hookSet, match *jobs.WebhookEvent, event func() *jobs.WebhookEvent) (bool, error) {
	var (
		ev   *jobs.WebhookEvent
		body []byte
	)
	for i := range set.hooks {
		h := &set.hooks[i]
		if !h.Matches(match) {
			continue
		}
		if body == nil {
			ev = event()
			var err error
			if body, err = json.Marshal(ev); err != nil {
				return false, fmt.Errorf("webhook event %s: %w", ev.EventID, err)
			}
		}
		at := time.Now()
		if ev.StoppedAt != nil {
			at = *ev.StoppedAt
		}
		// The same end written twice (a write run again by the group
		// committer) is one delivery.
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO webhook_deliveries (hook_id, event_id, body, created_at, next_at)
			VALUES (?, ?, ?, ?, 0)`, h.id, ev.EventID, body, unixNano(at)); err != nil {
			return false, fmt.Errorf("webhook %s: queue event %s: %w", h.Name, ev.EventID, err)
		}
	}
	return body != nil, nil
}

// loadHooks reads every hook into the in-memory set: at Open, and after
// each change. Callers changing hooks hold hooksMu.
func (db *DB) loadHooks(ctx context.Context) error {
	rows, err := db.w.QueryContext(ctx, `SELECT id, doc, secret FROM webhooks ORDER BY name`)
	if err != nil {
		return fmt.Errorf("load webhooks: %w", err)
	}
	defer rows.Close()
	var hooks []storedHook
	for rows.Next() {
		var (
			h   storedHook
			doc []byte
		)
		if err := rows.Scan(&h.id, &doc, &h.Secret); err != nil {
			return fmt.Errorf("load webhooks: %w", err)
		}
		if err := json.Unmarshal(doc, &h.Webhook); err != nil {
			return fmt.Errorf("load webhooks: decode hook %d: %w", h.id, err)
		}
		hooks = append(hooks, h)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load webhooks: %w", err)
	}
	if len(hooks) == 0 {
		db.hooks.Store(nil)
		return nil
	}
	db.hooks.Store(&hookSet{hooks: hooks})
	return nil
}

// AddWebhook stores h (validated by the caller), which ends from then on
// are matched against. A name already taken is an error with code
// already_exists.
func (db *DB) AddWebhook(ctx context.Context, h *jobs.Webhook) error {
	doc, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("add webhook %s: %w", h.Name, err)
	}
	db.hooksMu.Lock()
	defer db.hooksMu.Unlock()
	_, err = db.w.ExecContext(ctx, `INSERT INTO webhooks (name, doc, secret, created_at) VALUES (?, ?, ?, ?)`,
		h.Name, doc, h.Secret, unixNano(h.CreatedAt))
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return &jobs.Error{Code: jobs.CodeAlreadyExists,
			Message: fmt.Sprintf("webhook %s already exists: delete it first (gantry webhook delete %s)", h.Name, h.Name)}
	}
	if err != nil {
		return fmt.Errorf("add webhook %s: %w", h.Name, err)
	}
	// Stored: a failed reload leaves the old set until the next change
	// or start, which the caller reports.
	return db.loadHooks(uninterrupted(ctx))
}

// GetWebhook returns hook name with its secret, or an error wrapping
// jobs.ErrNotFound.
func (db *DB) GetWebhook(ctx context.Context, name string) (*jobs.Webhook, error) {
	var (
		h   jobs.Webhook
		doc []byte
	)
	err := db.r.QueryRowContext(ctx, `SELECT doc, secret FROM webhooks WHERE name = ?`, name).Scan(&doc, &h.Secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("webhook %s: %w", name, jobs.ErrNotFound)
	}
	if err == nil {
		err = json.Unmarshal(doc, &h)
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook %s: %w", name, err)
	}
	return &h, nil
}

// ListWebhooks returns every hook, by name, with its last try and its
// deliveries pending, delivered and failed; never a secret.
func (db *DB) ListWebhooks(ctx context.Context) ([]jobs.WebhookInfo, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT doc, last_at, last_status, last_error, delivered, failed,
		(SELECT COUNT(*) FROM webhook_deliveries d WHERE d.hook_id = h.id)
		FROM webhooks h ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	out := []jobs.WebhookInfo{}
	for rows.Next() {
		var (
			w       jobs.WebhookInfo
			doc     []byte
			lastAt  int64
			lastTry jobs.WebhookTry
		)
		if err := rows.Scan(&doc, &lastAt, &lastTry.Status, &lastTry.Error, &w.Delivered, &w.Failed, &w.Pending); err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		if err := json.Unmarshal(doc, &w.Webhook); err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		if lastAt != 0 {
			lastTry.At = time.Unix(0, lastAt).UTC()
			w.Last = &lastTry
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook deletes hook name and drops its pending deliveries,
// returning how many. A missing hook is an error wrapping jobs.ErrNotFound.
func (db *DB) DeleteWebhook(ctx context.Context, name string) (int, error) {
	db.hooksMu.Lock()
	defer db.hooksMu.Unlock()
	var (
		id      int64
		dropped int64
	)
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("delete webhook %s: %w", name, err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, `SELECT id FROM webhooks WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("webhook %s: %w", name, jobs.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("delete webhook %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id); err != nil {
		return 0, fmt.Errorf("delete webhook %s: %w", name, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE hook_id = ?`, id)
	if err == nil {
		dropped, err = res.RowsAffected()
	}
	if err != nil {
		return 0, fmt.Errorf("delete webhook %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("delete webhook %s: %w", name, err)
	}
	ctx = uninterrupted(ctx)
	if err := db.loadHooks(ctx); err != nil {
		return int(dropped), err
	}
	// A transaction that read the set before the reload may have queued
	// an end for the hook after the delete above: it has committed by
	// now (one writer connection), and nothing reads the old set since.
	res, err = db.w.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE hook_id = ?`, id)
	if err != nil {
		return int(dropped), fmt.Errorf("delete webhook %s: %w", name, err)
	}
	late, _ := res.RowsAffected()
	return int(dropped + late), nil
}

// Delivery is one end to POST to one hook.
type Delivery struct {
	ID        int64
	HookID    int64
	Hook      string // name
	URL       string
	Secret    string
	EventID   string
	Body      []byte
	CreatedAt time.Time
	NextAt    time.Time
	Tries     int
}

// WebhookIDs are the ids of the hooks that exist, from memory: the
// sender reads each one's deliveries (HookDeliveries).
func (db *DB) WebhookIDs() []int64 {
	set := db.hooksNow()
	if set == nil {
		return nil
	}
	ids := make([]int64, len(set.hooks))
	for i := range set.hooks {
		ids[i] = set.hooks[i].id
	}
	return ids
}

// HookDeliveries returns up to limit deliveries of hook id in the order
// they are due (soonest first), those due or not: the sender starts the
// due ones and sleeps until the next. It costs a seek however many
// deliveries other hooks have waiting.
func (db *DB) HookDeliveries(ctx context.Context, id int64, limit int) ([]Delivery, error) {
	return db.deliveries(ctx, `SELECT d.id, d.hook_id, h.name, h.doc, h.secret, d.event_id, d.body, d.created_at, d.next_at, d.tries
		FROM webhook_deliveries d INDEXED BY webhook_deliveries_hook_next JOIN webhooks h ON h.id = d.hook_id
		WHERE d.hook_id = ? ORDER BY d.next_at, d.id LIMIT ?`, id, limit)
}

// Deliveries returns up to limit deliveries of every hook, soonest due
// first: what the outbox holds, for inspection (it sorts them all).
// Deliveries of a deleted hook are left out.
func (db *DB) Deliveries(ctx context.Context, limit int) ([]Delivery, error) {
	return db.deliveries(ctx, `SELECT d.id, d.hook_id, h.name, h.doc, h.secret, d.event_id, d.body, d.created_at, d.next_at, d.tries
		FROM webhook_deliveries d JOIN webhooks h ON h.id = d.hook_id
		ORDER BY d.next_at, d.id LIMIT ?`, limit)
}

func (db *DB) deliveries(ctx context.Context, query string, args ...any) ([]Delivery, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var (
			d               Delivery
			doc             []byte
			created, nextAt int64
		)
		if err := rows.Scan(&d.ID, &d.HookID, &d.Hook, &doc, &d.Secret, &d.EventID, &d.Body, &created, &nextAt, &d.Tries); err != nil {
			return nil, fmt.Errorf("list webhook deliveries: %w", err)
		}
		var h jobs.Webhook
		if err := json.Unmarshal(doc, &h); err != nil {
			return nil, fmt.Errorf("list webhook deliveries: hook %s: %w", d.Hook, err)
		}
		d.URL = h.URL
		d.CreatedAt, d.NextAt = time.Unix(0, created).UTC(), time.Unix(0, nextAt).UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return out, nil
}

// DeliveryResult is how a delivery's try went, for RecordDelivery.
type DeliveryResult struct {
	jobs.WebhookTry
	// Delivered: the answer was 2xx; the delivery leaves.
	Delivered bool
	// Retry, when not zero and not Delivered, is when to try again;
	// zero and not Delivered: given up, the delivery leaves as failed.
	Retry time.Time
	// Expire, when not zero and not Delivered, gives up the hook's other
	// deliveries created before it too: a receiver down for longer than
	// the give-up age would otherwise see its backlog given up one try
	// (one backoff) at a time, slower than new ends come.
	Expire time.Time
}

// RecordDelivery records a try of delivery d on its row and on its
// hook's counts, in one transaction, and returns how many of the hook's
// other deliveries it gave up (res.Expire). A delivery already gone (its
// hook deleted meanwhile) changes nothing.
func (db *DB) RecordDelivery(ctx context.Context, d *Delivery, res DeliveryResult) (int, error) {
	var expired int64
	err := db.inGroup(ctx, func(tx *sql.Tx) error {
		ctx := uninterrupted(ctx)
		var (
			r   sql.Result
			err error
		)
		if res.Delivered || res.Retry.IsZero() {
			r, err = tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id = ?`, d.ID)
		} else {
			r, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET tries = tries + 1, next_at = ? WHERE id = ?`,
				unixNano(res.Retry), d.ID)
		}
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			return err
		}
		expired = 0
		if !res.Delivered && !res.Expire.IsZero() {
			if r, err = tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE hook_id = ? AND created_at < ? AND id != ?`,
				d.HookID, unixNano(res.Expire), d.ID); err != nil {
				return err
			}
			if expired, err = r.RowsAffected(); err != nil {
				return err
			}
		}
		var delivered, failed int64
		switch {
		case res.Delivered:
			delivered = 1
		case res.Retry.IsZero():
			failed = 1
		}
		failed += expired
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET last_at = ?, last_status = ?, last_error = ?,
			delivered = delivered + ?, failed = failed + ?, fails = CASE WHEN ? THEN 0 ELSE fails + 1 END WHERE id = ?`,
			unixNano(res.At), res.Status, res.Error, delivered, failed, res.Delivered, d.HookID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("record delivery of %s to webhook %s: %w", d.EventID, d.Hook, err)
	}
	return int(expired), nil
}

// EndHookBackoff forgets the failures in a row of the hook named (a
// receiver shown to answer again, by webhooks.test) and makes its
// deliveries waiting for a later try due at now; it returns the hook's id.
func (db *DB) EndHookBackoff(ctx context.Context, name string, now time.Time) (int64, error) {
	var id int64
	err := db.inGroup(ctx, func(tx *sql.Tx) error {
		ctx := uninterrupted(ctx)
		if err := tx.QueryRowContext(ctx, `UPDATE webhooks SET fails = 0 WHERE name = ? RETURNING id`, name).Scan(&id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_at = ? WHERE hook_id = ? AND next_at > ?`,
			unixNano(now), id, unixNano(now))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("webhook %s: %w", name, jobs.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("end the backoff of webhook %s: %w", name, err)
	}
	db.notifyOutbox()
	return id, nil
}

// HookFailing is a hook whose latest tries failed: Fails in a row, the
// latest at Last.
type HookFailing struct {
	Fails int
	Last  time.Time
}

// FailingHooks returns, by hook id, the hooks whose latest try failed
// (RecordDelivery counts the failures in a row): the sender backs them
// off at start as it did before (server/webhooks.go).
func (db *DB) FailingHooks(ctx context.Context) (map[int64]HookFailing, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, fails, last_at FROM webhooks WHERE fails > 0`)
	if err != nil {
		return nil, fmt.Errorf("list failing webhooks: %w", err)
	}
	defer rows.Close()
	out := map[int64]HookFailing{}
	for rows.Next() {
		var (
			id   int64
			f    HookFailing
			last int64
		)
		if err := rows.Scan(&id, &f.Fails, &last); err != nil {
			return nil, fmt.Errorf("list failing webhooks: %w", err)
		}
		f.Last = time.Unix(0, last).UTC()
		out[id] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list failing webhooks: %w", err)
	}
	return out, nil
}
