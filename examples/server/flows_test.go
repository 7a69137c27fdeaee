package main_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	csrfInput  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// browser is a cookie-keeping HTTP client whose responses are validated
// against /openapi.json; it stops at redirects that leave the server.
func (s *server) browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return s.spec.client(jar)
}

// page GETs or POSTs and returns the status, the final URL or Location,
// and the body.
func fetchPage(t *testing.T, c *http.Client, method, u string, form url.Values, hdr ...string) (int, string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	loc := res.Request.URL.String()
	if l := res.Header.Get("Location"); l != "" {
		loc = l
	}
	return res.StatusCode, loc, string(b)
}

// authorizeAs walks the authorization endpoint like a person would: the
// sign-in page, then the consent page, answering action ("allow" or
// "deny"). It returns where the server sent the browser back to.
func authorizeAs(t *testing.T, s *server, c *http.Client, authURL, password, action string) *url.URL {
	t.Helper()
	status, at, body := fetchPage(t, c, "GET", authURL, nil)
	require.Equal(t, 200, status, body)
	if strings.Contains(body, `name="password"`) {
		action := html.UnescapeString(formAction.FindStringSubmatch(body)[1])
		csrf := csrfInput.FindStringSubmatch(body)[1]
		status, at, body = fetchPage(t, c, "POST", s.base+action, url.Values{"action": {"login"}, "csrf": {csrf}, "domain_prefix": {"demo"},
			"email": {"demo@example.com"}, "password": {password}})
		require.Equal(t, 200, status, "sign-in: %s", body)
	}
	if strings.Contains(body, `value="allow"`) {
		formURL := html.UnescapeString(formAction.FindStringSubmatch(body)[1])
		csrf := csrfInput.FindStringSubmatch(body)[1]
		status, at, body = fetchPage(t, c, "POST", s.base+formURL, url.Values{"action": {action}, "csrf": {csrf}})
		// A redirect to another host stops the client; one to this server
		// (the demo's own /callback page) is followed.
		require.True(t, status == 302 || status == 303 || (status == 200 && !strings.Contains(at, "/oauth/authorize")), "consent: %d %s", status, body)
	}
	u, err := url.Parse(at)
	require.NoError(t, err)
	return u
}

// TestOAuthFlowsWithXOAuth2 runs every grant of the seeds against the real
// server with golang.org/x/oauth2 as the client: authorization code with
// PKCE, refresh with rotation, implicit, client credentials, the password
// grant with domain_prefix, denial, revocation and introspection; and the
// redirect-URI and CSRF attacks of RFC 9700.
func TestOAuthFlowsWithXOAuth2(t *testing.T) {
	for _, mode := range []string{"opaque", "jwt"} {
		t.Run(mode, func(t *testing.T) {
			var flags []string
			if mode == "jwt" {
				flags = []string{"-jwt"} // RFC 9068 access tokens: every flow the same
			}
			testOAuthFlows(t, flags...)
		})
	}
}

func testOAuthFlows(t *testing.T, flags ...string) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	s := start(t, db, flags...)
	password := strings.Fields(s.demo["user"])[2]
	cb := "https://client.example/callback" // the client stops at the redirect: it leaves the server
	app := admin(t, db, "client", "create", "--org", "demo", "--name", "Flows", "--redirect-uri", cb, "--scopes", "bookings:read customers:read",
		"--grants", "authorization_code,refresh_token,implicit,client_credentials,password")
	conf := &oauth2.Config{ClientID: app["client_id"].(string), ClientSecret: app["client_secret"].(string), RedirectURL: cb, Scopes: []string{"bookings:read"},
		Endpoint: oauth2.Endpoint{AuthURL: s.base + "/oauth/authorize", TokenURL: s.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.http)
	c := s.browser(t)

	// Authorization code with PKCE.
	verifier := oauth2.GenerateVerifier()
	back := authorizeAs(t, s, c, conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)), password, "allow")
	require.Equal(t, "state-0123456789", back.Query().Get("state"))
	_, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption("wrong-"+verifier))
	require.Error(t, err, "the code needs its verifier")
	back = authorizeAs(t, s, c, conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)), password, "allow")
	assert.Empty(t, back.Query().Get("error"), "consent is remembered: straight back with a code")
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	assert.Equal(t, 200, s.do("GET", "/v1/bookings", tok.AccessToken, nil).status)
	assert.Equal(t, 403, s.do("GET", "/v1/customers", tok.AccessToken, nil).status, "only the requested scope")

	// Refresh with rotation: the old refresh token is spent.
	expired := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	fresh, err := conf.TokenSource(ctx, expired).Token()
	require.NoError(t, err)
	assert.NotEqual(t, tok.RefreshToken, fresh.RefreshToken)
	assert.Equal(t, 200, s.do("GET", "/v1/bookings", fresh.AccessToken, nil).status)

	// Introspection and revocation (RFC 7662, RFC 7009).
	introspect := func(token string) map[string]any {
		req, _ := http.NewRequest("POST", s.base+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(conf.ClientID, conf.ClientSecret)
		res, err := s.http.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
		return m
	}
	assert.Equal(t, true, introspect(fresh.AccessToken)["active"])
	req, _ := http.NewRequest("POST", s.base+"/oauth/revoke", strings.NewReader(url.Values{"token": {fresh.RefreshToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(conf.ClientID, conf.ClientSecret)
	res, err := s.http.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, false, introspect(fresh.AccessToken)["active"], "revoking the refresh token revokes its grant")
	assert.Equal(t, 401, s.do("GET", "/v1/bookings", fresh.AccessToken, nil).status)

	// Implicit: the token comes back in the fragment.
	back = authorizeAs(t, s, c, conf.AuthCodeURL("state-implicit-1", oauth2.SetAuthURLParam("response_type", "token")), password, "allow")
	frag, err := url.ParseQuery(back.Fragment)
	require.NoError(t, err)
	require.NotEmpty(t, frag.Get("access_token"), "fragment: %q", back.Fragment)
	assert.Equal(t, "state-implicit-1", frag.Get("state"))
	assert.Empty(t, back.Query().Get("access_token"), "never in the query")
	assert.Equal(t, 200, s.do("GET", "/v1/bookings", frag.Get("access_token"), nil).status)

	// Denial: a fresh user session, asked for a new scope, says no.
	deny := s.browser(t)
	conf2 := *conf
	conf2.Scopes = []string{"customers:read"}
	back = authorizeAs(t, s, deny, conf2.AuthCodeURL("state-deny-0001", oauth2.S256ChallengeOption(verifier)), password, "deny")
	assert.Equal(t, "access_denied", back.Query().Get("error"))
	assert.Empty(t, back.Query().Get("code"))

	// Client credentials.
	cc := clientcredentials.Config{ClientID: conf.ClientID, ClientSecret: conf.ClientSecret, TokenURL: conf.Endpoint.TokenURL, Scopes: []string{"customers:read"}}
	ctok, err := cc.Token(ctx)
	require.NoError(t, err)
	me := s.do("GET", "/v1/contacts/me", ctok.AccessToken, nil)
	require.Equal(t, 200, me.status)
	assert.Equal(t, "client", me.json(t)["kind"])
	_, err = (&clientcredentials.Config{ClientID: conf.ClientID, ClientSecret: "wrong", TokenURL: conf.Endpoint.TokenURL}).Token(ctx)
	require.Error(t, err)

	// The password grant with domain_prefix.
	pw := url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"demo@example.com"}, "password": {password}, "scope": {"bookings:read"}}
	preq, _ := http.NewRequest("POST", s.base+"/oauth/token", strings.NewReader(pw.Encode()))
	preq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	preq.SetBasicAuth(conf.ClientID, conf.ClientSecret)
	res, err = s.http.Do(preq)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)

	// The demo application's redirect URI is the server's own /callback
	// page, which shows the code for a person trying the flow with curl.
	demo := &oauth2.Config{ClientID: s.demo["OAuth client"], ClientSecret: s.demo["client secret"], RedirectURL: s.demo["redirect URI"],
		Scopes: []string{"bookings:read"}, Endpoint: conf.Endpoint}
	back = authorizeAs(t, s, c, demo.AuthCodeURL("state-demo-0001", oauth2.S256ChallengeOption(verifier)), password, "allow")
	require.Equal(t, s.base+"/callback", back.Scheme+"://"+back.Host+back.Path, "followed to the demo callback")
	status, _, page := fetchPage(t, c, "GET", back.String(), nil)
	require.Equal(t, 200, status)
	assert.Contains(t, page, back.Query().Get("code"), "the page shows the code")
	_, err = demo.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.NotContains(t, s.logs(), back.Query().Get("code"), "codes are scrubbed from logged URLs")

	// RFC 9700 §4.1: the redirect URI must match exactly; a mismatch is
	// answered by the server, never redirected.
	for name, uri := range map[string]string{
		"prefix":         "https://client.example/callback/extra",
		"suffix":         "https://client.example/callbackx",
		"path traversal": "https://client.example/callback/../evil",
		"userinfo":       "https://evil@client.example/callback",
		"fragment":       "https://client.example/callback#x",
		"other port":     "https://client.example:8443/callback",
		"other host":     "https://evil.example/callback",
		"host suffix":    "https://client.example.evil.example/callback",
		"plain http":     "http://client.example/callback",
		"query added":    "https://client.example/callback?next=evil",
	} {
		t.Run("redirect_uri "+name, func(t *testing.T) {
			bad := conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("redirect_uri", uri))
			status, loc, body := fetchPage(t, s.browser(t), "GET", bad, nil)
			assert.Equal(t, 400, status, "%s: %s", loc, body)
			assert.True(t, strings.HasPrefix(loc, s.base), "redirected to %s", loc)
		})
	}

	// CSRF: a sign-in form post without the page's token is refused.
	fresh2 := s.browser(t)
	status, _, _ = fetchPage(t, fresh2, "GET", conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)), nil)
	require.Equal(t, 200, status)
	au, _ := url.Parse(conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)))
	status, _, _ = fetchPage(t, fresh2, "POST", au.String(), url.Values{"action": {"login"}, "csrf": {"forged"}, "domain_prefix": {"demo"}, "email": {"demo@example.com"}, "password": {password}})
	assert.Equal(t, 403, status, "a forged CSRF token")
	status, _, _ = fetchPage(t, fresh2, "POST", au.String(), url.Values{"action": {"login"}}, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, 403, status, "a cross-origin post")
}

// TestRefreshGraceFlag: -refresh-grace lets a client retry a refresh
// with the token it just used; out-of-range values stop the server.
func TestRefreshGraceFlag(t *testing.T) {
	for _, bad := range []string{"10m", "-1s", "soon"} {
		out, err := exec.Command(binary, "-addr", "127.0.0.1:0", "-db", "sqlite:"+t.TempDir()+"/g.db", "-refresh-grace", bad).CombinedOutput()
		require.Error(t, err, bad)
		assert.Contains(t, string(out), "-refresh-grace", bad)
	}
	db := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	s := start(t, db, "-refresh-grace", "30s")
	app := admin(t, db, "client", "create", "--org", "demo", "--name", "Retrying", "--scopes", "bookings:read", "--grants", "password,refresh_token")
	token := func(form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest("POST", s.base+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(app["client_id"].(string), app["client_secret"].(string))
		res, err := s.http.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
		return res.StatusCode, m
	}
	status, body := token(url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"demo@example.com"},
		"password": {strings.Fields(s.demo["user"])[2]}})
	require.Equal(t, 200, status, body)
	used := body["refresh_token"].(string)
	for range 2 { // the refresh, then its retry
		status, body = token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {used}})
		require.Equal(t, 200, status, body)
		assert.Equal(t, 200, s.do("GET", "/v1/bookings", body["access_token"].(string), nil).status)
	}
}

// TestSeedAuthorizeURLWithoutState: TidyHQ's documented authorize URL
// sends no state. The server refuses it (invalid_state at the redirect
// URI) unless started with -allow-missing-state; then the same URL leads
// to the sign-in page.
func TestSeedAuthorizeURLWithoutState(t *testing.T) {
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, allow := range []bool{false, true} {
		var flags []string
		if allow {
			flags = []string{"-allow-missing-state"}
		}
		s := start(t, "sqlite:"+filepath.Join(t.TempDir(), "gatehouse.db"), flags...)
		seed := s.base + "/oauth/authorize?" + url.Values{"client_id": {s.demo["OAuth client"]}, "redirect_uri": {s.demo["redirect URI"]}, "response_type": {"code"}}.Encode()
		res, err := noRedirects.Get(seed)
		require.NoError(t, err)
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !allow {
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			loc, err := url.Parse(res.Header.Get("Location"))
			require.NoError(t, err)
			assert.Equal(t, "invalid_state", loc.Query().Get("error"))
			continue
		}
		assert.Equal(t, http.StatusOK, res.StatusCode, "-allow-missing-state: the sign-in page")
		assert.Contains(t, string(page), `value="login"`)
	}
}
