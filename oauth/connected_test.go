package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-go/gatehouse/oauth"
)

// TestConnectedAppsAndDisconnect: a user's connected applications are
// those with a remembered consent (code flow) and those holding the
// user's tokens without one (password grant). Disconnecting one ends its
// access and refresh tokens at once, forgets its consent (the consent
// page shows again) and leaves the other application alone.
func TestConnectedAppsAndDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	conf := e.conf(e.confID, e.confSec, "bookings:read")
	verifier := oauth2.GenerateVerifier()
	b := newBrowser(t)
	loc := e.authorize(b, conf.AuthCodeURL("state-connect1", oauth2.S256ChallengeOption(verifier)), "allow")
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	res, body := e.post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
		"password": {"correct horse battery"}, "client_id": {e.foreverI}, "client_secret": {e.foreverS}}, "", "")
	require.Equal(t, 200, res.StatusCode, body)
	legacy := body["access_token"].(string)

	apps, err := e.p.ConnectedApps(ctx, e.user.ID)
	require.NoError(t, err)
	require.Len(t, apps, 2)
	assert.Equal(t, e.confID, apps[0].Client.ID, "the remembered consent first")
	assert.Equal(t, []string{"bookings:read"}, apps[0].Scopes)
	assert.WithinDuration(t, time.Now(), apps[0].GrantedAt, time.Minute)
	assert.Equal(t, e.foreverI, apps[1].Client.ID, "then the application holding tokens")
	assert.Empty(t, apps[1].Scopes, "without a remembered consent")

	status, _ := e.me(tok.AccessToken)
	require.Equal(t, 200, status, "cached as valid before the disconnect")
	n, err := e.p.Disconnect(ctx, e.user.ID, e.confID)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 2, "its access and refresh tokens")
	status, _ = e.me(tok.AccessToken)
	assert.Equal(t, http.StatusUnauthorized, status, "the access token is refused at once")
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	assertOAuthError(t, err, "invalid_grant")
	status, _ = e.me(legacy)
	assert.Equal(t, 200, status, "the other application keeps working")

	apps, err = e.p.ConnectedApps(ctx, e.user.ID)
	require.NoError(t, err)
	require.Len(t, apps, 1)
	assert.Equal(t, e.foreverI, apps[0].Client.ID)
	res, page := b.get(conf.AuthCodeURL("state-connect2", oauth2.S256ChallengeOption(verifier)))
	assert.Equal(t, 200, res.StatusCode, "the consent page again")
	assert.True(t, strings.Contains(page, "Allow"), page)

	n, err = e.p.Disconnect(ctx, e.user.ID, "no-such-client")
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestConnectedAppsShowWhatTheAppMayStillHold: once an application's
// scopes are narrowed, the user's connected applications list, of what
// the user allowed, only what it may still hold.
func TestConnectedAppsShowWhatTheAppMayStillHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	conf := e.conf(e.confID, e.confSec, "bookings:read", "customers:read")
	verifier := oauth2.GenerateVerifier()
	loc := e.authorize(newBrowser(t), conf.AuthCodeURL("state-narrow1", oauth2.S256ChallengeOption(verifier)), "allow")
	_, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	apps, err := e.p.ConnectedApps(ctx, e.user.ID)
	require.NoError(t, err)
	require.NotEmpty(t, apps)
	assert.Equal(t, []string{"bookings:read", "customers:read"}, apps[0].Scopes)

	_, err = e.p.UpdateClient(ctx, e.confID, oauth.ClientUpdate{Scopes: []string{"customers:read", "staff:read"}})
	require.NoError(t, err)
	apps, err = e.p.ConnectedApps(ctx, e.user.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"customers:read"}, apps[0].Scopes)
}
