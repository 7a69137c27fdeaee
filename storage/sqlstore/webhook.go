package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
)

// CreateSubscription implements [storage.Subscriptions]. The secrets are
// encrypted when an EncryptionKey is configured.
func (s *Store) CreateSubscription(ctx context.Context, x *storage.Subscription) error {
	_, err := s.conn(ctx).ExecContext(ctx, s.sql(`INSERT INTO {p}subscriptions (id, organisation_id, environment, url, events, secret, previous_secret, previous_secret_expires_at,
		enabled, disabled_reason, failing_since, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		x.ID, x.OrganisationID, x.Environment, x.URL, jsonList(x.Events), s.seal(x.Secret), s.seal(x.PreviousSecret), micros(x.PreviousSecretExpiresAt),
		x.Enabled, x.DisabledReason, micros(x.FailingSince), micros(x.CreatedAt), micros(x.UpdatedAt))
	return Wrap("create subscription", err)
}

const subCols = `id, organisation_id, environment, url, events, secret, previous_secret, previous_secret_expires_at, enabled, disabled_reason, failing_since, created_at, updated_at, version`

func (s *Store) scanSub(row interface{ Scan(...any) error }) (*storage.Subscription, error) {
	var x storage.Subscription
	var events, secret, prev string
	var prevExp, failing, created, updated int64
	if err := row.Scan(&x.ID, &x.OrganisationID, &x.Environment, &x.URL, &events, &secret, &prev, &prevExp, &x.Enabled, &x.DisabledReason, &failing, &created, &updated, &x.Version); err != nil {
		return nil, err
	}
	var err error
	if x.Events, err = parseList(events); err != nil {
		return nil, err
	}
	if x.Secret, err = s.open(secret); err != nil {
		return nil, err
	}
	if x.PreviousSecret, err = s.open(prev); err != nil {
		return nil, err
	}
	x.PreviousSecretExpiresAt, x.FailingSince, x.CreatedAt, x.UpdatedAt = fromMicros(prevExp), fromMicros(failing), fromMicros(created), fromMicros(updated)
	return &x, nil
}

// GetSubscription implements [storage.Subscriptions].
func (s *Store) GetSubscription(ctx context.Context, id string) (*storage.Subscription, error) {
	if err := lookable("get subscription", id); err != nil {
		return nil, err
	}
	x, err := s.scanSub(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+subCols+` FROM {p}subscriptions WHERE id = ?`), id))
	return x, Wrap("get subscription", err)
}

// ListSubscriptions implements [storage.Subscriptions].
func (s *Store) ListSubscriptions(ctx context.Context, org string) ([]*storage.Subscription, error) {
	rows, err := s.conn(ctx).QueryContext(ctx, s.sql(`SELECT `+subCols+` FROM {p}subscriptions WHERE organisation_id = ? ORDER BY created_at, id`), org)
	if err != nil {
		return nil, Wrap("list subscriptions", err)
	}
	out, err := collect(rows, s.scanSub)
	return out, Wrap("list subscriptions", err)
}

// UpdateSubscription implements [storage.Subscriptions].
func (s *Store) UpdateSubscription(ctx context.Context, x *storage.Subscription) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}subscriptions SET environment = ?, url = ?, events = ?, secret = ?, previous_secret = ?, previous_secret_expires_at = ?,
		enabled = ?, disabled_reason = ?, failing_since = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`),
		x.Environment, x.URL, jsonList(x.Events), s.seal(x.Secret), s.seal(x.PreviousSecret), micros(x.PreviousSecretExpiresAt),
		x.Enabled, x.DisabledReason, micros(x.FailingSince), micros(x.UpdatedAt), x.ID, x.Version)
	if err := s.conditional(ctx, "update subscription", "subscriptions", x.ID, res, err); err != nil {
		return err
	}
	x.Version++
	return nil
}

// DeleteSubscription implements [storage.Subscriptions]; its pending
// deliveries and their attempts go with it.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		c := s.conn(ctx)
		if _, err := c.ExecContext(ctx, s.sql(`DELETE FROM {p}attempts WHERE delivery_id IN (SELECT id FROM {p}deliveries WHERE subscription_id = ? AND status = 'pending')`), id); err != nil {
			return Wrap("delete subscription", err)
		}
		if _, err := c.ExecContext(ctx, s.sql(`DELETE FROM {p}deliveries WHERE subscription_id = ? AND status = 'pending'`), id); err != nil {
			return Wrap("delete subscription", err)
		}
		res, err := c.ExecContext(ctx, s.sql(`DELETE FROM {p}subscriptions WHERE id = ?`), id)
		return mustAffect("delete subscription", res, err)
	})
}

// Enqueue implements [storage.Outbox]. The event and its deliveries are
// written in one transaction, or in the caller's (see [Store.EnqueueTx]).
func (s *Store) Enqueue(ctx context.Context, e *storage.Event, subscriptionIDs []string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		c := s.conn(ctx)
		if _, err := c.ExecContext(ctx, s.sql(`INSERT INTO {p}events (id, organisation_id, environment, type, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
			e.ID, e.OrganisationID, e.Environment, e.Type, e.Payload, micros(e.CreatedAt)); err != nil {
			return Wrap("enqueue", err)
		}
		for _, sub := range subscriptionIDs {
			if _, err := c.ExecContext(ctx, s.sql(`INSERT INTO {p}deliveries (id, event_id, subscription_id, organisation_id, status, attempts, next_attempt_at,
				lease_id, lease_owner, lease_expires_at, last_status_code, last_error, created_at, updated_at)
				VALUES (?, ?, ?, ?, 'pending', 0, ?, '', '', 0, 0, '', ?, ?)`),
				storage.NewID(), e.ID, sub, e.OrganisationID, micros(e.CreatedAt), micros(e.CreatedAt), micros(e.CreatedAt)); err != nil {
				return Wrap("enqueue", err)
			}
		}
		return nil
	})
}

// EnqueueTx is [Store.Enqueue] inside tx, a transaction the application
// began on [Store.DB] to write its own rows: the event is stored if and only
// if tx commits.
func (s *Store) EnqueueTx(ctx context.Context, tx *sql.Tx, e *storage.Event, subscriptionIDs []string) error {
	return s.Enqueue(s.WithTx(ctx, tx), e, subscriptionIDs)
}

const deliveryCols = `d.id, d.event_id, d.subscription_id, d.organisation_id, e.type, e.payload, d.status, d.attempts, d.next_attempt_at,
	d.lease_id, d.lease_owner, d.lease_expires_at, d.last_status_code, d.last_error, d.created_at, d.updated_at`

const deliveryFrom = ` FROM {p}deliveries d JOIN {p}events e ON e.id = d.event_id `

func scanDelivery(row interface{ Scan(...any) error }) (*storage.Delivery, error) {
	var d storage.Delivery
	var status string
	var next, leaseExp, created, updated int64
	if err := row.Scan(&d.ID, &d.EventID, &d.SubscriptionID, &d.OrganisationID, &d.EventType, &d.Payload, &status, &d.Attempts, &next,
		&d.LeaseID, &d.LeaseOwner, &leaseExp, &d.LastStatusCode, &d.LastError, &created, &updated); err != nil {
		return nil, err
	}
	d.Status = storage.DeliveryStatus(status)
	d.NextAttemptAt, d.LeaseExpiresAt, d.CreatedAt, d.UpdatedAt = fromMicros(next), fromMicros(leaseExp), fromMicros(created), fromMicros(updated)
	return &d, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// ClaimDeliveries implements [storage.Outbox]. On PostgreSQL the due rows
// are locked with FOR UPDATE SKIP LOCKED, so concurrent claimers in other
// processes skip each other's rows instead of waiting or double-claiming;
// on SQLite the transaction holds the single write lock.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int, skip []string) ([]*storage.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []*storage.Delivery
	err := s.InTx(ctx, func(ctx context.Context) error {
		c := s.conn(ctx)
		args := []any{micros(now), micros(now)}
		q := `SELECT id FROM {p}deliveries WHERE status = 'pending' AND next_attempt_at <= ? AND (lease_id = '' OR lease_expires_at <= ?)`
		if len(skip) > 0 {
			q += ` AND subscription_id NOT IN (` + placeholders(len(skip)) + `)`
			for _, id := range skip {
				args = append(args, id)
			}
		}
		q += ` ORDER BY next_attempt_at, created_at, id LIMIT ? + 0` // + 0: see limitOffset
		if s.dialect == Postgres {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		rows, err := c.QueryContext(ctx, s.sql(q), append(args, limit)...)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		batch := storage.NewID() + ":"
		args = append([]any{batch, owner, micros(now.Add(lease))}, ids...)
		if _, err := c.ExecContext(ctx, s.sql(`UPDATE {p}deliveries SET lease_id = ? || id, lease_owner = ?, lease_expires_at = ? WHERE id IN (`+placeholders(len(ids))+`)`), args...); err != nil {
			return err
		}
		rows, err = c.QueryContext(ctx, s.sql(`SELECT `+deliveryCols+deliveryFrom+`WHERE d.id IN (`+placeholders(len(ids))+`) ORDER BY d.next_attempt_at, d.created_at, d.id`), ids...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanDelivery)
		return err
	})
	return out, Wrap("claim deliveries", err)
}

// CompleteDelivery implements [storage.Outbox]: the update is fenced by
// the lease id, so a worker whose lease was taken over changes nothing.
func (s *Store) CompleteDelivery(ctx context.Context, r storage.DeliveryResult) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		c := s.conn(ctx)
		a := r.Attempt
		res, err := c.ExecContext(ctx, s.sql(`UPDATE {p}deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, lease_id = '', lease_owner = '', lease_expires_at = 0,
			last_status_code = ?, last_error = ?, updated_at = ? WHERE id = ? AND lease_id = ? AND lease_id <> ''`),
			string(r.Status), micros(r.NextAttemptAt), a.StatusCode, a.Error, micros(a.At), r.DeliveryID, r.LeaseID)
		if err := s.fenced("complete delivery", c, ctx, r.DeliveryID, res, err); err != nil {
			return err
		}
		if a.ID == "" {
			a.ID = storage.NewID()
		}
		_, err = c.ExecContext(ctx, s.sql(`INSERT INTO {p}attempts (id, delivery_id, at, duration_ns, status_code, response_body, error) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			a.ID, r.DeliveryID, micros(a.At), int64(a.Duration), a.StatusCode, a.ResponseBody, a.Error)
		return Wrap("complete delivery", err)
	})
}

// fenced turns "no row changed" into ErrNotFound or ErrLeaseLost.
func (s *Store) fenced(op string, c Querier, ctx context.Context, id string, res sql.Result, err error) error {
	if err != nil {
		return Wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Wrap(op, err)
	}
	if n > 0 {
		return nil
	}
	var one int
	if err := c.QueryRowContext(ctx, s.sql(`SELECT 1 FROM {p}deliveries WHERE id = ?`), id).Scan(&one); err != nil {
		return Wrap(op, err)
	}
	return fmt.Errorf("sqlstore: %s %s: %w", op, id, storage.ErrLeaseLost)
}

// ReleaseDelivery implements [storage.Outbox].
func (s *Store) ReleaseDelivery(ctx context.Context, id, leaseID string) error {
	c := s.conn(ctx)
	res, err := c.ExecContext(ctx, s.sql(`UPDATE {p}deliveries SET lease_id = '', lease_owner = '', lease_expires_at = 0 WHERE id = ? AND lease_id = ? AND lease_id <> ''`), id, leaseID)
	return s.fenced("release delivery", c, ctx, id, res, err)
}

// GetDelivery implements [storage.Outbox].
func (s *Store) GetDelivery(ctx context.Context, id string) (*storage.Delivery, error) {
	if err := lookable("get delivery", id); err != nil {
		return nil, err
	}
	d, err := scanDelivery(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+deliveryCols+deliveryFrom+`WHERE d.id = ?`), id))
	return d, Wrap("get delivery", err)
}

// ListDeliveries implements [storage.Outbox].
func (s *Store) ListDeliveries(ctx context.Context, sub string, p storage.Page) ([]*storage.Delivery, error) {
	off, lim := offsetLimit(p)
	rows, err := s.conn(ctx).QueryContext(ctx, s.sql(`SELECT `+deliveryCols+deliveryFrom+`WHERE d.subscription_id = ? ORDER BY d.created_at DESC, d.id DESC`+limitOffset), sub, lim, off)
	if err != nil {
		return nil, Wrap("list deliveries", err)
	}
	out, err := collect(rows, scanDelivery)
	return out, Wrap("list deliveries", err)
}

// ListAttempts implements [storage.Outbox].
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]*storage.Attempt, error) {
	rows, err := s.conn(ctx).QueryContext(ctx, s.sql(`SELECT id, delivery_id, at, duration_ns, status_code, response_body, error FROM {p}attempts WHERE delivery_id = ? ORDER BY at, id`), deliveryID)
	if err != nil {
		return nil, Wrap("list attempts", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (*storage.Attempt, error) {
		var a storage.Attempt
		var at, dur int64
		if err := row.Scan(&a.ID, &a.DeliveryID, &at, &dur, &a.StatusCode, &a.ResponseBody, &a.Error); err != nil {
			return nil, err
		}
		a.At, a.Duration = fromMicros(at), time.Duration(dur)
		return &a, nil
	})
	return out, Wrap("list attempts", err)
}

// Redeliver implements [storage.Outbox].
func (s *Store) Redeliver(ctx context.Context, id string, now time.Time) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?, lease_id = '', lease_owner = '', lease_expires_at = 0 WHERE id = ?`),
		micros(now), micros(now), id)
	return mustAffect("redeliver", res, err)
}

// RedeliverFailed implements [storage.Outbox].
func (s *Store) RedeliverFailed(ctx context.Context, sub string, since, now time.Time) (int, error) {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE subscription_id = ? AND status = 'failed' AND created_at >= ?`),
		micros(now), micros(now), sub, micros(since))
	return affected("redeliver failed", res, err)
}
