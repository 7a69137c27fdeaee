package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

// TestDeletedClientsTokensStop: once an application is deleted, the
// access tokens it was issued stop working, opaque and JWT alike, on the
// instance that deleted it at once (though it had them cached), and on
// an instance that reads them afresh.
func TestDeletedClientsTokensStop(t *testing.T) {
	for name, jwt := range map[string]bool{"opaque": false, "jwt": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, cfg, p, srv, org := servedProvider(t, jwt, "del")
			secret, c, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "svc", Grants: []string{"client_credentials"}, Scopes: []string{"staff:read"}})
			require.NoError(t, err)
			req, _ := http.NewRequest("POST", srv.URL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(c.ID, secret)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var body map[string]any
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			res.Body.Close()
			require.Equal(t, 200, res.StatusCode, body)
			at := body["access_token"].(string)

			accepts := func(a *oauth.ResourceAuthenticator) bool {
				r := httptest.NewRequest("GET", "/v1/me", nil)
				r.Header.Set("Authorization", "Bearer "+at)
				_, err := a.Authenticate(r)
				return err == nil
			}
			cached := p.Authenticator(oauth.ResourceConfig{CacheTTL: time.Hour})
			require.True(t, accepts(cached))

			other, err := oauth.New(s, cfg) // another instance, nothing cached
			require.NoError(t, err)
			require.NoError(t, p.DeleteClient(ctx, c.ID))
			assert.False(t, accepts(cached), "at once where it was cached")
			assert.False(t, accepts(other.Authenticator(oauth.ResourceConfig{})), "read afresh: the client is gone")
			assert.ErrorIs(t, p.DeleteClient(ctx, c.ID), storage.ErrNotFound)
		})
	}
}

// servedProvider returns a provider on a memory store, served by a test
// server at its issuer (JWT access tokens when jwt), with its config and
// an organisation of the domain prefix.
func servedProvider(t *testing.T, jwt bool, prefix string) (*memory.Store, oauth.Config, *oauth.Provider, *httptest.Server, *storage.Organisation) {
	t.Helper()
	s := memory.New()
	srv := httptest.NewUnstartedServer(nil)
	cfg := oauth.Config{Issuer: "http://" + srv.Listener.Addr().String(), Secret: make([]byte, 32)}
	if jwt {
		keys, err := oauth.NewKeySet()
		require.NoError(t, err)
		cfg.JWTKeys = keys
	}
	p, err := oauth.New(s, cfg)
	require.NoError(t, err)
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: prefix, Name: prefix, CreatedAt: time.Now()}
	require.NoError(t, s.CreateOrganisation(t.Context(), org))
	return s, cfg, p, srv, org
}
