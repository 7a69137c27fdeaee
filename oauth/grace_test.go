package oauth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// graceFixture is an organisation with a user and two confidential
// clients, served by several Providers over one store (each its own
// server, as separate processes would be), with a refresh-token reuse
// grace.
type graceFixture struct {
	t        *testing.T
	bases    []string // one per instance
	prefix   string   // the organisation's
	id, sec  string
	other    string // a second client's id
	otherSec string
	user     string            // the user's id
	provs    []*oauth.Provider // one per instance
}

func newGraceFixture(t *testing.T, store oauth.Store, grace time.Duration, instances int) *graceFixture {
	t.Helper()
	return newFixture(t, store, instances, func(c *oauth.Config) { c.RefreshReuseGrace = grace })
}

// newFixture is newGraceFixture with the configuration that set makes
// of the instances' (each gets its own copy).
func newFixture(t *testing.T, store oauth.Store, instances int, set func(*oauth.Config)) *graceFixture {
	t.Helper()
	ctx := t.Context()
	f := &graceFixture{t: t}
	var first *oauth.Provider
	for range instances {
		srv := httptest.NewUnstartedServer(nil)
		cfg := oauth.Config{Issuer: "http://" + srv.Listener.Addr().String(), Secret: []byte("0123456789abcdef0123456789abcdef-grace"),
			PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}}
		set(&cfg)
		p, err := oauth.New(store, cfg)
		require.NoError(t, err)
		chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, p.Authenticator(oauth.ResourceConfig{}))
		require.NoError(t, err)
		mux := http.NewServeMux()
		mux.Handle("/oauth/", p.Handler())
		mux.Handle("GET /v1/me", chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })))
		srv.Config.Handler = mux
		srv.Start()
		t.Cleanup(srv.Close)
		f.bases = append(f.bases, srv.URL)
		f.provs = append(f.provs, p)
		if first == nil {
			first = p
		}
	}
	id := storage.NewID()
	f.prefix = "grace-" + strings.ReplaceAll(id[len(id)-12:], "-", "") // the random end: fixtures share a store
	org := &storage.Organisation{ID: id, DomainPrefix: f.prefix, Name: "Grace", Plan: "standard", CreatedAt: time.Now()}
	require.NoError(t, store.CreateOrganisation(ctx, org))
	u, err := first.CreateUser(ctx, oauth.UserParams{OrganisationID: org.ID, Email: "ada@example.com", Password: "correct horse battery"})
	require.NoError(t, err)
	f.user = u.ID
	register := func() (id, secret string) {
		secret, c, err := first.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "App", Grants: []string{"password", "refresh_token"}, Scopes: []string{"bookings:read"}})
		require.NoError(t, err)
		return c.ID, secret
	}
	f.id, f.sec = register()
	f.other, f.otherSec = register()
	return f
}

// post posts form to path on instance i with HTTP Basic as client id,
// and returns the status and the JSON body (nil when empty).
func (f *graceFixture) post(i int, path string, form url.Values, id, sec string) (int, map[string]any) {
	req, _ := http.NewRequest("POST", f.bases[i]+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	res, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != io.EOF {
		require.NoError(f.t, err)
	}
	return res.StatusCode, body
}

// token posts a token request to instance i as client id.
func (f *graceFixture) token(i int, form url.Values, id, sec string) (int, map[string]any) {
	return f.post(i, "/oauth/token", form, id, sec)
}

// signIn runs the password grant and returns the refresh token.
func (f *graceFixture) signIn() string {
	status, body := f.token(0, url.Values{"grant_type": {"password"}, "domain_prefix": {f.prefix}, "username": {"ada@example.com"}, "password": {"correct horse battery"}}, f.id, f.sec)
	require.Equal(f.t, 200, status, body)
	return body["refresh_token"].(string)
}

// refresh uses rt on instance i; on success it returns the new pair.
func (f *graceFixture) refresh(i int, rt string) (status int, access, refresh string, body map[string]any) {
	status, body = f.token(i, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, f.id, f.sec)
	if status == 200 {
		access, refresh = body["access_token"].(string), body["refresh_token"].(string)
	}
	return status, access, refresh, body
}

// api calls the protected endpoint of instance i with an access token.
func (f *graceFixture) api(i int, at string) int {
	req, _ := http.NewRequest("GET", f.bases[i]+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	res, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	res.Body.Close()
	return res.StatusCode
}

// onGraceStores runs test, in parallel, on the stores the grace is
// tested on: memory with one instance, SQLite (the embedded default) and
// PostgreSQL each shared by two.
// open makes a fresh store and says how many instances serve it.
func onGraceStores(t *testing.T, test func(t *testing.T, open func() (oauth.Store, int))) {
	stores := map[string]func(t *testing.T) (oauth.Store, int){
		"memory": func(*testing.T) (oauth.Store, int) { return memory.New(), 1 },
		"sqlite-two-instances": func(t *testing.T) (oauth.Store, int) {
			s, err := sqlstore.Open(t.Context(), "sqlite:"+t.TempDir()+"/grace.db", sqlstore.Config{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			require.NoError(t, s.Migrate(t.Context()))
			return s, 2
		},
		"postgres-two-instances": func(t *testing.T) (oauth.Store, int) {
			s, err := sqlstore.Open(t.Context(), testenv.PostgresSchema(t, "grace_"), sqlstore.Config{MaxOpenConns: 8})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			require.NoError(t, s.Migrate(t.Context()))
			return s, 2
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, func() (oauth.Store, int) { return open(t) })
		})
	}
}

// TestRefreshReuseGrace: with Config.RefreshReuseGrace, a refresh token
// used again soon after its rotation (a retry after a lost response, on
// any instance) gets a new pair, and the pair the first use issued stays
// valid; once the token that replaced it is used, reuse of the old one
// revokes the grant as without the grace.
func TestRefreshReuseGrace(t *testing.T) {
	t.Parallel()
	onGraceStores(t, func(t *testing.T, open func() (oauth.Store, int)) {
		store, n := open()
		f := newGraceFixture(t, store, time.Minute, n)
		last := n - 1 // the instance a retry lands on
		rt0 := f.signIn()
		status, at1, rt1, body := f.refresh(0, rt0)
		require.Equal(t, 200, status, body)
		status, at2, rt2, body := f.refresh(last, rt0) // the retry
		require.Equal(t, 200, status, "a retry within the grace: %v", body)
		assert.NotEqual(t, rt1, rt2, "the retry's refresh token is a new one")
		assert.Equal(t, 200, f.api(0, at1), "the first use's access token stays valid")
		assert.Equal(t, 200, f.api(last, at2), "so does the retry's")

		status, at3, rt3, body := f.refresh(0, rt1) // the token that replaced rt0 is used
		require.Equal(t, 200, status, body)
		status, _, _, body = f.refresh(last, rt0)
		assert.Equal(t, 400, status, "the grace ends when the successor is used: %v", body)
		assert.Equal(t, "invalid_grant", body["error"])
		for _, rt := range []string{rt2, rt3} {
			status, _, _, _ = f.refresh(0, rt)
			assert.Equal(t, 400, status, "the grant is revoked")
		}
		assert.Equal(t, 401, f.api(0, at3), "its access tokens too")
		assert.Equal(t, 401, f.api(last, at2))
	})
}

// TestRefreshReuseGraceEnds: a rotated token used after its grace
// revokes the grant; revoking the grant (RFC 7009) ends the grace at
// once; introspection reports a rotated token inactive even within its
// grace; another client presenting it revokes the grant.
func TestRefreshReuseGraceEnds(t *testing.T) {
	t.Parallel()
	onGraceStores(t, func(t *testing.T, open func() (oauth.Store, int)) {
		store, n := open()
		f := newGraceFixture(t, store, time.Second, n)
		last := n - 1
		rt0 := f.signIn()
		status, _, rt1, _ := f.refresh(0, rt0)
		require.Equal(t, 200, status)
		time.Sleep(1100 * time.Millisecond) // past the grace; a slower machine only waits longer
		status, _, _, body := f.refresh(last, rt0)
		assert.Equal(t, 400, status, "after the grace: %v", body)
		status, _, _, _ = f.refresh(0, rt1)
		assert.Equal(t, 400, status, "reuse after the grace revoked the grant")

		f2 := newGraceFixture(t, store, time.Minute, n)
		rt0 = f2.signIn()
		status, _, rt1, _ = f2.refresh(0, rt0)
		require.Equal(t, 200, status)
		introspect := func(rt string) any {
			_, body := f2.post(last, "/oauth/introspect", url.Values{"token": {rt}}, f2.id, f2.sec)
			return body["active"]
		}
		assert.Equal(t, false, introspect(rt0), "a rotated token is inactive to introspection, grace or not")
		assert.Equal(t, true, introspect(rt1))
		status, _ = f2.post(0, "/oauth/revoke", url.Values{"token": {rt1}}, f2.id, f2.sec)
		require.Equal(t, 200, status)
		status, _, _, body = f2.refresh(last, rt0)
		assert.Equal(t, 400, status, "a revoked grant has no grace: %v", body)

		// Another client holding the token is reuse, grace or not: the
		// grant is revoked.
		rt0 = f2.signIn()
		status, _, rt1, _ = f2.refresh(0, rt0)
		require.Equal(t, 200, status)
		status, body = f2.token(last, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt0}}, f2.other, f2.otherSec)
		assert.Equal(t, 400, status, "another client, within the grace: %v", body)
		assert.Equal(t, "invalid_grant", body["error"])
		status, _, _, body = f2.refresh(0, rt1)
		assert.Equal(t, 400, status, "the grant was revoked: %v", body)
	})
}

// TestConcurrentRefreshesWithGrace: eight refreshes racing with one
// token all succeed with the grace (each with a refresh token of its
// own); without it, at most one does.
func TestConcurrentRefreshesWithGrace(t *testing.T) {
	t.Parallel()
	onGraceStores(t, func(t *testing.T, open func() (oauth.Store, int)) {
		for _, grace := range []time.Duration{time.Minute, 0} {
			store, n := open()
			f := newGraceFixture(t, store, grace, n)
			rt0 := f.signIn()
			const racers = 8
			var wg sync.WaitGroup
			var mu sync.Mutex
			issued := map[string]bool{}
			for i := range racers {
				wg.Go(func() {
					status, _, rt, _ := f.refresh(i%n, rt0)
					if status == 200 {
						mu.Lock()
						issued[rt] = true
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if grace > 0 {
				assert.Len(t, issued, racers, "every racer got a refresh token of its own")
			} else {
				assert.LessOrEqual(t, len(issued), 1, "without a grace, one racer at most")
			}
		}
	})
}

func TestRefreshReuseGraceIsBounded(t *testing.T) {
	t.Parallel()
	for _, grace := range []time.Duration{-time.Second, oauth.MaxRefreshReuseGrace + time.Second} {
		_, err := oauth.New(memory.New(), oauth.Config{Issuer: "https://x.example", Secret: make([]byte, 32), RefreshReuseGrace: grace})
		assert.ErrorContains(t, err, "RefreshReuseGrace", "%v", grace)
	}
	_, err := oauth.New(memory.New(), oauth.Config{Issuer: "https://x.example", Secret: make([]byte, 32), RefreshReuseGrace: oauth.MaxRefreshReuseGrace})
	assert.NoError(t, err)
}
