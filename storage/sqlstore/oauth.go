package sqlstore

import (
	"context"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
)

// CreateClient implements [storage.Clients].
func (s *Store) CreateClient(ctx context.Context, c *storage.Client) error {
	_, err := s.conn(ctx).ExecContext(ctx, s.sql(`INSERT INTO {p}clients (id, secret_hash, previous_secret_hash, previous_secret_expires_at, name, organisation_id, redirect_uris, grant_types, response_types, scopes, public, access_ttl, refresh_ttl, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.ID, c.SecretHash, c.PreviousSecretHash, micros(c.PreviousSecretExpiresAt), c.Name, c.OrganisationID, jsonList(c.RedirectURIs), jsonList(c.GrantTypes), jsonList(c.ResponseTypes), jsonList(c.Scopes),
		c.Public, nanos(c.AccessTokenLifetime), nanos(c.RefreshTokenLifetime), micros(c.CreatedAt))
	return Wrap("create client", err)
}

const clientCols = `id, secret_hash, previous_secret_hash, previous_secret_expires_at, name, organisation_id, redirect_uris, grant_types, response_types, scopes, public, access_ttl, refresh_ttl, created_at, version`

func scanClient(row interface{ Scan(...any) error }) (*storage.Client, error) {
	var c storage.Client
	var redirects, grants, responses, scopes string
	var access, refresh, created, prevExpires int64
	if err := row.Scan(&c.ID, &c.SecretHash, &c.PreviousSecretHash, &prevExpires, &c.Name, &c.OrganisationID, &redirects, &grants, &responses, &scopes, &c.Public, &access, &refresh, &created, &c.Version); err != nil {
		return nil, err
	}
	var err error
	if c.RedirectURIs, err = parseList(redirects); err != nil {
		return nil, err
	}
	if c.GrantTypes, err = parseList(grants); err != nil {
		return nil, err
	}
	if c.ResponseTypes, err = parseList(responses); err != nil {
		return nil, err
	}
	if c.Scopes, err = parseList(scopes); err != nil {
		return nil, err
	}
	c.AccessTokenLifetime, c.RefreshTokenLifetime, c.CreatedAt = time.Duration(access), time.Duration(refresh), fromMicros(created)
	c.PreviousSecretExpiresAt = fromMicros(prevExpires)
	return &c, nil
}

// GetClient implements [storage.Clients].
func (s *Store) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	if err := lookable("get client", id); err != nil {
		return nil, err
	}
	c, err := scanClient(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+clientCols+` FROM {p}clients WHERE id = ?`), id))
	return c, Wrap("get client", err)
}

// UpdateClient implements [storage.Clients].
func (s *Store) UpdateClient(ctx context.Context, c *storage.Client) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}clients SET secret_hash = ?, previous_secret_hash = ?, previous_secret_expires_at = ?, name = ?, organisation_id = ?, redirect_uris = ?, grant_types = ?, response_types = ?, scopes = ?, public = ?, access_ttl = ?, refresh_ttl = ?,
		version = version + 1 WHERE id = ? AND version = ?`),
		c.SecretHash, c.PreviousSecretHash, micros(c.PreviousSecretExpiresAt), c.Name, c.OrganisationID, jsonList(c.RedirectURIs), jsonList(c.GrantTypes), jsonList(c.ResponseTypes), jsonList(c.Scopes),
		c.Public, nanos(c.AccessTokenLifetime), nanos(c.RefreshTokenLifetime), c.ID, c.Version)
	if err := s.conditional(ctx, "update client", "clients", c.ID, res, err); err != nil {
		return err
	}
	c.Version++
	return nil
}

// DeleteClient implements [storage.Clients].
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`DELETE FROM {p}clients WHERE id = ?`), id)
	return mustAffect("delete client", res, err)
}

// ListClients implements [storage.Clients].
func (s *Store) ListClients(ctx context.Context, org string, p storage.Page) ([]*storage.Client, int, error) {
	return listByOrg(ctx, s, "list clients", "clients", clientCols, org, p, scanClient)
}

// listByOrg returns one page of an organisation's rows of table, oldest
// first, and how many rows the organisation has in all.
func listByOrg[T any](ctx context.Context, s *Store, op, table, cols, org string, p storage.Page,
	scan func(interface{ Scan(...any) error }) (*T, error)) ([]*T, int, error) {
	var total int
	if err := s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT COUNT(*) FROM {p}`+table+` WHERE organisation_id = ?`), org).Scan(&total); err != nil {
		return nil, 0, Wrap(op, err)
	}
	off, lim := offsetLimit(p)
	rows, err := s.conn(ctx).QueryContext(ctx, s.sql(`SELECT `+cols+` FROM {p}`+table+` WHERE organisation_id = ? ORDER BY created_at, id`+limitOffset), org, lim, off)
	if err != nil {
		return nil, 0, Wrap(op, err)
	}
	out, err := collect(rows, scan)
	return out, total, Wrap(op, err)
}

// collect scans every row with scan and closes rows.
func collect[T any](rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}, scan func(interface{ Scan(...any) error }) (*T, error)) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// CreateToken implements [storage.Tokens].
func (s *Store) CreateToken(ctx context.Context, t *storage.Token) error {
	_, err := s.conn(ctx).ExecContext(ctx, s.sql(`INSERT INTO {p}tokens (kind, signature, request_id, client_id, subject, organisation_id, scopes, requested_at, expires_at, active, rotated_at, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		string(t.Kind), t.Signature, t.RequestID, t.ClientID, t.Subject, t.OrganisationID, jsonList(t.Scopes), micros(t.RequestedAt), micros(t.ExpiresAt), t.Active, micros(t.RotatedAt), t.Data)
	return Wrap("create token", err)
}

// GetToken implements [storage.Tokens].
func (s *Store) GetToken(ctx context.Context, kind storage.TokenKind, sig string) (*storage.Token, error) {
	var t storage.Token
	var k, scopes string
	var req, exp, rotated int64
	err := s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT kind, signature, request_id, client_id, subject, organisation_id, scopes, requested_at, expires_at, active, rotated_at, data
		FROM {p}tokens WHERE kind = ? AND signature = ?`), string(kind), sig).
		Scan(&k, &t.Signature, &t.RequestID, &t.ClientID, &t.Subject, &t.OrganisationID, &scopes, &req, &exp, &t.Active, &rotated, &t.Data)
	if err != nil {
		return nil, Wrap("get token", err)
	}
	t.Kind, t.RequestedAt, t.ExpiresAt, t.RotatedAt = storage.TokenKind(k), fromMicros(req), fromMicros(exp), fromMicros(rotated)
	if t.Scopes, err = parseList(scopes); err != nil {
		return nil, Wrap("get token", err)
	}
	return &t, nil
}

// DeleteToken implements [storage.Tokens].
func (s *Store) DeleteToken(ctx context.Context, kind storage.TokenKind, sig string) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`DELETE FROM {p}tokens WHERE kind = ? AND signature = ?`), string(kind), sig)
	return mustAffect("delete token", res, err)
}

// DeactivateToken implements [storage.Tokens]. The update is conditional on
// the token being active, so of two racing calls one changes nothing and
// gets storage.ErrNotFound.
func (s *Store) DeactivateToken(ctx context.Context, kind storage.TokenKind, sig string) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}tokens SET active = ? WHERE kind = ? AND signature = ? AND active = ?`), false, string(kind), sig, true)
	return mustAffect("deactivate token", res, err)
}

func affected(op string, res interface{ RowsAffected() (int64, error) }, err error) (int, error) {
	if err != nil {
		return 0, Wrap(op, err)
	}
	n, err := res.RowsAffected()
	return int(n), Wrap(op, err)
}

// RotateToken implements [storage.Tokens]: the conditional update of
// DeactivateToken, then the grant's other tokens lose their rotation
// time, in one transaction.
func (s *Store) RotateToken(ctx context.Context, kind storage.TokenKind, sig string, at time.Time) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}tokens SET active = ?, rotated_at = ? WHERE kind = ? AND signature = ? AND active = ?`),
			false, micros(at), string(kind), sig, true)
		if err := mustAffect("rotate token", res, err); err != nil {
			return err
		}
		_, err = s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}tokens SET rotated_at = 0 WHERE kind = ? AND signature <> ? AND rotated_at <> 0
			AND request_id = (SELECT request_id FROM {p}tokens WHERE kind = ? AND signature = ?)`), string(kind), sig, string(kind), sig)
		return Wrap("rotate token", err)
	})
}

// DeactivateTokensByRequest implements [storage.Tokens].
func (s *Store) DeactivateTokensByRequest(ctx context.Context, kind storage.TokenKind, req string) (int, error) {
	return s.deactivateWhere(ctx, "deactivate tokens by request", `kind = ? AND request_id = ?`, string(kind), req)
}

// deactivateWhere ends the tokens a WHERE clause selects, as revoking a
// grant does: the active ones become inactive, then every one loses its
// rotation time, in one transaction; it returns how many were active.
//
// In that order: a rotation running beside it (PostgreSQL, READ
// COMMITTED) either finds its token deactivated and fails, or commits
// before the first statement goes on past its row, so the second sees
// its rotation time and clears it. The other order could clear nothing,
// then meet the token already rotated, and leave the rotation time of a
// revoked grant standing.
func (s *Store) deactivateWhere(ctx context.Context, op, where string, args ...any) (int, error) {
	var n int
	err := s.InTx(ctx, func(ctx context.Context) error {
		res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}tokens SET active = ? WHERE `+where+` AND active = ?`), append(append([]any{false}, args...), true)...)
		if n, err = affected(op, res, err); err != nil {
			return err
		}
		_, err = s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}tokens SET rotated_at = 0 WHERE `+where+` AND rotated_at <> 0`), args...)
		return Wrap(op, err)
	})
	return n, err
}

// DeleteTokensByRequest implements [storage.Tokens].
func (s *Store) DeleteTokensByRequest(ctx context.Context, kind storage.TokenKind, req string) (int, error) {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`DELETE FROM {p}tokens WHERE kind = ? AND request_id = ?`), string(kind), req)
	return affected("delete tokens by request", res, err)
}

// DeleteExpiredTokens implements [storage.Tokens].
func (s *Store) DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error) {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`DELETE FROM {p}tokens WHERE expires_at <> 0 AND expires_at < ?`), micros(before))
	return affected("delete expired tokens", res, err)
}

// GrantedClients implements [storage.Tokens].
func (s *Store) GrantedClients(ctx context.Context, subject string, now time.Time) ([]string, error) {
	rows, err := s.conn(ctx).QueryContext(ctx, s.sql(`SELECT DISTINCT client_id FROM {p}tokens WHERE subject = ? AND active = ? AND kind IN (?, ?)
		AND (expires_at = 0 OR expires_at > ?)`), subject, true, string(storage.KindAccessToken), string(storage.KindRefreshToken), micros(now))
	if err != nil {
		return nil, Wrap("granted clients", err)
	}
	ids, err := collect(rows, func(r interface{ Scan(...any) error }) (*string, error) {
		var id string
		return &id, r.Scan(&id)
	})
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = *id
	}
	return out, Wrap("granted clients", err)
}

// DeactivateGrantTokens implements [storage.Tokens].
func (s *Store) DeactivateGrantTokens(ctx context.Context, subject, clientID string) (int, error) {
	return s.deactivateWhere(ctx, "deactivate grant tokens", `subject = ? AND client_id = ? AND kind IN (?, ?, ?)`,
		subject, clientID, string(storage.KindAuthorizeCode), string(storage.KindAccessToken), string(storage.KindRefreshToken))
}

// ListConsents implements [storage.Consents].
func (s *Store) ListConsents(ctx context.Context, subject string) ([]*storage.Consent, error) {
	rows, err := s.conn(ctx).QueryContext(ctx, s.sql(`SELECT client_id, scopes, granted_at FROM {p}consents WHERE subject = ? ORDER BY granted_at DESC, client_id`), subject)
	if err != nil {
		return nil, Wrap("list consents", err)
	}
	out, err := collect(rows, func(r interface{ Scan(...any) error }) (*storage.Consent, error) {
		c := &storage.Consent{Subject: subject}
		var scopes string
		var at int64
		if err := r.Scan(&c.ClientID, &scopes, &at); err != nil {
			return nil, err
		}
		c.GrantedAt = fromMicros(at)
		var err error
		c.Scopes, err = parseList(scopes)
		return c, err
	})
	return out, Wrap("list consents", err)
}

// GetConsent implements [storage.Consents].
func (s *Store) GetConsent(ctx context.Context, subject, clientID string) (*storage.Consent, error) {
	c := storage.Consent{Subject: subject, ClientID: clientID}
	var scopes string
	var at int64
	err := s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT scopes, granted_at FROM {p}consents WHERE subject = ? AND client_id = ?`), subject, clientID).Scan(&scopes, &at)
	if err != nil {
		return nil, Wrap("get consent", err)
	}
	c.GrantedAt = fromMicros(at)
	if c.Scopes, err = parseList(scopes); err != nil {
		return nil, Wrap("get consent", err)
	}
	return &c, nil
}

// SaveConsent implements [storage.Consents].
func (s *Store) SaveConsent(ctx context.Context, c *storage.Consent) error {
	_, err := s.conn(ctx).ExecContext(ctx, s.sql(`INSERT INTO {p}consents (subject, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`),
		c.Subject, c.ClientID, jsonList(c.Scopes), micros(c.GrantedAt))
	return Wrap("save consent", err)
}

// DeleteConsent implements [storage.Consents].
func (s *Store) DeleteConsent(ctx context.Context, subject, clientID string) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`DELETE FROM {p}consents WHERE subject = ? AND client_id = ?`), subject, clientID)
	return mustAffect("delete consent", res, err)
}
