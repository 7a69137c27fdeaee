package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

func TestJWTAccessTokens(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keys, err := oauth.NewKeySet()
	require.NoError(t, err)
	s := memory.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	issuer := "http://" + ln.Addr().String()
	p, err := oauth.New(s, oauth.Config{Issuer: issuer, Secret: make([]byte, 32), JWTKeys: keys})
	require.NoError(t, err)
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "demo", Name: "Demo", CreatedAt: time.Now()}
	require.NoError(t, s.CreateOrganisation(ctx, org))
	secret, c, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "svc", Grants: []string{"client_credentials"}, Scopes: []string{"staff:read", "staff:write"}})
	require.NoError(t, err)
	chain, _ := gatehouse.NewChain(gatehouse.ChainConfig{}, p.Authenticator(oauth.ResourceConfig{}))
	mux := http.NewServeMux()
	mux.Handle("/", p.Handler())
	mux.Handle("/api", chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(gatehouse.FromContext(r.Context()))
	})))
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	issue := func() string {
		req, _ := http.NewRequest("POST", srv.URL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"staff:read"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, secret)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		require.Equal(t, 200, res.StatusCode, body)
		return body["access_token"].(string)
	}
	at := issue()
	parts := strings.Split(at, ".")
	require.Len(t, parts, 3, "a JWS")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	assert.Contains(t, string(hdr), `"typ":"at+jwt"`)
	assert.Contains(t, string(hdr), `"alg":"ES256"`)

	// A separate service verifies with the published keys, no database.
	clock := time.Now()
	v, err := oauth.NewJWTVerifier(oauth.VerifierConfig{JWKSURL: srv.URL + "/.well-known/jwks.json", Issuer: issuer, Audience: issuer,
		MinRefresh: time.Millisecond, Now: func() time.Time { return clock }})
	require.NoError(t, err)
	claims, err := v.Verify(ctx, at)
	require.NoError(t, err)
	assert.Equal(t, c.ID, claims.Subject)
	assert.Equal(t, c.ID, claims.ClientID)
	assert.Equal(t, org.ID, claims.Organisation)
	assert.Equal(t, []string{"staff:read"}, claims.Scopes)
	assert.Equal(t, issuer, claims.Issuer)

	// The authorization server's own authenticator accepts it too.
	req, _ := http.NewRequest("GET", srv.URL+"/api", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)

	// Tampering, expiry, a foreign issuer.
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"`+issuer+`"}`)) + "." + parts[2]
	_, err = v.Verify(ctx, tampered)
	assert.ErrorIs(t, err, oauth.ErrTokenInvalid)
	later, _ := oauth.NewJWTVerifier(oauth.VerifierConfig{JWKSURL: srv.URL + "/.well-known/jwks.json", Issuer: issuer,
		Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	_, err = later.Verify(ctx, at)
	assert.ErrorIs(t, err, oauth.ErrTokenInvalid, "expired")
	other, _ := oauth.NewJWTVerifier(oauth.VerifierConfig{JWKSURL: srv.URL + "/.well-known/jwks.json", Issuer: "https://someone-else.example"})
	_, err = other.Verify(ctx, at)
	assert.ErrorIs(t, err, oauth.ErrTokenInvalid)

	// As an authenticator, each failure is a 401 that names the check in
	// the verifier's words: never go-jose's, never what the token carried.
	unknownKid := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"evil\"; error=\"x","typ":"at+jwt"}`)) + "." + parts[1] + "." + parts[2]
	for _, tc := range []struct {
		name   string
		v      *oauth.JWTVerifier
		token  string
		reason string
	}{
		{"tampered", v, tampered, "its signature does not verify"},
		{"expired", later, at, "it has expired"},
		{"foreign issuer", other, at, "it is from another issuer"},
		{"unknown key", v, unknownKid, "it is signed with an unknown key"},
		{"alg none", v, base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".", "it is not a JWS signed with ES256 or RS256"},
	} {
		chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, tc.v)
		require.NoError(t, err)
		req := httptest.NewRequest("GET", "/api", nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		w := httptest.NewRecorder()
		chain.Handler(http.NotFoundHandler()).ServeHTTP(w, req)
		assert.Equal(t, 401, w.Code, tc.name)
		assert.Contains(t, w.Body.String(), "The access token is not valid: "+tc.reason, tc.name)
		challenge := w.Header().Get("WWW-Authenticate")
		assert.Contains(t, challenge, `error="invalid_token"`, tc.name)
		for _, leak := range []string{"go-jose", "evil", "square/go-jose"} {
			assert.NotContains(t, challenge+w.Body.String(), leak, tc.name)
		}
	}

	// Rotation keeps old tokens valid; removing the old key invalidates them.
	newKid, err := keys.Rotate()
	require.NoError(t, err)
	fresh := issue()
	freshHdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(fresh, ".")[0])
	assert.Contains(t, string(freshHdr), newKid, "the newest key signs")
	_, err = v.Verify(ctx, at)
	require.NoError(t, err, "still published")
	oldKid := keys.JWKS().Keys[0].KeyID
	require.NoError(t, keys.Remove(oldKid))
	assert.Error(t, keys.Remove(newKid), "the signing key stays")
	clock = clock.Add(6 * time.Minute) // past the verifier's cache
	_, err = v.Verify(ctx, at)
	assert.ErrorIs(t, err, oauth.ErrTokenInvalid, "its key was removed")
	_, err = v.Verify(ctx, fresh)
	require.NoError(t, err)

	// Revocation: the authorization server refuses at once; a standalone
	// verifier cannot know until expiry (documented).
	rr, _ := http.NewRequest("POST", srv.URL+"/oauth/revoke", strings.NewReader(url.Values{"token": {fresh}}.Encode()))
	rr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rr.SetBasicAuth(c.ID, secret)
	res, err = http.DefaultClient.Do(rr)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	req.Header.Set("Authorization", "Bearer "+fresh)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 401, res.StatusCode)

	md, err := http.Get(srv.URL + "/.well-known/oauth-authorization-server")
	require.NoError(t, err)
	var m oauth.Metadata
	require.NoError(t, json.NewDecoder(md.Body).Decode(&m))
	md.Body.Close()
	assert.Equal(t, issuer+"/.well-known/jwks.json", m.JWKSURI)

	// The verifier as an authenticator declines what is not a JWT.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer gate_at_x.y")
	_, err = v.Authenticate(r)
	assert.ErrorIs(t, err, gatehouse.ErrNoCredentials)
}

func TestRemoteIntrospector(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, body := e.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, e.ccID, e.ccSec)
	at := body["access_token"].(string)
	var clock time.Time = time.Now()
	ri, err := oauth.NewRemoteIntrospector(oauth.IntrospectorConfig{URL: e.srv.URL + "/oauth/introspect", ClientID: e.confID, ClientSecret: e.confSec,
		CacheTTL: 10 * time.Second, Now: func() time.Time { return clock }})
	require.NoError(t, err)
	ask := func(tok string) (*gatehouse.Principal, error) {
		r := httptest.NewRequest("GET", "/api", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return ri.Authenticate(r)
	}
	p, err := ask(at)
	require.NoError(t, err)
	assert.Equal(t, e.ccID, p.Subject)
	assert.Equal(t, e.org.ID, p.Organisation)
	assert.Equal(t, gatehouse.MethodIntrospect, p.Method)
	_, err = ask("gate_at_unknown.token")
	assert.Error(t, err)
	_, err = ask("gate_live_notours")
	assert.ErrorIs(t, err, gatehouse.ErrNoCredentials)

	// A revocation is seen once the cached answer expires.
	res, _ := e.post("/oauth/revoke", url.Values{"token": {at}}, e.ccID, e.ccSec)
	require.Equal(t, 200, res.StatusCode)
	_, err = ask(at)
	assert.NoError(t, err, "cached within CacheTTL")
	clock = clock.Add(11 * time.Second)
	_, err = ask(at)
	assert.Error(t, err, "refused after CacheTTL")
}

// headerLogin is an application's own sign-in: it trusts a session it
// keeps itself (here, a header its front end sets).
type headerLogin struct{ s *memory.Store }

func (h headerLogin) User(r *http.Request) (*storage.User, error) {
	id := r.Header.Get("X-App-User")
	if id == "" {
		return nil, nil
	}
	return h.s.GetUser(r.Context(), id)
}

func (h headerLogin) SignIn(w http.ResponseWriter, r *http.Request, returnTo string) {
	http.Redirect(w, r, "/app/login?return_to="+url.QueryEscape(returnTo), http.StatusFound)
}

type firstParty struct{ id string }

func (f firstParty) Skip(_ context.Context, _ *storage.User, clientID string, _ []string) (bool, error) {
	return clientID == f.id, nil
}

func TestPluggableLoginAndConsent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memory.New()
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "demo", Name: "Demo", CreatedAt: time.Now()}
	require.NoError(t, s.CreateOrganisation(ctx, org))
	base, err := oauth.New(s, oauth.Config{Issuer: "http://127.0.0.1", Secret: make([]byte, 32)})
	require.NoError(t, err)
	u, err := base.CreateUser(ctx, oauth.UserParams{OrganisationID: org.ID, Email: "a@example.com", Password: "long enough password"})
	require.NoError(t, err)
	_, own, err := base.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "Our own app", RedirectURIs: []string{redirect}, Public: true, Scopes: []string{"bookings:read"}})
	require.NoError(t, err)
	_, third, err := base.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "Third party", RedirectURIs: []string{redirect}, Public: true, Scopes: []string{"bookings:read"}})
	require.NoError(t, err)
	p, err := oauth.New(s, oauth.Config{Issuer: "http://127.0.0.1", Secret: make([]byte, 32), Login: headerLogin{s}, Consent: firstParty{own.ID}})
	require.NoError(t, err)
	h := p.Handler()
	authURL := func(clientID string) string {
		return "/oauth/authorize?" + url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"state-plugged"},
			"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}.Encode()
	}
	get := func(u, user string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", u, nil)
		if user != "" {
			req.Header.Set("X-App-User", user)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := get(authURL(own.ID), "")
	assert.Equal(t, http.StatusFound, rec.Code, "nobody signed in: the application's sign-in")
	assert.True(t, strings.HasPrefix(rec.Header().Get("Location"), "/app/login?return_to=%2Foauth%2Fauthorize"))
	rec = get(authURL(own.ID), u.ID)
	require.Equal(t, http.StatusSeeOther, rec.Code, "first party: consent skipped by policy")
	assert.Contains(t, rec.Header().Get("Location"), "code=gate_ac_")
	rec = get(authURL(third.ID), u.ID)
	assert.Equal(t, http.StatusOK, rec.Code, "third party: the consent page")
	assert.Contains(t, rec.Body.String(), "Allow Third party?")
}

// FuzzJWTVerify: a bearer token is the client's to choose. Whatever it
// holds, the verifier either refuses it with ErrTokenInvalid (no panic,
// no other error while the key set is up) or returns exactly the claims
// the provider signed: no change to a token yields other claims.
func FuzzJWTVerify(f *testing.F) {
	keys, err := oauth.NewKeySet()
	require.NoError(f, err)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	f.Cleanup(srv.Close)
	p, err := oauth.New(memory.New(), oauth.Config{Issuer: srv.URL, Secret: make([]byte, 32), JWTKeys: keys})
	require.NoError(f, err)
	mux.Handle("/", p.Handler())
	secret, c, err := p.RegisterClient(f.Context(), oauth.ClientParams{OrganisationID: "o", Name: "svc", Grants: []string{"client_credentials"}, Scopes: []string{"staff:read"}})
	require.NoError(f, err)
	res, err := http.PostForm(srv.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {secret}})
	require.NoError(f, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(f, json.NewDecoder(res.Body).Decode(&tok))
	res.Body.Close()
	v, err := oauth.NewJWTVerifier(oauth.VerifierConfig{JWKSURL: srv.URL + "/.well-known/jwks.json", Issuer: srv.URL})
	require.NoError(f, err)
	want, err := v.Verify(f.Context(), tok.AccessToken)
	require.NoError(f, err)

	parts := strings.Split(tok.AccessToken, ".")
	f.Add(tok.AccessToken)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt","kid":"x"}`)) + "." + parts[1] + "." + parts[2])
	f.Add(parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"`+srv.URL+`","exp":9999999999}`)) + "." + parts[2])
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		got, err := v.Verify(t.Context(), token)
		if err != nil {
			if !errors.Is(err, oauth.ErrTokenInvalid) {
				t.Fatalf("Verify(%q): %v, which is not ErrTokenInvalid", token, err)
			}
			return
		}
		if got.Subject != want.Subject || got.ClientID != want.ClientID || got.Organisation != want.Organisation ||
			!slices.Equal(got.Scopes, want.Scopes) || got.ID != want.ID || !got.Expiry.Equal(want.Expiry) {
			t.Fatalf("Verify(%q) accepted claims the provider did not sign: %+v", token, got)
		}
	})
}

// TestJWTGrantsRefresh: with JWT access tokens, a grant's refresh token
// works, on every rotation. fosite checks the grant's audience (the JWT
// audience, granted at issuance) against the client's, which was empty:
// every refresh was an invalid_request ("Requested audience … has not
// been whitelisted").
func TestJWTGrantsRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oauth.Config) { c.JWTKeys, _ = oauth.NewKeySet() })
	_, body := e.post("/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
		"password": {"correct horse battery"}, "scope": {"bookings:read"}}, e.confID, e.confSec)
	rt, _ := body["refresh_token"].(string)
	require.NotEmpty(t, rt, "%v", body)
	for range 2 {
		res, body := e.post("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, e.confID, e.confSec)
		require.Equal(t, http.StatusOK, res.StatusCode, "%v", body)
		at := body["access_token"].(string)
		assert.Len(t, strings.Split(at, "."), 3, "a JWT")
		code, me := e.me(at)
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, []any{"bookings:read"}, me["scopes"])
		rt = body["refresh_token"].(string)
	}
}
