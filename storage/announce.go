package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// The announcement outbox (migration 0019): a row per status change the
// server made of its own accord, written in the change's transaction and
// deleted once the change's announcement is stored in JetStream. The rows
// a crash leaves name the runs whose announcements may be lost; the
// server checks them at its next start (server/announce.go). A run may
// have several rows; each is deleted by its own id, so a row deleted for
// an announcement stored never stands for a later change of the same run.

// Announcement is a row of the announcement outbox: run RunID changed,
// and its announcement was not known stored when the row was read.
type Announcement struct {
	ID    int64
	RunID string
}

// insertAnnouncement writes an outbox row for run id in tx and returns
// its id.
func insertAnnouncement(ctx context.Context, tx *sql.Tx, id string) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO announce_outbox (run_id) VALUES (?)`, id)
	if err != nil {
		return 0, fmt.Errorf("announcement outbox: %w", err)
	}
	return res.LastInsertId()
}

// AddAnnouncement writes an outbox row for run id on its own: for an
// announcement that failed or could not be confirmed, whose run must not
// be forgotten by a crash before it is announced.
func (db *DB) AddAnnouncement(ctx context.Context, id string) (int64, error) {
	var outbox int64
	err := db.inGroup(ctx, func(tx *sql.Tx) error {
		var err error
		outbox, err = insertAnnouncement(uninterrupted(ctx), tx, id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", id, err)
	}
	return outbox, nil
}

// PendingAnnouncements returns the outbox's rows, oldest first. It reads
// only them: its cost follows the announcements pending, not the runs
// stored.
func (db *DB) PendingAnnouncements(ctx context.Context) ([]Announcement, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, run_id FROM announce_outbox ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list pending announcements: %w", err)
	}
	defer rows.Close()
	var out []Announcement
	for rows.Next() {
		var a Announcement
		if err := rows.Scan(&a.ID, &a.RunID); err != nil {
			return nil, fmt.Errorf("list pending announcements: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pending announcements: %w", err)
	}
	return out, nil
}

// announcedBatch bounds the ids one statement of AnnouncementsDone
// deletes (SQLite's limit on variables is 32766 nowadays, 999 before).
const announcedBatch = 500

// AnnouncementsDone deletes the outbox rows ids, whose announcements are
// stored. Ids already deleted are skipped.
func (db *DB) AnnouncementsDone(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.inGroup(ctx, func(tx *sql.Tx) error {
		ctx := uninterrupted(ctx)
		for rest := ids; len(rest) > 0; {
			n := min(len(rest), announcedBatch)
			args := make([]any, n)
			for i, id := range rest[:n] {
				args[i] = id
			}
			q := `DELETE FROM announce_outbox WHERE id IN (?` + strings.Repeat(`, ?`, n-1) + `)`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %d announcements done: %w", len(ids), err)
	}
	return nil
}
