package storage

import (
	"context"
	"strings"
	"time"
)

// Organisation is a tenant. Its DomainPrefix names it in the password grant
// (TidyHQ's domain_prefix) and is unique, compared case-insensitively:
// adapters store it as [NormalizePrefix] returns it.
type Organisation struct {
	ID           string
	DomainPrefix string
	Name         string
	// Plan names the organisation's rate-limit tier ("standard",
	// "enterprise").
	Plan      string
	CreatedAt time.Time
}

// User belongs to one organisation. Emails are unique within an
// organisation, compared case-insensitively ([NormalizeEmail]); the email
// is stored as given.
type User struct {
	ID             string
	OrganisationID string
	Email          string
	// PasswordHash is an encoded password hash (the oauth package writes
	// argon2id). Never a password.
	PasswordHash string
	FirstName    string
	LastName     string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// NormalizePrefix returns the canonical (lowercase, trimmed) form of a
// domain prefix.
func NormalizePrefix(p string) string { return strings.ToLower(strings.TrimSpace(p)) }

// NormalizeEmail returns the form emails are compared in: trimmed and
// lowercased.
func NormalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// ValidPrefix reports whether p, normalised, is a domain prefix new
// organisations may take: a DNS label of 1–63 lowercase letters, digits
// and hyphens, neither first nor last a hyphen (as in acme.example.com).
// Adapters do not enforce it; the code that creates organisations does.
func ValidPrefix(p string) bool {
	p = NormalizePrefix(p)
	if len(p) == 0 || len(p) > 63 || p[0] == '-' || p[len(p)-1] == '-' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Organisations stores tenants.
type Organisations interface {
	// CreateOrganisation stores o. ErrConflict when the id or the
	// (normalised) domain prefix exists.
	CreateOrganisation(ctx context.Context, o *Organisation) error
	// GetOrganisation returns the organisation with id, or ErrNotFound.
	GetOrganisation(ctx context.Context, id string) (*Organisation, error)
	// GetOrganisationByPrefix finds an organisation by domain prefix,
	// case-insensitively, or returns ErrNotFound.
	GetOrganisationByPrefix(ctx context.Context, prefix string) (*Organisation, error)
	// UpdateOrganisation replaces the name and plan of the organisation
	// with o.ID. ErrNotFound when it does not exist.
	UpdateOrganisation(ctx context.Context, o *Organisation) error
}

// Users stores the people who sign in.
type Users interface {
	// CreateUser stores u. ErrConflict when the id exists or the email is
	// taken in the organisation (case-insensitively).
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns the user with id, or ErrNotFound.
	GetUser(ctx context.Context, id string) (*User, error)
	// GetUserByEmail finds a user of an organisation by email,
	// case-insensitively, or returns ErrNotFound.
	GetUserByEmail(ctx context.Context, organisationID, email string) (*User, error)
	// UpdateUser replaces the email, password hash, names and UpdatedAt of
	// the user with u.ID. ErrNotFound when it does not exist; ErrConflict
	// when the new email is taken.
	UpdateUser(ctx context.Context, u *User) error
	// SetPasswordHash replaces the password hash and UpdatedAt of the
	// user with id, and nothing else (a change of email or names beside
	// it stands). With current not empty, only while the stored hash is
	// still current, atomically: ErrConflict when it changed meanwhile,
	// so a hash upgraded at sign-in never undoes a password set in
	// between. ErrNotFound when the user does not exist.
	SetPasswordHash(ctx context.Context, id, current, hash string, at time.Time) error
}
