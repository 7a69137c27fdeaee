package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage"
)

// Config holds the optional settings of a [Manager]. The zero value is a
// working, secure configuration.
type Config struct {
	// Prefix starts every key: [a-z][a-z0-9]{1,15}. Default: "gate".
	Prefix string
	// Pepper, when set, hashes keys with HMAC-SHA-256 under it instead of
	// plain SHA-256, so a stolen table of hashes cannot be checked against
	// guessed keys without the pepper. Changing it invalidates every key.
	Pepper []byte
	// Catalog validates the scopes of new keys. Default: nil, which checks
	// scope syntax only.
	Catalog *scope.Catalog
	// CacheTTL is how long a verified key is trusted without reading the
	// store again: the bound on how late another instance sees a
	// revocation. Default: 5 s. Revocations through this Manager take
	// effect at once.
	CacheTTL time.Duration
	// Invalidator, shared by every instance (sqlstore's on PostgreSQL),
	// carries each change of a key (revoked, expired, rotated, updated)
	// to the other instances' Managers, which drop their cached copy at
	// once instead of within CacheTTL. Default: none.
	Invalidator gatehouse.Invalidator
	// NegativeTTL is how long an unknown key is remembered as unknown, so
	// that repeated bad keys cost no lookup. Default: 1 s.
	NegativeTTL time.Duration
	// CacheSize bounds the number of cached keys. Default: 100,000.
	CacheSize int
	// FlushInterval is how often last-used times and request counters are
	// written to the store, in one batch. Default: 10 s. Negative: never
	// in the background (call Flush). Close writes what is left; a process
	// that crashes loses at most its last FlushInterval of these counters,
	// never a spent use of a UsesBudget, which is written before the
	// request is served.
	FlushInterval time.Duration
	// HeaderXAPIKey also reads keys from the X-API-Key header. Default:
	// only Authorization: Bearer.
	HeaderXAPIKey bool
	// ClientIP returns the address a request came from, for last-used and
	// monitoring. Default: the host of r.RemoteAddr (put a trusted-proxy
	// middleware in front when behind a proxy).
	ClientIP func(r *http.Request) string
	// OnSuspicious is called, on its own goroutine, when a key is first
	// used from a new network or an address sends a burst of rejected
	// keys. Default: nothing beyond a log line.
	OnSuspicious func(Suspicion)
	// RejectBurst is how many rejected keys from one address within a
	// minute count as a burst. Default: 20.
	RejectBurst int
	// Logger receives the audit log: create, rotate, revoke, rejected
	// keys (never the key: its hash prefix only). Default: silent.
	Logger *slog.Logger
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// Manager creates, lists, rotates and revokes API keys, and verifies them
// on requests: it implements gatehouse.Authenticator. It is safe for
// concurrent use. Call Close to stop its background flusher.
type Manager struct {
	store  storage.APIKeys
	cfg    Config
	hasher hasher
	log    *slog.Logger
	now    func() time.Time
	ours   string // cfg.Prefix + "_": how every key of this manager starts

	cache   cache
	usage   sync.Map // key id → *usage
	rejects rejectCounter

	stop        chan struct{}
	done        chan struct{}
	stopOnce    sync.Once
	unsubscribe func()
}

// invalidationTopic names API keys in Config.Invalidator's messages,
// whose key is the key's id.
const invalidationTopic = "apikey"

var _ gatehouse.Authenticator = (*Manager)(nil)

// New returns a Manager over store.
func New(store storage.APIKeys, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("apikey: New needs a store")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "gate"
	}
	if !validPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("apikey: Prefix %q must match [a-z][a-z0-9]{1,15}", cfg.Prefix)
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 10 * time.Second
	}
	if cfg.RejectBurst <= 0 {
		cfg.RejectBurst = 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteIP
	}
	m := &Manager{
		store: store, cfg: cfg, hasher: hasher{pepper: cfg.Pepper}, now: cfg.Now, ours: cfg.Prefix + "_",
		log:   cfg.Logger,
		cache: newCache(cfg.CacheSize),
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.unsubscribe = func() {}
	if cfg.Invalidator != nil {
		m.unsubscribe = cfg.Invalidator.OnInvalidate(invalidationTopic, func(id string) {
			if id == "" { // messages may have been missed
				m.cache.DeleteFunc(func(*entry) bool { return true })
				return
			}
			m.cache.removeID(id)
		})
	}
	if cfg.FlushInterval > 0 {
		go m.flushLoop(cfg.FlushInterval)
	} else {
		close(m.done)
	}
	return m, nil
}

// Close stops the background flusher and writes pending usage.
func (m *Manager) Close(ctx context.Context) error {
	m.stopOnce.Do(func() { close(m.stop); m.unsubscribe() })
	select {
	case <-m.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return m.Flush(ctx)
}

// Prefix returns the prefix of this manager's keys.
func (m *Manager) Prefix() string { return m.cfg.Prefix }

// CreateParams describes a new key.
type CreateParams struct {
	OrganisationID string
	// OwnerID is the user the key acts for; optional.
	OwnerID string
	Name    string
	// Scopes the key grants; validated against Config.Catalog.
	Scopes []string
	// Environment is gatehouse.Live or gatehouse.Test. Default: Test, so a
	// key is never live by accident.
	Environment gatehouse.Environment
	// ExpiresAt is optional.
	ExpiresAt time.Time
	// RateLimit overrides the rate-limit policy ("1000/h,100/m").
	RateLimit string
	// Uses, when not nil, limits how many requests the key can make.
	Uses     *UsesBudget
	Metadata map[string]string
}

// UsesBudget limits a key to Remaining requests, refilled to RefillAmount
// every RefillInterval when that is positive (Unkey's "credits").
type UsesBudget struct {
	Remaining      int64
	RefillAmount   int64
	RefillInterval time.Duration
}

// Validation errors of Create and Update; each names its field.
var (
	ErrInvalidParams = errors.New("apikey: invalid parameters")
)

// FieldError says which parameter is wrong. It wraps ErrInvalidParams.
type FieldError struct {
	Field string
	Issue string
}

func (e *FieldError) Error() string { return "apikey: " + e.Field + " " + e.Issue }

// Unwrap returns ErrInvalidParams.
func (e *FieldError) Unwrap() error { return ErrInvalidParams }

func (m *Manager) checkScopes(scopes []string) ([]string, error) {
	set, err := scope.NewSet(scopes...)
	if err != nil {
		return nil, &FieldError{Field: "scopes", Issue: scope.Issue(err)}
	}
	if m.cfg.Catalog != nil {
		if err := m.cfg.Catalog.Check(set); err != nil {
			return nil, &FieldError{Field: "scopes", Issue: scope.Issue(err)}
		}
	}
	return set.Strings(), nil
}

// Create makes a new key and returns it with its record. The Secret is the
// only copy of the key: show it to its owner once; it cannot be read back.
func (m *Manager) Create(ctx context.Context, p CreateParams) (Secret, *storage.APIKey, error) {
	if p.OrganisationID == "" {
		return "", nil, &FieldError{Field: "organisation", Issue: "is required"}
	}
	if len(p.Name) > 200 {
		return "", nil, &FieldError{Field: "name", Issue: "must be at most 200 characters"}
	}
	if !storage.ValidText(p.Name) {
		return "", nil, &FieldError{Field: "name", Issue: storage.TextIssue}
	}
	if p.Environment == "" {
		p.Environment = gatehouse.Test
	}
	if !p.Environment.Valid() {
		return "", nil, &FieldError{Field: "environment", Issue: "must be live or test"}
	}
	scopes, err := m.checkScopes(p.Scopes)
	if err != nil {
		return "", nil, err
	}
	now := m.now().UTC()
	if !p.ExpiresAt.IsZero() && !p.ExpiresAt.After(now) {
		return "", nil, &FieldError{Field: "expires_at", Issue: "must be in the future"}
	}
	if p.Uses != nil && (p.Uses.Remaining < 0 || p.Uses.RefillAmount < 0 || p.Uses.RefillInterval < 0) {
		return "", nil, &FieldError{Field: "uses", Issue: "must not be negative"}
	}
	secret := generate(m.cfg.Prefix, p.Environment)
	k := &storage.APIKey{
		ID: IDFor(secret.Reveal()), Hash: m.hasher.hash(secret.Reveal()), OrganisationID: p.OrganisationID,
		OwnerID: p.OwnerID, Name: p.Name, Display: Display(secret.Reveal()), Scopes: scopes,
		Environment: string(p.Environment), CreatedAt: now, ExpiresAt: p.ExpiresAt.UTC(), RateLimit: p.RateLimit,
		Metadata: maps.Clone(p.Metadata),
	}
	if p.Uses != nil {
		k.UsesLimited, k.UsesRemaining, k.RefillAmount, k.RefillInterval, k.LastRefillAt = true, p.Uses.Remaining, p.Uses.RefillAmount, p.Uses.RefillInterval, now
	}
	if err := m.store.CreateAPIKey(ctx, k); err != nil {
		return "", nil, fmt.Errorf("apikey: create: %w", err)
	}
	m.log.Info("api key created", "key_id", k.ID, "organisation", k.OrganisationID, "environment", k.Environment, "display", k.Display)
	return secret, k, nil
}

// Get returns the key with id.
func (m *Manager) Get(ctx context.Context, id string) (*storage.APIKey, error) {
	k, err := m.store.GetAPIKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("apikey: get: %w", err)
	}
	return k, nil
}

// Find returns the stored key that a key's secret text names, whatever
// its state (revoked, expired, over its uses), without verifying or
// counting a use: for incident response, when a leaked key is reported
// and its id is needed to revoke it. A text that is not one of this
// manager's keys (wrong shape, checksum or prefix) is ErrMalformed; one
// that no stored key matches, or that names a key of another environment
// than the one stored, is storage.ErrNotFound. The secret is hashed as
// Verify hashes it; it is never logged.
func (m *Manager) Find(ctx context.Context, key string) (*storage.APIKey, error) {
	parsed, err := Parse(key)
	if err != nil || parsed.Prefix != m.cfg.Prefix {
		return nil, ErrMalformed
	}
	h := m.hasher.sum(key)
	k, err := m.store.GetAPIKeyByHash(ctx, h.hex())
	if err == nil && k.Environment != string(parsed.Environment) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("apikey: find: %w", err)
	}
	return k, nil
}

// List returns a page of an organisation's keys and their total count.
func (m *Manager) List(ctx context.Context, organisationID string, p storage.Page) ([]*storage.APIKey, int, error) {
	ks, total, err := m.store.ListAPIKeys(ctx, organisationID, p)
	if err != nil {
		return nil, 0, fmt.Errorf("apikey: list: %w", err)
	}
	return ks, total, nil
}

// UpdateParams changes a key; nil fields are left as they are.
type UpdateParams struct {
	Name   *string
	Scopes []string
	// RateLimit, when not nil, replaces the override ("" removes it).
	RateLimit *string
}

// Update changes a key's name, scopes or rate limit. Cached copies on this
// instance are dropped at once.
func (m *Manager) Update(ctx context.Context, id string, p UpdateParams) (*storage.APIKey, error) {
	return m.modify(ctx, id, "updated", func(k *storage.APIKey) error {
		if p.Name != nil {
			if len(*p.Name) > 200 {
				return &FieldError{Field: "name", Issue: "must be at most 200 characters"}
			}
			if !storage.ValidText(*p.Name) {
				return &FieldError{Field: "name", Issue: storage.TextIssue}
			}
			k.Name = *p.Name
		}
		if p.Scopes != nil {
			s, err := m.checkScopes(p.Scopes)
			if err != nil {
				return err
			}
			k.Scopes = s
		}
		if p.RateLimit != nil {
			k.RateLimit = *p.RateLimit
		}
		return nil
	})
}

// Revoke stops a key: at once on this instance, and on instances that
// share the store at once with Config.Invalidator, within CacheTTL
// without it.
func (m *Manager) Revoke(ctx context.Context, id string) (*storage.APIKey, error) {
	return m.modify(ctx, id, "revoked", func(k *storage.APIKey) error {
		if k.RevokedAt.IsZero() || k.RevokedAt.After(m.now()) {
			k.RevokedAt = m.now().UTC()
		}
		return nil
	})
}

// Expire makes a key stop working at at (now when zero).
func (m *Manager) Expire(ctx context.Context, id string, at time.Time) (*storage.APIKey, error) {
	if at.IsZero() {
		at = m.now()
	}
	return m.modify(ctx, id, "expiry set", func(k *storage.APIKey) error {
		k.ExpiresAt = at.UTC()
		return nil
	})
}

// Rotate issues a new key with the same organisation, owner, name, scopes,
// environment, expiry, rate limit and metadata, and makes the old key stop
// working after grace (at once when grace is zero), so clients can switch
// over. It returns the new key's secret and record. A key rotates once:
// rotating it again (or a revoked key) is ErrInvalidParams, and of
// rotations at once one wins, the others' new keys revoked.
func (m *Manager) Rotate(ctx context.Context, id string, grace time.Duration) (Secret, *storage.APIKey, error) {
	if grace < 0 {
		return "", nil, &FieldError{Field: "grace", Issue: "must not be negative"}
	}
	old, err := m.Get(ctx, id)
	if err != nil {
		return "", nil, err
	}
	if err := rotatable(old); err != nil {
		return "", nil, err
	}
	meta := maps.Clone(old.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	meta["rotated_from"] = old.ID
	var exp time.Time
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.After(m.now()) {
		exp = old.ExpiresAt
	}
	secret, fresh, err := m.Create(ctx, CreateParams{
		OrganisationID: old.OrganisationID, OwnerID: old.OwnerID, Name: old.Name, Scopes: old.Scopes,
		Environment: gatehouse.Environment(old.Environment), ExpiresAt: exp, RateLimit: old.RateLimit, Metadata: meta,
	})
	if err != nil {
		return "", nil, err
	}
	end := m.now().Add(grace).UTC()
	if _, err := m.modify(ctx, id, "rotated", func(k *storage.APIKey) error {
		// Read again: another rotation or a revocation may have come
		// since the key was first read.
		if err := rotatable(k); err != nil {
			return err
		}
		if k.ExpiresAt.IsZero() || k.ExpiresAt.After(end) {
			k.ExpiresAt = end
		}
		if k.Metadata == nil {
			k.Metadata = map[string]string{}
		}
		k.Metadata["rotated_to"] = fresh.ID
		return nil
	}); err != nil {
		// The new key must not outlive a rotation that did not happen.
		if _, rerr := m.Revoke(context.WithoutCancel(ctx), fresh.ID); rerr != nil {
			m.log.Error("revoking the key of a failed rotation failed", "key_id", fresh.ID, "err", rerr)
		}
		return "", nil, err
	}
	return secret, fresh, nil
}

// rotatable is nil for a key Rotate may rotate, else the FieldError that
// says why not.
func rotatable(k *storage.APIKey) error {
	if !k.RevokedAt.IsZero() {
		return &FieldError{Field: "key", Issue: "is revoked"}
	}
	if to := k.Metadata["rotated_to"]; to != "" {
		return &FieldError{Field: "key", Issue: "was rotated already, to " + to + ": rotate that one"}
	}
	return nil
}

// modify reads the key, applies change and writes it back, conditionally
// on the version it read (storage.APIKeys.UpdateAPIKey): when another
// change came between, it reads the key again and applies change to
// that, so neither change is lost. Every instance's cached copy is
// dropped: this one's at once, the others' through Config.Invalidator.
func (m *Manager) modify(ctx context.Context, id, what string, change func(*storage.APIKey) error) (*storage.APIKey, error) {
	var k *storage.APIKey
	var refused error // change's own error, returned as it is
	err := storage.RetryOnConflict(func() error {
		var err error
		if k, err = m.store.GetAPIKey(ctx, id); err != nil {
			return err
		}
		if refused = change(k); refused != nil {
			return refused
		}
		return m.store.UpdateAPIKey(ctx, k)
	})
	if refused != nil {
		return nil, refused
	}
	if err != nil {
		return nil, fmt.Errorf("apikey: %s: %w", what, err)
	}
	m.cache.remove(k.Hash)
	m.broadcast(ctx, k.ID)
	m.log.Info("api key "+what, "key_id", k.ID, "organisation", k.OrganisationID)
	return k, nil
}

// broadcast tells the other instances, through Config.Invalidator, that
// the key with id changed. The change is stored by then: a cancelled ctx
// does not stop the message.
func (m *Manager) broadcast(ctx context.Context, id string) {
	if m.cfg.Invalidator == nil {
		return
	}
	if err := m.cfg.Invalidator.Invalidate(context.WithoutCancel(ctx), invalidationTopic, id); err != nil {
		m.log.Warn("telling other instances of an api key change failed; they see it within the cache TTL", "key_id", id, "err", err)
	}
}

// Invalidate drops any cached copy of the key with this id, on this
// instance and, through Config.Invalidator, on the others, so the next
// request reads the store. Use it when the store is changed by something
// other than a Manager.
func (m *Manager) Invalidate(ctx context.Context, id string) {
	m.cache.removeID(id)
	m.broadcast(ctx, id)
}

// Usage is what [Manager.Usage] reports about a key.
type Usage struct {
	LastUsedAt time.Time
	LastUsedIP string
	Hours      []storage.UsageBucket
	Days       []storage.UsageBucket
}

// Usage returns a key's last use and its hourly and daily request counts
// since since, as flushed to the store (see Config.FlushInterval).
func (m *Manager) Usage(ctx context.Context, id string, since time.Time) (*Usage, error) {
	k, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	h, d, err := m.store.APIKeyUsage(ctx, id, since)
	if err != nil {
		return nil, fmt.Errorf("apikey: usage: %w", err)
	}
	return &Usage{LastUsedAt: k.LastUsedAt, LastUsedIP: k.LastUsedIP, Hours: h, Days: d}, nil
}

// principalFor builds the principal a key authenticates as.
func principalFor(k *storage.APIKey) *gatehouse.Principal {
	sub := k.OwnerID
	if sub == "" {
		sub = k.ID
	}
	return (&gatehouse.Principal{
		Subject: sub, Organisation: k.OrganisationID, KeyID: k.ID, Scopes: slices.Clone(k.Scopes),
		Environment: gatehouse.Environment(k.Environment), Method: gatehouse.MethodAPIKey,
		RateLimitPolicy: k.RateLimit, ExpiresAt: k.ExpiresAt,
	}).SetLimitKey()
}
