// Package memory is a complete, concurrency-safe in-memory adapter of the
// storage interfaces: the default for tests and for embedding in a single
// process. It keeps nothing across restarts.
//
// Values are copied in and out, so a caller never shares memory with the
// store. The zero value is not usable; call [New].
package memory

import (
	"cmp"
	"context"
	"crypto/subtle"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
)

// Store implements [storage.Store] in memory. It is safe for concurrent use.
type Store struct {
	mu sync.RWMutex

	orgs        map[string]*storage.Organisation
	orgByPrefix map[string]string
	users       map[string]*storage.User
	userByEmail map[string]string // org + "\x00" + normalised email
	clients     map[string]*storage.Client
	tokens      map[tokenKey]*storage.Token
	tokensByReq map[reqKey]map[string]struct{}
	consents    map[[2]string]*storage.Consent
	keys        map[string]*storage.APIKey
	keyByHash   map[string]string
	usageHours  map[string]map[int64]int64
	usageDays   map[string]map[int64]int64
	subs        map[string]*storage.Subscription
	events      map[string]*storage.Event
	deliveries  map[string]*storage.Delivery
	attempts    map[string][]*storage.Attempt
	deliverySeq map[string]int64 // creation order
	seq         int64
}

type tokenKey struct {
	kind storage.TokenKind
	sig  string
}

type reqKey struct {
	kind storage.TokenKind
	req  string
}

var _ storage.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		orgs:        map[string]*storage.Organisation{},
		orgByPrefix: map[string]string{},
		users:       map[string]*storage.User{},
		userByEmail: map[string]string{},
		clients:     map[string]*storage.Client{},
		tokens:      map[tokenKey]*storage.Token{},
		tokensByReq: map[reqKey]map[string]struct{}{},
		consents:    map[[2]string]*storage.Consent{},
		keys:        map[string]*storage.APIKey{},
		keyByHash:   map[string]string{},
		usageHours:  map[string]map[int64]int64{},
		usageDays:   map[string]map[int64]int64{},
		subs:        map[string]*storage.Subscription{},
		events:      map[string]*storage.Event{},
		deliveries:  map[string]*storage.Delivery{},
		attempts:    map[string][]*storage.Attempt{},
		deliverySeq: map[string]int64{},
	}
}

func notFound(op, what string) error {
	return fmt.Errorf("memory: %s: %s: %w", op, what, storage.ErrNotFound)
}

func conflict(op, what string) error {
	return fmt.Errorf("memory: %s: %s: %w", op, what, storage.ErrConflict)
}

func page[T any](all []T, p storage.Page) []T {
	if p.Offset >= len(all) || p.Offset < 0 {
		return nil
	}
	end := min(len(all), p.Offset+p.Size())
	return all[p.Offset:end]
}

// ---- organisations and users

func cloneOrg(o *storage.Organisation) *storage.Organisation { c := *o; return &c }

// CreateOrganisation implements [storage.Organisations].
func (s *Store) CreateOrganisation(_ context.Context, o *storage.Organisation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := storage.NormalizePrefix(o.DomainPrefix)
	if _, ok := s.orgs[o.ID]; ok {
		return conflict("create organisation", "id exists")
	}
	if _, ok := s.orgByPrefix[prefix]; ok {
		return conflict("create organisation", "domain prefix taken")
	}
	c := cloneOrg(o)
	c.DomainPrefix = prefix
	s.orgs[o.ID] = c
	s.orgByPrefix[prefix] = o.ID
	return nil
}

// GetOrganisation implements [storage.Organisations].
func (s *Store) GetOrganisation(_ context.Context, id string) (*storage.Organisation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.orgs[id]
	if !ok {
		return nil, notFound("get organisation", id)
	}
	return cloneOrg(o), nil
}

// GetOrganisationByPrefix implements [storage.Organisations].
func (s *Store) GetOrganisationByPrefix(_ context.Context, prefix string) (*storage.Organisation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.orgByPrefix[storage.NormalizePrefix(prefix)]
	if !ok {
		return nil, notFound("get organisation by prefix", prefix)
	}
	return cloneOrg(s.orgs[id]), nil
}

// UpdateOrganisation implements [storage.Organisations].
func (s *Store) UpdateOrganisation(_ context.Context, o *storage.Organisation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.orgs[o.ID]
	if !ok {
		return notFound("update organisation", o.ID)
	}
	cur.Name, cur.Plan = o.Name, o.Plan
	return nil
}

func cloneUser(u *storage.User) *storage.User { c := *u; return &c }

func emailKey(org, email string) string { return org + "\x00" + storage.NormalizeEmail(email) }

// CreateUser implements [storage.Users].
func (s *Store) CreateUser(_ context.Context, u *storage.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; ok {
		return conflict("create user", "id exists")
	}
	k := emailKey(u.OrganisationID, u.Email)
	if _, ok := s.userByEmail[k]; ok {
		return conflict("create user", "email taken")
	}
	s.users[u.ID] = cloneUser(u)
	s.userByEmail[k] = u.ID
	return nil
}

// GetUser implements [storage.Users].
func (s *Store) GetUser(_ context.Context, id string) (*storage.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[id]
	if !ok {
		return nil, notFound("get user", id)
	}
	return cloneUser(u), nil
}

// GetUserByEmail implements [storage.Users].
func (s *Store) GetUserByEmail(_ context.Context, org, email string) (*storage.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.userByEmail[emailKey(org, email)]
	if !ok {
		return nil, notFound("get user by email", "no such user")
	}
	return cloneUser(s.users[id]), nil
}

// UpdateUser implements [storage.Users].
func (s *Store) UpdateUser(_ context.Context, u *storage.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.users[u.ID]
	if !ok {
		return notFound("update user", u.ID)
	}
	oldKey, newKey := emailKey(cur.OrganisationID, cur.Email), emailKey(cur.OrganisationID, u.Email)
	if oldKey != newKey {
		if _, taken := s.userByEmail[newKey]; taken {
			return conflict("update user", "email taken")
		}
		delete(s.userByEmail, oldKey)
		s.userByEmail[newKey] = u.ID
	}
	cur.Email, cur.PasswordHash, cur.FirstName, cur.LastName, cur.UpdatedAt = u.Email, u.PasswordHash, u.FirstName, u.LastName, u.UpdatedAt
	return nil
}

// SetPasswordHash implements [storage.Users].
func (s *Store) SetPasswordHash(_ context.Context, id, current, hash string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.users[id]
	if !ok {
		return notFound("set password hash", id)
	}
	if current != "" && subtle.ConstantTimeCompare([]byte(cur.PasswordHash), []byte(current)) != 1 {
		return conflict("set password hash", "the hash changed meanwhile")
	}
	cur.PasswordHash, cur.UpdatedAt = hash, at
	return nil
}

// ---- OAuth clients, tokens and consents

func cloneClient(c *storage.Client) *storage.Client {
	n := *c
	n.RedirectURIs = slices.Clone(c.RedirectURIs)
	n.GrantTypes = slices.Clone(c.GrantTypes)
	n.ResponseTypes = slices.Clone(c.ResponseTypes)
	n.Scopes = slices.Clone(c.Scopes)
	return &n
}

// CreateClient implements [storage.Clients].
func (s *Store) CreateClient(_ context.Context, c *storage.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return conflict("create client", "id exists")
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// GetClient implements [storage.Clients].
func (s *Store) GetClient(_ context.Context, id string) (*storage.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, notFound("get client", id)
	}
	return cloneClient(c), nil
}

// UpdateClient implements [storage.Clients].
func (s *Store) UpdateClient(_ context.Context, c *storage.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.clients[c.ID]
	if !ok {
		return notFound("update client", c.ID)
	}
	if cur.Version != c.Version {
		return conflict("update client", "the client changed since it was read")
	}
	n := cloneClient(c)
	n.CreatedAt = cur.CreatedAt
	n.Version++
	c.Version = n.Version
	s.clients[c.ID] = n
	return nil
}

// DeleteClient implements [storage.Clients].
func (s *Store) DeleteClient(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return notFound("delete client", id)
	}
	delete(s.clients, id)
	return nil
}

// ListClients implements [storage.Clients].
func (s *Store) ListClients(_ context.Context, org string, p storage.Page) ([]*storage.Client, int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []*storage.Client
	for _, c := range s.clients {
		if c.OrganisationID == org {
			all = append(all, c)
		}
	}
	slices.SortFunc(all, func(a, b *storage.Client) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	var out []*storage.Client
	for _, c := range page(all, p) {
		out = append(out, cloneClient(c))
	}
	return out, len(all), nil
}

func cloneToken(t *storage.Token) *storage.Token {
	n := *t
	n.Scopes = slices.Clone(t.Scopes)
	n.Data = slices.Clone(t.Data)
	return &n
}

// CreateToken implements [storage.Tokens].
func (s *Store) CreateToken(_ context.Context, t *storage.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := tokenKey{t.Kind, t.Signature}
	if _, ok := s.tokens[k]; ok {
		return conflict("create token", string(t.Kind)+" exists")
	}
	s.tokens[k] = cloneToken(t)
	rk := reqKey{t.Kind, t.RequestID}
	if s.tokensByReq[rk] == nil {
		s.tokensByReq[rk] = map[string]struct{}{}
	}
	s.tokensByReq[rk][t.Signature] = struct{}{}
	return nil
}

// GetToken implements [storage.Tokens].
func (s *Store) GetToken(_ context.Context, kind storage.TokenKind, sig string) (*storage.Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[tokenKey{kind, sig}]
	if !ok {
		return nil, notFound("get token", string(kind))
	}
	return cloneToken(t), nil
}

func (s *Store) deleteTokenLocked(t *storage.Token) {
	delete(s.tokens, tokenKey{t.Kind, t.Signature})
	rk := reqKey{t.Kind, t.RequestID}
	delete(s.tokensByReq[rk], t.Signature)
	if len(s.tokensByReq[rk]) == 0 {
		delete(s.tokensByReq, rk)
	}
}

// DeleteToken implements [storage.Tokens].
func (s *Store) DeleteToken(_ context.Context, kind storage.TokenKind, sig string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenKey{kind, sig}]
	if !ok {
		return notFound("delete token", string(kind))
	}
	s.deleteTokenLocked(t)
	return nil
}

// DeactivateToken implements [storage.Tokens].
func (s *Store) DeactivateToken(_ context.Context, kind storage.TokenKind, sig string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenKey{kind, sig}]
	if !ok || !t.Active {
		return notFound("deactivate token", string(kind)+" missing or inactive")
	}
	t.Active = false
	return nil
}

// RotateToken implements [storage.Tokens].
func (s *Store) RotateToken(_ context.Context, kind storage.TokenKind, sig string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenKey{kind, sig}]
	if !ok || !t.Active {
		return notFound("rotate token", string(kind)+" missing or inactive")
	}
	for other := range s.tokensByReq[reqKey{kind, t.RequestID}] {
		s.tokens[tokenKey{kind, other}].RotatedAt = time.Time{}
	}
	t.Active, t.RotatedAt = false, at
	return nil
}

// DeactivateTokensByRequest implements [storage.Tokens].
func (s *Store) DeactivateTokensByRequest(_ context.Context, kind storage.TokenKind, req string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sig := range s.tokensByReq[reqKey{kind, req}] {
		t := s.tokens[tokenKey{kind, sig}]
		if t.Active {
			t.Active = false
			n++
		}
		t.RotatedAt = time.Time{}
	}
	return n, nil
}

// grantKinds are the token kinds a user's authorization of a client
// consists of.
var grantKinds = []storage.TokenKind{storage.KindAuthorizeCode, storage.KindAccessToken, storage.KindRefreshToken}

// GrantedClients implements [storage.Tokens].
func (s *Store) GrantedClients(_ context.Context, subject string, now time.Time) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	var ids []string
	for _, t := range s.tokens {
		if t.Subject == subject && t.Active && (t.Kind == storage.KindAccessToken || t.Kind == storage.KindRefreshToken) &&
			(t.ExpiresAt.IsZero() || t.ExpiresAt.After(now)) && !seen[t.ClientID] {
			seen[t.ClientID] = true
			ids = append(ids, t.ClientID)
		}
	}
	return ids, nil
}

// DeactivateGrantTokens implements [storage.Tokens].
func (s *Store) DeactivateGrantTokens(_ context.Context, subject, clientID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.tokens {
		if t.Subject != subject || t.ClientID != clientID || !slices.Contains(grantKinds, t.Kind) {
			continue
		}
		if t.Active {
			t.Active = false
			n++
		}
		t.RotatedAt = time.Time{}
	}
	return n, nil
}

// DeleteTokensByRequest implements [storage.Tokens].
func (s *Store) DeleteTokensByRequest(_ context.Context, kind storage.TokenKind, req string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sigs := s.tokensByReq[reqKey{kind, req}]
	n := len(sigs)
	for sig := range sigs {
		delete(s.tokens, tokenKey{kind, sig})
	}
	delete(s.tokensByReq, reqKey{kind, req})
	return n, nil
}

// DeleteExpiredTokens implements [storage.Tokens].
func (s *Store) DeleteExpiredTokens(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.tokens {
		if !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(before) {
			s.deleteTokenLocked(t)
			n++
		}
	}
	return n, nil
}

// GetConsent implements [storage.Consents].
func (s *Store) GetConsent(_ context.Context, subject, clientID string) (*storage.Consent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.consents[[2]string{subject, clientID}]
	if !ok {
		return nil, notFound("get consent", clientID)
	}
	n := *c
	n.Scopes = slices.Clone(c.Scopes)
	return &n, nil
}

// SaveConsent implements [storage.Consents].
func (s *Store) SaveConsent(_ context.Context, c *storage.Consent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := *c
	n.Scopes = slices.Clone(c.Scopes)
	s.consents[[2]string{c.Subject, c.ClientID}] = &n
	return nil
}

// DeleteConsent implements [storage.Consents].
func (s *Store) DeleteConsent(_ context.Context, subject, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{subject, clientID}
	if _, ok := s.consents[k]; !ok {
		return notFound("delete consent", clientID)
	}
	delete(s.consents, k)
	return nil
}

// ListConsents implements [storage.Consents].
func (s *Store) ListConsents(_ context.Context, subject string) ([]*storage.Consent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*storage.Consent
	for k, c := range s.consents {
		if k[0] == subject {
			n := *c
			n.Scopes = slices.Clone(c.Scopes)
			out = append(out, &n)
		}
	}
	slices.SortFunc(out, func(a, b *storage.Consent) int {
		return cmp.Or(b.GrantedAt.Compare(a.GrantedAt), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out, nil
}

// ---- API keys

func cloneKey(k *storage.APIKey) *storage.APIKey {
	n := *k
	n.Scopes = slices.Clone(k.Scopes)
	n.Metadata = maps.Clone(k.Metadata)
	return &n
}

// CreateAPIKey implements [storage.APIKeys].
func (s *Store) CreateAPIKey(_ context.Context, k *storage.APIKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return conflict("create api key", "id exists")
	}
	if _, ok := s.keyByHash[k.Hash]; ok {
		return conflict("create api key", "hash exists")
	}
	s.keys[k.ID] = cloneKey(k)
	s.keyByHash[k.Hash] = k.ID
	return nil
}

// GetAPIKey implements [storage.APIKeys].
func (s *Store) GetAPIKey(_ context.Context, id string) (*storage.APIKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, notFound("get api key", id)
	}
	return cloneKey(k), nil
}

// GetAPIKeyByHash implements [storage.APIKeys].
func (s *Store) GetAPIKeyByHash(_ context.Context, hash string) (*storage.APIKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.keyByHash[hash]
	if !ok {
		return nil, notFound("get api key by hash", "no such key")
	}
	return cloneKey(s.keys[id]), nil
}

// ListAPIKeys implements [storage.APIKeys].
func (s *Store) ListAPIKeys(_ context.Context, org string, p storage.Page) ([]*storage.APIKey, int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []*storage.APIKey
	for _, k := range s.keys {
		if k.OrganisationID == org {
			all = append(all, k)
		}
	}
	slices.SortFunc(all, func(a, b *storage.APIKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	var out []*storage.APIKey
	for _, k := range page(all, p) {
		out = append(out, cloneKey(k))
	}
	return out, len(all), nil
}

// UpdateAPIKey implements [storage.APIKeys].
func (s *Store) UpdateAPIKey(_ context.Context, k *storage.APIKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.keys[k.ID]
	if !ok {
		return notFound("update api key", k.ID)
	}
	if cur.Version != k.Version {
		return conflict("update api key", "the key changed since it was read")
	}
	cur.Name, cur.Scopes, cur.ExpiresAt, cur.RevokedAt, cur.RateLimit = k.Name, slices.Clone(k.Scopes), k.ExpiresAt, k.RevokedAt, k.RateLimit
	cur.Metadata = maps.Clone(k.Metadata)
	cur.Version++
	k.Version = cur.Version
	return nil
}

// RecordAPIKeyUses implements [storage.APIKeys].
func (s *Store) RecordAPIKeyUses(_ context.Context, uses []storage.KeyUse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		k, ok := s.keys[u.KeyID]
		if !ok {
			continue
		}
		if u.At.After(k.LastUsedAt) {
			k.LastUsedAt, k.LastUsedIP = u.At, u.IP
		}
		if u.Requests == 0 {
			continue
		}
		hour := u.Hour.UTC().Truncate(time.Hour)
		day := time.Date(hour.Year(), hour.Month(), hour.Day(), 0, 0, 0, 0, time.UTC)
		if s.usageHours[u.KeyID] == nil {
			s.usageHours[u.KeyID], s.usageDays[u.KeyID] = map[int64]int64{}, map[int64]int64{}
		}
		s.usageHours[u.KeyID][hour.Unix()] += u.Requests
		s.usageDays[u.KeyID][day.Unix()] += u.Requests
	}
	return nil
}

func buckets(m map[int64]int64, since time.Time) []storage.UsageBucket {
	var out []storage.UsageBucket
	for start, n := range m {
		if start >= since.Unix() {
			out = append(out, storage.UsageBucket{Start: time.Unix(start, 0).UTC(), Requests: n})
		}
	}
	slices.SortFunc(out, func(a, b storage.UsageBucket) int { return a.Start.Compare(b.Start) })
	return out
}

// APIKeyUsage implements [storage.APIKeys].
func (s *Store) APIKeyUsage(_ context.Context, keyID string, since time.Time) (hours, days []storage.UsageBucket, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	since = since.UTC()
	day := time.Date(since.Year(), since.Month(), since.Day(), 0, 0, 0, 0, time.UTC)
	return buckets(s.usageHours[keyID], since), buckets(s.usageDays[keyID], day), nil
}

// ConsumeAPIKeyUses implements [storage.APIKeys].
func (s *Store) ConsumeAPIKeyUses(_ context.Context, id string, n int64, now time.Time) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return 0, false, notFound("consume api key uses", id)
	}
	if !k.UsesLimited {
		return -1, true, nil
	}
	if k.RefillInterval > 0 && !now.Before(k.LastRefillAt.Add(k.RefillInterval)) {
		k.UsesRemaining = k.RefillAmount
		k.LastRefillAt = now
	}
	if k.UsesRemaining < n {
		return k.UsesRemaining, false, nil
	}
	k.UsesRemaining -= n
	return k.UsesRemaining, true, nil
}

// ---- webhook subscriptions and outbox

func cloneSub(x *storage.Subscription) *storage.Subscription {
	n := *x
	n.Events = slices.Clone(x.Events)
	return &n
}

// CreateSubscription implements [storage.Subscriptions].
func (s *Store) CreateSubscription(_ context.Context, x *storage.Subscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[x.ID]; ok {
		return conflict("create subscription", "id exists")
	}
	s.subs[x.ID] = cloneSub(x)
	return nil
}

// GetSubscription implements [storage.Subscriptions].
func (s *Store) GetSubscription(_ context.Context, id string) (*storage.Subscription, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	x, ok := s.subs[id]
	if !ok {
		return nil, notFound("get subscription", id)
	}
	return cloneSub(x), nil
}

// ListSubscriptions implements [storage.Subscriptions].
func (s *Store) ListSubscriptions(_ context.Context, org string) ([]*storage.Subscription, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*storage.Subscription
	for _, x := range s.subs {
		if x.OrganisationID == org {
			out = append(out, cloneSub(x))
		}
	}
	slices.SortFunc(out, func(a, b *storage.Subscription) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// UpdateSubscription implements [storage.Subscriptions].
func (s *Store) UpdateSubscription(_ context.Context, x *storage.Subscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.subs[x.ID]
	if !ok {
		return notFound("update subscription", x.ID)
	}
	if cur.Version != x.Version {
		return conflict("update subscription", "the subscription changed since it was read")
	}
	n := cloneSub(x)
	n.OrganisationID, n.CreatedAt = cur.OrganisationID, cur.CreatedAt
	n.Version++
	x.Version = n.Version
	s.subs[x.ID] = n
	return nil
}

// DeleteSubscription implements [storage.Subscriptions].
func (s *Store) DeleteSubscription(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[id]; !ok {
		return notFound("delete subscription", id)
	}
	delete(s.subs, id)
	for did, d := range s.deliveries {
		if d.SubscriptionID == id && d.Status == storage.DeliveryPending {
			delete(s.deliveries, did)
			delete(s.attempts, did)
			delete(s.deliverySeq, did)
		}
	}
	return nil
}

func cloneDelivery(d *storage.Delivery) *storage.Delivery {
	n := *d
	n.Payload = slices.Clone(d.Payload)
	return &n
}

// Enqueue implements [storage.Outbox].
func (s *Store) Enqueue(_ context.Context, e *storage.Event, subscriptionIDs []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.events[e.ID]; ok {
		return conflict("enqueue", "event id exists")
	}
	ev := *e
	ev.Payload = slices.Clone(e.Payload)
	s.events[e.ID] = &ev
	for _, sub := range subscriptionIDs {
		s.seq++
		d := &storage.Delivery{
			ID: storage.NewID(), EventID: e.ID, SubscriptionID: sub, OrganisationID: e.OrganisationID,
			EventType: e.Type, Payload: slices.Clone(e.Payload), Status: storage.DeliveryPending,
			NextAttemptAt: e.CreatedAt, CreatedAt: e.CreatedAt, UpdatedAt: e.CreatedAt,
		}
		s.deliveries[d.ID] = d
		s.deliverySeq[d.ID] = s.seq
	}
	return nil
}

// ClaimDeliveries implements [storage.Outbox].
func (s *Store) ClaimDeliveries(_ context.Context, owner string, now time.Time, lease time.Duration, limit int, skip []string) ([]*storage.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*storage.Delivery
	for _, d := range s.deliveries {
		if d.Status == storage.DeliveryPending && !d.NextAttemptAt.After(now) &&
			(d.LeaseID == "" || !d.LeaseExpiresAt.After(now)) && !slices.Contains(skip, d.SubscriptionID) {
			due = append(due, d)
		}
	}
	slices.SortFunc(due, func(a, b *storage.Delivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(s.deliverySeq[a.ID], s.deliverySeq[b.ID]))
	})
	if len(due) > limit {
		due = due[:limit]
	}
	out := make([]*storage.Delivery, 0, len(due))
	for _, d := range due {
		d.LeaseID, d.LeaseOwner, d.LeaseExpiresAt = storage.NewID(), owner, now.Add(lease)
		out = append(out, cloneDelivery(d))
	}
	return out, nil
}

// CompleteDelivery implements [storage.Outbox].
func (s *Store) CompleteDelivery(_ context.Context, r storage.DeliveryResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[r.DeliveryID]
	if !ok {
		return notFound("complete delivery", r.DeliveryID)
	}
	if r.LeaseID == "" || d.LeaseID != r.LeaseID {
		return fmt.Errorf("memory: complete delivery %s: %w", r.DeliveryID, storage.ErrLeaseLost)
	}
	a := r.Attempt
	a.DeliveryID = d.ID
	if a.ID == "" {
		a.ID = storage.NewID()
	}
	s.attempts[d.ID] = append(s.attempts[d.ID], &a)
	d.Attempts++
	d.Status = r.Status
	d.NextAttemptAt = r.NextAttemptAt
	d.LeaseID, d.LeaseOwner, d.LeaseExpiresAt = "", "", time.Time{}
	d.LastStatusCode, d.LastError, d.UpdatedAt = a.StatusCode, a.Error, a.At
	return nil
}

// ReleaseDelivery implements [storage.Outbox].
func (s *Store) ReleaseDelivery(_ context.Context, id, leaseID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[id]
	if !ok {
		return notFound("release delivery", id)
	}
	if leaseID == "" || d.LeaseID != leaseID {
		return fmt.Errorf("memory: release delivery %s: %w", id, storage.ErrLeaseLost)
	}
	d.LeaseID, d.LeaseOwner, d.LeaseExpiresAt = "", "", time.Time{}
	return nil
}

// GetDelivery implements [storage.Outbox].
func (s *Store) GetDelivery(_ context.Context, id string) (*storage.Delivery, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.deliveries[id]
	if !ok {
		return nil, notFound("get delivery", id)
	}
	return cloneDelivery(d), nil
}

// ListDeliveries implements [storage.Outbox].
func (s *Store) ListDeliveries(_ context.Context, sub string, p storage.Page) ([]*storage.Delivery, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []*storage.Delivery
	for _, d := range s.deliveries {
		if d.SubscriptionID == sub {
			all = append(all, d)
		}
	}
	slices.SortFunc(all, func(a, b *storage.Delivery) int {
		return cmp.Compare(s.deliverySeq[b.ID], s.deliverySeq[a.ID])
	})
	var out []*storage.Delivery
	for _, d := range page(all, p) {
		out = append(out, cloneDelivery(d))
	}
	return out, nil
}

// ListAttempts implements [storage.Outbox].
func (s *Store) ListAttempts(_ context.Context, deliveryID string) ([]*storage.Attempt, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*storage.Attempt, 0, len(s.attempts[deliveryID]))
	for _, a := range s.attempts[deliveryID] {
		c := *a
		out = append(out, &c)
	}
	return out, nil
}

// Redeliver implements [storage.Outbox].
func (s *Store) Redeliver(_ context.Context, id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[id]
	if !ok {
		return notFound("redeliver", id)
	}
	d.Status, d.NextAttemptAt, d.UpdatedAt = storage.DeliveryPending, now, now
	d.LeaseID, d.LeaseOwner, d.LeaseExpiresAt = "", "", time.Time{}
	return nil
}

// RedeliverFailed implements [storage.Outbox].
func (s *Store) RedeliverFailed(_ context.Context, sub string, since, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.deliveries {
		if d.SubscriptionID == sub && d.Status == storage.DeliveryFailed && !d.CreatedAt.Before(since) {
			d.Status, d.NextAttemptAt, d.UpdatedAt = storage.DeliveryPending, now, now
			n++
		}
	}
	return n, nil
}
