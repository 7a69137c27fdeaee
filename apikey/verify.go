package apikey

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/digestcache"
	"github.com/gatehouse-go/gatehouse/storage"
)

// HeaderAPIKey is the optional header that carries a key (Config.HeaderXAPIKey).
const HeaderAPIKey = "X-API-Key"

// Reason says why a key was refused, as Unkey's verification codes do.
type Reason string

// Verification outcomes.
const (
	ReasonMalformed     Reason = "MALFORMED"
	ReasonNotFound      Reason = "NOT_FOUND"
	ReasonExpired       Reason = "EXPIRED"
	ReasonRevoked       Reason = "REVOKED"
	ReasonUsageExceeded Reason = "USAGE_EXCEEDED"
)

var reasonMessages = map[Reason]string{
	ReasonMalformed:     "The API key is malformed",
	ReasonNotFound:      "The API key is not recognised",
	ReasonExpired:       "The API key has expired",
	ReasonRevoked:       "The API key has been revoked",
	ReasonUsageExceeded: "The API key has used up its request budget",
}

// VerifyError is the error of a refused key.
type VerifyError struct {
	Reason Reason
	// KeyID is set when the key exists (expired, revoked, used up).
	KeyID string
}

func (e *VerifyError) Error() string { return "apikey: key refused: " + string(e.Reason) }

// Suspicion is reported to Config.OnSuspicious.
type Suspicion struct {
	// Kind is "new_network" (a key used from a network it was not used
	// from before) or "rejected_burst" (many refused keys from one
	// address).
	Kind  string
	KeyID string
	IP    string
	Count int
	At    time.Time
}

// entry is a cached verification: a key (nil for a negative entry), the
// environment the key's text names, and the principal it authenticates as.
type entry struct {
	key       *storage.APIKey
	env       gatehouse.Environment
	principal *gatehouse.Principal
	expires   time.Time
	usage     *usage
}

// usage is the in-memory state of one key's use, kept across cache
// reloads: counters waiting for the next flush, and the networks the key
// was used from.
type usage struct {
	keyID    string
	requests atomic.Int64
	lastAt   atomic.Int64 // unix nanoseconds
	lastIP   atomic.Pointer[string]
	dead     atomic.Bool

	mu   sync.Mutex
	nets map[string]bool
}

// cache holds recent verifications by key hash (negative ones too).
type cache struct{ *digestcache.Cache[*entry] }

func newCache(size int) cache { return cache{digestcache.New[*entry](size)} }

func (c cache) get(d digest) *entry {
	e, _ := c.Get(digestcache.Digest(d))
	return e
}

func (c cache) put(d digest, e *entry) { c.Put(digestcache.Digest(d), e) }

// remove drops the entry of a key by its stored (hex) hash.
func (c cache) remove(hexHash string) {
	var d digestcache.Digest
	if n, err := hex.Decode(d[:], []byte(hexHash)); err == nil && n == len(d) {
		c.Delete(d)
	}
}

// removeID drops every entry of a key by its id.
func (c cache) removeID(id string) {
	c.DeleteFunc(func(e *entry) bool { return e.key != nil && e.key.ID == id })
}

// Verify checks a key and returns the principal it authenticates as. A
// refused key is a *VerifyError saying why; other errors are failures of
// the store. ip is recorded as the key's last use.
//
// A malformed key (wrong shape or checksum) is refused without a store
// lookup. A verified key is cached for CacheTTL, an unknown one for
// NegativeTTL; expiry and revocation times are checked on every call.
func (m *Manager) Verify(ctx context.Context, key, ip string) (*gatehouse.Principal, error) {
	h := m.hasher.sum(key)
	now := m.now()
	// A cache entry exists only for a key that parsed (with our prefix)
	// when it was loaded, and its hash names that exact string: a hit
	// needs no second Parse, which is a third of a warm verification.
	e := m.cache.get(h)
	if e == nil || !now.Before(e.expires) {
		parsed, err := Parse(key)
		if err != nil || parsed.Prefix != m.cfg.Prefix {
			return nil, m.refuse(&VerifyError{Reason: ReasonMalformed}, nil, ip)
		}
		e, err = m.load(ctx, h, parsed.Environment, now)
		if err != nil {
			return nil, err
		}
	}
	k := e.key
	switch {
	case k == nil || k.Environment != string(e.env):
		return nil, m.refuse(&VerifyError{Reason: ReasonNotFound}, &h, ip)
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		return nil, m.refuse(&VerifyError{Reason: ReasonRevoked, KeyID: k.ID}, &h, ip)
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return nil, m.refuse(&VerifyError{Reason: ReasonExpired, KeyID: k.ID}, &h, ip)
	}
	if k.UsesLimited {
		_, ok, err := m.store.ConsumeAPIKeyUses(ctx, k.ID, 1, now)
		if err != nil {
			return nil, fmt.Errorf("apikey: verify: %w", err)
		}
		if !ok {
			return nil, m.refuse(&VerifyError{Reason: ReasonUsageExceeded, KeyID: k.ID}, &h, ip)
		}
	}
	m.record(e, now, ip)
	return e.principal, nil
}

// load reads a key by hash into the cache; env is the environment the
// key's own text names.
func (m *Manager) load(ctx context.Context, h digest, env gatehouse.Environment, now time.Time) (*entry, error) {
	k, err := m.store.GetAPIKeyByHash(ctx, h.hex())
	if errors.Is(err, storage.ErrNotFound) {
		e := &entry{env: env, expires: now.Add(m.cfg.NegativeTTL)}
		m.cache.put(h, e)
		return e, nil
	}
	if err != nil {
		return nil, fmt.Errorf("apikey: verify: %w", err)
	}
	e := &entry{key: k, env: env, principal: principalFor(k), expires: now.Add(m.cfg.CacheTTL), usage: m.usageFor(k.ID)}
	if k.LastUsedIP != "" {
		e.usage.mu.Lock()
		if len(e.usage.nets) == 0 {
			e.usage.nets = map[string]bool{network(k.LastUsedIP): true}
		}
		e.usage.mu.Unlock()
	}
	m.cache.put(h, e)
	return e, nil
}

func (m *Manager) usageFor(id string) *usage {
	if u, ok := m.usage.Load(id); ok {
		return u.(*usage)
	}
	u, _ := m.usage.LoadOrStore(id, &usage{keyID: id})
	return u.(*usage)
}

// record counts one use. It allocates only when the address changes.
func (m *Manager) record(e *entry, now time.Time, ip string) {
	u := e.usage
	u.requests.Add(1)
	u.lastAt.Store(now.UnixNano())
	if u.dead.Load() {
		m.revive(u) // the flusher retired this counter while we used it
	}
	if p := u.lastIP.Load(); p != nil && *p == ip {
		return
	}
	ipCopy := ip // escapes only on this path
	u.lastIP.Store(&ipCopy)
	netw := network(ip)
	u.mu.Lock()
	if u.nets == nil {
		u.nets = map[string]bool{}
	}
	known, first := u.nets[netw], len(u.nets) == 0
	if !known && len(u.nets) < 64 {
		u.nets[netw] = true
	}
	u.mu.Unlock()
	if !known && !first {
		m.suspect(Suspicion{Kind: "new_network", KeyID: e.key.ID, IP: ip, At: now})
	}
}

// network is the /24 of an IPv4 address or the /48 of an IPv6 one.
func network(ip string) string {
	a := net.ParseIP(ip)
	if a == nil {
		return ip
	}
	if v4 := a.To4(); v4 != nil {
		return v4.Mask(net.CIDRMask(24, 32)).String() + "/24"
	}
	return a.Mask(net.CIDRMask(48, 128)).String() + "/48"
}

func (m *Manager) suspect(s Suspicion) {
	m.log.Warn("api key suspicious use", "kind", s.Kind, "key_id", s.KeyID, "ip", s.IP, "count", s.Count)
	if m.cfg.OnSuspicious != nil {
		go m.cfg.OnSuspicious(s)
	}
}

// refuse logs a refused key (by hash prefix, never the key) and counts it
// against the address.
func (m *Manager) refuse(err *VerifyError, h *digest, ip string) error {
	hp := ""
	if h != nil {
		hp = h.hex()[:12]
	}
	m.log.Warn("api key rejected", "reason", string(err.Reason), "key_id", err.KeyID, "hash_prefix", hp, "ip", ip)
	if n := m.rejects.add(ip, m.now()); n == m.cfg.RejectBurst {
		m.suspect(Suspicion{Kind: "rejected_burst", IP: ip, Count: n, At: m.now()})
	}
	return err
}

// rejectCounter counts refused keys per address per minute, bounded.
type rejectCounter struct {
	mu     sync.Mutex
	window int64
	counts map[string]int
}

func (c *rejectCounter) add(ip string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := now.Unix() / 60
	if w != c.window || c.counts == nil || len(c.counts) > 100_000 {
		c.window, c.counts = w, map[string]int{}
	}
	c.counts[ip]++
	return c.counts[ip]
}

// Authenticate implements gatehouse.Authenticator. It reads the key from
// Authorization: Bearer (and X-API-Key when enabled). Credentials that do
// not start with this manager's prefix are declined with
// gatehouse.ErrNoCredentials, so an OAuth authenticator later in the chain
// can try them; ours that fail verification are a 401 saying why.
func (m *Manager) Authenticate(r *http.Request) (*gatehouse.Principal, error) {
	key, err := gatehouse.BearerToken(r, false)
	if errors.Is(err, gatehouse.ErrNoCredentials) && m.cfg.HeaderXAPIKey {
		key = r.Header.Get(HeaderAPIKey)
		if key != "" {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	// Ours start with "<prefix>_live_" or "<prefix>_test_"; anything else
	// (an OAuth token, even one that shares the prefix) is not ours.
	if rest, found := strings.CutPrefix(key, m.ours); !found || !(strings.HasPrefix(rest, "live_") || strings.HasPrefix(rest, "test_")) {
		return nil, gatehouse.ErrNoCredentials
	}
	p, err := m.Verify(r.Context(), key, m.cfg.ClientIP(r))
	if err == nil {
		return p, nil // before errors.As, whose target escapes: no allocation here
	}
	var ve *VerifyError
	if errors.As(err, &ve) {
		return nil, apierror.InvalidToken(reasonMessages[ve.Reason]).WithDetails(map[string]string{"reason": string(ve.Reason)})
	}
	return nil, apierror.Unavailable(err)
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// revive maps a retired counter again. Only one caller wins the
// compare-and-swap; if a newer counter for the key was created meanwhile
// (the key was reloaded into the cache), the counts move to it and this
// one stays retired, so every later use moves its count too.
func (m *Manager) revive(u *usage) {
	if !u.dead.CompareAndSwap(true, false) {
		return
	}
	actual, loaded := m.usage.LoadOrStore(u.keyID, u)
	if a := actual.(*usage); loaded && a != u {
		a.requests.Add(u.requests.Swap(0))
		a.lastAt.Store(max(a.lastAt.Load(), u.lastAt.Load()))
		u.dead.Store(true)
	}
}

// Flush writes the pending last-used times and request counters to the
// store in one batch. Counters are attributed to the hour in which they
// are flushed, so an hour's count can be late by up to FlushInterval.
func (m *Manager) Flush(ctx context.Context) error {
	now := m.now().UTC()
	hour := now.Truncate(time.Hour)
	var uses []storage.KeyUse
	var taken []*usage
	m.usage.Range(func(_, v any) bool {
		u := v.(*usage)
		n := u.requests.Swap(0)
		if n == 0 {
			// Idle for a whole interval: retire it. Unmap first, then mark
			// it dead, then look again: a request that raced with us either
			// is seen here or sees the mark and revives the counter.
			if m.usage.CompareAndDelete(u.keyID, u) {
				u.dead.Store(true)
				if u.requests.Load() > 0 {
					m.revive(u)
				}
			}
			return true
		}
		ip := ""
		if p := u.lastIP.Load(); p != nil {
			ip = *p
		}
		uses = append(uses, storage.KeyUse{KeyID: u.keyID, At: time.Unix(0, u.lastAt.Load()).UTC(), IP: ip, Hour: hour, Requests: n})
		taken = append(taken, u)
		return true
	})
	if len(uses) == 0 {
		return nil
	}
	if err := m.store.RecordAPIKeyUses(ctx, uses); err != nil {
		// Give the counts back so the next flush retries them.
		for i, u := range taken {
			u.requests.Add(uses[i].Requests)
		}
		return fmt.Errorf("apikey: flush usage: %w", err)
	}
	return nil
}

func (m *Manager) flushLoop(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			if err := m.Flush(ctx); err != nil {
				m.log.Error("api key usage flush failed", "err", err)
			}
			cancel()
		}
	}
}
