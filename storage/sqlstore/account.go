package sqlstore

import (
	"context"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
)

// CreateOrganisation implements [storage.Organisations].
func (s *Store) CreateOrganisation(ctx context.Context, o *storage.Organisation) error {
	_, err := s.conn(ctx).ExecContext(ctx, s.sql(`INSERT INTO {p}organisations (id, domain_prefix, name, plan, created_at) VALUES (?, ?, ?, ?, ?)`),
		o.ID, storage.NormalizePrefix(o.DomainPrefix), o.Name, o.Plan, micros(o.CreatedAt))
	return Wrap("create organisation", err)
}

const orgCols = `id, domain_prefix, name, plan, created_at`

func scanOrg(row interface{ Scan(...any) error }) (*storage.Organisation, error) {
	var o storage.Organisation
	var created int64
	if err := row.Scan(&o.ID, &o.DomainPrefix, &o.Name, &o.Plan, &created); err != nil {
		return nil, err
	}
	o.CreatedAt = fromMicros(created)
	return &o, nil
}

// GetOrganisation implements [storage.Organisations].
func (s *Store) GetOrganisation(ctx context.Context, id string) (*storage.Organisation, error) {
	if err := lookable("get organisation", id); err != nil {
		return nil, err
	}
	o, err := scanOrg(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+orgCols+` FROM {p}organisations WHERE id = ?`), id))
	return o, Wrap("get organisation", err)
}

// GetOrganisationByPrefix implements [storage.Organisations].
func (s *Store) GetOrganisationByPrefix(ctx context.Context, prefix string) (*storage.Organisation, error) {
	if err := lookable("get organisation by prefix", prefix); err != nil {
		return nil, err
	}
	o, err := scanOrg(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+orgCols+` FROM {p}organisations WHERE domain_prefix = ?`), storage.NormalizePrefix(prefix)))
	return o, Wrap("get organisation by prefix", err)
}

// UpdateOrganisation implements [storage.Organisations].
func (s *Store) UpdateOrganisation(ctx context.Context, o *storage.Organisation) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}organisations SET name = ?, plan = ? WHERE id = ?`), o.Name, o.Plan, o.ID)
	return mustAffect("update organisation", res, err)
}

// CreateUser implements [storage.Users].
func (s *Store) CreateUser(ctx context.Context, u *storage.User) error {
	_, err := s.conn(ctx).ExecContext(ctx, s.sql(`INSERT INTO {p}users (id, organisation_id, email, email_key, password_hash, first_name, last_name, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		u.ID, u.OrganisationID, u.Email, storage.NormalizeEmail(u.Email), u.PasswordHash, u.FirstName, u.LastName, micros(u.CreatedAt), micros(u.UpdatedAt))
	return Wrap("create user", err)
}

const userCols = `id, organisation_id, email, password_hash, first_name, last_name, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (*storage.User, error) {
	var u storage.User
	var created, updated int64
	if err := row.Scan(&u.ID, &u.OrganisationID, &u.Email, &u.PasswordHash, &u.FirstName, &u.LastName, &created, &updated); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

// GetUser implements [storage.Users].
func (s *Store) GetUser(ctx context.Context, id string) (*storage.User, error) {
	if err := lookable("get user", id); err != nil {
		return nil, err
	}
	u, err := scanUser(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+userCols+` FROM {p}users WHERE id = ?`), id))
	return u, Wrap("get user", err)
}

// GetUserByEmail implements [storage.Users].
func (s *Store) GetUserByEmail(ctx context.Context, org, email string) (*storage.User, error) {
	if err := lookable("get user by email", org, email); err != nil {
		return nil, err
	}
	u, err := scanUser(s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT `+userCols+` FROM {p}users WHERE organisation_id = ? AND email_key = ?`),
		org, storage.NormalizeEmail(email)))
	return u, Wrap("get user by email", err)
}

// UpdateUser implements [storage.Users].
func (s *Store) UpdateUser(ctx context.Context, u *storage.User) error {
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(`UPDATE {p}users SET email = ?, email_key = ?, password_hash = ?, first_name = ?, last_name = ?, updated_at = ? WHERE id = ?`),
		u.Email, storage.NormalizeEmail(u.Email), u.PasswordHash, u.FirstName, u.LastName, micros(u.UpdatedAt), u.ID)
	return mustAffect("update user", res, err)
}

// SetPasswordHash implements [storage.Users], in one conditional UPDATE.
func (s *Store) SetPasswordHash(ctx context.Context, id, current, hash string, at time.Time) error {
	q, args := `UPDATE {p}users SET password_hash = ?, updated_at = ? WHERE id = ?`, []any{hash, micros(at), id}
	if current != "" {
		q, args = q+` AND password_hash = ?`, append(args, current)
	}
	res, err := s.conn(ctx).ExecContext(ctx, s.sql(q), args...)
	return s.conditional(ctx, "set password hash", "users", id, res, err)
}

// durations are stored in nanoseconds.
func nanos(d time.Duration) int64 { return int64(d) }
