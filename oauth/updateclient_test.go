package oauth_test

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
)

// TestUpdateClient: an application's scopes, grants, redirect URIs and
// name change after registration. A scope taken away stops at once in
// the tokens already issued (cached or read afresh, opaque or JWT) and in
// introspection, and a refresh of a grant holding it is refused
// invalid_scope; a scope added can be asked for; a grant taken away can
// no longer be used. Invalid changes are refused field by field, and
// nothing of them is stored.
func TestUpdateClient(t *testing.T) {
	for name, jwt := range map[string]bool{"opaque": false, "jwt": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, cfg, p, srv, org := servedProvider(t, jwt, "upd")
			_, err := p.CreateUser(ctx, oauth.UserParams{OrganisationID: org.ID, Email: "ada@upd.test", Password: "a long enough password"})
			require.NoError(t, err)
			secret, c, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "app", RedirectURIs: []string{"https://app.example/cb"},
				Grants: []string{oauth.GrantAuthorizationCode, oauth.GrantPassword, oauth.GrantRefreshToken}, Scopes: []string{"staff:read", "bookings:write"}})
			require.NoError(t, err)

			post := func(path string, form url.Values) (int, map[string]any) {
				t.Helper()
				res, body := postForm(t, srv.URL+path, form, c.ID, secret)
				require.NotNil(t, body, "a JSON body")
				return res.StatusCode, body
			}
			signIn := func(scopes string) (int, map[string]any) {
				return post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"upd"}, "username": {"ada@upd.test"},
					"password": {"a long enough password"}, "scope": {scopes}})
			}
			status, tok := signIn("staff:read bookings:write")
			require.Equal(t, 200, status, tok)
			at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
			scopesOf := func(a *oauth.ResourceAuthenticator) []string {
				t.Helper()
				r := httptest.NewRequest("GET", "/v1/me", nil)
				r.Header.Set("Authorization", "Bearer "+at)
				pr, err := a.Authenticate(r)
				require.NoError(t, err)
				return pr.Scopes
			}
			cached := p.Authenticator(oauth.ResourceConfig{CacheTTL: time.Hour})
			require.ElementsMatch(t, []string{"staff:read", "bookings:write"}, scopesOf(cached))

			// Invalid changes: each refused by its field, the client unchanged.
			empty := ""
			for field, u := range map[string]oauth.ClientUpdate{
				"name":          {Name: &empty},
				"redirect_uris": {RedirectURIs: []string{"http://app.example/cb"}},
				"scopes":        {Scopes: []string{"nope:read"}},
				"grants":        {Grants: []string{"device_code"}},
			} {
				_, err := p.UpdateClient(ctx, c.ID, u)
				var fe *oauth.FieldError
				require.ErrorAs(t, err, &fe, field)
				assert.Equal(t, field, fe.Field)
			}
			_, err = p.UpdateClient(ctx, c.ID, oauth.ClientUpdate{Grants: []string{oauth.GrantPassword}}) // keeps the redirect URIs: fine
			require.NoError(t, err)
			_, err = p.UpdateClient(ctx, c.ID, oauth.ClientUpdate{RedirectURIs: []string{}, Grants: []string{oauth.GrantAuthorizationCode}})
			var fe *oauth.FieldError
			require.ErrorAs(t, err, &fe, "the code grant needs a redirect URI")
			assert.Equal(t, "redirect_uris", fe.Field)
			_, err = p.UpdateClient(ctx, storage.NewID(), oauth.ClientUpdate{Name: &empty})
			assert.ErrorIs(t, err, storage.ErrNotFound)

			// Narrowed: bookings:write is gone from the tokens already issued.
			renamed := "app v2"
			updated, err := p.UpdateClient(ctx, c.ID, oauth.ClientUpdate{Name: &renamed, Scopes: []string{"staff:read"},
				Grants: []string{oauth.GrantAuthorizationCode, oauth.GrantPassword, oauth.GrantRefreshToken}, RedirectURIs: []string{"https://app.example/v2/cb"}})
			require.NoError(t, err)
			assert.Equal(t, "app v2", updated.Name)
			stored, err := s.GetClient(ctx, c.ID)
			require.NoError(t, err)
			assert.Equal(t, []string{"https://app.example/v2/cb"}, stored.RedirectURIs)
			assert.Equal(t, []string{"staff:read"}, []string(stored.Scopes))
			assert.Equal(t, []string{"staff:read"}, scopesOf(cached), "at once where it was cached")
			other, err := oauth.New(s, cfg) // another instance, nothing cached
			require.NoError(t, err)
			assert.Equal(t, []string{"staff:read"}, scopesOf(other.Authenticator(oauth.ResourceConfig{})), "read afresh")
			status, intro := post("/oauth/introspect", url.Values{"token": {at}})
			require.Equal(t, 200, status)
			assert.Equal(t, "staff:read", intro["scope"], "introspection reports what the token may still do")
			status, body := post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			assert.Equal(t, 400, status)
			assert.Equal(t, "invalid_scope", body["error"], "a refresh of the old grant: authorize again")
			status, body = signIn("staff:read bookings:write")
			assert.Equal(t, 400, status)
			assert.Equal(t, "invalid_scope", body["error"])

			// Widened: the new scope can be asked for.
			_, err = p.UpdateClient(ctx, c.ID, oauth.ClientUpdate{Scopes: []string{"staff:read", "payments:read"}})
			require.NoError(t, err)
			status, body = signIn("payments:read")
			assert.Equal(t, 200, status, body)

			// A grant taken away.
			_, err = p.UpdateClient(ctx, c.ID, oauth.ClientUpdate{Grants: []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}})
			require.NoError(t, err)
			status, body = signIn("staff:read")
			assert.NotEqual(t, 200, status, body)
			assert.Equal(t, "unauthorized_client", body["error"])
		})
	}
}
