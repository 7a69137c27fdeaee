package apikey_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

func memStore() storage.APIKeys { return memory.New() }

func sqliteStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"), sqlstore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	return s
}

func postgresStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	dsn := testenv.Postgres(t)
	prefix := testenv.Name("k") + "_"
	s, err := sqlstore.Open(t.Context(), dsn, sqlstore.Config{TablePrefix: prefix, MaxOpenConns: 4})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	t.Cleanup(func() {
		ctx := context.Background()
		for _, tb := range []string{"organisations", "users", "clients", "tokens", "consents", "api_keys", "api_key_usage", "subscriptions", "events", "deliveries", "attempts", "schema_migrations"} {
			_, _ = s.DB().ExecContext(ctx, `DROP TABLE IF EXISTS "`+prefix+tb+`"`)
		}
		_ = s.Close()
	})
	return s
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingStore counts hash lookups, to prove which paths read storage.
type countingStore struct {
	storage.APIKeys
	byHash atomic.Int64
	fail   atomic.Bool
}

func (c *countingStore) GetAPIKeyByHash(ctx context.Context, h string) (*storage.APIKey, error) {
	c.byHash.Add(1)
	if c.fail.Load() {
		return nil, errors.New("connection refused")
	}
	return c.APIKeys.GetAPIKeyByHash(ctx, h)
}

func newManager(t testing.TB, s storage.APIKeys, cfg apikey.Config) *apikey.Manager {
	t.Helper()
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = -1
	}
	m, err := apikey.New(s, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func backends(t *testing.T, fn func(t *testing.T, s storage.APIKeys)) {
	t.Run("memory", func(t *testing.T) { t.Parallel(); fn(t, memory.New()) })
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, sqliteStore(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, postgresStore(t)) })
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	m := newManager(t, memStore(), apikey.Config{Catalog: scope.DefaultCatalog()})
	cases := []struct {
		name  string
		p     apikey.CreateParams
		field string
		issue string // when set, the issue exactly
	}{
		{"no org", apikey.CreateParams{}, "organisation", "is required"},
		{"unknown scope", apikey.CreateParams{OrganisationID: "o", Scopes: []string{"bookings:delete"}}, "scopes", "must all be known; unknown: bookings:delete"},
		{"bad scope", apikey.CreateParams{OrganisationID: "o", Scopes: []string{"a b"}}, "scopes", `must be valid scope tokens: "a b" contains a character not allowed in a scope`},
		{"bad env", apikey.CreateParams{OrganisationID: "o", Environment: "prod"}, "environment", ""},
		{"past expiry", apikey.CreateParams{OrganisationID: "o", ExpiresAt: time.Now().Add(-time.Hour)}, "expires_at", ""},
		{"negative uses", apikey.CreateParams{OrganisationID: "o", Uses: &apikey.UsesBudget{Remaining: -1}}, "uses", ""},
		{"NUL in the name", apikey.CreateParams{OrganisationID: "o", Name: "ci\x00"}, "name", storage.TextIssue},
		{"name not UTF-8", apikey.CreateParams{OrganisationID: "o", Name: "ci\xff"}, "name", storage.TextIssue},
	}
	for _, tc := range cases {
		_, _, err := m.Create(t.Context(), tc.p)
		var fe *apikey.FieldError
		require.ErrorAs(t, err, &fe, tc.name)
		assert.Equal(t, tc.field, fe.Field, tc.name)
		if tc.issue != "" {
			assert.Equal(t, tc.issue, fe.Issue, tc.name)
		}
		assert.ErrorIs(t, err, apikey.ErrInvalidParams)
	}
	_, k, err := m.Create(t.Context(), apikey.CreateParams{OrganisationID: "o", Name: "ci"})
	require.NoError(t, err)
	bad := "ci\x00"
	_, err = m.Update(t.Context(), k.ID, apikey.UpdateParams{Name: &bad})
	var fe *apikey.FieldError
	require.ErrorAs(t, err, &fe, "update")
	assert.Equal(t, apikey.FieldError{Field: "name", Issue: storage.TextIssue}, *fe)
	_, err = apikey.New(memStore(), apikey.Config{Prefix: "Bad_Prefix"})
	assert.Error(t, err)
	_, err = apikey.New(nil, apikey.Config{})
	assert.Error(t, err)
}

func TestLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, s storage.APIKeys) {
		clk := newClock()
		m := newManager(t, s, apikey.Config{Now: clk.Now, Catalog: scope.DefaultCatalog()})
		ctx := t.Context()
		secret, k, err := m.Create(ctx, apikey.CreateParams{OrganisationID: "org", OwnerID: "user-1", Name: "CI",
			Scopes: []string{"bookings:read", "bookings:read"}, Environment: gatehouse.Live, RateLimit: "5000/h"})
		require.NoError(t, err)
		assert.Equal(t, apikey.IDFor(secret.Reveal()), k.ID)
		assert.Equal(t, []string{"bookings:read"}, k.Scopes)
		assert.NotContains(t, k.Hash, secret.Reveal())
		assert.Len(t, k.Hash, 64)

		p, err := m.Verify(ctx, secret.Reveal(), "192.0.2.1")
		require.NoError(t, err)
		assert.Equal(t, &gatehouse.Principal{Subject: "user-1", Organisation: "org", KeyID: k.ID, Scopes: []string{"bookings:read"},
			Environment: gatehouse.Live, Method: gatehouse.MethodAPIKey, RateLimitPolicy: "5000/h", LimitKey: "key:" + k.ID}, p)

		name := "Renamed"
		upd, err := m.Update(ctx, k.ID, apikey.UpdateParams{Name: &name, Scopes: []string{"staff:read"}})
		require.NoError(t, err)
		assert.Equal(t, "Renamed", upd.Name)
		p, err = m.Verify(ctx, secret.Reveal(), "192.0.2.1")
		require.NoError(t, err)
		assert.Equal(t, []string{"staff:read"}, p.Scopes, "update is seen at once on this instance")
		_, err = m.Update(ctx, k.ID, apikey.UpdateParams{Scopes: []string{"nope:read"}})
		assert.ErrorIs(t, err, apikey.ErrInvalidParams)

		// Rotation: the old key works through the grace period, then stops.
		newSecret, fresh, err := m.Rotate(ctx, k.ID, time.Hour)
		require.NoError(t, err)
		assert.NotEqual(t, k.ID, fresh.ID)
		assert.Equal(t, k.ID, fresh.Metadata["rotated_from"])
		_, err = m.Verify(ctx, newSecret.Reveal(), "192.0.2.1")
		require.NoError(t, err)
		clk.Add(59 * time.Minute)
		_, err = m.Verify(ctx, secret.Reveal(), "192.0.2.1")
		require.NoError(t, err, "old key works during the grace period")
		clk.Add(time.Minute)
		_, err = m.Verify(ctx, secret.Reveal(), "192.0.2.1")
		assertReason(t, err, apikey.ReasonExpired)
		old, err := m.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, fresh.ID, old.Metadata["rotated_to"])

		// Revocation is immediate on this instance.
		_, err = m.Revoke(ctx, fresh.ID)
		require.NoError(t, err)
		_, err = m.Verify(ctx, newSecret.Reveal(), "192.0.2.1")
		assertReason(t, err, apikey.ReasonRevoked)
		_, _, err = m.Rotate(ctx, fresh.ID, 0)
		assert.Error(t, err, "a revoked key cannot be rotated")

		// Expire.
		s3, k3, err := m.Create(ctx, apikey.CreateParams{OrganisationID: "org"})
		require.NoError(t, err)
		_, err = m.Expire(ctx, k3.ID, time.Time{})
		require.NoError(t, err)
		_, err = m.Verify(ctx, s3.Reveal(), "192.0.2.1")
		assertReason(t, err, apikey.ReasonExpired)

		list, total, err := m.List(ctx, "org", storage.Page{Limit: 2})
		require.NoError(t, err)
		assert.Equal(t, 3, total)
		assert.Len(t, list, 2)
		_, err = m.Get(ctx, "key_nope")
		assert.ErrorIs(t, err, storage.ErrNotFound)
	})
}

func assertReason(t *testing.T, err error, want apikey.Reason) {
	t.Helper()
	var ve *apikey.VerifyError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, want, ve.Reason)
}

func TestUsesBudget(t *testing.T) {
	backends(t, func(t *testing.T, s storage.APIKeys) {
		clk := newClock()
		m := newManager(t, s, apikey.Config{Now: clk.Now})
		secret, _, err := m.Create(t.Context(), apikey.CreateParams{OrganisationID: "o", Uses: &apikey.UsesBudget{Remaining: 2, RefillAmount: 2, RefillInterval: time.Hour}})
		require.NoError(t, err)
		for range 2 {
			_, err = m.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
			require.NoError(t, err)
		}
		_, err = m.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
		assertReason(t, err, apikey.ReasonUsageExceeded)
		clk.Add(time.Hour)
		_, err = m.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
		require.NoError(t, err, "refilled")
	})
}

func TestRevocationAcrossInstances(t *testing.T) {
	// Two managers share one database, as two server instances do.
	for name, open := range map[string]func(testing.TB) *sqlstore.Store{"sqlite": func(t testing.TB) *sqlstore.Store { return sqliteStore(t) }, "postgres": func(t testing.TB) *sqlstore.Store { return postgresStore(t) }} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			clk := newClock()
			a := newManager(t, s, apikey.Config{Now: clk.Now})
			b := newManager(t, s, apikey.Config{Now: clk.Now, CacheTTL: 3 * time.Second})
			secret, k, err := a.Create(t.Context(), apikey.CreateParams{OrganisationID: "o"})
			require.NoError(t, err)
			_, err = b.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
			require.NoError(t, err, "b caches the key")
			_, err = a.Revoke(t.Context(), k.ID)
			require.NoError(t, err)
			_, err = a.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
			assertReason(t, err, apikey.ReasonRevoked)
			// b may still accept it from its cache, but only until its TTL.
			clk.Add(2 * time.Second)
			_, err = b.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
			assert.NoError(t, err, "within the documented bound b may still accept")
			clk.Add(time.Second)
			_, err = b.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
			assertReason(t, err, apikey.ReasonRevoked)
		})
	}
}

func TestCacheAvoidsStorage(t *testing.T) {
	t.Parallel()
	cs := &countingStore{APIKeys: memory.New()}
	clk := newClock()
	m := newManager(t, cs, apikey.Config{Now: clk.Now})
	secret, _, err := m.Create(t.Context(), apikey.CreateParams{OrganisationID: "o"})
	require.NoError(t, err)

	// A damaged key is refused at the checksum: no lookup.
	bad := []byte(secret.Reveal())
	bad[12] ^= 1
	_, err = m.Verify(t.Context(), string(bad), "192.0.2.1")
	assertReason(t, err, apikey.ReasonMalformed)
	assert.Zero(t, cs.byHash.Load())

	for range 100 {
		_, err = m.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, cs.byHash.Load(), "warm cache: one lookup for 100 requests")

	// Unknown keys are remembered briefly too.
	other := newManager(t, memory.New(), apikey.Config{})
	ghost, _, err := other.Create(t.Context(), apikey.CreateParams{OrganisationID: "o"})
	require.NoError(t, err)
	for range 10 {
		_, err = m.Verify(t.Context(), ghost.Reveal(), "192.0.2.1")
		assertReason(t, err, apikey.ReasonNotFound)
	}
	assert.EqualValues(t, 2, cs.byHash.Load(), "negative cache: one lookup for 10 unknown-key requests")

	// A storage failure is an error, not a refusal.
	cs.fail.Store(true)
	clk.Add(time.Minute)
	_, err = m.Verify(t.Context(), secret.Reveal(), "192.0.2.1")
	require.Error(t, err)
	var ve *apikey.VerifyError
	assert.False(t, errors.As(err, &ve))
}

func TestUsageMonitoring(t *testing.T) {
	backends(t, func(t *testing.T, s storage.APIKeys) {
		clk := newClock()
		var logs bytes.Buffer
		var mu sync.Mutex
		var suspicions []apikey.Suspicion
		done := make(chan struct{}, 10)
		m := newManager(t, s, apikey.Config{Now: clk.Now, RejectBurst: 3,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			OnSuspicious: func(x apikey.Suspicion) {
				mu.Lock()
				suspicions = append(suspicions, x)
				mu.Unlock()
				done <- struct{}{}
			}})
		ctx := t.Context()
		secret, k, err := m.Create(ctx, apikey.CreateParams{OrganisationID: "o"})
		require.NoError(t, err)
		for range 5 {
			_, err = m.Verify(ctx, secret.Reveal(), "192.0.2.10")
			require.NoError(t, err)
		}
		clk.Add(time.Minute)
		_, err = m.Verify(ctx, secret.Reveal(), "198.51.100.7")
		require.NoError(t, err)
		wait(t, done)
		require.NoError(t, m.Flush(ctx))
		u, err := m.Usage(ctx, k.ID, clk.Now().Add(-24*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, "198.51.100.7", u.LastUsedIP)
		assert.True(t, u.LastUsedAt.Equal(clk.Now()), "%v", u.LastUsedAt)
		require.Len(t, u.Hours, 1)
		assert.EqualValues(t, 6, u.Hours[0].Requests)
		require.Len(t, u.Days, 1)
		assert.EqualValues(t, 6, u.Days[0].Requests)

		// A burst of rejected keys from one address.
		for range 3 {
			_, _ = m.Verify(ctx, "gate_live_notakeynotakeynotakeynotakeynotakey1234", "203.0.113.5")
		}
		wait(t, done)
		mu.Lock()
		kinds := []string{suspicions[0].Kind, suspicions[1].Kind}
		mu.Unlock()
		assert.ElementsMatch(t, []string{"new_network", "rejected_burst"}, kinds)

		assert.NotContains(t, logs.String(), secret.Reveal())
		assert.Contains(t, logs.String(), `"msg":"api key created"`)
		assert.Contains(t, logs.String(), `"msg":"api key rejected"`)
	})
}

func TestAuthenticator(t *testing.T) {
	t.Parallel()
	m := newManager(t, memory.New(), apikey.Config{HeaderXAPIKey: true})
	live, _, err := m.Create(t.Context(), apikey.CreateParams{OrganisationID: "o", Environment: gatehouse.Live})
	require.NoError(t, err)
	revoked, rk, err := m.Create(t.Context(), apikey.CreateParams{OrganisationID: "o"})
	require.NoError(t, err)
	_, err = m.Revoke(t.Context(), rk.ID)
	require.NoError(t, err)
	oauth := gatehouse.AuthenticatorFunc(func(r *http.Request) (*gatehouse.Principal, error) {
		tok, err := gatehouse.BearerToken(r, false)
		if err != nil {
			return nil, err
		}
		if tok == "oauth-token" || tok == "gate_at_abc.def" {
			return &gatehouse.Principal{Subject: "oauth-user", Method: gatehouse.MethodOAuthToken}, nil
		}
		return nil, gatehouse.ErrNoCredentials
	})
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, m, oauth)
	require.NoError(t, err)
	srv := httptest.NewServer(chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := gatehouse.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"subject": p.Subject, "env": string(p.Environment), "method": string(p.Method)})
	})))
	defer srv.Close()

	cases := []struct {
		name   string
		header string
		value  string
		status int
		reason string
		method string
	}{
		{"bearer", "Authorization", "Bearer " + live.Reveal(), 200, "", "api_key"},
		{"x-api-key", "X-API-Key", live.Reveal(), 200, "", "api_key"},
		{"oauth passes through", "Authorization", "Bearer oauth-token", 200, "", "oauth_token"},
		{"prefixed oauth token passes through", "Authorization", "Bearer gate_at_abc.def", 200, "", "oauth_token"},
		{"revoked", "Authorization", "Bearer " + revoked.Reveal(), 401, "REVOKED", ""},
		{"malformed", "Authorization", "Bearer gate_live_xyz", 401, "MALFORMED", ""},
		{"unknown", "Authorization", "Bearer gate_live_notakeynotakeynotakeynotakeynotakey1234", 401, "MALFORMED", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set(tc.header, tc.value)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			assert.Equal(t, tc.status, res.StatusCode)
			var body map[string]any
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			if tc.status == 200 {
				assert.Equal(t, tc.method, body["method"])
				return
			}
			e := body["error"].(map[string]any)
			assert.Equal(t, "UNAUTHORIZED", e["code"])
			assert.Equal(t, tc.reason, e["details"].(map[string]any)["reason"])
			assert.Contains(t, res.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
		})
	}
}

func TestConcurrentVerifyAndFlush(t *testing.T) {
	t.Parallel()
	s := memory.New()
	m := newManager(t, s, apikey.Config{})
	secret, k, err := m.Create(t.Context(), apikey.CreateParams{OrganisationID: "o"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if _, err := m.Verify(t.Context(), secret.Reveal(), "192.0.2.1"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_ = m.Flush(t.Context())
		}
	})
	wg.Wait()
	require.NoError(t, m.Flush(t.Context()))
	_, days, err := s.APIKeyUsage(t.Context(), k.ID, time.Now().Add(-48*time.Hour))
	require.NoError(t, err)
	require.Len(t, days, 1)
	assert.EqualValues(t, 4000, days[0].Requests, "no request is lost or counted twice")
}

func wait(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the suspicion hook")
	}
}

// TestFind: the stored key a secret names is found whatever its state,
// without a use spent or counted; text that is not one of the manager's
// keys is ErrMalformed, a well-formed key no store row matches
// storage.ErrNotFound.
func TestFind(t *testing.T) {
	backends(t, func(t *testing.T, s storage.APIKeys) {
		ctx := t.Context()
		m := newManager(t, s, apikey.Config{})
		secret, k, err := m.Create(ctx, apikey.CreateParams{OrganisationID: "org", Name: "leaked", Uses: &apikey.UsesBudget{Remaining: 1}})
		require.NoError(t, err)
		found, err := m.Find(ctx, secret.Reveal())
		require.NoError(t, err)
		assert.Equal(t, k.ID, found.ID)
		assert.Equal(t, int64(1), found.UsesRemaining, "finding spends no use")
		_, err = m.Verify(ctx, secret.Reveal(), "192.0.2.1")
		require.NoError(t, err, "the one use is still there")

		_, err = m.Revoke(ctx, k.ID)
		require.NoError(t, err)
		found, err = m.Find(ctx, secret.Reveal())
		require.NoError(t, err, "a revoked key is found too")
		assert.False(t, found.RevokedAt.IsZero())

		elsewhere, _, err := newManager(t, memStore(), apikey.Config{}).Create(ctx, apikey.CreateParams{OrganisationID: "org"})
		require.NoError(t, err)
		_, err = m.Find(ctx, elsewhere.Reveal())
		assert.ErrorIs(t, err, storage.ErrNotFound, "a well-formed key of another store")
		text := secret.Reveal()
		last := "x"
		if strings.HasSuffix(text, last) {
			last = "y"
		}
		for _, bad := range []string{"", "not a key", text[:len(text)-1] + last, strings.Replace(text, m.Prefix(), "zz", 1)} {
			_, err = m.Find(ctx, bad)
			assert.ErrorIs(t, err, apikey.ErrMalformed, "%q", bad)
		}
	})
}
