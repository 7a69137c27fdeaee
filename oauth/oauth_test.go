package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

const redirect = "http://127.0.0.1:9999/callback"

type env struct {
	t        *testing.T
	srv      *httptest.Server
	p        *oauth.Provider
	store    oauth.Store
	org      *storage.Organisation
	user     *storage.User
	confID   string // confidential client
	confSec  string
	pubID    string // public client
	ccID     string // client-credentials client
	ccSec    string
	foreverI string
	foreverS string
}

// newEnv serves a provider with a demo organisation, user and clients;
// configure adjusts its Config first.
func newEnv(t *testing.T, configure ...func(*oauth.Config)) *env {
	t.Helper()
	return newEnvOn(t, memory.New(), configure...)
}

// newEnvOn is newEnv over store.
func newEnvOn(t *testing.T, store oauth.Store, configure ...func(*oauth.Config)) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, store: store}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	issuer := "http://" + ln.Addr().String()
	cfg := oauth.Config{Issuer: issuer, Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}, InsecureCookies: true}
	for _, f := range configure {
		f(&cfg)
	}
	e.p, err = oauth.New(e.store, cfg)
	require.NoError(t, err)
	e.org = &storage.Organisation{ID: storage.NewID(), DomainPrefix: "demo", Name: "Demo", Plan: "standard", CreatedAt: time.Now()}
	require.NoError(t, e.store.CreateOrganisation(ctx, e.org))
	e.user, err = e.p.CreateUser(ctx, oauth.UserParams{OrganisationID: e.org.ID, Email: "ada@example.com", Password: "correct horse battery", FirstName: "Ada"})
	require.NoError(t, err)

	var c *storage.Client
	e.confSec, c, err = e.p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: e.org.ID, Name: "Booking App", RedirectURIs: []string{redirect},
		Grants: []string{"authorization_code", "refresh_token", "implicit", "password"}, Scopes: []string{"bookings:read", "bookings:write", "customers:read"}})
	require.NoError(t, err)
	e.confID = c.ID
	_, c, err = e.p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: e.org.ID, Name: "SPA", RedirectURIs: []string{redirect}, Public: true,
		Grants: []string{"authorization_code", "refresh_token"}, Scopes: []string{"bookings:read"}})
	require.NoError(t, err)
	e.pubID = c.ID
	e.ccSec, c, err = e.p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: e.org.ID, Name: "Backend", Grants: []string{"client_credentials"}, Scopes: []string{"staff:read", "staff:write"}})
	require.NoError(t, err)
	e.ccID = c.ID
	e.foreverS, c, err = e.p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: e.org.ID, Name: "Legacy", Grants: []string{"password"}, Scopes: []string{"bookings:read"}, AccessTokenLifetime: storage.NoExpiry})
	require.NoError(t, err)
	e.foreverI = c.ID

	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, e.p.Authenticator(oauth.ResourceConfig{AllowQueryToken: true}))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/oauth/", e.p.Handler())
	mux.Handle("/.well-known/", e.p.Handler())
	mux.Handle("GET /v1/contacts/me", chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := gatehouse.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": p.Subject, "org": p.Organisation, "client": p.ClientID, "scopes": p.Scopes})
	})))
	e.srv = httptest.NewUnstartedServer(mux)
	e.srv.Listener = ln
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) conf(id, secret string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: e.srv.URL + "/oauth/authorize", TokenURL: e.srv.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// me calls the protected API with a token.
func (e *env) me(token string) (int, map[string]any) {
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/contacts/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

func (e *env) post(path string, form url.Values, basicID, basicSecret string) (*http.Response, map[string]any) {
	return postForm(e.t, e.srv.URL+path, form, basicID, basicSecret)
}

// postForm POSTs form to target, with HTTP Basic client credentials unless
// basicID is empty, and returns the response (its body closed) and the
// body as JSON (nil when it is not).
func postForm(t testing.TB, target string, form url.Values, basicID, basicSecret string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res, body
}

// browser is a cookie-jar HTTP client that stops at the client's redirect.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var actionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

func (b *browser) get(u string) (*http.Response, string) {
	res, err := b.c.Get(u)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// submit posts the page's form with fields.
func (b *browser) submit(page, base string, fields url.Values) (*http.Response, string) {
	m := csrfRE.FindStringSubmatch(page)
	require.NotNil(b.t, m, "no csrf token in page: %s", page)
	a := actionRE.FindStringSubmatch(page)
	require.NotNil(b.t, a)
	fields.Set("csrf", m[1])
	action := html.UnescapeString(a[1])
	req, _ := http.NewRequest("POST", base+action, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	res, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// authorize drives the real sign-in and consent pages and returns the
// final redirect to the client.
func (e *env) authorize(b *browser, authURL, decision string) *url.URL {
	res, page := b.get(authURL)
	if res.StatusCode == http.StatusOK && strings.Contains(page, `value="login"`) {
		res, page = b.submit(page, e.srv.URL, url.Values{"action": {"login"}, "domain_prefix": {"demo"}, "email": {"ada@example.com"}, "password": {"correct horse battery"}})
	}
	if res.StatusCode == http.StatusOK && strings.Contains(page, "Allow") {
		assert.Equal(e.t, "DENY", res.Header.Get("X-Frame-Options"))
		assert.Contains(e.t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
		res, _ = b.submit(page, e.srv.URL, url.Values{"action": {decision}, "remember": {"on"}})
	}
	require.Equal(e.t, http.StatusSeeOther, res.StatusCode, "expected a redirect to the client")
	loc, err := url.Parse(res.Header.Get("Location"))
	require.NoError(e.t, err)
	return loc
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, err := http.Get(e.srv.URL + "/.well-known/oauth-authorization-server")
	require.NoError(t, err)
	defer res.Body.Close()
	var m oauth.Metadata
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	assert.Equal(t, e.srv.URL, m.Issuer)
	assert.Equal(t, e.srv.URL+"/oauth/token", m.TokenEndpoint)
	assert.Equal(t, e.srv.URL+"/oauth/introspect", m.IntrospectionEndpoint)
	assert.Equal(t, []string{"S256"}, m.CodeChallengeMethodsSupported)
	assert.Contains(t, m.ScopesSupported, "bookings:read")
	assert.Contains(t, m.GrantTypesSupported, "password")
}

func TestAuthorizationCodeWithPKCE(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	conf := e.conf(e.confID, e.confSec, "bookings:read", "customers:read")
	verifier := oauth2.GenerateVerifier()
	loc := e.authorize(newBrowser(t), conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(verifier)), "allow")
	assert.Equal(t, "state-123456", loc.Query().Get("state"), "state round-trips")
	code := loc.Query().Get("code")
	require.True(t, strings.HasPrefix(code, "gate_ac_"), loc.String())

	// A wrong verifier fails; the right one works once.
	_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	assertOAuthError(t, err, "invalid_grant")

	code2Loc := e.authorize(newBrowser(t), conf.AuthCodeURL("state-abcdefgh", oauth2.S256ChallengeOption(verifier)), "allow")
	tok, err := conf.Exchange(ctx, code2Loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(tok.AccessToken, "gate_at_"))
	assert.True(t, strings.HasPrefix(tok.RefreshToken, "gate_rt_"), "refresh token without an offline scope")
	assert.Equal(t, "bookings:read customers:read", tok.Extra("scope"))
	status, me := e.me(tok.AccessToken)
	require.Equal(t, 200, status)
	assert.Equal(t, e.user.ID, me["sub"])
	assert.Equal(t, e.org.ID, me["org"])

	// Replaying the code fails and revokes what it issued.
	_, err = conf.Exchange(ctx, code2Loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	assertOAuthError(t, err, "invalid_grant")
	_, err = conf.Exchange(ctx, code2Loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	assertOAuthError(t, err, "invalid_grant")
	res, _ := e.post("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, e.confID, e.confSec)
	require.Equal(t, 200, res.StatusCode)

	// Consent was remembered: the next authorization skips the page.
	b := newBrowser(t)
	first := e.authorize(b, conf.AuthCodeURL("state-remember1", oauth2.S256ChallengeOption(verifier)), "allow")
	require.NotEmpty(t, first.Query().Get("code"))
	res2, _ := b.get(conf.AuthCodeURL("state-remember2", oauth2.S256ChallengeOption(verifier)))
	assert.Equal(t, http.StatusSeeOther, res2.StatusCode, "no consent page for scopes already granted")
}

// TestRememberedConsentsAddUp: allowing more scopes later keeps what the
// user allowed before, so asking again for the first scopes, or for all
// of them at once, skips the consent page.
func TestRememberedConsentsAddUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	verifier := oauth2.GenerateVerifier()
	b := newBrowser(t)
	for i, scopes := range [][]string{{"bookings:read"}, {"customers:read"}} {
		loc := e.authorize(b, e.conf(e.confID, e.confSec, scopes...).AuthCodeURL(fmt.Sprintf("state-addup%d", i), oauth2.S256ChallengeOption(verifier)), "allow")
		require.NotEmpty(t, loc.Query().Get("code"), loc.String())
	}
	for i, scopes := range [][]string{{"bookings:read"}, {"customers:read"}, {"bookings:read", "customers:read"}} {
		res, page := b.get(e.conf(e.confID, e.confSec, scopes...).AuthCodeURL(fmt.Sprintf("state-again%d", i), oauth2.S256ChallengeOption(verifier)))
		assert.Equal(t, http.StatusSeeOther, res.StatusCode, "%v: no consent page for scopes allowed before: %s", scopes, page)
	}
	res, page := b.get(e.conf(e.confID, e.confSec, "bookings:read", "bookings:write").AuthCodeURL("state-more1", oauth2.S256ChallengeOption(verifier)))
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "Allow", "a scope never allowed is asked for")
}

func TestCodeReplayRevokesTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conf := e.conf(e.confID, e.confSec, "bookings:read")
	verifier := oauth2.GenerateVerifier()
	loc := e.authorize(newBrowser(t), conf.AuthCodeURL("state-replay1", oauth2.S256ChallengeOption(verifier)), "allow")
	tok, err := conf.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	status, _ := e.me(tok.AccessToken)
	require.Equal(t, 200, status)
	_, err = conf.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	assertOAuthError(t, err, "invalid_grant")
	_, body := e.post("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, e.confID, e.confSec)
	assert.Equal(t, false, body["active"], "the replayed code's access token is revoked")
}

func TestPublicClientNeedsPKCE(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conf := e.conf(e.pubID, "", "bookings:read")
	res, _ := newBrowser(t).get(conf.AuthCodeURL("state-nopkce1"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	loc, _ := url.Parse(res.Header.Get("Location"))
	assert.Equal(t, "invalid_request", loc.Query().Get("error"))
	assert.Equal(t, "state-nopkce1", loc.Query().Get("state"))

	// plain is refused.
	res, _ = newBrowser(t).get(conf.AuthCodeURL("state-plain12", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
	loc, _ = url.Parse(res.Header.Get("Location"))
	assert.Equal(t, "invalid_request", loc.Query().Get("error"))

	// With S256 the public client completes the flow without a secret.
	verifier := oauth2.GenerateVerifier()
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	ok := e.authorize(newBrowser(t), conf.AuthCodeURL("state-pkceok1", oauth2.S256ChallengeOption(verifier)), "allow")
	tok, err := conf.Exchange(t.Context(), ok.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conf := e.conf(e.confID, e.confSec, "bookings:read")
	verifier := oauth2.GenerateVerifier()
	base := conf.AuthCodeURL("state-errors1", oauth2.S256ChallengeOption(verifier))
	for _, bad := range []string{"https://evil.example/callback", "http://127.0.0.1:9999/callback/../x", "http://127.0.0.1:9999/callbackx",
		"http://attacker@127.0.0.1:9999/callback", "http://127.0.0.1:9999/callback#frag", "http://127.0.0.1:9999/"} {
		u := strings.Replace(base, url.QueryEscape(redirect), url.QueryEscape(bad), 1)
		res, _ := newBrowser(t).get(u)
		assert.NotEqual(t, http.StatusSeeOther, res.StatusCode, "never redirect to an unregistered URI: %s", bad)
		assert.NotContains(t, res.Header.Get("Location"), "evil")
	}
	// A scope beyond the client's.
	res, _ := newBrowser(t).get(e.conf(e.confID, e.confSec, "payments:write").AuthCodeURL("state-scope12", oauth2.S256ChallengeOption(verifier)))
	loc, _ := url.Parse(res.Header.Get("Location"))
	assert.Equal(t, "invalid_scope", loc.Query().Get("error"))
	assert.Equal(t, "state-scope12", loc.Query().Get("state"))
	// Denied by the user.
	denied := e.authorize(newBrowser(t), conf.AuthCodeURL("state-denied1", oauth2.S256ChallengeOption(verifier)), "deny")
	assert.Equal(t, "access_denied", denied.Query().Get("error"))
	assert.Equal(t, "state-denied1", denied.Query().Get("state"))
	// A form posted without its CSRF token.
	b := newBrowser(t)
	_, page := b.get(base)
	page = csrfRE.ReplaceAllString(page, `name="csrf" value="forged"`)
	res, _ = b.submit(page, e.srv.URL, url.Values{"action": {"login"}, "domain_prefix": {"demo"}, "email": {"ada@example.com"}, "password": {"correct horse battery"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	// A wrong password on the sign-in page.
	_, page = b.get(base)
	res, page = b.submit(page, e.srv.URL, url.Values{"action": {"login"}, "domain_prefix": {"demo"}, "email": {"ada@example.com"}, "password": {"wrong"}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, page, "not right")
	assert.NotContains(t, page, "wrong\"", "the password is never echoed")
}

func TestImplicit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.srv.URL + "/oauth/authorize?" + url.Values{"client_id": {e.confID}, "redirect_uri": {redirect}, "response_type": {"token"},
		"state": {"state-implicit"}, "scope": {"bookings:read"}}.Encode()
	loc := e.authorize(newBrowser(t), u, "allow")
	frag, err := url.ParseQuery(loc.Fragment)
	require.NoError(t, err)
	assert.Empty(t, loc.Query().Get("access_token"), "never in the query")
	assert.Equal(t, "state-implicit", frag.Get("state"))
	assert.Equal(t, "bearer", strings.ToLower(frag.Get("token_type")))
	status, _ := e.me(frag.Get("access_token"))
	assert.Equal(t, 200, status)

	// A client not allowed the implicit grant.
	u = strings.Replace(u, e.confID, e.pubID, 1)
	res, _ := newBrowser(t).get(u)
	loc, _ = url.Parse(res.Header.Get("Location"))
	assert.Contains(t, loc.String(), "error=unsupported_response_type")
}

func TestPasswordGrantWithDomainPrefix(t *testing.T) {
	testenv.ClearOfMinuteBoundary(20 * time.Second) // the failures below must share one 10/minute window
	t.Parallel()
	e := newEnv(t)
	form := func(prefix, user, pass string) url.Values {
		f := url.Values{"grant_type": {"password"}, "client_id": {e.confID}, "client_secret": {e.confSec}, "username": {user}, "password": {pass}}
		if prefix != "" {
			f.Set("domain_prefix", prefix)
		}
		return f
	}
	res, body := e.post("/oauth/token", form("demo", "Ada@Example.com", "correct horse battery"), "", "")
	require.Equal(t, 200, res.StatusCode, body)
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	tok := body["access_token"].(string)
	status, me := e.me(tok)
	require.Equal(t, 200, status)
	assert.Equal(t, e.user.ID, me["sub"])
	assert.Equal(t, e.org.ID, me["org"])
	assert.ElementsMatch(t, []any{"bookings:read", "bookings:write", "customers:read"}, me["scopes"], "no scope asked: the client's scopes")

	cases := []struct {
		name      string
		f         url.Values
		status    int
		errorCode string
	}{
		{"missing domain_prefix", form("", "ada@example.com", "correct horse battery"), 400, "invalid_request"},
		{"unknown domain_prefix", form("nope", "ada@example.com", "correct horse battery"), 400, "invalid_grant"},
		{"wrong password", form("demo", "ada@example.com", "nope"), 400, "invalid_grant"},
		{"unknown user", form("demo", "bob@example.com", "nope"), 400, "invalid_grant"},
	}
	for _, tc := range cases {
		res, body := e.post("/oauth/token", tc.f, "", "")
		assert.Equal(t, tc.status, res.StatusCode, tc.name)
		assert.Equal(t, tc.errorCode, body["error"], tc.name)
		assert.NotContains(t, fmt.Sprint(body), "correct horse", tc.name)
	}
	// A client not allowed the password grant.
	_, body = e.post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"}, "password": {"correct horse battery"}}, e.ccID, e.ccSec)
	assert.Equal(t, "unauthorized_client", body["error"])
	// Brute force: after 10 failures for the account, 429 even with the right password.
	for range 10 {
		e.post("/oauth/token", form("demo", "ada@example.com", "guess"), "", "")
	}
	res, body = e.post("/oauth/token", form("demo", "ada@example.com", "correct horse battery"), "", "")
	assert.Equal(t, 429, res.StatusCode)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	assert.Equal(t, "invalid_request", body["error"])
}

// TestSignInLimitPerClientBehindProxy: behind a reverse proxy every
// request comes from the proxy's address. With Config.ClientIP reading
// the proxy's X-Forwarded-For, the per-address budget of failed sign-ins
// is each client's own; without it, X-Forwarded-For is not believed (a
// client could name any address) and the proxy's address is the budget.
func TestSignInLimitPerClientBehindProxy(t *testing.T) {
	testenv.ClearOfMinuteBoundary(20 * time.Second) // the failures below must share one minute window
	t.Parallel()
	perIP := ratelimit.MustPolicy("login-ip", "3/m")
	proxy := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} // the test's requests come from loopback
	for _, tc := range []struct {
		name         string
		clientIP     func(*http.Request) string
		otherBlocked bool
	}{
		{"X-Forwarded-For from a trusted proxy", func(r *http.Request) string { return ratelimit.ClientIP(r, proxy) }, false},
		{"default: the connection's address", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *oauth.Config) { c.LoginAttemptsPerIP, c.ClientIP = &perIP, tc.clientIP })
			signIn := func(client, user, pass string) int {
				f := url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "client_id": {e.confID}, "client_secret": {e.confSec}, "username": {user}, "password": {pass}}
				req, _ := http.NewRequest("POST", e.srv.URL+"/oauth/token", strings.NewReader(f.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", client)
				res, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				res.Body.Close()
				return res.StatusCode
			}
			// Three accounts from three addresses of one IPv6 /64: only
			// that client's budget is spent, and it is spent by all three.
			for i := range 3 {
				require.Equal(t, 400, signIn(fmt.Sprintf("2001:db8:7::%d", i+1), fmt.Sprintf("guess%d@example.com", i), "guess"))
			}
			assert.Equal(t, 429, signIn("2001:db8:7::99", "ada@example.com", "correct horse battery"), "the guessing client is blocked")
			want := 200
			if tc.otherBlocked {
				want = 429
			}
			assert.Equal(t, want, signIn("198.51.100.2", "ada@example.com", "correct horse battery"), "another client behind the same proxy")
		})
	}
}

func TestNonExpiringTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, body := e.post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
		"password": {"correct horse battery"}, "client_id": {e.foreverI}, "client_secret": {e.foreverS}}, "", "")
	require.Equal(t, 200, res.StatusCode, body)
	v, present := body["expires_in"]
	assert.True(t, present)
	assert.Nil(t, v, `"expires_in": null, as TidyHQ's tokens`)
	assert.Nil(t, body["refresh_token"])
	status, _ := e.me(body["access_token"].(string))
	assert.Equal(t, 200, status)
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cc := &clientcredentials.Config{ClientID: e.ccID, ClientSecret: e.ccSec, TokenURL: e.srv.URL + "/oauth/token", Scopes: []string{"staff:read"}}
	tok, err := cc.Token(t.Context())
	require.NoError(t, err)
	assert.Empty(t, tok.RefreshToken)
	status, me := e.me(tok.AccessToken)
	require.Equal(t, 200, status)
	assert.Equal(t, e.ccID, me["sub"])
	assert.Equal(t, []any{"staff:read"}, me["scopes"])

	// client_secret_post works too.
	cc.AuthStyle = oauth2.AuthStyleInParams
	_, err = cc.Token(t.Context())
	require.NoError(t, err)

	// Scopes beyond the client's; a wrong secret (Basic: WWW-Authenticate).
	_, err = (&clientcredentials.Config{ClientID: e.ccID, ClientSecret: e.ccSec, TokenURL: cc.TokenURL, Scopes: []string{"payments:write"}}).Token(t.Context())
	assertOAuthError(t, err, "invalid_scope")
	res, body := e.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, e.ccID, "wrong")
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, "invalid_client", body["error"])
	assert.Equal(t, `Basic realm="oauth"`, res.Header.Get("WWW-Authenticate"))
	// A grant the client may not use.
	res, body = e.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, e.confID, e.confSec)
	assert.Equal(t, "unauthorized_client", body["error"], res.Status)
	// A grant the server does not have (RFC 6749 §5.2), the implicit grant included: it has no token request.
	for _, g := range []string{"urn:ietf:params:oauth:grant-type:device_code", "implicit", "foo"} {
		res, body = e.post("/oauth/token", url.Values{"grant_type": {g}}, e.ccID, e.ccSec)
		assert.Equal(t, 400, res.StatusCode, g)
		assert.Equal(t, "unsupported_grant_type", body["error"], g)
	}
	// A body that is not a form: JSON, or no Content-Type.
	for _, ct := range []string{"application/json", ""} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/oauth/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		req.SetBasicAuth(e.ccID, e.ccSec)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var b map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&b))
		res.Body.Close()
		assert.Equal(t, 400, res.StatusCode, ct)
		assert.Equal(t, "invalid_request", b["error"], ct)
		assert.Contains(t, b["error_description"], "application/x-www-form-urlencoded", ct)
	}
	// A form with a charset parameter is still a form.
	req, _ := http.NewRequest("POST", e.srv.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	req.SetBasicAuth(e.ccID, e.ccSec)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
}

func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	get := func() map[string]any {
		_, body := e.post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
			"password": {"correct horse battery"}, "scope": {"bookings:read"}}, e.confID, e.confSec)
		return body
	}
	refresh := func(rt string) (int, map[string]any) {
		res, body := e.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, e.confID, e.confSec)
		return res.StatusCode, body
	}
	first := get()
	rt1 := first["refresh_token"].(string)
	status, second := refresh(rt1)
	require.Equal(t, 200, status, second)
	rt2 := second["refresh_token"].(string)
	assert.NotEqual(t, rt1, rt2, "rotated")
	code, _ := e.me(first["access_token"].(string))
	assert.Equal(t, 401, code, "the old access token went with the rotation")
	code, _ = e.me(second["access_token"].(string))
	assert.Equal(t, 200, code)

	// Reuse of the rotated refresh token revokes the family.
	status, body := refresh(rt1)
	assert.Equal(t, 400, status)
	assert.Equal(t, "invalid_grant", body["error"])
	status, _ = refresh(rt2)
	assert.NotEqual(t, 200, status, "the family is revoked")
	code, _ = e.me(second["access_token"].(string))
	assert.Equal(t, 401, code)
}

func TestRevocationAndIntrospection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, body := e.post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
		"password": {"correct horse battery"}}, e.confID, e.confSec)
	at := body["access_token"].(string)

	// Introspection: only authenticated clients; Basic and post.
	res, body := e.post("/oauth/introspect", url.Values{"token": {at}}, "", "")
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, "invalid_client", body["error"])
	res, body = e.post("/oauth/introspect", url.Values{"token": {at}}, e.ccID, e.ccSec)
	require.Equal(t, 200, res.StatusCode)
	assert.Equal(t, true, body["active"])
	assert.Equal(t, e.user.ID, body["sub"])
	assert.Equal(t, e.confID, body["client_id"])
	res, body = e.post("/oauth/introspect", url.Values{"token": {at}, "client_id": {e.ccID}, "client_secret": {e.ccSec}}, "", "")
	require.Equal(t, 200, res.StatusCode)
	assert.Equal(t, true, body["active"])

	// The token works (and is now cached), then is revoked: refused on the
	// very next request.
	code, _ := e.me(at)
	require.Equal(t, 200, code)
	res, _ = e.post("/oauth/revoke", url.Values{"token": {at}}, e.confID, e.confSec)
	require.Equal(t, 200, res.StatusCode)
	code, _ = e.me(at)
	assert.Equal(t, 401, code)
	_, body = e.post("/oauth/introspect", url.Values{"token": {at}}, e.ccID, e.ccSec)
	assert.Equal(t, false, body["active"])
	_, body = e.post("/oauth/introspect", url.Values{"token": {"gate_at_garbage.garbage"}}, e.ccID, e.ccSec)
	assert.Equal(t, false, body["active"])
	res, _ = e.post("/oauth/revoke", url.Values{"token": {at}}, e.confID, "wrong")
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, `Basic realm="oauth"`, res.Header.Get("WWW-Authenticate"))
}

func TestResourceAuthenticator(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, body := e.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, e.ccID, e.ccSec)
	at := body["access_token"].(string)
	res, err := http.Get(e.srv.URL + "/v1/contacts/me?access_token=" + url.QueryEscape(at))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode, "TidyHQ's access_token query parameter, when enabled")
	for _, tok := range []string{"gate_at_forged.signature", "gate_at_", "not-a-token"} {
		code, _ := e.me(tok)
		assert.Equal(t, 401, code, tok)
	}
}

func TestSecretHasher(t *testing.T) {
	t.Parallel()
	h := oauth.SecretHasher{}
	ctx := context.Background()
	secret := oauth.GenerateSecret()
	assert.Regexp(t, `^[A-Za-z0-9_-]{43}$`, secret)
	hash, err := h.Hash(ctx, []byte(secret))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(hash), "sha256$"))
	assert.NoError(t, h.Compare(ctx, hash, []byte(secret)))
	assert.Error(t, h.Compare(ctx, hash, []byte(secret+"x")))
	bc, err := bcrypt.GenerateFromPassword([]byte("imported"), bcrypt.MinCost)
	require.NoError(t, err)
	assert.NoError(t, h.Compare(ctx, bc, []byte("imported")), "bcrypt hashes from elsewhere still verify")
	assert.Error(t, h.Compare(ctx, bc, []byte("other")))
	assert.Error(t, h.Compare(ctx, []byte("plaintext"), []byte("plaintext")), "a plaintext 'hash' never matches")
	peppered, _ := oauth.SecretHasher{Pepper: []byte("pepper")}.Hash(ctx, []byte(secret))
	assert.NotEqual(t, hash, peppered)
}

func TestPasswords(t *testing.T) {
	t.Parallel()
	hash, err := oauth.HashPassword("s3cret-pass", oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$"))
	assert.True(t, oauth.CheckPassword(hash, "s3cret-pass"))
	assert.False(t, oauth.CheckPassword(hash, "s3cret-pasS"))
	assert.False(t, oauth.CheckPassword("$argon2id$v=19$m=999999999,t=1,p=1$AA$AA", "x"), "absurd parameters are refused")
	assert.False(t, oauth.CheckPassword("garbage", "x"))
	_, err = oauth.HashPassword("", oauth.PasswordParams{})
	assert.Error(t, err)
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	s := memory.New()
	for _, c := range []oauth.Config{{}, {Issuer: "ftp://x", Secret: make([]byte, 32)}, {Issuer: "https://x.example", Secret: []byte("short")}} {
		_, err := oauth.New(s, c)
		assert.Error(t, err)
	}
	p, err := oauth.New(s, oauth.Config{Issuer: "https://x.example", Secret: make([]byte, 32)})
	require.NoError(t, err)
	for _, cp := range []oauth.ClientParams{
		{Name: "x"},
		{OrganisationID: "o"},
		{OrganisationID: "o", Name: "x"}, // code grant without redirect URI
		{OrganisationID: "o", Name: "x", RedirectURIs: []string{"http://example.com/cb"}},
		{OrganisationID: "o", Name: "x", RedirectURIs: []string{"https://example.com/cb#f"}},
		{OrganisationID: "o", Name: "x", RedirectURIs: []string{"/relative"}},
		{OrganisationID: "o", Name: "x", Grants: []string{"client_credentials"}, Scopes: []string{"nope:read"}},
		{OrganisationID: "o", Name: "x", Grants: []string{"device_code"}},
		{OrganisationID: "o", Name: "x", Grants: []string{"client_credentials"}, Public: true},
		{OrganisationID: "o", Name: "x\x00", Grants: []string{"client_credentials"}},
		{OrganisationID: "o", Name: "x", RedirectURIs: []string{"https://example.com/cb\xff"}},
	} {
		_, _, err := p.RegisterClient(t.Context(), cp)
		var fe *oauth.FieldError
		assert.True(t, errors.As(err, &fe), "%+v: %v", cp, err)
	}
	for _, up := range []oauth.UserParams{
		{OrganisationID: "o", Email: "ada\x00@example.com", Password: "long enough"},
		{OrganisationID: "o", Email: "ada@example.com\xc3", Password: "long enough"},
		{OrganisationID: "o", Email: "ada@example.com", Password: "long enough", FirstName: "Ada\x00"},
		{OrganisationID: "o", Email: "ada@example.com", Password: "long enough", LastName: "\xffLovelace"},
	} {
		_, err := p.CreateUser(t.Context(), up)
		var fe *oauth.FieldError
		assert.True(t, errors.As(err, &fe), "%+v: %v", up, err)
	}
}

func assertOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, code, re.ErrorCode)
}

func TestExpiredToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret, c, err := e.p.RegisterClient(t.Context(), oauth.ClientParams{OrganisationID: e.org.ID, Name: "Short", Grants: []string{"client_credentials"},
		Scopes: []string{"staff:read"}, AccessTokenLifetime: time.Second})
	require.NoError(t, err)
	_, body := e.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
	assert.LessOrEqual(t, body["expires_in"].(float64), 1.0)
	at := body["access_token"].(string)
	code, _ := e.me(at)
	require.Equal(t, 200, code, "valid, and now cached")
	time.Sleep(1100 * time.Millisecond)
	code, resp := e.me(at)
	assert.Equal(t, 401, code, "expired, even from the cache")
	assert.Contains(t, fmt.Sprint(resp), "expired")
	_, body = e.post("/oauth/introspect", url.Values{"token": {at}}, e.ccID, e.ccSec)
	assert.Equal(t, false, body["active"])
}

// TestSessionsAreServerSide: SignIn's session is stored (by a keyed hash
// of its id), SignOut ends it even for a copy of the cookie, and
// SignOutEverywhere ends all of a user's sessions.
func TestSessionsAreServerSide(t *testing.T) {
	e := newEnv(t)
	signIn := func() *http.Cookie {
		c := signInCookie(t, e.p, "correct horse battery")
		require.NotNil(t, c)
		return c
	}
	with := func(c *http.Cookie) *http.Request {
		r := httptest.NewRequest("GET", "/dashboard", nil)
		r.AddCookie(c)
		return r
	}
	a, b := signIn(), signIn()
	assert.NotEqual(t, a.Value, b.Value)
	require.Equal(t, e.user.ID, e.p.SignedIn(with(a)).ID)
	_, err := e.store.GetToken(t.Context(), storage.KindSession, a.Value)
	assert.ErrorIs(t, err, storage.ErrNotFound, "the store holds a keyed hash, never the session id")

	e.p.SignOut(httptest.NewRecorder(), with(a))
	assert.Nil(t, e.p.SignedIn(with(a)), "a copy of a signed-out cookie is worthless")
	require.NotNil(t, e.p.SignedIn(with(b)))

	c := signIn()
	n, err := e.p.SignOutEverywhere(t.Context(), e.user.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Nil(t, e.p.SignedIn(with(b)))
	assert.Nil(t, e.p.SignedIn(with(c)))
	forged := *b
	forged.Value = strings.Repeat("A", 43)
	assert.Nil(t, e.p.SignedIn(with(&forged)))
}

// TestMissingState: TidyHQ's documented authorize URLs
// (?client_id=…&redirect_uri=…&response_type=code, or token) send no
// state. By default they are refused with invalid_state, as fosite
// does; with Config.AllowMissingState both grants complete, while a state
// that is sent still needs 8 characters and comes back.
func TestMissingState(t *testing.T) {
	t.Parallel()
	seedURL := func(e *env, responseType, state string) string {
		q := url.Values{"client_id": {e.confID}, "redirect_uri": {redirect}, "response_type": {responseType}}
		if state != "" {
			q.Set("state", state)
		}
		return e.srv.URL + "/oauth/authorize?" + q.Encode()
	}
	// redirected returns the parameters of the redirect to the client: in
	// the query for a code, in the fragment for a token.
	redirected := func(res *http.Response, responseType string) url.Values {
		t.Helper()
		require.Equal(t, http.StatusSeeOther, res.StatusCode, responseType)
		loc, err := url.Parse(res.Header.Get("Location"))
		require.NoError(t, err)
		if responseType == "token" {
			q, _ := url.ParseQuery(loc.Fragment)
			return q
		}
		return loc.Query()
	}
	strict := newEnv(t)
	for _, rt := range []string{"code", "token"} {
		res, _ := newBrowser(t).get(seedURL(strict, rt, ""))
		assert.Equal(t, "invalid_state", redirected(res, rt).Get("error"), "%s, by default", rt)
	}

	e := newEnv(t, func(c *oauth.Config) { c.AllowMissingState = true })
	back := e.authorize(newBrowser(t), seedURL(e, "code", ""), "allow")
	code := back.Query().Get("code")
	require.NotEmpty(t, code, "the seed's code URL: %s", back)
	assert.Empty(t, back.Query().Get("state"))
	assert.NotContains(t, back.RawQuery, "state", "no state parameter at all, as the seed shows: ?code=…")
	res, body := e.post("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}, e.confID, e.confSec)
	require.Equal(t, http.StatusOK, res.StatusCode, "%v", body)
	status, _ := e.me(body["access_token"].(string))
	assert.Equal(t, http.StatusOK, status)

	back = e.authorize(newBrowser(t), seedURL(e, "token", ""), "allow")
	frag, err := url.ParseQuery(back.Fragment)
	require.NoError(t, err)
	require.NotEmpty(t, frag.Get("access_token"), "the seed's implicit URL: %s", back)
	assert.NotContains(t, back.Fragment, "state", "no state parameter at all")

	for _, rt := range []string{"code", "token"} {
		res, _ := newBrowser(t).get(seedURL(e, rt, "short"))
		q := redirected(res, rt)
		assert.Equal(t, "invalid_state", q.Get("error"), "%s: a state that is sent needs 8 characters", rt)
		assert.Equal(t, "short", q.Get("state"))
	}
	// An error answered at the redirect carries no stand-in state.
	res, _ = newBrowser(t).get(seedURL(e, "code", "") + "&scope=payments:write")
	q := redirected(res, "code")
	assert.Equal(t, "invalid_scope", q.Get("error"))
	assert.False(t, q.Has("state"), "no state parameter at all: %v", q)
	back = e.authorize(newBrowser(t), seedURL(e, "code", "state-kept1"), "allow")
	assert.Equal(t, "state-kept1", back.Query().Get("state"), "a state that is sent comes back")
}
