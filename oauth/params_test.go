package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-go/gatehouse/oauth"
)

// TestParametersSentTwiceAreRefused: RFC 6749 §3.1 and §3.2 say a
// parameter "MUST NOT be included more than once"; fosite reads the
// first and ignores the rest, so a request meaning two things would go
// through as one of them. Each endpoint answers invalid_request naming
// the parameter (the authorization endpoint at the client's redirect URI,
// with the state).
func TestParametersSentTwiceAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.ccID}, "client_secret": {e.ccSec}}
	for _, tc := range []struct {
		path, param string
		form        url.Values
	}{
		{"/oauth/token", "grant_type", url.Values{"grant_type": {"client_credentials", "password"}, "client_id": {e.ccID}, "client_secret": {e.ccSec}}},
		{"/oauth/token", "scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"staff:read", "staff:write"}, "client_id": {e.ccID}, "client_secret": {e.ccSec}}},
		{"/oauth/token", "client_id", url.Values{"grant_type": {"client_credentials"}, "client_id": {e.ccID, e.confID}, "client_secret": {e.ccSec}}},
		{"/oauth/revoke", "token", url.Values{"token": {"a", "b"}, "client_id": {e.ccID}, "client_secret": {e.ccSec}}},
		{"/oauth/introspect", "token", url.Values{"token": {"a", "b"}, "client_id": {e.ccID}, "client_secret": {e.ccSec}}},
	} {
		res, body := e.post(tc.path, tc.form, "", "")
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, "%s %s", tc.path, tc.param)
		assert.Equal(t, "invalid_request", body["error"], "%s %s", tc.path, tc.param)
		assert.Contains(t, body["error_description"], "The "+tc.param+" parameter is sent more than once.", tc.path)
	}
	res, body := e.post("/oauth/token", cc, "", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "each once: %v", body)

	conf := e.conf(e.confID, e.confSec, "bookings:read")
	for _, twice := range [][2]string{{"response_type", "token"}, {"state", "other-state-1"}, {"code_challenge", strings.Repeat("b", 43)}} {
		u, err := url.Parse(conf.AuthCodeURL("state-twice1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		require.NoError(t, err)
		q := u.Query()
		q.Add(twice[0], twice[1])
		u.RawQuery = q.Encode()
		res, _ := newBrowser(t).get(u.String())
		require.Equal(t, http.StatusSeeOther, res.StatusCode, twice[0])
		loc, _ := url.Parse(res.Header.Get("Location"))
		assert.Equal(t, "invalid_request", loc.Query().Get("error"), twice[0])
		assert.Contains(t, loc.Query().Get("error_description"), "The "+twice[0]+" parameter is sent more than once.")
		assert.Equal(t, "state-twice1", loc.Query().Get("state"), "the first state, as fosite reads it")
	}
}

// TestMalformedCodeChallengeIsRefusedBeforeSignIn: a code_challenge that
// no verifier's S256 can equal (not 43 base64url characters) would let the
// user sign in and consent for a code that can never be exchanged; the
// authorization endpoint refuses it at once.
func TestMalformedCodeChallengeIsRefusedBeforeSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conf := e.conf(e.confID, e.confSec, "bookings:read")
	for _, challenge := range []string{"\x00", "short", strings.Repeat("a", 42), strings.Repeat("a", 44), strings.Repeat("a", 42) + "=", strings.Repeat("a", 42) + "+"} {
		u := conf.AuthCodeURL("state-pkce12", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		res, _ := newBrowser(t).get(u)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "%q", challenge)
		loc, _ := url.Parse(res.Header.Get("Location"))
		assert.Equal(t, "invalid_request", loc.Query().Get("error"), "%q", challenge)
		assert.Contains(t, loc.Query().Get("error_description"), "43 characters", "%q", challenge)
	}
	res, page := newBrowser(t).get(conf.AuthCodeURL("state-pkce12", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	assert.Equal(t, http.StatusOK, res.StatusCode, "a real S256 challenge: the sign-in page")
	assert.Contains(t, page, `value="login"`)
}

// TestRefreshRefusesScopeBeyondTheGrant: RFC 6749 §6 says a refresh's
// scope "MUST NOT include any scope not originally granted"; fosite
// ignored the parameter and answered 200. Beyond the grant is
// invalid_scope, and the refresh token is not spent by it; the grant's own
// scopes, or ones they imply, go through, and a narrower scope is the new
// access token's alone: the new refresh token keeps the grant's (fosite
// gave both the whole scope). Opaque and JWT access tokens alike.
func TestRefreshRefusesScopeBeyondTheGrant(t *testing.T) {
	t.Parallel()
	for _, jwt := range []bool{false, true} {
		t.Run(map[bool]string{false: "opaque", true: "jwt"}[jwt], func(t *testing.T) {
			t.Parallel()
			testRefreshScopes(t, jwt)
		})
	}
}

// testRefreshScopes: a refresh may narrow the new access token's scope,
// never widen it, and the new refresh token keeps the grant's scope.
func testRefreshScopes(t *testing.T, jwt bool) {
	e := newEnv(t, func(c *oauth.Config) {
		if jwt {
			c.JWTKeys, _ = oauth.NewKeySet()
		}
	})
	_, body := e.post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
		"password": {"correct horse battery"}, "scope": {"bookings:write"}}, e.confID, e.confSec)
	rt, _ := body["refresh_token"].(string)
	require.NotEmpty(t, rt, "%v", body)
	refresh := func(scope string) (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			form.Set("scope", scope)
		}
		res, body := e.post("/oauth/token", form, e.confID, e.confSec)
		if res.StatusCode == http.StatusOK {
			rt = body["refresh_token"].(string)
		}
		return res.StatusCode, body
	}
	for _, beyond := range []string{"customers:read", "bookings:write customers:read", "bookings:*"} {
		status, body := refresh(beyond)
		assert.Equal(t, http.StatusBadRequest, status, beyond)
		assert.Equal(t, "invalid_scope", body["error"], beyond)
		assert.Contains(t, body["error_description"], "The refresh token was not granted", beyond)
	}
	for _, tc := range []struct{ asked, got string }{
		{"", "bookings:write"},
		{"bookings:write", "bookings:write"},
		{"bookings:read", "bookings:read"}, // bookings:write implies bookings:read
		{"bookings:read bookings:read", "bookings:read"},
		{"", "bookings:write"}, // the refresh token kept the grant's scope
	} {
		status, body := refresh(tc.asked)
		require.Equal(t, http.StatusOK, status, "%q: %v (the refused ones spent nothing)", tc.asked, body)
		assert.Equal(t, tc.got, body["scope"], "asked %q", tc.asked)
		code, me := e.me(body["access_token"].(string))
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, []any{tc.got}, me["scopes"], "the access token's own scope, asked %q", tc.asked)
		_, in := e.post("/oauth/introspect", url.Values{"token": {rt}}, e.ccID, e.ccSec)
		assert.Equal(t, "bookings:write", in["scope"], "the new refresh token's scope is the grant's, asked %q", tc.asked)
	}
}

// TestClientAuthenticatesOneWay: RFC 6749 §2.3 allows one client
// authentication method per request, and §5.2 names a second one
// invalid_request. fosite read the Authorization header and ignored the
// body, so a wrong client_secret beside a right Basic header went
// through. Each endpoint refuses both, and a body client_id naming
// another client than the header; the same client_id in both is fine.
func TestClientAuthenticatesOneWay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"} {
		for _, tc := range []struct {
			name string
			form url.Values
			hint string
		}{
			{"Basic and a body secret", url.Values{"client_secret": {"wrong"}}, "not both"},
			{"Basic and the same body secret", url.Values{"client_secret": {e.ccSec}}, "not both"},
			{"another body client_id", url.Values{"client_id": {e.confID}}, "is not the client of the Authorization header"},
		} {
			form := url.Values{"grant_type": {"client_credentials"}, "token": {"x"}}
			for k, v := range tc.form {
				form[k] = v
			}
			res, body := e.post(path, form, e.ccID, e.ccSec)
			assert.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", path, tc.name)
			assert.Equal(t, "invalid_request", body["error"], "%s: %s", path, tc.name)
			assert.Contains(t, body["error_description"], tc.hint, "%s: %s", path, tc.name)
		}
		res, body := e.post(path, url.Values{"grant_type": {"client_credentials"}, "token": {"x"}, "client_id": {e.ccID}}, e.ccID, e.ccSec)
		assert.Equal(t, http.StatusOK, res.StatusCode, "%s: Basic and the same client_id in the body: %v", path, body)
	}
}
