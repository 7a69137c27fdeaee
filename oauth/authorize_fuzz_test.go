package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

// fuzzRedirect is the only redirect URI the fuzzed clients registered.
const fuzzRedirect = "https://app.example/cb"

// fuzzStore is a store holding the organisation "demo", for the fuzz
// targets' providers.
func fuzzStore(f *testing.F) (*memory.Store, *storage.Organisation) {
	store := memory.New()
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "demo", Name: "Demo", CreatedAt: time.Now()}
	if err := store.CreateOrganisation(context.Background(), org); err != nil {
		f.Fatal(err)
	}
	return store, org
}

// fuzzProvider is a provider over store with cheap password hashing,
// its Config adjusted by configure.
func fuzzProvider(f *testing.F, store oauth.Store, configure func(*oauth.Config)) *oauth.Provider {
	cfg := oauth.Config{Issuer: "https://auth.example", Secret: []byte("0123456789abcdef0123456789abcdef-fuzz"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}}
	configure(&cfg)
	p, err := oauth.New(store, cfg)
	if err != nil {
		f.Fatal(err)
	}
	return p
}

// FuzzAuthorizeQuery sends any query string to the authorization
// endpoint, of a provider that requires state and of one that allows it
// missing. Whatever the query holds, the answer is a page (the sign-in
// page, or an error) or a redirect to the registered redirect URI: never
// a 5xx, and never a redirect anywhere else (RFC 9700 §4.1, open
// redirectors).
func FuzzAuthorizeQuery(f *testing.F) {
	ctx := context.Background()
	store, org := fuzzStore(f)
	var handlers [2]http.Handler
	var p *oauth.Provider
	for i, allow := range []bool{false, true} {
		p = fuzzProvider(f, store, func(c *oauth.Config) { c.AllowMissingState = allow })
		handlers[i] = p.Handler()
	}
	_, conf, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "App", RedirectURIs: []string{fuzzRedirect},
		Grants: []string{"authorization_code", "refresh_token", "implicit"}, Scopes: []string{"bookings:read", "customers:read"}})
	if err != nil {
		f.Fatal(err)
	}
	_, pub, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "SPA", RedirectURIs: []string{fuzzRedirect}, Public: true,
		Grants: []string{"authorization_code"}, Scopes: []string{"bookings:read"}})
	if err != nil {
		f.Fatal(err)
	}
	challenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, q := range []url.Values{
		{"client_id": {conf.ID}, "redirect_uri": {fuzzRedirect}, "response_type": {"code"}},
		{"client_id": {conf.ID}, "redirect_uri": {fuzzRedirect}, "response_type": {"token"}, "state": {"state-fuzz1"}},
		{"client_id": {conf.ID}, "redirect_uri": {fuzzRedirect}, "response_type": {"code"}, "state": {"short"}, "scope": {"bookings:read customers:read"}},
		{"client_id": {conf.ID}, "redirect_uri": {"https://app.example/cb/../evil"}, "response_type": {"code"}, "state": {"state-fuzz1"}},
		{"client_id": {conf.ID}, "redirect_uri": {"https://evil.example/cb"}, "response_type": {"token"}},
		{"client_id": {conf.ID}, "response_type": {"code"}, "state": {"state-fuzz1"}, "scope": {"payments:write"}},
		{"client_id": {pub.ID}, "redirect_uri": {fuzzRedirect}, "response_type": {"code"}, "state": {"state-fuzz1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}},
		{"client_id": {pub.ID}, "redirect_uri": {fuzzRedirect}, "response_type": {"code"}, "state": {"state-fuzz1"}, "code_challenge": {challenge}, "code_challenge_method": {"plain"}},
		{"client_id": {"nobody"}, "redirect_uri": {fuzzRedirect}, "response_type": {"code"}},
	} {
		f.Add(q.Encode(), false)
		f.Add(q.Encode(), true)
	}
	f.Add("client_id="+conf.ID+"&client_id="+pub.ID+"&redirect_uri="+url.QueryEscape(fuzzRedirect)+"&response_type=code", true)
	f.Add("response_type=code&state=%zz&client_id="+conf.ID, false)
	f.Fuzz(func(t *testing.T, query string, allowMissingState bool) {
		h := handlers[0]
		if allowMissingState {
			h = handlers[1]
		}
		req, err := http.NewRequest(http.MethodGet, "https://auth.example/oauth/authorize?"+query, nil)
		if err != nil || req.URL.Path != "/oauth/authorize" {
			t.Skip("not a request URL")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%d for ?%s: %s", rec.Code, query, rec.Body)
		case rec.Code >= 300 && rec.Code < 400:
			loc := rec.Header().Get("Location")
			if !strings.HasPrefix(loc, fuzzRedirect+"?") && !strings.HasPrefix(loc, fuzzRedirect+"#") {
				t.Fatalf("%d for ?%s redirects to %q, not to the registered redirect URI", rec.Code, query, loc)
			}
		}
	})
}
