package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/webhook"
)

// records is the example application's own data — customers, bookings,
// payments, staff — kept beside Gatehouse's tables in the same database.
// Every row belongs to an organisation and an environment (live or test:
// the sandbox), and every query is scoped by both, so a key of one
// organisation or environment can never reach another's rows.
type records struct {
	store *sqlstore.Store // reads go through its prepared statements
	hooks *webhook.Manager
}

const recordsSchema = `CREATE TABLE IF NOT EXISTS app_records (
    id              TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    environment     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    data            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS app_records_scope ON app_records (organisation_id, environment, kind, created_at, id)`

func newRecords(ctx context.Context, s *sqlstore.Store, hooks *webhook.Manager) (*records, error) {
	if _, err := s.DB().ExecContext(ctx, recordsSchema); err != nil {
		return nil, fmt.Errorf("records schema: %w", err)
	}
	return &records{store: s, hooks: hooks}, nil
}

func (r *records) q(query string) string { return r.store.Dialect().Rebind(query) }

// tenancy is whose data a request may touch.
type tenancy struct {
	Org, Env string
}

// record is one stored row; Data is the resource's JSON.
type record struct {
	ID        string
	Data      json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

var errNotFound = errors.New("not found")

// The records' own SQL errors go through sqlstore.Wrap, as the store's
// do: an outage is storage.ErrUnavailable (a 503), not a 500.

func (r *records) list(ctx context.Context, sc tenancy, kind string, limit, offset int) (_ []record, _ int, err error) {
	defer func() { err = sqlstore.Wrap("list records", err) }()
	var total int
	if err := r.store.Querier(ctx).QueryRowContext(ctx, r.q(`SELECT COUNT(*) FROM app_records WHERE organisation_id = ? AND environment = ? AND kind = ?`), sc.Org, sc.Env, kind).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := r.store.Querier(ctx).QueryContext(ctx, r.q(`SELECT id, data, created_at, updated_at FROM app_records WHERE organisation_id = ? AND environment = ? AND kind = ?
		ORDER BY created_at, id LIMIT ? + 0 OFFSET ? + 0`), sc.Org, sc.Env, kind, limit, offset) // + 0: see sqlstore's limitOffset
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []record{}
	for rows.Next() {
		var rec record
		var data string
		var c, u int64
		if err := rows.Scan(&rec.ID, &data, &c, &u); err != nil {
			return nil, 0, err
		}
		rec.Data, rec.CreatedAt, rec.UpdatedAt = json.RawMessage(data), time.UnixMicro(c).UTC(), time.UnixMicro(u).UTC()
		out = append(out, rec)
	}
	return out, total, rows.Err()
}

func (r *records) get(ctx context.Context, sc tenancy, kind, id string) (_ record, err error) {
	defer func() { err = sqlstore.Wrap("get record", err) }()
	var rec record
	var data string
	var c, u int64
	err = r.store.Querier(ctx).QueryRowContext(ctx, r.q(`SELECT id, data, created_at, updated_at FROM app_records WHERE organisation_id = ? AND environment = ? AND kind = ? AND id = ?`),
		sc.Org, sc.Env, kind, id).Scan(&rec.ID, &data, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, errNotFound
	}
	rec.Data, rec.CreatedAt, rec.UpdatedAt = json.RawMessage(data), time.UnixMicro(c).UTC(), time.UnixMicro(u).UTC()
	return rec, err
}

// write inserts (when create) or updates a record and enqueues its webhook
// event in the same transaction: the event exists exactly when the change
// does. The transaction is the store's (InTx: on SQLite it takes its turn
// among the store's writes), handed to this code as the *sql.Tx an
// application's own SQL runs on.
func (r *records) write(ctx context.Context, sc tenancy, kind, id string, data any, create bool, event string, eventData any) (_ record, err error) {
	defer func() { err = sqlstore.Wrap("write record", err) }()
	b, err := json.Marshal(data)
	if err != nil {
		return record{}, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec := record{ID: id, Data: b, CreatedAt: now, UpdatedAt: now}
	err = r.store.InTx(ctx, func(ctx context.Context) error {
		tx := r.store.Tx(ctx)
		if create {
			_, err := tx.ExecContext(ctx, r.q(`INSERT INTO app_records (id, organisation_id, environment, kind, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
				id, sc.Org, sc.Env, kind, string(b), now.UnixMicro(), now.UnixMicro())
			if err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, r.q(`UPDATE app_records SET data = ?, updated_at = ? WHERE organisation_id = ? AND environment = ? AND kind = ? AND id = ?`),
				string(b), now.UnixMicro(), sc.Org, sc.Env, kind, id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errNotFound
			}
		}
		if event == "" {
			return nil
		}
		return r.hooks.EnqueueTx(ctx, tx, webhook.Event{OrganisationID: sc.Org, Environment: sc.Env, Type: event, Data: eventData, At: now})
	})
	if err != nil {
		return record{}, err
	}
	return rec, nil
}

// all returns every record of a kind in scope (for analytics).
func (r *records) all(ctx context.Context, sc tenancy, kind string) ([]record, error) {
	recs, _, err := r.list(ctx, sc, kind, 1_000_000, 0)
	return recs, err
}

func newID() string { return storage.NewID() }
