package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
)

// CreateAPIKey implements [storage.APIKeys].
func (s *Store) CreateAPIKey(ctx context.Context, k *storage.APIKey) error {
	_, err := s.conn(ctx).ExecContext(ctx, s.sql(`INSERT INTO {p}api_keys (id, hash, organisation_id, owner_id, name, display, scopes, environment, created_at, expires_at, revoked_at,
		last_used_at, last_used_ip, rate_limit, uses_limited, uses_remaining, refill_amount, refill_interval, last_refill_at, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		k.ID, k.Hash, k.OrganisationID, k.OwnerID, k.Name, k.Display, jsonList(k.Scopes), k.Environment, micros(k.CreatedAt), micros(k.ExpiresAt), micros(k.RevokedAt),
		micros(k.LastUsedAt), k.LastUsedIP, k.RateLimit, k.UsesLimited, k.UsesRemaining, k.RefillAmount, nanos(k.RefillInterval), micros(k.LastRefillAt), jsonMap(k.Metadata))
	return Wrap("create api key", err)
}

const keyCols = `id, hash, organisation_id, owner_id, name, display, scopes, environment, created_at, expires_at, revoked_at,
	last_used_at, last_used_ip, rate_limit, uses_limited, uses_remaining, refill_amount, refill_interval, last_refill_at, metadata, version`

func scanKey(row interface{ Scan(...any) error }) (*storage.APIKey, error) {
	var k storage.APIKey
	var scopes, meta string
	var created, expires, revoked, lastUsed, refillInterval, lastRefill int64
	if err := row.Scan(&k.ID, &k.Hash, &k.OrganisationID, &k.OwnerID, &k.Name, &k.Display, &scopes, &k.Environment, &created, &expires, &revoked,
		&lastUsed, &k.LastUsedIP, &k.RateLimit, &k.UsesLimited, &k.UsesRemaining, &k.RefillAmount, &refillInterval, &lastRefill, &meta, &k.Version); err != nil {
		return nil, err
	}
	var err error
	if k.Scopes, err = parseList(scopes); err != nil {
		return nil, err
	}
	if k.Metadata, err = parseMap(meta); err != nil {
		return nil, err
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = fromMicros(created), fromMicros(expires), fromMicros(revoked), fromMicros(lastUsed)
	k.RefillInterval, k.LastRefillAt = time.Duration(refillInterval), fromMicros(lastRefill)
	return &k, nil
}

// GetAPIKey implements [storage.APIKeys].
func (s *Store) GetAPIKey(ctx context.Context, id string) (*storage.APIKey, error) {
	if err := lookable("get api key", id); err != nil {
		return nil, err
	}
	k, err := scanKey(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+keyCols+` FROM {p}api_keys WHERE id = ?`), id))
	return k, Wrap("get api key", err)
}

// GetAPIKeyByHash implements [storage.APIKeys].
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (*storage.APIKey, error) {
	if err := lookable("get api key by hash", hash); err != nil {
		return nil, err
	}
	k, err := scanKey(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+keyCols+` FROM {p}api_keys WHERE hash = ?`), hash))
	return k, Wrap("get api key by hash", err)
}

// ListAPIKeys implements [storage.APIKeys].
func (s *Store) ListAPIKeys(ctx context.Context, org string, p storage.Page) ([]*storage.APIKey, int, error) {
	return listByOrg(ctx, s, "list api keys", "api_keys", keyCols, org, p, scanKey)
}

// UpdateAPIKey implements [storage.APIKeys].
func (s *Store) UpdateAPIKey(ctx context.Context, k *storage.APIKey) error {
	const op = "update api key"
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}api_keys SET name = ?, scopes = ?, expires_at = ?, revoked_at = ?, rate_limit = ?,
		metadata = ?, version = version + 1 WHERE id = ? AND version = ?`),
		k.Name, jsonList(k.Scopes), micros(k.ExpiresAt), micros(k.RevokedAt), k.RateLimit, jsonMap(k.Metadata), k.ID, k.Version)
	if err := s.conditional(ctx, op, "api_keys", k.ID, res, err); err != nil {
		return err
	}
	k.Version++
	return nil
}

// RecordAPIKeyUses implements [storage.APIKeys], in one transaction.
func (s *Store) RecordAPIKeyUses(ctx context.Context, uses []storage.KeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		c := s.conn(ctx)
		for _, u := range uses {
			if _, err := c.ExecContext(ctx, s.sql(`UPDATE {p}api_keys SET last_used_at = ?, last_used_ip = ? WHERE id = ? AND last_used_at < ?`),
				micros(u.At), u.IP, u.KeyID, micros(u.At)); err != nil {
				return Wrap("record api key uses", err)
			}
			if u.Requests == 0 {
				continue
			}
			hour := u.Hour.UTC().Truncate(time.Hour)
			day := time.Date(hour.Year(), hour.Month(), hour.Day(), 0, 0, 0, 0, time.UTC)
			for _, b := range []struct {
				g     string
				start time.Time
			}{{"h", hour}, {"d", day}} {
				if _, err := c.ExecContext(ctx, s.sql(`INSERT INTO {p}api_key_usage (key_id, granularity, bucket, requests)
					SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {p}api_keys WHERE id = ?)
					ON CONFLICT (key_id, granularity, bucket) DO UPDATE SET requests = {p}api_key_usage.requests + excluded.requests`),
					u.KeyID, b.g, b.start.Unix(), u.Requests, u.KeyID); err != nil {
					return Wrap("record api key uses", err)
				}
			}
		}
		return nil
	})
}

// APIKeyUsage implements [storage.APIKeys].
func (s *Store) APIKeyUsage(ctx context.Context, keyID string, since time.Time) (hours, days []storage.UsageBucket, err error) {
	since = since.UTC()
	day := time.Date(since.Year(), since.Month(), since.Day(), 0, 0, 0, 0, time.UTC)
	rows, err := s.conn(ctx).QueryContext(ctx, s.sql(`SELECT granularity, bucket, requests FROM {p}api_key_usage
		WHERE key_id = ? AND ((granularity = 'h' AND bucket >= ?) OR (granularity = 'd' AND bucket >= ?)) ORDER BY bucket`),
		keyID, since.Unix(), day.Unix())
	if err != nil {
		return nil, nil, Wrap("api key usage", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		var start, n int64
		if err := rows.Scan(&g, &start, &n); err != nil {
			return nil, nil, Wrap("api key usage", err)
		}
		b := storage.UsageBucket{Start: time.Unix(start, 0).UTC(), Requests: n}
		if g == "h" {
			hours = append(hours, b)
		} else {
			days = append(days, b)
		}
	}
	return hours, days, Wrap("api key usage", rows.Err())
}

// ConsumeAPIKeyUses implements [storage.APIKeys] with conditional updates
// in one transaction: a refill when due, then a decrement that only
// happens when enough uses remain.
func (s *Store) ConsumeAPIKeyUses(ctx context.Context, id string, n int64, now time.Time) (remaining int64, ok bool, err error) {
	err = s.InTx(ctx, func(ctx context.Context) error {
		c := s.conn(ctx)
		if _, err := c.ExecContext(ctx, s.sql(`UPDATE {p}api_keys SET uses_remaining = refill_amount, last_refill_at = ?
			WHERE id = ? AND uses_limited = ? AND refill_interval > 0 AND last_refill_at + refill_interval / 1000 <= ?`),
			micros(now), id, true, micros(now)); err != nil {
			return err
		}
		err := c.QueryRowContext(ctx, s.sql(`UPDATE {p}api_keys SET uses_remaining = uses_remaining - ?
			WHERE id = ? AND uses_limited = ? AND uses_remaining >= ? RETURNING uses_remaining`), n, id, true, n).Scan(&remaining)
		if err == nil {
			ok = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var limited bool
		if err := c.QueryRowContext(ctx, s.sql(`SELECT uses_limited, uses_remaining FROM {p}api_keys WHERE id = ?`), id).Scan(&limited, &remaining); err != nil {
			return err
		}
		if !limited {
			remaining, ok = -1, true
		}
		return nil
	})
	if err != nil {
		return 0, false, Wrap(fmt.Sprintf("consume api key uses (%d)", n), err)
	}
	return remaining, ok, nil
}
