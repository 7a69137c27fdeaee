package storage

import (
	"context"
	"time"
)

// APIKey is a stored API key. The key itself is never stored: only Hash,
// a keyed or plain SHA-256 of it (the apikey package decides which).
type APIKey struct {
	// ID is the public identifier, safe to show and log.
	ID string
	// Hash is the hex hash of the secret key; unique.
	Hash           string
	OrganisationID string
	// OwnerID is the user the key acts for; may be empty.
	OwnerID string
	Name    string
	// Display is the redacted form shown in dashboards ("gate_live_…wxyz").
	Display     string
	Scopes      []string
	Environment string
	CreatedAt   time.Time
	// ExpiresAt is zero when the key does not expire.
	ExpiresAt time.Time
	// RevokedAt is zero while the key is not revoked.
	RevokedAt  time.Time
	LastUsedAt time.Time
	LastUsedIP string
	// RateLimit overrides the rate-limit policy ("1000/h,100/m"); empty
	// means the organisation's plan.
	RateLimit string
	// UsesLimited turns on the remaining-uses budget: each use consumes
	// one of UsesRemaining, refilled to RefillAmount every RefillInterval
	// when that is positive.
	UsesLimited    bool
	UsesRemaining  int64
	RefillAmount   int64
	RefillInterval time.Duration
	LastRefillAt   time.Time
	Metadata       map[string]string
	// Version counts the changes UpdateAPIKey made to the key: an update
	// names the version it read, so one made from a stale read fails
	// instead of undoing what came between (a revocation, a rotation).
	Version int64
}

// KeyUse is one batch of uses of a key, reported by the authenticator's
// background flusher: the latest use and how many requests fell in the
// hour that starts at Hour.
type KeyUse struct {
	KeyID    string
	At       time.Time
	IP       string
	Hour     time.Time
	Requests int64
}

// UsageBucket counts a key's requests in one hour or one day.
type UsageBucket struct {
	Start    time.Time
	Requests int64
}

// APIKeys stores API keys.
type APIKeys interface {
	// CreateAPIKey stores k. ErrConflict when the id or hash exists.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// GetAPIKey returns the key with id, or ErrNotFound.
	GetAPIKey(ctx context.Context, id string) (*APIKey, error)
	// GetAPIKeyByHash returns the key whose Hash is hash, or ErrNotFound.
	GetAPIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	// ListAPIKeys returns an organisation's keys, oldest first, and how
	// many it has in all.
	ListAPIKeys(ctx context.Context, organisationID string, p Page) ([]*APIKey, int, error)
	// UpdateAPIKey replaces Name, Scopes, ExpiresAt, RevokedAt, RateLimit
	// and Metadata of the key with k.ID, if its Version is still
	// k.Version, atomically, and increments Version (k's too).
	// ErrConflict when the key changed since k was read; ErrNotFound when
	// it does not exist. It writes neither the uses budget nor the usage,
	// which change through ConsumeAPIKeyUses and RecordAPIKeyUses only
	// (and do not change Version).
	UpdateAPIKey(ctx context.Context, k *APIKey) error
	// RecordAPIKeyUses applies a batch of uses: the latest LastUsedAt/IP
	// per key (never moving backwards), and the hourly and daily request
	// counters. Unknown keys are skipped.
	RecordAPIKeyUses(ctx context.Context, uses []KeyUse) error
	// APIKeyUsage returns a key's hourly counters for the hours that start
	// at or after since, and its daily counters (UTC days) for the days
	// that start at or after since's day, oldest first.
	APIKeyUsage(ctx context.Context, keyID string, since time.Time) (hours, days []UsageBucket, err error)
	// ConsumeAPIKeyUses atomically refills the key's budget if a refill is
	// due at now, then takes n uses from it. It returns the uses left and
	// whether the n were available (when not, nothing is taken). A key
	// without a budget always succeeds with remaining -1.
	ConsumeAPIKeyUses(ctx context.Context, id string, n int64, now time.Time) (remaining int64, ok bool, err error)
}
