package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// TestRevocationsReachOtherInstancesAtOnce: with the store's
// Invalidator, an access token revoked on one instance (RFC 7009, a
// replayed refresh token, Disconnect, the client's deletion) is refused
// by another at once, though that one validated it a moment before and
// trusts its cache for an hour; an instance without the Invalidator still
// accepts it from its cache. On PostgreSQL and on SQLite, where the two
// are processes sharing a file.
func TestRevocationsReachOtherInstancesAtOnce(t *testing.T) {
	t.Run("postgres", func(t *testing.T) { revocationsReachOtherInstances(t, testenv.PostgresSchema(t, "inv_")) })
	t.Run("sqlite, two processes on one file", func(t *testing.T) {
		revocationsReachOtherInstances(t, "sqlite:"+filepath.Join(t.TempDir(), "inv.db"))
	})
}

func revocationsReachOtherInstances(t *testing.T, dsn string) {
	ctx := t.Context()
	open := func() *sqlstore.Store {
		s, err := sqlstore.Open(ctx, dsn, sqlstore.Config{MaxOpenConns: 4})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	require.NoError(t, a.Migrate(ctx))
	srv := httptest.NewUnstartedServer(nil)
	cfg := func(inv *sqlstore.Invalidator) oauth.Config {
		c := oauth.Config{Issuer: "http://" + srv.Listener.Addr().String(), Secret: []byte("0123456789abcdef0123456789abcdef-inval"),
			PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}}
		if inv != nil {
			c.Invalidator = inv
		}
		return c
	}
	here, err := oauth.New(a, cfg(a.Invalidator()))
	require.NoError(t, err)
	there, err := oauth.New(b, cfg(b.Invalidator()))
	require.NoError(t, err)
	unaware, err := oauth.New(b, cfg(nil))
	require.NoError(t, err)
	for _, p := range []*oauth.Provider{here, there, unaware} {
		t.Cleanup(p.Close)
	}
	srv.Config.Handler = here.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "inval", Name: "Inval", CreatedAt: time.Now()}
	require.NoError(t, a.CreateOrganisation(ctx, org))
	user, err := here.CreateUser(ctx, oauth.UserParams{OrganisationID: org.ID, Email: "ada@example.com", Password: "correct horse battery"})
	require.NoError(t, err)
	secret, c, err := here.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "App", Grants: []string{"password", "refresh_token"},
		Scopes: []string{"bookings:read"}})
	require.NoError(t, err)
	post := func(path string, form url.Values) map[string]any {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(secret))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, 200, res.StatusCode, path)
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return body
	}
	replay := func(form url.Values) {
		req, _ := http.NewRequest("POST", srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(secret))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, 400, res.StatusCode, "a replayed refresh token")
	}
	signIn := func() (access, refresh string) {
		body := post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"inval"}, "username": {"ada@example.com"},
			"password": {"correct horse battery"}})
		return body["access_token"].(string), body["refresh_token"].(string)
	}
	authThere := there.Authenticator(oauth.ResourceConfig{CacheTTL: time.Hour})
	authUnaware := unaware.Authenticator(oauth.ResourceConfig{CacheTTL: time.Hour})
	accepts := func(auth *oauth.ResourceAuthenticator, token string) bool {
		req := httptest.NewRequest("GET", "/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		_, err := auth.Authenticate(req)
		return err == nil
	}

	for what, revoke := range map[string]func(access, refresh string){
		"revoked (RFC 7009)": func(access, _ string) { post("/oauth/revoke", url.Values{"token": {access}}) },
		"refresh token replayed": func(_, refresh string) {
			post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
			replay(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}) // reuse: the grant is revoked
		},
		"disconnected": func(string, string) {
			_, err := here.Disconnect(context.WithoutCancel(ctx), user.ID, c.ID)
			require.NoError(t, err)
		},
	} {
		access, refresh := signIn()
		require.True(t, accepts(authThere, access), what)
		require.True(t, accepts(authUnaware, access), what)
		revoke(access, refresh)
		require.Eventually(t, func() bool { return !accepts(authThere, access) }, 30*time.Second, 5*time.Millisecond,
			"%s on one instance: refused on the other", what)
		assert.True(t, accepts(authUnaware, access), "%s: without the invalidator the cached token stays good for the cache TTL", what)
	}

	// Last, as it ends the client: its deletion.
	access, _ := signIn()
	require.True(t, accepts(authThere, access))
	require.True(t, accepts(authUnaware, access))
	require.NoError(t, here.DeleteClient(ctx, c.ID))
	require.Eventually(t, func() bool { return !accepts(authThere, access) }, 30*time.Second, 5*time.Millisecond,
		"the client deleted on one instance: its token refused on the other")
	assert.True(t, accepts(authUnaware, access), "without the invalidator the cached token stays good for the cache TTL")
}
